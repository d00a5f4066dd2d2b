//! Members that EventBridge and ECR keep as given and echo back, through the generated typed
//! shapes (issue 12): what one request sets, the next answer shows, nested members included.

use crate::common::*;
use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageTagMutability, ImageTagMutabilityExclusionFilter, ImageTagMutabilityExclusionFilterType,
};
use aws_sdk_eventbridge::types::{DeadLetterConfig, IncludeDetail, InputTransformer, Level, LogConfig, RetryPolicy, Target};

#[tokio::test]
async fn event_bus_options_and_targets_round_trip() {
    let (_t, eb) = TestServer::with(aws_sdk_eventbridge::Client::new).await;
    let dlq = "arn:aws:sqs:eu-west-1:000000000000:dlq";
    let created = eb
        .create_event_bus()
        .name("typed")
        .kms_key_identifier("alias/bus")
        .dead_letter_config(DeadLetterConfig::builder().arn(dlq).build())
        .log_config(LogConfig::builder().level(Level::Info).include_detail(IncludeDetail::Full).build())
        .send()
        .await
        .unwrap();
    assert_eq!(created.kms_key_identifier(), Some("alias/bus"));
    assert_eq!(created.dead_letter_config().and_then(|d| d.arn()), Some(dlq));
    let described = eb.describe_event_bus().name("typed").send().await.unwrap();
    assert_eq!(described.kms_key_identifier(), Some("alias/bus"));
    assert_eq!(described.log_config().and_then(|l| l.level()), Some(&Level::Info));
    assert_eq!(described.log_config().and_then(|l| l.include_detail()), Some(&IncludeDetail::Full));
    assert!(described.creation_time().is_some());
    // The default bus was never created: it has no times.
    let default = eb.describe_event_bus().send().await.unwrap();
    assert_eq!(default.name(), Some("default"));
    assert!(default.creation_time().is_none());

    eb.put_rule().name("r").event_pattern(r#"{"source":["a"]}"#).send().await.unwrap();
    let target = Target::builder()
        .id("t1")
        .arn("arn:aws:codebuild:eu-west-1:000000000000:project/p")
        .input_transformer(InputTransformer::builder().input_paths_map("src", "$.source").input_template(r#"{"s": <src>}"#).build().unwrap())
        .retry_policy(RetryPolicy::builder().maximum_retry_attempts(2).build())
        .build()
        .unwrap();
    let put = eb.put_targets().rule("r").targets(target).send().await.unwrap();
    assert_eq!(put.failed_entry_count(), 0);
    let listed = eb.list_targets_by_rule().rule("r").send().await.unwrap();
    let got = &listed.targets()[0];
    assert_eq!(got.input_transformer().and_then(|x| x.input_paths_map()).and_then(|m| m.get("src")).map(String::as_str), Some("$.source"));
    assert_eq!(got.retry_policy().and_then(|r| r.maximum_retry_attempts()), Some(2));
    assert!(got.input().is_none() && got.role_arn().is_none());
}

#[tokio::test]
async fn ecr_repository_options_round_trip() {
    let (_t, ecr) = TestServer::with(aws_sdk_ecr::Client::new).await;
    let latest = ImageTagMutabilityExclusionFilter::builder().filter_type(ImageTagMutabilityExclusionFilterType::Wildcard).filter("latest*").build().unwrap();
    let created = ecr
        .create_repository()
        .repository_name("typed/repo")
        .image_tag_mutability(ImageTagMutability::ImmutableWithExclusion)
        .image_tag_mutability_exclusion_filters(latest.clone())
        .encryption_configuration(EncryptionConfiguration::builder().encryption_type(EncryptionType::Kms).build().unwrap())
        .send()
        .await
        .unwrap();
    let repo = created.repository().unwrap();
    assert_eq!(repo.image_tag_mutability(), Some(&ImageTagMutability::ImmutableWithExclusion));
    assert_eq!(repo.image_tag_mutability_exclusion_filters(), [latest.clone()]);
    let enc = repo.encryption_configuration().unwrap();
    let default_key = format!("arn:aws:kms:{REGION}:000000000000:alias/aws/ecr");
    assert_eq!((enc.encryption_type(), enc.kms_key()), (&EncryptionType::Kms, Some(default_key.as_str())));

    let changed = ecr.put_image_tag_mutability().repository_name("typed/repo").image_tag_mutability(ImageTagMutability::Mutable).send().await.unwrap();
    assert_eq!(changed.image_tag_mutability(), Some(&ImageTagMutability::Mutable));
    assert!(changed.image_tag_mutability_exclusion_filters().is_empty());

    let policy = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;
    ecr.put_lifecycle_policy().repository_name("typed/repo").lifecycle_policy_text(policy).send().await.unwrap();
    let got = ecr.get_lifecycle_policy().repository_name("typed/repo").send().await.unwrap();
    assert_eq!(got.lifecycle_policy_text(), Some(policy));
    let deleted = ecr.delete_lifecycle_policy().repository_name("typed/repo").send().await.unwrap();
    assert_eq!(deleted.lifecycle_policy_text(), Some(policy));
    let gone = ecr.get_lifecycle_policy().repository_name("typed/repo").send().await.unwrap_err();
    assert_eq!(gone.as_service_error().map(|e| e.is_lifecycle_policy_not_found_exception()), Some(true));
}
