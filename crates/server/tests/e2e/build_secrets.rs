//! Parameters and secrets in builds (aws-sdk-rust): the buildspec's `env.parameter-store` and
//! `env.secrets-manager`, a PARAMETER_STORE project variable and a SECRETS_MANAGER StartBuild
//! override resolve as the project's service role; their values (and the role's access key
//! id) show as `***` in the build's log; a missing secret or parameter, or a role without
//! ssm:GetParameters, fails DOWNLOAD_SOURCE with CodeBuild's phase context.

use crate::codebuild::{environment, log_text, no_artifacts, no_source, phase_context, phase_status, wait_build, Cb};
use crate::common::*;
use aws_sdk_codebuild::types::{EnvironmentVariable, EnvironmentVariableType, StatusType};
use aws_sdk_ssm::types::ParameterType;
use std::time::Duration;

const GREETING: &str = "hello-from-ssm-1";
const API_KEY: &str = "s3cr3t-ssm-value";
const PROJECT_VALUE: &str = "project-param-value";
const TOKEN: &str = "whole-secret-token\nsecond-line-of-it";
const PASSWORD: &str = "p@ss-from-sm";
const USERNAME: &str = "admin-user-name";

/// Every value the build reads, one per line where a secret has several.
const VALUES: &[&str] = &[GREETING, API_KEY, PROJECT_VALUE, "whole-secret-token", "second-line-of-it", PASSWORD, USERNAME];

const BUILDSPEC: &str = r#"version: 0.2
env:
  parameter-store:
    GREETING: /bs/greeting
    API_KEY: /bs/api-key
  secrets-manager:
    TOKEN: bs/token
    PASSWORD: bs/db:password
phases:
  build:
    commands:
      - echo "greeting=$GREETING api=$API_KEY project=$PROJECT_VAR user=$OVERRIDE_USER"
      - echo "password=$PASSWORD"
      - echo "$TOKEN"
      - echo "key=$AWS_ACCESS_KEY_ID"
      - test "$GREETING" = "hello-from-ssm-1" && test "$API_KEY" = "s3cr3t-ssm-value"
      - test "$PASSWORD" = "p@ss-from-sm" && test "$PROJECT_VAR" = "project-param-value"
      - test "$OVERRIDE_USER" = "admin-user-name"
      - test "$(printf '%s' "$TOKEN" | wc -l)" = 1
"#;

fn reads_role_policy() -> String {
    let mut p: serde_json::Value = serde_json::from_str(&codebuild_role_policy()).unwrap();
    p["Statement"].as_array_mut().unwrap().push(serde_json::json!({
        "Effect": "Allow",
        "Action": ["ssm:GetParameters", "secretsmanager:GetSecretValue", "kms:Decrypt"],
        "Resource": "*"
    }));
    p.to_string()
}

/// The parameters and secrets the builds read.
async fn fixtures(conf: &aws_config::SdkConfig) {
    let ssm = aws_sdk_ssm::Client::new(conf);
    for (name, value, kind) in [
        ("/bs/greeting", GREETING, ParameterType::String),
        ("/bs/api-key", API_KEY, ParameterType::SecureString),
        ("/bs/project", PROJECT_VALUE, ParameterType::String),
    ] {
        ssm.put_parameter().name(name).value(value).r#type(kind).send().await.expect("PutParameter");
    }
    let sm = aws_sdk_secretsmanager::Client::new(conf);
    sm.create_secret().name("bs/token").secret_string(TOKEN).send().await.expect("CreateSecret");
    let db = serde_json::json!({"username": USERNAME, "password": PASSWORD}).to_string();
    sm.create_secret().name("bs/db").secret_string(db).send().await.expect("CreateSecret");
}

/// A server with the parameters and secrets, and the build role `role` with `policy`.
async fn setup(role: &str, policy: &str) -> (TestServer, Cb, String) {
    let t = TestServer::start().await;
    let conf = t.sdk_config().await;
    fixtures(&conf).await;
    let role = create_service_role(&aws_sdk_iam::Client::new(&conf), role, "codebuild.amazonaws.com", policy).await;
    (t, Cb::new(&conf), role)
}

