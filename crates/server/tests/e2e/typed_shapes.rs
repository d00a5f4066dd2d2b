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

/// A V2 pipeline's stage conditions (stored and returned, not evaluated) come back as declared,
/// nested rules and retry settings included, and survive an update of another stage.
#[tokio::test]
async fn pipeline_stage_conditions_round_trip() {
    use aws_sdk_codepipeline::types::*;
    let (t, cp) = TestServer::with(aws_sdk_codepipeline::Client::new).await;
    make_bucket(&s3_client(&t.endpoint).await, "typed-art").await;
    let iam = aws_sdk_iam::Client::new(&t.sdk_config().await);
    let role = create_service_role(&iam, "typed", "codepipeline.amazonaws.com", &codepipeline_role_policy()).await;
    let id = |category, provider: &str| ActionTypeId::builder().category(category).owner(ActionOwner::Aws).provider(provider).version("1").build().unwrap();
    let source = ActionDeclaration::builder()
        .name("Source")
        .action_type_id(id(ActionCategory::Source, "S3"))
        .configuration("S3Bucket", "typed-art")
        .configuration("S3ObjectKey", "src.zip")
        .configuration("PollForSourceChanges", "false")
        .output_artifacts(OutputArtifact::builder().name("src").build().unwrap())
        .build()
        .unwrap();
    let approve = ActionDeclaration::builder().name("Approve").action_type_id(id(ActionCategory::Approval, "Manual")).build().unwrap();
    let rule_type = RuleTypeId::builder().category(RuleCategory::Rule).owner(RuleOwner::Aws).provider("VariableCheck").version("1").build().unwrap();
    let rule = RuleDeclaration::builder()
        .name("IsMain")
        .rule_type_id(rule_type)
        .configuration("Variable", "#{SourceVariables.BranchName}")
        .configuration("Value", "main")
        .configuration("Operator", "EQ")
        .build()
        .unwrap();
    let before_entry = BeforeEntryConditions::builder().conditions(Condition::builder().result(aws_sdk_codepipeline::types::Result::Fail).rules(rule).build()).build().unwrap();
    let on_failure = FailureConditions::builder().result(aws_sdk_codepipeline::types::Result::Retry).retry_configuration(RetryConfiguration::builder().retry_mode(StageRetryMode::FailedActions).build()).build();
    let gate = StageDeclaration::builder().name("Gate").actions(approve).before_entry(before_entry).on_failure(on_failure).build().unwrap();
    let declaration = PipelineDeclaration::builder()
        .name("typed-v2")
        .pipeline_type(PipelineType::V2)
        .role_arn(role)
        .artifact_store(ArtifactStore::builder().r#type(ArtifactStoreType::S3).location("typed-art").build().unwrap())
        .stages(StageDeclaration::builder().name("Source").actions(source).build().unwrap())
        .stages(gate)
        .build()
        .unwrap();
    cp.create_pipeline().pipeline(declaration.clone()).send().await.unwrap();
    let check = |got: &PipelineDeclaration| {
        let stage = got.stages().iter().find(|s| s.name() == "Gate").unwrap();
        let condition = &stage.before_entry().unwrap().conditions()[0];
        assert_eq!(condition.result(), Some(&aws_sdk_codepipeline::types::Result::Fail));
        let rule = &condition.rules()[0];
        assert_eq!((rule.name(), rule.rule_type_id().map(|r| r.provider())), ("IsMain", Some("VariableCheck")));
        assert_eq!(rule.configuration().and_then(|c| c.get("Operator")).map(String::as_str), Some("EQ"));
        let on_failure = stage.on_failure().unwrap();
        assert_eq!(on_failure.result(), Some(&aws_sdk_codepipeline::types::Result::Retry));
        assert_eq!(on_failure.retry_configuration().and_then(|r| r.retry_mode()), Some(&StageRetryMode::FailedActions));
        assert!(stage.on_success().is_none());
    };
    let got = cp.get_pipeline().name("typed-v2").send().await.unwrap();
    check(got.pipeline().unwrap());
    let mut updated = got.pipeline().unwrap().clone();
    updated.stages[0].actions[0].configuration.as_mut().unwrap().insert("S3ObjectKey".into(), "other.zip".into());
    let answer = cp.update_pipeline().pipeline(updated).send().await.unwrap();
    check(answer.pipeline().unwrap());
    check(cp.get_pipeline().name("typed-v2").send().await.unwrap().pipeline().unwrap());
    t.assert_no_model_violations();
}
