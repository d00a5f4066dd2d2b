//! `codeyard export terraform` and its round trip: apply the seed topology, export it, apply the export to a fresh server, plan shows no changes.

use crate::common::*;
use std::path::{Path, PathBuf};

/// The seed topology's Terraform: the acceptance copy where the shared folder is there, else
/// the worked example in this repository (the same topology under another prefix).
fn seed_config() -> PathBuf {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/acceptance/devops-demo/terraform/main.tf");
    if shared.is_file() { shared } else { Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/aws-devops-demo/terraform/main.tf") }
}

/// A fresh directory holding `main_tf` as `main.tf`, initialised.
fn workspace_with(main_tf: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.tf"), main_tf).unwrap();
    let (code, out) = terraform(dir.path(), "", &["init"]);
    assert_eq!(code, 0, "terraform init:\n{out}");
    dir
}

/// A fresh server with `main_tf` applied to it and planned clean (and its workspace).
async fn applied(main_tf: &str) -> (TestServer, tempfile::TempDir) {
    let t = TestServer::start().await;
    let ws = workspace_with(main_tf);
    terraform_apply_clean(ws.path(), &t.endpoint, &[]);
    (t, ws)
}

/// A server with the seed topology applied (and planned clean).
async fn seeded() -> (TestServer, tempfile::TempDir) {
    applied(&std::fs::read_to_string(seed_config()).unwrap()).await
}

/// Runs the built `codeyard export terraform <args> --endpoint <endpoint>` as a user would,
/// with the test keys: (exit ok, stdout, stderr).
fn export_cli(endpoint: &str, key: &str, secret: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_codeyard"))
        .args(["export", "terraform"])
        .args(args)
        .args(["--endpoint", endpoint])
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", REGION)
        .output()
        .expect("codeyard runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// The export (which must succeed), written to `-o` as the CLI does, and checked with
/// `terraform fmt -check`.
fn export_ok(endpoint: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("main.tf");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-o", file.to_str().unwrap()]);
    let (ok, stdout, stderr) = export_cli(endpoint, "test", "test", &all);
    assert!(ok, "codeyard export terraform {args:?} failed: {stdout}{stderr}");
    let fmt = std::process::Command::new("terraform").current_dir(dir.path()).args(["fmt", "-check", "-diff", "-no-color"]).output().expect("terraform runs");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(fmt.status.success(), "the export is not as terraform fmt leaves it:\n{}\n{text}", String::from_utf8_lossy(&fmt.stdout));
    text
}

/// Fails naming the first of `needles` that `text` (an export) lacks.
fn assert_holds(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "the export lacks {needle:?}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_topology_round_trips_through_an_export() {
    let (a, _seed) = seeded().await;
    let exported = export_ok(&a.endpoint, &["--all"]);

    // What it holds: every kind of resource of the seed, wired by references.
    assert_holds(&exported, &[
        "resource \"aws_codepipeline\" \"devopsintro_dev_codepipeline_project\"",
        "resource \"aws_codebuild_project\" \"devopsintro_dev_codebuild_build_and_test_project\"",
        "resource \"aws_codecommit_repository\" \"devopsintro_dev_codecommit_repo\"",
        "resource \"aws_ecr_repository\" \"devopsintro_dev_ecr_java_crm_demo\"",
        "resource \"aws_iam_role_policy\" \"devopsintro_dev_codebuild_iam_role_devopsintro_dev_codebuild_iam_role_policy\"",
        "resource \"aws_cloudwatch_event_target\"",
        "resource \"aws_cloudwatch_log_group\" \"devopsintro_dev_codebuild_logs\"",
        "role_arn = aws_iam_role.devopsintro_dev_codepipeline_iam_role.arn",
        "location        = aws_codecommit_repository.devopsintro_dev_codecommit_repo.clone_url_http",
        "aws_codepipeline.devopsintro_dev_codepipeline_project.arn",
        "group_name = aws_cloudwatch_log_group.devopsintro_dev_codebuild_logs.name",
        "value = data.aws_caller_identity.current.account_id",
        &format!("default     = \"{}\"", a.endpoint),
    ]);
    assert!(!exported.contains(&format!("arn:aws:iam::{ACCOUNT}:")), "literal account ARNs in the export:\n{exported}");
    assert!(!exported.contains("/v1/repos/"), "a literal clone URL in the export:\n{exported}");

    // Applied to a fresh server B, planned clean, and exported again: the same text.
    let (b, _ws) = applied(&exported).await;
    let again = export_ok(&b.endpoint, &["--all"]);
    assert_eq!(again, exported.replace(&a.endpoint, &b.endpoint), "the export of B differs from the export of A");
    a.assert_no_model_violations();
    b.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn pipeline_export_holds_what_it_depends_on_and_what_starts_it() {
    let (t, _seed) = seeded().await;
    // Things the pipeline has nothing to do with.
    let conf = t.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&conf);
    create_service_role(&iam, "unrelated-role", "codebuild.amazonaws.com", &codebuild_role_policy()).await;
    aws_sdk_ecr::Client::new(&conf).create_repository().repository_name("unrelated-images").send().await.unwrap();
    let events = aws_sdk_eventbridge::Client::new(&conf);
    events.put_rule().name("unrelated-schedule").schedule_expression("rate(1 hour)").send().await.unwrap();

    let all = export_ok(&t.endpoint, &["--all"]);
    assert!(all.contains("unrelated-role") && all.contains("unrelated-images") && all.contains("unrelated-schedule"), "{all}");
    let one = export_ok(&t.endpoint, &["--pipeline", "devopsintro-dev-codepipeline-project"]);
    for unrelated in ["unrelated-role", "unrelated-images", "unrelated-schedule"] {
        assert!(!one.contains(unrelated), "the pipeline's export holds {unrelated}:\n{one}");
    }
    // What starts it (the rule, its target and the target's role) and what it runs.
    assert_holds(&one, &[
        "resource \"aws_cloudwatch_event_rule\" \"devopsintro_dev_codecommit_cloudwatch_event_rule\"",
        "resource \"aws_cloudwatch_event_target\"",
        "resource \"aws_iam_role\" \"devopsintro_dev_codecommit_cloudwatch_iam_role\"",
        "resource \"aws_iam_role_policy\" \"devopsintro_dev_codecommit_cloudwatch_iam_role_devopsintro_dev_codecommit_cloudwatch_iam_role_policy\"",
        "resource \"aws_codebuild_project\" \"devopsintro_dev_codebuild_build_docker_image_project\"",
        "resource \"aws_ecr_repository\" \"devopsintro_dev_ecr_java_crm_demo\"",
    ]);
    // It stands alone: a fresh server takes it and plans clean.
    let (fresh, _ws) = applied(&one).await;

    // A pipeline that does not exist: CodePipeline's own error, and a failing exit code.
    let (ok, _, stderr) = export_cli(&t.endpoint, "test", "test", &["--pipeline", "no-such-pipeline"]);
    assert!(!ok && stderr.contains("PipelineNotFoundException"), "{stderr}");
    t.assert_no_model_violations();
    fresh.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn export_route_is_authenticated_as_every_api() {
    let t = TestServer::enforcing("AKIDEXPORT00", "export-secret").await;
    let url = format!("{}{}?all=1", t.endpoint, codeyard_export::ROUTE);
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["__type"], "MissingAuthenticationTokenException", "{body}");
    // A wrong secret is refused; the right one exports (an empty account: the header only).
    let (ok, _, stderr) = export_cli(&t.endpoint, "AKIDEXPORT00", "wrong", &["--all"]);
    assert!(!ok && stderr.contains("InvalidSignatureException"), "{stderr}");
    let (ok, stdout, stderr) = export_cli(&t.endpoint, "AKIDEXPORT00", "export-secret", &["--all"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("provider \"aws\"") && !stdout.contains("resource \""), "{stdout}");
    // Neither or both selections is a validation error.
    let c = codeyard_server::client::AwsClient::new(&t.endpoint, REGION, "AKIDEXPORT00", "export-secret");
    let headers = c.sign("GET", codeyard_export::ROUTE, "", "codeyard", b"", &[]);
    let mut req = reqwest::Client::new().get(format!("{}{}", t.endpoint, codeyard_export::ROUTE));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}

/// What the seed does not use round-trips too: bucket versioning, policy and EventBridge
/// notifications, ECR lifecycle and repository policies, a role's path, a description that
/// needs escaping, AWS and customer managed attachments, a custom bus, a disabled rule and a
/// target with an input transformer whose template holds `${`.
#[tokio::test(flavor = "multi_thread")]
async fn other_resource_kinds_round_trip() {
    let a = TestServer::start().await;
    let cli = |args: &[&str]| {
        let (ok, out, err) = aws_cli(&a.endpoint, args);
        assert!(ok, "aws {args:?}: {out}{err}");
    };
    cli(&["s3api", "create-bucket", "--bucket", "extra-bucket", "--create-bucket-configuration", "LocationConstraint=eu-west-1"]);
    cli(&["s3api", "put-bucket-versioning", "--bucket", "extra-bucket", "--versioning-configuration", "Status=Enabled"]);
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::extra-bucket","arn:aws:s3:::extra-bucket/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#;
    cli(&["s3api", "put-bucket-policy", "--bucket", "extra-bucket", "--policy", deny]);
    cli(&["s3api", "put-bucket-notification-configuration", "--bucket", "extra-bucket", "--notification-configuration", r#"{"EventBridgeConfiguration":{}}"#]);
    cli(&["ecr", "create-repository", "--repository-name", "extra-images", "--image-tag-mutability", "IMMUTABLE", "--image-scanning-configuration", "scanOnPush=true"]);
    let lifecycle = r#"{"rules":[{"rulePriority":1,"description":"keep 5","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}"#;
    cli(&["ecr", "put-lifecycle-policy", "--repository-name", "extra-images", "--lifecycle-policy-text", lifecycle]);
    let pull = format!(r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"pull","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":["ecr:BatchGetImage"]}}]}}"#);
    cli(&["ecr", "set-repository-policy", "--repository-name", "extra-images", "--policy-text", &pull]);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    cli(&["iam", "create-role", "--role-name", "extra-role", "--path", "/svc/", "--description", "Extra \"quoted\" ${not} role", "--assume-role-policy-document", trust]);
    cli(&["iam", "attach-role-policy", "--role-name", "extra-role", "--policy-arn", "arn:aws:iam::aws:policy/ReadOnlyAccess"]);
    let read = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::extra-bucket/*"}]}"#;
    cli(&["iam", "create-policy", "--policy-name", "extra-managed", "--policy-document", read]);
    cli(&["iam", "attach-role-policy", "--role-name", "extra-role", "--policy-arn", &format!("arn:aws:iam::{ACCOUNT}:policy/extra-managed")]);
    cli(&["events", "create-event-bus", "--name", "extra-bus"]);
    let pattern = r#"{"source":["aws.s3"],"detail":{"bucket":{"name":["extra-bucket"]}}}"#;
    cli(&["events", "put-rule", "--name", "extra-rule", "--event-bus-name", "extra-bus", "--event-pattern", pattern, "--state", "DISABLED"]);
    let targets = format!(
        r#"[{{"Id":"t1","Arn":"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/nothing","RoleArn":"arn:aws:iam::{ACCOUNT}:role/svc/extra-role","InputTransformer":{{"InputPathsMap":{{"b":"$.detail.bucket.name"}},"InputTemplate":"{{\"bucket\": <b>, \"x\": \"${{literal}}\"}}"}}}}]"#
    );
    cli(&["events", "put-targets", "--rule", "extra-rule", "--event-bus-name", "extra-bus", "--targets", &targets]);
    cli(&["logs", "create-log-group", "--log-group-name", "/extra/logs"]);

    let exported = export_ok(&a.endpoint, &["--all"]);
    assert_holds(&exported, &[
        "resource \"aws_s3_bucket_versioning\" \"extra_bucket\"",
        "resource \"aws_s3_bucket_policy\" \"extra_bucket\"",
        "eventbridge = true",
        "resource \"aws_ecr_lifecycle_policy\" \"extra_images\"",
        "resource \"aws_ecr_repository_policy\" \"extra_images\"",
        "policy_arn = aws_iam_policy.extra_managed.arn",
        "description = \"Extra \\\"quoted\\\" $${not} role\"",
        "event_bus_name = aws_cloudwatch_event_bus.extra_bus.name",
        "state = \"DISABLED\"",
        "input_template = \"{\\\"bucket\\\": <b>, \\\"x\\\": \\\"$${literal}\\\"}\"",
        "\"${aws_s3_bucket.extra_bucket.arn}/*\"",
    ]);
    let (b, _ws) = applied(&exported).await;
    assert_eq!(export_ok(&b.endpoint, &["--all"]), exported.replace(&a.endpoint, &b.endpoint), "the export of B differs from the export of A");
    a.assert_no_model_violations();
    b.assert_no_model_violations();
}
