//! Helpers for the suites that drive the chain: git pushes to CodeCommit, EventBridge rules
//! with their targets, CodeBuild projects and the waits on what they start.

use super::{git, wait_for, ACCOUNT, REGION};
use std::path::{Path, PathBuf};
use std::time::Duration;

// ---- git ---------------------------------------------------------------------------------

/// Clones the repository at `url` into `work/name` ([`git`]: the aws credential helper);
/// returns the working copy.
pub fn clone_repo(work: &Path, url: &str, name: &str) -> PathBuf {
    git(work, &["clone", "-q", url, name]);
    work.join(name)
}

/// Writes `file` (and the folders it is in) in the working copy `dir` and commits everything
/// as `msg`; returns the commit id.
pub fn commit_file(dir: &Path, file: &str, content: &str, msg: &str) -> String {
    if let Some(parent) = Path::new(file).parent() {
        std::fs::create_dir_all(dir.join(parent)).unwrap();
    }
    std::fs::write(dir.join(file), content).unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", msg]);
    git(dir, &["rev-parse", "HEAD"])
}

/// [`commit_file`], then `git push origin <branch>` (the working copy is on `branch`);
/// returns the commit id.
pub fn push_file(dir: &Path, branch: &str, file: &str, content: &str, msg: &str) -> String {
    let commit = commit_file(dir, file, content, msg);
    git(dir, &["push", "-q", "origin", branch]);
    commit
}

// ---- EventBridge -------------------------------------------------------------------------

/// The SQS queue `name`: not a target kind codeyard invokes, so each delivery to it is kept
/// (failed, with its exact body) in `/_codeyard/events/deliveries`.
pub fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")
}

/// An EventBridge target `id` on `arn`, invoked through `role` when there is one.
pub fn event_target(id: &str, arn: &str, role: Option<&str>) -> aws_sdk_eventbridge::types::Target {
    aws_sdk_eventbridge::types::Target::builder().id(id).arn(arn).set_role_arn(role.map(str::to_string)).build().expect("target")
}

/// PutTargets on the default bus's rule `rule`; every entry must be taken.
pub async fn add_targets(ev: &aws_sdk_eventbridge::Client, rule: &str, targets: Vec<aws_sdk_eventbridge::types::Target>) {
    let out = ev.put_targets().rule(rule).set_targets(Some(targets)).send().await.unwrap_or_else(|e| panic!("PutTargets {rule}: {e:?}"));
    assert_eq!(out.failed_entry_count(), 0, "PutTargets {rule}: {:?}", out.failed_entries());
}

/// Creates the rule `name` on the default bus, matching `pattern`, with `targets`; returns its ARN.
pub async fn rule_with_targets(ev: &aws_sdk_eventbridge::Client, name: &str, pattern: &str, targets: Vec<aws_sdk_eventbridge::types::Target>) -> String {
    let rule = ev.put_rule().name(name).event_pattern(pattern).send().await.unwrap_or_else(|e| panic!("PutRule {name}: {e:?}"));
    add_targets(ev, name, targets).await;
    rule.rule_arn().expect("rule ARN").to_string()
}

// ---- CodeBuild ---------------------------------------------------------------------------

/// The environment of the suites' projects: a Linux container, aws/codebuild/standard:7.0, small.
pub fn codebuild_environment() -> aws_sdk_codebuild::types::ProjectEnvironment {
    use aws_sdk_codebuild::types::{ComputeType, EnvironmentType, ProjectEnvironment};
    let env = ProjectEnvironment::builder().r#type(EnvironmentType::LinuxContainer).image("aws/codebuild/standard:7.0");
    env.compute_type(ComputeType::BuildGeneral1Small).build().expect("environment")
}

/// Waits (up to 30 s) until something (a rule, a pipeline) has started a build of `project`;
/// returns the newest build's id.
pub async fn first_build_of(cb: &aws_sdk_codebuild::Client, project: &str) -> String {
    wait_for(&format!("a build of {project} to start"), Duration::from_secs(30), Duration::from_millis(100), || async {
        cb.list_builds_for_project().project_name(project).send().await.unwrap().ids().first().cloned()
    })
    .await
}

/// Waits (up to 60 s) until `path` exists and has content (a build's command wrote it); returns it.
pub async fn file_written(path: &Path) -> String {
    wait_for(&format!("{} to be written", path.display()), Duration::from_secs(60), Duration::from_millis(20), || async {
        std::fs::read_to_string(path).ok().filter(|s| !s.trim().is_empty())
    })
    .await
}

/// Creates the CodeBuild project `name` in [`codebuild_environment`] with `source`,
/// `artifacts` and the service role `role`.
pub async fn create_project(cb: &aws_sdk_codebuild::Client, name: &str, source: aws_sdk_codebuild::types::ProjectSource, artifacts: aws_sdk_codebuild::types::ProjectArtifacts, role: &str) {
    let project = cb.create_project().name(name).source(source).artifacts(artifacts).environment(codebuild_environment());
    project.service_role(role).send().await.unwrap_or_else(|e| panic!("CreateProject {name}: {e:?}"));
}

// ---- the aws CLI -------------------------------------------------------------------------

/// Runs the aws CLI against `endpoint` ([`super::aws_cli`]), which must succeed; returns its
/// JSON answer.
pub fn aws_cli_json(endpoint: &str, args: &[&str]) -> serde_json::Value {
    let (ok, out, err) = super::aws_cli(endpoint, args);
    assert!(ok, "aws {}: {err}", args.join(" "));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("aws {}: {e}: {out}", args.join(" ")))
}

// ---- pipelines as JSON (for the raw `codeyard_server::client::AwsClient`) --------------------

/// CreatePipeline's request: the pipeline `name` acting as `role`, its artifacts in the S3
/// bucket `bucket`, with `stages` (`[{"name": ..., "actions": [action_json(..)]}]`).
pub fn pipeline_json(name: &str, role: &str, bucket: &str, stages: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"pipeline": {"name": name, "roleArn": role, "artifactStore": {"type": "S3", "location": bucket}, "stages": stages}})
}

/// One action of [`pipeline_json`]: an AWS-owned `provider` of `category`, reading `inputs`,
/// writing `outputs`, with `config`.
pub fn action_json(name: &str, category: &str, provider: &str, inputs: &[&str], outputs: &[&str], config: serde_json::Value) -> serde_json::Value {
    let artifacts = |names: &[&str]| names.iter().map(|a| serde_json::json!({"name": a})).collect::<Vec<_>>();
    serde_json::json!({"name": name, "actionTypeId": {"category": category, "owner": "AWS", "provider": provider, "version": "1"},
        "configuration": config, "inputArtifacts": artifacts(inputs), "outputArtifacts": artifacts(outputs)})
}

/// Runs the aws CLI against `endpoint`, which must fail; returns its stderr (the error).
pub fn aws_cli_error(endpoint: &str, args: &[&str]) -> String {
    let (ok, out, err) = super::aws_cli(endpoint, args);
    assert!(!ok, "aws {} succeeded: {out}", args.join(" "));
    err
}
