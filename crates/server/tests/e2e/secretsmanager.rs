//! Secrets Manager: secrets, versions and staging labels, deletion with a recovery window,
//! resource policies, tags, random passwords; values encrypted under KMS (never in plain text
//! in the data dir) and unreadable for a role the key policy denies kms:Decrypt; the aws CLI;
//! Terraform's `aws_secretsmanager_secret` and `aws_secretsmanager_secret_version`.

use crate::common::*;
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};

async fn sm_client(t: &TestServer) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&t.sdk_config().await)
}

fn stages_of(d: &aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput, version: &str) -> Vec<String> {
    d.version_ids_to_stages().and_then(|m| m.get(version)).cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_versions_and_stages() {
    let (_t, sm) = TestServer::with(aws_sdk_secretsmanager::Client::new).await;
    let token1 = "11111111-1111-1111-1111-111111111111";
    let created = sm
        .create_secret()
        .name("app/db")
        .description("db credentials")
        .secret_string(r#"{"user":"admin","password":"first"}"#)
        .client_request_token(token1)
        .tags(Tag::builder().key("team").value("data").build())
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap().to_string();
    assert!(arn.starts_with(&format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:app/db-")), "{arn}");
    assert_eq!(arn.len(), format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:app/db-").len() + 6);
    assert_eq!(created.version_id(), Some(token1));
    // A retry with the same token and value is the same secret; another value is refused.
    let again = sm.create_secret().name("app/db").secret_string(r#"{"user":"admin","password":"first"}"#).client_request_token(token1).send().await.unwrap();
    assert_eq!(again.arn(), Some(arn.as_str()));
    let err = sm.create_secret().name("app/db").secret_string("other").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ResourceExistsException");
    let err = sm.create_secret().name("both").secret_string("a").secret_binary(Blob::new("b")).send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidParameterException");

    // By name, full ARN and partial ARN.
    let partial = arn[..arn.len() - 7].to_string();
    for id in ["app/db", arn.as_str(), partial.as_str()] {
        let v = sm.get_secret_value().secret_id(id).send().await.unwrap();
        assert_eq!(v.secret_string(), Some(r#"{"user":"admin","password":"first"}"#), "by {id}");
        assert_eq!(v.version_stages(), ["AWSCURRENT"]);
        assert_eq!(v.arn(), Some(arn.as_str()));
    }
    let err = sm.get_secret_value().secret_id("missing").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ResourceNotFoundException");
    assert_eq!(err.into_service_error().meta().message(), Some("Secrets Manager can't find the specified secret."));

    // A new value: AWSCURRENT moves, the old one becomes AWSPREVIOUS.
    let put = sm.put_secret_value().secret_id("app/db").secret_string("second").send().await.unwrap();
    let v2 = put.version_id().unwrap().to_string();
    assert_eq!(put.version_stages(), ["AWSCURRENT"]);
    let d = sm.describe_secret().secret_id("app/db").send().await.unwrap();
    assert_eq!(stages_of(&d, &v2), ["AWSCURRENT"]);
    assert_eq!(stages_of(&d, token1), ["AWSPREVIOUS"]);
    assert_eq!(d.description(), Some("db credentials"));
    assert_eq!(d.tags().len(), 1);
    assert!(d.created_date().is_some() && d.last_changed_date().is_some());
    assert_eq!(sm.get_secret_value().secret_id("app/db").version_stage("AWSPREVIOUS").send().await.unwrap().version_id(), Some(token1));
    assert_eq!(sm.get_secret_value().secret_id("app/db").version_id(&v2).send().await.unwrap().secret_string(), Some("second"));
    let err = sm.get_secret_value().secret_id("app/db").version_stage("AWSPENDING").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ResourceNotFoundException");
    let err = sm.put_secret_value().secret_id("app/db").client_request_token(token1).secret_string("changed").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ResourceExistsException");

    // A pending version, then AWSCURRENT moved onto it by UpdateSecretVersionStage.
    let pending = sm.put_secret_value().secret_id("app/db").secret_string("third").version_stages("AWSPENDING").send().await.unwrap().version_id().unwrap().to_string();
    assert_eq!(sm.get_secret_value().secret_id("app/db").send().await.unwrap().secret_string(), Some("second"));
    let err = sm.update_secret_version_stage().secret_id("app/db").version_stage("AWSCURRENT").move_to_version_id(&pending).send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidParameterException");
    sm.update_secret_version_stage().secret_id("app/db").version_stage("AWSCURRENT").move_to_version_id(&pending).remove_from_version_id(&v2).send().await.unwrap();
    sm.update_secret_version_stage().secret_id("app/db").version_stage("AWSPENDING").remove_from_version_id(&pending).send().await.unwrap();
    let d = sm.describe_secret().secret_id("app/db").send().await.unwrap();
    assert_eq!(stages_of(&d, &pending), ["AWSCURRENT"]);
    assert_eq!(stages_of(&d, &v2), ["AWSPREVIOUS"]);
    assert!(stages_of(&d, token1).is_empty());
    let versions = sm.list_secret_version_ids().secret_id("app/db").send().await.unwrap();
    assert_eq!(versions.versions().len(), 2);
    let all = sm.list_secret_version_ids().secret_id("app/db").include_deprecated(true).send().await.unwrap();
    assert_eq!(all.versions().len(), 3);

    // UpdateSecret: description and a new current value.
    let up = sm.update_secret().secret_id(&arn).description("rotated").secret_string("fourth").send().await.unwrap();
    assert!(up.version_id().is_some());
    assert_eq!(sm.get_secret_value().secret_id("app/db").send().await.unwrap().secret_string(), Some("fourth"));

    // Binary secrets, tags, lists with filters and pages.
    sm.create_secret().name("app/cert").secret_binary(Blob::new(vec![0u8, 1, 2, 255])).send().await.unwrap();
    assert_eq!(sm.get_secret_value().secret_id("app/cert").send().await.unwrap().secret_binary().unwrap().as_ref(), [0u8, 1, 2, 255]);
    sm.create_secret().name("other/thing").description("Misc").send().await.unwrap();
    sm.tag_resource().secret_id("app/cert").tags(Tag::builder().key("team").value("web").build()).send().await.unwrap();
    sm.untag_resource().secret_id("app/db").tag_keys("team").send().await.unwrap();
    let names = |l: &aws_sdk_secretsmanager::operation::list_secrets::ListSecretsOutput| -> Vec<String> { l.secret_list().iter().map(|s| s.name().unwrap().to_string()).collect() };
    let by_name = sm.list_secrets().filters(Filter::builder().key(FilterNameStringType::Name).values("app/").build()).sort_order(aws_sdk_secretsmanager::types::SortOrderType::Asc).send().await.unwrap();
    assert_eq!(names(&by_name), ["app/db", "app/cert"]);
    let by_tag = sm.list_secrets().filters(Filter::builder().key(FilterNameStringType::TagValue).values("web").build()).send().await.unwrap();
    assert_eq!(names(&by_tag), ["app/cert"]);
    let by_desc = sm.list_secrets().filters(Filter::builder().key(FilterNameStringType::Description).values("misc").build()).send().await.unwrap();
    assert_eq!(names(&by_desc), ["other/thing"]);
    let not_app = sm.list_secrets().filters(Filter::builder().key(FilterNameStringType::Name).values("!app/").build()).send().await.unwrap();
    assert_eq!(names(&not_app), ["other/thing"]);
    let first = sm.list_secrets().max_results(2).send().await.unwrap();
    assert_eq!(first.secret_list().len(), 2);
    let rest = sm.list_secrets().max_results(2).next_token(first.next_token().unwrap()).send().await.unwrap();
    assert_eq!(rest.secret_list().len(), 1);
    assert!(rest.next_token().is_none());
    let batch = sm.batch_get_secret_value().secret_id_list("app/db").secret_id_list("missing").send().await.unwrap();
    assert_eq!(batch.secret_values().len(), 1);
    assert_eq!(batch.errors()[0].error_code(), Some("ResourceNotFoundException"));

    // Deletion with a recovery window, restore, and deletion without one.
    let err = sm.delete_secret().secret_id("app/db").recovery_window_in_days(3).send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidParameterException");
    let del = sm.delete_secret().secret_id("app/db").recovery_window_in_days(7).send().await.unwrap();
    let when = del.deletion_date().unwrap().secs();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((when - now - 7 * 86400).abs() < 120, "deletion date {when} vs now {now}");
    let err = sm.get_secret_value().secret_id("app/db").send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidRequestException");
    assert!(err.into_service_error().meta().message().unwrap().contains("marked for deletion"));
    assert!(sm.describe_secret().secret_id("app/db").send().await.unwrap().deleted_date().is_some());
    assert!(!names(&sm.list_secrets().send().await.unwrap()).contains(&"app/db".to_string()));
    assert!(names(&sm.list_secrets().include_planned_deletion(true).send().await.unwrap()).contains(&"app/db".to_string()));
    let err = sm.create_secret().name("app/db").secret_string("x").send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidRequestException");
    sm.restore_secret().secret_id("app/db").send().await.unwrap();
    assert_eq!(sm.get_secret_value().secret_id("app/db").send().await.unwrap().secret_string(), Some("fourth"));
    let err = sm.delete_secret().secret_id("app/db").force_delete_without_recovery(true).recovery_window_in_days(7).send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidParameterException");
    sm.delete_secret().secret_id("app/db").force_delete_without_recovery(true).send().await.unwrap();
    let err = sm.describe_secret().secret_id("app/db").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ResourceNotFoundException");
    sm.create_secret().name("app/db").secret_string("reborn").send().await.unwrap();

    // Random passwords.
    let pw = sm.get_random_password().password_length(20).exclude_punctuation(true).send().await.unwrap();
    let pw = pw.random_password().unwrap();
    assert_eq!(pw.len(), 20);
    assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));
    let pw = sm.get_random_password().send().await.unwrap();
    assert_eq!(pw.random_password().unwrap().len(), 32);
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_policies_and_key_policies_decide_who_reads() {
    let (t, sm) = TestServer::with(aws_sdk_secretsmanager::Client::new).await;
    let kms = aws_sdk_kms::Client::new(&t.sdk_config().await);
    let reader = RoleSession::start(&t, "secret-reader", &allow_policy(&[(&["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], &["*"]), (&["kms:Decrypt"], &["*"])])).await;
    let as_reader = aws_sdk_secretsmanager::Client::new(&reader.conf);

    // The AWS managed key: anyone in the account may use it through Secrets Manager.
    sm.create_secret().name("managed").secret_string("managed-value").send().await.unwrap();
    assert_eq!(as_reader.get_secret_value().secret_id("managed").send().await.unwrap().secret_string(), Some("managed-value"));
    // ... but not directly.
    let d = kms.describe_key().key_id("alias/aws/secretsmanager").send().await.unwrap();
    assert_eq!(d.key_metadata().unwrap().key_manager().map(|m| m.as_str()), Some("AWS"));

    // A customer managed key whose policy denies the role kms:Decrypt: GetSecretValue fails.
    let key = kms.create_key().description("secrets").send().await.unwrap().key_metadata().unwrap().arn().unwrap().to_string();
    sm.create_secret().name("cmk").kms_key_id(&key).secret_string("cmk-value").send().await.unwrap();
    assert_eq!(as_reader.get_secret_value().secret_id("cmk").send().await.unwrap().secret_string(), Some("cmk-value"));
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Deny reader", "Effect": "Deny", "Principal": {"AWS": reader.role_arn.clone()}, "Action": "kms:Decrypt", "Resource": "*"}]});
    kms.put_key_policy().key_id(&key).policy_name("default").policy(policy.to_string()).send().await.unwrap();
    let err = as_reader.get_secret_value().secret_id("cmk").send().await.unwrap_err();
    assert_eq!(error_code(&err), "AccessDeniedException");
    let msg = err.into_service_error().meta().message().unwrap().to_string();
    assert!(msg.contains("kms:Decrypt"), "{msg}");
    // The root still reads it; the managed-key secret is still readable for the role.
    assert_eq!(sm.get_secret_value().secret_id("cmk").send().await.unwrap().secret_string(), Some("cmk-value"));
    as_reader.get_secret_value().secret_id("managed").send().await.unwrap();

    // A role without kms:Decrypt in its own policy cannot read a CMK secret either.
    let no_kms = RoleSession::start(&t, "no-kms", &allow_policy(&[(&["secretsmanager:GetSecretValue"], &["*"])])).await;
    kms.put_key_policy().key_id(&key).policy_name("default").policy(serde_json::json!({"Version": "2012-10-17", "Statement": [policy["Statement"][0].clone()]}).to_string()).send().await.unwrap();
    let err = aws_sdk_secretsmanager::Client::new(&no_kms.conf).get_secret_value().secret_id("cmk").send().await.unwrap_err();
    assert_eq!(error_code(&err), "AccessDeniedException");

    // A resource policy on the secret denies the reader outright.
    let deny = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": {"AWS": reader.role_arn.clone()}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]});
    sm.put_resource_policy().secret_id("managed").resource_policy(deny.to_string()).send().await.unwrap();
    let got = sm.get_resource_policy().secret_id("managed").send().await.unwrap();
    assert_eq!(got.resource_policy().map(|p| serde_json::from_str::<serde_json::Value>(p).unwrap()), Some(deny.clone()));
    let err = as_reader.get_secret_value().secret_id("managed").send().await.unwrap_err();
    assert_eq!(error_code(&err), "AccessDeniedException");
    sm.delete_resource_policy().secret_id("managed").send().await.unwrap();
    as_reader.get_secret_value().secret_id("managed").send().await.unwrap();
    // Public policies are blocked by default; validation says why.
    let public = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]});
    let err = sm.put_resource_policy().secret_id("managed").resource_policy(public.to_string()).send().await.unwrap_err();
    assert_eq!(error_code(&err), "PublicPolicyException");
    let v = sm.validate_resource_policy().resource_policy(public.to_string()).send().await.unwrap();
    assert!(!v.policy_validation_passed());
    let err = sm.put_resource_policy().secret_id("managed").resource_policy("{not json").send().await.unwrap_err();
    assert_eq!(error_code(&err), "MalformedPolicyDocumentException");
}

fn assert_absent_from(dir: &std::path::Path, needles: &[&str]) {
    let files = regular_files_under(dir);
    assert!(files.iter().any(|f| f.file_name().is_some_and(|n| n == "state.db")), "no state.db under {}", dir.display());
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        for needle in needles {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle:?} in plain text in {}", f.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn values_never_reach_the_data_dir_in_plain_text() {
    const SECRET: &str = "Recognizable-Secret-Value-9f3a1c";
    const SECOND: &str = "Second-Recognizable-Version-77e2";
    const KMS_PLAIN: &str = "SecureString-Like-Plaintext-4b8d";
    let dir = tempfile::tempdir().unwrap();
    let t = TestServer::start_in(dir.path().to_path_buf(), |_| {}).await;
    let sm = sm_client(&t).await;
    let kms = aws_sdk_kms::Client::new(&t.sdk_config().await);
    sm.create_secret().name("plain/check").secret_string(SECRET).send().await.unwrap();
    sm.put_secret_value().secret_id("plain/check").secret_string(SECOND).send().await.unwrap();
    let key = kms.create_key().send().await.unwrap().key_metadata().unwrap().key_id().to_string();
    sm.create_secret().name("plain/cmk").kms_key_id(&key).secret_binary(Blob::new(SECRET)).send().await.unwrap();
    let blob = kms.encrypt().key_id(&key).plaintext(aws_sdk_kms::primitives::Blob::new(KMS_PLAIN)).send().await.unwrap().ciphertext_blob().unwrap().clone();
    assert_eq!(sm.get_secret_value().secret_id("plain/check").send().await.unwrap().secret_string(), Some(SECOND));
    // While running (WAL and all), and after a clean stop (checkpointed). The scan does read
    // the store: the secrets' names are there.
    let names_found = regular_files_under(dir.path()).iter().any(|f| std::fs::read(f).unwrap_or_default().windows(11).any(|w| w == b"plain/check"));
    assert!(names_found, "the scan found no secret name: it does not read the store");
    assert_absent_from(dir.path(), &[SECRET, SECOND, KMS_PLAIN]);
    t.stop().await;
    assert_absent_from(dir.path(), &[SECRET, SECOND, KMS_PLAIN]);
    // And the values come back after the restart.
    let t = TestServer::start_in(dir.path().to_path_buf(), |_| {}).await;
    let sm = sm_client(&t).await;
    assert_eq!(sm.get_secret_value().secret_id("plain/check").version_stage("AWSPREVIOUS").send().await.unwrap().secret_string(), Some(SECRET));
    let kms = aws_sdk_kms::Client::new(&t.sdk_config().await);
    assert_eq!(kms.decrypt().ciphertext_blob(blob).send().await.unwrap().plaintext().unwrap().as_ref(), KMS_PLAIN.as_bytes());
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_aws_cli_creates_and_reads_secrets() {
    let t = TestServer::start().await;
    let v = aws_cli_json(&t.endpoint, &["secretsmanager", "create-secret", "--name", "cli/token", "--secret-string", "cli-value", "--tags", "Key=k,Value=v"]);
    assert!(v["ARN"].as_str().unwrap().contains(":secret:cli/token-"));
    let (ok, out, err) = aws_cli(&t.endpoint, &["secretsmanager", "get-secret-value", "--secret-id", "cli/token", "--query", "SecretString"]);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<String>(&out).unwrap(), "cli-value");
    let v = aws_cli_json(&t.endpoint, &["secretsmanager", "describe-secret", "--secret-id", "cli/token"]);
    assert_eq!(v["Tags"][0]["Key"], "k");
    let (ok, _, err) = aws_cli(&t.endpoint, &["secretsmanager", "get-secret-value", "--secret-id", "cli/missing"]);
    assert!(!ok);
    assert!(err.contains("ResourceNotFoundException") && err.contains("can't find the specified secret"), "{err}");
    let (ok, out, err) = aws_cli(&t.endpoint, &["secretsmanager", "delete-secret", "--secret-id", "cli/token", "--force-delete-without-recovery"]);
    assert!(ok, "{err}");
    assert!(out.contains("DeletionDate"));
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_secrets_and_versions() {
    let (t, ws, sm) = terraform_applied("secretsmanager", aws_sdk_secretsmanager::Client::new).await;
    let v = sm.get_secret_value().secret_id("tf/db").send().await.unwrap();
    let value: serde_json::Value = serde_json::from_str(v.secret_string().unwrap()).unwrap();
    assert_eq!(value["password"], "tf-first-password-7Qx");
    let d = sm.describe_secret().secret_id("tf/db").send().await.unwrap();
    assert!(d.kms_key_id().unwrap().starts_with("arn:aws:kms:"));
    assert_eq!(sm.get_secret_value().secret_id("tf/plain").send().await.unwrap().secret_string(), Some("plain-value"));
    // A new value is a new version; the old one is AWSPREVIOUS.
    terraform_apply_clean(ws.path(), &t.endpoint, &["-var=password=tf-second-password"]);
    let v = sm.get_secret_value().secret_id("tf/db").send().await.unwrap();
    assert!(v.secret_string().unwrap().contains("tf-second-password"));
    let prev = sm.get_secret_value().secret_id("tf/db").version_stage("AWSPREVIOUS").send().await.unwrap();
    assert!(prev.secret_string().unwrap().contains("tf-first-password-7Qx"));
    terraform_destroy(ws.path(), &t.endpoint, &["-var=password=tf-second-password"]);
    // recovery_window_in_days = 0: gone at once; the other waits out its window.
    let err = sm.describe_secret().secret_id("tf/db").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ResourceNotFoundException");
    assert!(sm.describe_secret().secret_id("tf/plain").send().await.unwrap().deleted_date().is_some());
}
