//! The Foundation's "Done when" checks that span services and tools: the aws CLI with a
//! `kill -9` in the middle, `--auth enforce`, bad input of every kind, and Terraform.

use crate::common::*;
use serde_json::Value;

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:PutLogEvents"],"Resource":"*"}]}"#;

fn cli_json(endpoint: &str, args: &[&str]) -> Value {
    let (ok, out, err) = aws_cli(endpoint, args);
    assert!(ok, "aws {args:?} failed: {err}");
    if out.trim().is_empty() { Value::Null } else { serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")) }
}

#[test]
fn cli_round_trip_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn(dir.path(), &[]);
    let ep = server.endpoint.clone();
    let me = cli_json(&ep, &["sts", "get-caller-identity"]);
    assert_eq!(me["Account"], ACCOUNT);
    assert_eq!(me["Arn"], "arn:aws:iam::000000000000:root");

    let role = cli_json(&ep, &["iam", "create-role", "--role-name", "cli-role", "--assume-role-policy-document", TRUST]);
    let role_arn = role["Role"]["Arn"].as_str().unwrap().to_string();
    cli_json(&ep, &["iam", "put-role-policy", "--role-name", "cli-role", "--policy-name", "inline", "--policy-document", POLICY]);
    let policy = cli_json(&ep, &["iam", "create-policy", "--policy-name", "managed", "--policy-document", POLICY]);
    let policy_arn = policy["Policy"]["Arn"].as_str().unwrap().to_string();
    cli_json(&ep, &["iam", "attach-role-policy", "--role-name", "cli-role", "--policy-arn", &policy_arn]);
    cli_json(&ep, &["logs", "create-log-group", "--log-group-name", "cli-group"]);
    cli_json(&ep, &["logs", "put-retention-policy", "--log-group-name", "cli-group", "--retention-in-days", "14"]);
    cli_json(&ep, &["logs", "create-log-stream", "--log-group-name", "cli-group", "--log-stream-name", "s"]);
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis().to_string();
    let events = format!("timestamp={ts},message=before-the-crash");
    cli_json(&ep, &["logs", "put-log-events", "--log-group-name", "cli-group", "--log-stream-name", "s", "--log-events", &events]);

    let check = |ep: &str| {
        let got = cli_json(ep, &["iam", "get-role", "--role-name", "cli-role"]);
        assert_eq!(got["Role"]["Arn"], role_arn.as_str());
        // The CLI decodes the percent-encoded document into JSON.
        let trust: Value = serde_json::from_str(TRUST).unwrap();
        assert_eq!(got["Role"]["AssumeRolePolicyDocument"], trust);
        let inline = cli_json(ep, &["iam", "get-role-policy", "--role-name", "cli-role", "--policy-name", "inline"]);
        assert_eq!(inline["PolicyDocument"], serde_json::from_str::<Value>(POLICY).unwrap());
        let attached = cli_json(ep, &["iam", "list-attached-role-policies", "--role-name", "cli-role"]);
        assert_eq!(attached["AttachedPolicies"][0]["PolicyArn"], policy_arn.as_str());
        let p = cli_json(ep, &["iam", "get-policy", "--policy-arn", &policy_arn]);
        assert_eq!(p["Policy"]["AttachmentCount"], 1);
        let groups = cli_json(ep, &["logs", "describe-log-groups", "--log-group-name-prefix", "cli-group"]);
        assert_eq!(groups["logGroups"][0]["retentionInDays"], 14);
        let ev = cli_json(ep, &["logs", "get-log-events", "--log-group-name", "cli-group", "--log-stream-name", "s", "--start-from-head"]);
        assert_eq!(ev["events"][0]["message"], "before-the-crash");
    };
    check(&ep);
    server.kill9();

    let restarted = ServerProcess::spawn(dir.path(), &[]);
    check(&restarted.endpoint);
    // And the restarted server still refuses what conflicts with the recovered state.
    let (ok, _, err) = aws_cli(&restarted.endpoint, &["iam", "delete-role", "--role-name", "cli-role"]);
    assert!(!ok && err.contains("DeleteConflict"), "{err}");
}

