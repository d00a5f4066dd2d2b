//! STS end to end through aws-sdk-rust: caller identity, AssumeRole credentials that work as
//! credentials (and are attributed to the assumed role), GetSessionToken, and the hub's
//! credential issuer that builds use.

use crate::common::*;

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

async fn config_with_session(t: &TestServer, c: &aws_sdk_sts::types::Credentials) -> aws_config::SdkConfig {
    sdk_config_for_session(&t.endpoint, c.access_key_id(), c.secret_access_key(), c.session_token()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn caller_identity_is_the_default_account_root() {
    let (t, sts) = TestServer::with(aws_sdk_sts::Client::new).await;
    let me = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some(ACCOUNT));
    assert_eq!(me.arn(), Some("arn:aws:iam::000000000000:root"));
    assert_eq!(me.user_id(), Some(ACCOUNT));
    // A 12-digit access key selects that account.
    let other = aws_sdk_sts::Client::new(&t.sdk_config_with("123456789012", "x").await);
    assert_eq!(other.get_caller_identity().send().await.unwrap().account(), Some("123456789012"));
}

#[tokio::test(flavor = "multi_thread")]
async fn assumed_role_credentials_act_as_the_role() {
    let (t, (iam, sts)) = TestServer::with(|c| (aws_sdk_iam::Client::new(c), aws_sdk_sts::Client::new(c))).await;
    let role = iam.create_role().role_name("builder").assume_role_policy_document(TRUST).send().await.unwrap();
    let role = role.role().unwrap();

    let out = sts.assume_role().role_arn(role.arn()).role_session_name("build-1").duration_seconds(900).send().await.unwrap();
    let creds = out.credentials().unwrap();
    assert!(creds.access_key_id().starts_with("ASIA") && creds.access_key_id().len() == 20, "{}", creds.access_key_id());
    assert_eq!(creds.secret_access_key().len(), 40);
    let expires_in = creds.expiration().secs() - std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((890..=900).contains(&expires_in), "expires in {expires_in}s");
    let user = out.assumed_role_user().unwrap();
    assert_eq!(user.arn(), "arn:aws:sts::000000000000:assumed-role/builder/build-1");
    assert_eq!(user.assumed_role_id(), format!("{}:build-1", role.role_id()));

    // The credentials work, and the caller is the assumed role.
    let as_role = aws_sdk_sts::Client::new(&config_with_session(&t, creds).await);
    let me = as_role.get_caller_identity().send().await.unwrap();
    assert_eq!(me.arn(), Some("arn:aws:sts::000000000000:assumed-role/builder/build-1"));
    assert_eq!(me.user_id(), Some(user.assumed_role_id()));
    assert_eq!(me.account(), Some(ACCOUNT));

    // Session credentials cannot get a session token.
    let err = as_role.get_session_token().send().await.unwrap_err();
    assert_eq!(err.into_service_error().meta().code(), Some("AccessDenied"));

    // The role records its last use.
    let got = iam.get_role().role_name("builder").send().await.unwrap();
    let last = got.role().unwrap().role_last_used().unwrap();
    assert!(last.last_used_date().is_some());
    assert_eq!(last.region(), Some(REGION));
}

#[tokio::test(flavor = "multi_thread")]
async fn assume_role_refuses_missing_roles_and_long_sessions() {
    let (_t, (iam, sts)) = TestServer::with(|c| (aws_sdk_iam::Client::new(c), aws_sdk_sts::Client::new(c))).await;
    let err = sts.assume_role().role_arn("arn:aws:iam::000000000000:role/nope").role_session_name("s1").send().await.unwrap_err().into_service_error();
    assert_eq!(err.meta().code(), Some("AccessDenied"), "{:?}", err.meta().message());
    assert!(err.meta().message().unwrap().contains("sts:AssumeRole on resource: arn:aws:iam::000000000000:role/nope"));

    let role = iam.create_role().role_name("short").assume_role_policy_document(TRUST).send().await.unwrap();
    let err = sts.assume_role().role_arn(role.role().unwrap().arn()).role_session_name("s1").duration_seconds(7200).send().await.unwrap_err().into_service_error();
    assert_eq!(err.meta().code(), Some("ValidationError"));
    assert!(err.meta().message().unwrap().contains("MaxSessionDuration"));
    // A session name outside the model's pattern.
    let err = sts.assume_role().role_arn(role.role().unwrap().arn()).role_session_name("bad name!").send().await.unwrap_err();
    assert_eq!(err.into_service_error().meta().code(), Some("ValidationError"));
}

#[tokio::test(flavor = "multi_thread")]
async fn session_token_and_the_hub_issuer() {
    let (t, (iam, sts)) = TestServer::with(|c| (aws_sdk_iam::Client::new(c), aws_sdk_sts::Client::new(c))).await;
    let out = sts.get_session_token().duration_seconds(900).send().await.unwrap();
    let creds = out.credentials().unwrap();
    let as_session = aws_sdk_sts::Client::new(&config_with_session(&t, creds).await);
    assert_eq!(as_session.get_caller_identity().send().await.unwrap().arn(), Some("arn:aws:iam::000000000000:root"));

    // Builds ask the hub for their project role's credentials.
    let role = iam.create_role().role_name("project-role").assume_role_policy_document(TRUST).send().await.unwrap();
    let issuer = t.server.as_ref().unwrap().platform.hub.credentials().unwrap();
    let c = issuer.assume_role(ACCOUNT, role.role().unwrap().arn(), "codebuild", 100_000).await.unwrap();
    assert_eq!(c.arn, "arn:aws:sts::000000000000:assumed-role/project-role/codebuild");
    let found = issuer.lookup(&c.access_key_id).await.unwrap().expect("issued credentials are found");
    assert_eq!(found.secret_access_key, c.secret_access_key);
    assert!(issuer.lookup("ASIANOTISSUEDHERE000").await.unwrap().is_none());
    assert!(issuer.assume_role(ACCOUNT, "arn:aws:iam::000000000000:role/missing", "x", 900).await.is_err());
}

/// Services assume roles as AWS services do: only a role whose trust policy names the service
/// principal gives them credentials (`--iam enforce`); `audit` issues and records the denial.
#[tokio::test(flavor = "multi_thread")]
async fn services_assume_roles_their_trust_policy_names() {
    for mode in [codeyard_core::IamMode::Enforce, codeyard_core::IamMode::Audit] {
        let t = TestServer::start_with(|o| o.iam = mode).await;
        let iam = aws_sdk_iam::Client::new(&t.sdk_config().await);
        let role = iam.create_role().role_name("build-role").assume_role_policy_document(TRUST).send().await.unwrap();
        let arn = role.role().unwrap().arn().to_string();
        let issuer = t.server.as_ref().unwrap().platform.hub.credentials().unwrap();
        let c = issuer.assume_role_as_service(ACCOUNT, &arn, "codebuild.amazonaws.com", "build-1", 900).await.unwrap();
        assert_eq!(c.arn, "arn:aws:sts::000000000000:assumed-role/build-role/build-1");
        let other = issuer.assume_role_as_service(ACCOUNT, &arn, "codepipeline.amazonaws.com", "p", 900).await;
        match mode {
            codeyard_core::IamMode::Enforce => {
                let e = other.unwrap_err();
                assert_eq!(e.code, "AccessDenied");
                assert_eq!(e.message, format!("User: codepipeline.amazonaws.com is not authorized to perform: sts:AssumeRole on resource: {arn}"));
            }
            _ => assert!(other.is_ok(), "audit lets it through"),
        }
        let denials: serde_json::Value = reqwest::get(format!("{}/_codeyard/iam/denials", t.endpoint)).await.unwrap().json().await.unwrap();
        assert_eq!(denials["denials"][0]["principal"], "codepipeline.amazonaws.com", "{mode:?}");
        assert_eq!(denials["denials"][0]["action"], "sts:AssumeRole");
    }
}