/// Creates project `name` (no source, `buildspec`, role `role`) and runs one build of it.
async fn run(cb: &Cb, name: &str, buildspec: &str, role: &str, project_vars: Vec<EnvironmentVariable>, overrides: Vec<EnvironmentVariable>) -> aws_sdk_codebuild::types::Build {
    let mut env = environment();
    env.environment_variables = Some(project_vars);
    cb.create_project()
        .name(name)
        .source(no_source(buildspec))
        .artifacts(no_artifacts())
        .environment(env)
        .service_role(role)
        .send()
        .await
        .expect("CreateProject");
    let started = cb.start_build().project_name(name).set_environment_variables_override(Some(overrides)).send().await.expect("StartBuild");
    wait_build(cb, started.build_value().unwrap().id().unwrap(), Duration::from_secs(90)).await
}

/// A buildspec with `env` (its `env:` section, or "") whose one command must never run.
fn never_runs(env: &str) -> String {
    format!("version: 0.2\n{env}phases:\n  build:\n    commands:\n      - echo never\n")
}

/// The context of the DOWNLOAD_SOURCE phase of `b`, a build that failed there.
fn download_source_failure(b: &aws_sdk_codebuild::types::Build) -> String {
    assert_eq!(b.build_status(), Some(&StatusType::Failed));
    assert_eq!(phase_status(b, "DOWNLOAD_SOURCE").as_deref(), Some("FAILED"));
    phase_context(b, "DOWNLOAD_SOURCE")
}

fn variable(name: &str, value: &str, kind: EnvironmentVariableType) -> EnvironmentVariable {
    EnvironmentVariable::builder().name(name).value(value).r#type(kind).build().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn builds_read_parameters_and_secrets_and_mask_them() {
    let (t, cb, role) = setup("bs-reader", &reads_role_policy()).await;
    let b = run(
        &cb,
        "bs-reads",
        BUILDSPEC,
        &role,
        vec![variable("PROJECT_VAR", "/bs/project", EnvironmentVariableType::ParameterStore)],
        vec![variable("OVERRIDE_USER", "bs/db:username", EnvironmentVariableType::SecretsManager)],
    )
    .await;
    let log = log_text(&t.endpoint, &b).await;
    assert_eq!(b.build_status(), Some(&StatusType::Succeeded), "{}\n{log}", phase_context(&b, "BUILD"));
    assert!(log.contains("greeting=*** api=*** project=*** user=***"), "{log}");
    assert!(log.contains("password=***"), "{log}");
    assert!(log.contains("key=***"), "{log}");
    assert!(log.contains("Decrypting parameter store environment variables"), "{log}");
    for v in VALUES {
        assert!(!log.contains(v), "{v} shows in the log:\n{log}");
    }
    assert!(!log.contains("ASIA") && !log.contains("AKIA"), "an access key id shows in the log:\n{log}");
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_or_parameter_fails_download_source() {
    let (t, cb, role) = setup("bs-reader", &reads_role_policy()).await;
    let spec = never_runs("env:\n  secrets-manager:\n    GONE: bs/absent:key\n");
    let b = run(&cb, "bs-no-secret", &spec, &role, vec![], vec![]).await;
    assert_eq!(download_source_failure(&b), "Secrets Manager Error: ResourceNotFoundException: Secrets Manager can't find the specified secret.");
    assert_eq!(phase_status(&b, "BUILD"), None, "no command phase runs");

    let vars = vec![variable("GONE", "/bs/absent", EnvironmentVariableType::ParameterStore)];
    let b = run(&cb, "bs-no-parameter", &never_runs(""), &role, vars, vec![]).await;
    assert_eq!(download_source_failure(&b), "Decrypted Variables Error: parameter does not exist: /bs/absent");
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_without_get_parameters_fails_download_source() {
    let (t, cb, role) = setup("bs-no-ssm", &codebuild_role_policy()).await;
    let spec = never_runs("env:\n  parameter-store:\n    GREETING: /bs/greeting\n");
    let b = run(&cb, "bs-denied", &spec, &role, vec![], vec![]).await;
    let context = download_source_failure(&b);
    assert!(
        context.starts_with("Decrypted Variables Error: AccessDeniedException: User: arn:aws:sts::000000000000:assumed-role/bs-no-ssm/AWSCodeBuild-"),
        "{context}"
    );
    assert!(
        context.ends_with(&format!("is not authorized to perform: ssm:GetParameters on resource: arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/bs/greeting because no identity-based policy allows the ssm:GetParameters action")),
        "{context}"
    );
    let log = log_text(&t.endpoint, &b).await;
    assert!(log.contains("Decrypting parameter store environment variables"), "{log}");
    t.assert_no_model_violations();
}