async fn sdk_config(endpoint: &str, key: &str, secret: &str, token: Option<String>) -> aws_config::SdkConfig {
    let creds = aws_credential_types::Credentials::new(key, secret, token, None, "test");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_enforce_refuses_wrong_signatures_and_accepts_right_ones() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn(dir.path(), &["--auth", "enforce", "--access-keys", "AKIDTEST:secret"]);
    let ep = server.endpoint.clone();
    let good = sdk_config(&ep, "AKIDTEST", "secret", None).await;
    let wrong = sdk_config(&ep, "AKIDTEST", "not-the-secret", None).await;
    let unknown = sdk_config(&ep, "AKIDUNKNOWN", "secret", None).await;

    // Query APIs (IAM, STS).
    let e = aws_sdk_iam::Client::new(&wrong).list_roles().send().await.unwrap_err();
    let e = e.into_service_error();
    assert_eq!(aws_sdk_iam::error::ProvideErrorMetadata::code(&e), Some("SignatureDoesNotMatch"));
    let e = aws_sdk_sts::Client::new(&unknown).get_caller_identity().send().await.unwrap_err().into_service_error();
    assert_eq!(aws_sdk_sts::error::ProvideErrorMetadata::code(&e), Some("InvalidClientTokenId"));
    let me = aws_sdk_sts::Client::new(&good).get_caller_identity().send().await.unwrap();
    assert_eq!(me.arn(), Some("arn:aws:iam::000000000000:root"));
    // Refused requests changed nothing; accepted ones do.
    let e = aws_sdk_iam::Client::new(&wrong).create_role().role_name("r").assume_role_policy_document(TRUST).send().await.unwrap_err();
    assert_eq!(aws_sdk_iam::error::ProvideErrorMetadata::code(&e.into_service_error()), Some("SignatureDoesNotMatch"));
    let iam = aws_sdk_iam::Client::new(&good);
    assert!(iam.list_roles().send().await.unwrap().roles().is_empty());
    let role = iam.create_role().role_name("r").assume_role_policy_document(TRUST).send().await.unwrap();

    // JSON APIs (CloudWatch Logs).
    let e = aws_sdk_cloudwatchlogs::Client::new(&wrong).describe_log_groups().send().await.unwrap_err().into_service_error();
    assert_eq!(aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata::code(&e), Some("InvalidSignatureException"));
    let e = aws_sdk_cloudwatchlogs::Client::new(&unknown).describe_log_groups().send().await.unwrap_err().into_service_error();
    assert_eq!(aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata::code(&e), Some("UnrecognizedClientException"));
    aws_sdk_cloudwatchlogs::Client::new(&good).create_log_group().log_group_name("ok").send().await.unwrap();

    // Credentials issued by AssumeRole verify too, and act as the role.
    let sts = aws_sdk_sts::Client::new(&good);
    let out = sts.assume_role().role_arn(role.role().unwrap().arn()).role_session_name("enforced").send().await.unwrap();
    let c = out.credentials().unwrap();
    let as_role = sdk_config(&ep, c.access_key_id(), c.secret_access_key(), Some(c.session_token().to_string())).await;
    let me = aws_sdk_sts::Client::new(&as_role).get_caller_identity().send().await.unwrap();
    assert_eq!(me.arn(), Some("arn:aws:sts::000000000000:assumed-role/r/enforced"));
    // The issued key and secret are not enough without the session token they belong to.
    let tokenless = sdk_config(&ep, c.access_key_id(), c.secret_access_key(), None).await;
    let e = aws_sdk_sts::Client::new(&tokenless).get_caller_identity().send().await.unwrap_err().into_service_error();
    assert_eq!(aws_sdk_sts::error::ProvideErrorMetadata::code(&e), Some("InvalidClientTokenId"));
    let wrong_token = sdk_config(&ep, c.access_key_id(), c.secret_access_key(), Some("IQoJnot-the-token".into())).await;
    let e = aws_sdk_cloudwatchlogs::Client::new(&wrong_token).describe_log_groups().send().await.unwrap_err().into_service_error();
    assert_eq!(aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata::code(&e), Some("UnrecognizedClientException"));
    let forged = sdk_config(&ep, c.access_key_id(), "forged-secret", Some(c.session_token().to_string())).await;
    let e = aws_sdk_sts::Client::new(&forged).get_caller_identity().send().await.unwrap_err().into_service_error();
    assert_eq!(aws_sdk_sts::error::ProvideErrorMetadata::code(&e), Some("SignatureDoesNotMatch"));

    // An unsigned request.
    let r = reqwest::Client::new()
        .post(&ep)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=GetCallerIdentity&Version=2011-06-15")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("<Code>MissingAuthenticationToken</Code>"));
}

/// Posts a raw awsJson request to CloudWatch Logs; returns (status, body).
async fn logs_raw(t: &TestServer, target: &str, body: &str) -> (u16, Value) {
    let extra = [("content-type", "application/x-amz-json-1.1".to_string()), ("x-amz-target", target.to_string())];
    let signer = codeyard_server::client::AwsClient::new(&t.endpoint, REGION, "test", "test");
    let mut req = reqwest::Client::new().post(&t.endpoint).body(body.to_string());
    for (k, v) in signer.sign("POST", "/", "", "logs", body.as_bytes(), &extra) {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Posts a raw awsQuery form; returns (status, body text).
async fn query_raw(t: &TestServer, form: &str) -> (u16, String) {
    let extra = [("content-type", "application/x-www-form-urlencoded; charset=utf-8".to_string())];
    let signer = codeyard_server::client::AwsClient::new(&t.endpoint, REGION, "test", "test");
    let mut req = reqwest::Client::new().post(&t.endpoint).body(form.to_string());
    for (k, v) in signer.sign("POST", "/", "", "iam", form.as_bytes(), &extra) {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_aws_errors_and_changes_nothing() {
    let t = TestServer::start().await;
    // Malformed JSON body.
    let (status, body) = logs_raw(&t, "Logs_20140328.CreateLogGroup", "{\"logGroupName\": ").await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("SerializationException")), "{body}");
    // A JSON body that is not an object.
    let (status, body) = logs_raw(&t, "Logs_20140328.CreateLogGroup", "[1]").await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("SerializationException")));
    // A member of the wrong type.
    let (status, body) = logs_raw(&t, "Logs_20140328.CreateLogGroup", r#"{"logGroupName": 5}"#).await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("SerializationException")), "{body}");
    // Unknown operation of a known API, and an unknown API.
    let (status, body) = logs_raw(&t, "Logs_20140328.NoSuchOperation", "{}").await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("UnknownOperationException")));
    let (status, body) = logs_raw(&t, "Logs_20140328.StartQuery", r#"{"logGroupName":"g","startTime":1,"endTime":2,"queryString":"x"}"#).await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("UnknownOperationException")), "not implemented is a 4xx");
    assert!(body["message"].as_str().unwrap().contains("StartQuery"));
    // Missing required member.
    let (status, body) = logs_raw(&t, "Logs_20140328.CreateLogGroup", "{}").await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("InvalidParameterException")));
    assert!(body["message"].as_str().unwrap().contains("Value null at 'logGroupName' failed to satisfy constraint: Member must not be null"));
    // Too long a name.
    let long = "g".repeat(513);
    let (status, body) = logs_raw(&t, "Logs_20140328.CreateLogGroup", &format!(r#"{{"logGroupName":"{long}"}}"#)).await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("InvalidParameterException")));
    assert!(body["message"].as_str().unwrap().contains("Member must have length less than or equal to 512"));
    let (_, body) = logs_raw(&t, "Logs_20140328.DescribeLogGroups", "{}").await;
    assert_eq!(body["logGroups"], serde_json::json!([]), "nothing was created");

    // awsQuery (IAM): missing member, invalid document, too long a name, unknown action.
    let (status, body) = query_raw(&t, &format!("Action=CreateRole&Version=2010-05-08&AssumeRolePolicyDocument={}", form_encode(TRUST))).await;
    assert_eq!(status, 400);
    assert!(body.contains("<Code>ValidationError</Code>") && body.contains("Value null at &apos;roleName&apos;"), "{body}");
    let (status, body) = query_raw(&t, "Action=CreateRole&Version=2010-05-08&RoleName=r&AssumeRolePolicyDocument=%7Bnope").await;
    assert_eq!(status, 400);
    assert!(body.contains("<Code>MalformedPolicyDocument</Code>") && body.contains("<Type>Sender</Type>"), "{body}");
    let (status, body) =
        query_raw(&t, &format!("Action=CreateRole&Version=2010-05-08&RoleName={}&AssumeRolePolicyDocument={}", "r".repeat(65), form_encode(TRUST))).await;
    assert_eq!(status, 400);
    assert!(body.contains("<Code>ValidationError</Code>") && body.contains("length less than or equal to 64"), "{body}");
    let (status, body) = query_raw(&t, "Action=CreateInstanceProfile&Version=2010-05-08&InstanceProfileName=p").await;
    assert_eq!(status, 400);
    assert!(body.contains("UnknownOperationException") && body.contains("CreateInstanceProfile"), "{body}");
    let (status, body) = query_raw(&t, "Action=NoSuchAction&Version=2010-05-08").await;
    assert_eq!(status, 400);
    assert!(body.contains("<Code>InvalidAction</Code>"), "{body}");
    let (status, body) = query_raw(&t, "Action=ListRoles&Version=2010-05-08").await;
    assert_eq!(status, 200);
    assert!(body.contains("<Roles/>") || body.contains("<Roles></Roles>"), "nothing was created: {body}");
    // A missing role is a 404 NoSuchEntity.
    let (status, body) = query_raw(&t, "Action=GetRole&Version=2010-05-08&RoleName=ghost").await;
    assert_eq!(status, 404);
    assert!(body.contains("<Code>NoSuchEntity</Code>"), "{body}");
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_applies_updates_in_place_and_destroys() {
    let (t, logs) = TestServer::with(aws_sdk_cloudwatchlogs::Client::new).await;
    let ws = terraform_workspace("foundation");
    let dir = ws.path();
    let out = terraform_apply_clean(dir, &t.endpoint, &[]);
    assert!(out.contains("account_id = \"000000000000\""), "{out}");
    assert!(out.contains("caller_arn = \"arn:aws:iam::000000000000:root\""), "{out}");

    let out = terraform_apply_clean(dir, &t.endpoint, &["-var=tag_value=two"]);
    assert!(out.contains("0 added, 2 changed, 0 destroyed"), "a tag change is an in-place update of the role and the log group:\n{out}");

    let tags = logs.list_tags_for_resource().resource_arn("arn:aws:logs:eu-west-1:000000000000:log-group:/foundation/builds").send().await.unwrap();
    assert_eq!(tags.tags().unwrap().get("Changing").map(String::as_str), Some("two"));

    terraform_destroy(dir, &t.endpoint, &["-var=tag_value=two"]);
    let iam = aws_sdk_iam::Client::new(&t.sdk_config().await);
    assert!(iam.list_roles().send().await.unwrap().roles().is_empty(), "destroy leaves no roles");
    assert!(iam.list_policies().scope(aws_sdk_iam::types::PolicyScopeType::Local).send().await.unwrap().policies().is_empty());
    assert!(logs.describe_log_groups().send().await.unwrap().log_groups().is_empty(), "destroy leaves no log groups");
}
