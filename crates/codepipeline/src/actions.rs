//! The action providers: what one action run does, through the hub's interfaces only
//! (CodeCommit's [`GitRepositories`], S3's [`ObjectStoreApi`], CodeBuild's [`BuildRunner`]).
//!
//! Every provider is written to be run again after a restart: a source fetches the same
//! revision into the same key, a deploy writes the same objects, a build already started is
//! followed by its id (recorded with [`ActionHost::checkpoint`] right after it started).
//!
//! Providers see the engine only through [`ActionHost`], the few things they need from it;
//! the engine implements it, so this module does not depend on the engine.
//!
//! [`GitRepositories`]: codeyard_core::hub::GitRepositories
//! [`ObjectStoreApi`]: codeyard_core::hub::ObjectStoreApi
//! [`BuildRunner`]: codeyard_core::hub::BuildRunner

use crate::model::{ActionDeclaration, ActionRun, Execution, SourceRevision};
use codeyard_core::hub::{ArtifactLocation, BuildOutcome, BuildStatus, PipelineBuildRequest, PutObjectOptions};
use codeyard_core::{AwsError, AwsResult, RequestContext, ids};
use codeyard_wire::Platform;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod ecr_source;
mod ecs_deploy;

/// What an action provider needs from the engine that runs it.
#[async_trait::async_trait]
pub trait ActionHost: Send + Sync {
    /// The platform: the hub's services, the data dir (scratch files), shutdown.
    fn platform(&self) -> &Platform;
    /// How soon a running build is first looked at again (the interval then grows to 2 s).
    fn build_poll(&self) -> Duration;
    /// Records the external id of a started action (a build) so that a restart follows it
    /// instead of starting another.
    async fn checkpoint(&self, call: &ActionCall<'_>, external_id: &str, url: Option<String>) -> AwsResult<()>;
}

/// What an action run ended with.
#[derive(Clone, Debug, Default)]
pub struct ActionOutcome {
    pub succeeded: bool,
    pub summary: Option<String>,
    /// (code, message) for failures.
    pub error: Option<(String, String)>,
    pub external_id: Option<String>,
    pub external_url: Option<String>,
    pub output_variables: BTreeMap<String, String>,
    /// (revision id, summary, url) carried by the output artifacts.
    pub artifact_revision: Option<(String, Option<String>, Option<String>)>,
    pub source_revision: Option<SourceRevision>,
}

impl ActionOutcome {
    pub fn failed(message: impl Into<String>) -> Self {
        let message = message.into();
        ActionOutcome {
            succeeded: false,
            error: Some(("JobFailed".into(), message)),
            ..Default::default()
        }
    }
}

/// One action run as a provider sees it: the engine, the context of the action's role, the
/// execution, the run and its declaration; `resume` is true when the run was started by an
/// earlier task (or process) that is gone.
pub struct ActionCall<'a> {
    pub host: &'a dyn ActionHost,
    pub ctx: RequestContext,
    pub exec: &'a Execution,
    pub run: &'a ActionRun,
    pub decl: &'a ActionDeclaration,
    pub resume: bool,
}

/// Runs one action to its end. `resume` is true when the run was started by an earlier task
/// (or process) that is gone.
pub async fn run(
    host: &dyn ActionHost,
    account: &str,
    region: &str,
    exec: &Execution,
    run: &ActionRun,
    decl: &ActionDeclaration,
    resume: bool,
) -> ActionOutcome {
    let ctx = role_context(host.platform(), account, region, exec, Some(decl));
    let call = ActionCall { host, ctx, exec, run, decl, resume };
    let id = &decl.action_type_id;
    let result = match (id.category.as_str(), id.provider.as_str()) {
        ("Source", "CodeCommit") => codecommit_source(&call).await,
        ("Source", "S3") => s3_source(&call).await,
        ("Build" | "Test", "CodeBuild") => codebuild(&call).await,
        ("Deploy", "S3") => s3_deploy(&call).await,
        ("Source", "ECR") => ecr_source::run(&call).await,
        ("Deploy", "ECS") => ecs_deploy::run(&call).await,
        _ => Err(AwsError::client(
            "JobFailed",
            format!(
                "codeyard does not run {}/{} actions",
                id.category, id.provider
            ),
        )),
    };
    result.unwrap_or_else(|e| ActionOutcome::failed(e.message))
}

/// The context CodePipeline acts in for an execution: the session of the action's `roleArn`,
/// else the pipeline's, named as CodePipeline names its sessions (epoch milliseconds; here the
/// execution's start, so one execution is one session).
pub fn role_context(
    platform: &Platform,
    account: &str,
    region: &str,
    exec: &Execution,
    decl: Option<&ActionDeclaration>,
) -> RequestContext {
    let role = decl
        .and_then(|d| d.role_arn.as_deref())
        .filter(|r| !r.is_empty())
        .unwrap_or(&exec.declaration.role_arn);
    let session = codeyard_core::time::epoch_millis(&exec.start_time).to_string();
    platform
        .internal_context(account, region)
        .acting_as_role(role, &session)
}

/// A denial (403) of a call the action made through its role, as CodePipeline reports it in
/// the action's error details; other errors pass unchanged.
pub(crate) fn on_denied(explain: impl FnOnce(&str) -> String) -> impl FnOnce(AwsError) -> AwsError {
    move |e| match e.status {
        403 => AwsError::client("JobFailed", explain(&e.message)),
        _ => e,
    }
}

/// CodeCommit refused the role (GetBranch, GetCommit, UploadArchive).
fn codecommit_denied(repo: &str) -> impl FnOnce(AwsError) -> AwsError + '_ {
    on_denied(move |m| format!(
        "The service role or action role doesn’t have the permissions required to access the AWS CodeCommit repository named {repo}. Update the IAM role permissions, and then try again. Error: {m}"
    ))
}

/// S3 refused the role (the artifact bucket, a source or deploy bucket).
pub(crate) fn s3_denied(e: AwsError) -> AwsError {
    on_denied(|m| format!(
        "Insufficient permissions: The provided role does not have permissions to perform this action. Underlying error: {m} (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied)"
    ))(e)
}

/// CodeBuild refused the role (`operation`: startBuild, batchGetBuilds).
fn codebuild_denied(operation: &str) -> impl FnOnce(AwsError) -> AwsError + '_ {
    on_denied(move |m| format!(
        "Error calling {operation}: {m} (Service: AWSCodeBuild; Status Code: 400; Error Code: AccessDeniedException)"
    ))
}

/// A scratch path under the data dir, removed when dropped.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(host: &dyn ActionHost, suffix: &str) -> AwsResult<Scratch> {
        let dir = host
            .platform()
            .config
            .data_dir
            .join("codepipeline")
            .join("tmp");
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir.join(format!("{}{suffix}", ids::uuid()))))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn config<'a>(run: &'a ActionRun, key: &str) -> Option<&'a str> {
    run.resolved_configuration.get(key).map(String::as_str)
}

/// A source action's one output artifact (validation gives every source action one).
pub(crate) fn source_output(run: &ActionRun) -> AwsResult<&ArtifactLocation> {
    run.output_artifacts.first().ok_or_else(|| AwsError::internal("source action without output artifact"))
}

/// A deploy action's one input artifact (validation gives every deploy action one).
pub(crate) fn deploy_input(run: &ActionRun) -> AwsResult<&ArtifactLocation> {
    run.input_artifacts.first().ok_or_else(|| AwsError::internal("deploy action without input artifact"))
}

/// How an artifact of `content_type` is written to `out`: under the artifact store's KMS key if
/// it has one.
pub(crate) fn artifact_options(out: &ArtifactLocation, content_type: &str) -> PutObjectOptions {
    PutObjectOptions {
        content_type: Some(content_type.into()),
        kms_key_id: out.kms_key_id.clone(),
        ..Default::default()
    }
}

/// [`artifact_options`] for a zip.
pub(crate) fn zip_options(out: &ArtifactLocation) -> PutObjectOptions {
    artifact_options(out, "application/zip")
}

pub fn commit_url(region: &str, repo: &str, commit: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/codesuite/codecommit/repositories/{repo}/commit/{commit}?region={region}"
    )
}

async fn codecommit_source(call: &ActionCall<'_>) -> AwsResult<ActionOutcome> {
    let ActionCall { host, ref ctx, exec, run, decl, .. } = *call;
    let git = host.platform().hub.git()?;
    let objects = host.platform().hub.objects()?;
    let repo = config(run, "RepositoryName").unwrap_or_default();
    let branch = config(run, "BranchName").unwrap_or_default();
    // In PARALLEL mode AWS takes the branch head when the action runs, not the pushed commit.
    let commit_id = match exec.revision_overrides.get(&decl.name) {
        Some(c) if exec.execution_mode != "PARALLEL" => c.clone(),
        _ => git
            .resolve_branch(ctx, repo, branch)
            .await
            .map_err(codecommit_denied(repo))?,
    };
    let commit = git
        .commit(ctx, repo, &commit_id)
        .await
        .map_err(codecommit_denied(repo))?;
    let out = source_output(run)?;
    let scratch = Scratch::new(host, ".zip")?;
    if config(run, "OutputArtifactFormat") == Some("CODEBUILD_CLONE_REF") {
        // The clone URL is codeyard's own lookup; the build's role pulls the commit.
        let lookup = host.platform().internal_context(&ctx.account, &ctx.region);
        let info = git.repository(&lookup, repo).await?;
        let pointer = serde_json::json!({
            "AccountId": ctx.account,
            "FullRepositoryName": repo,
            "CloneUrl": info.clone_url_http,
            "CommitId": commit_id,
            "BranchName": branch,
        });
        write_atomic(&scratch.0, pointer.to_string().as_bytes())?;
        let opts = artifact_options(out, "application/json");
        objects
            .put_object_file(ctx, &out.bucket, &out.key, &scratch.0, opts)
            .await
            .map_err(s3_denied)?;
    } else {
        git.export_zip(ctx, repo, &commit_id, &scratch.0)
            .await
            .map_err(codecommit_denied(repo))?;
        objects
            .put_object_file(ctx, &out.bucket, &out.key, &scratch.0, zip_options(out))
            .await
            .map_err(s3_denied)?;
    }
    let url = commit_url(&ctx.region, repo, &commit_id);
    let summary = commit.message.trim_end().to_string();
    let mut vars = BTreeMap::new();
    vars.insert("CommitId".into(), commit_id.clone());
    vars.insert("CommitMessage".into(), summary.clone());
    vars.insert("RepositoryName".into(), repo.to_string());
    vars.insert("BranchName".into(), branch.to_string());
    vars.insert(
        "AuthorDate".into(),
        commit
            .author_date
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    vars.insert(
        "CommitterDate".into(),
        commit
            .committer_date
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let short_summary: String = summary.chars().take(2048).collect();
    Ok(ActionOutcome {
        succeeded: true,
        summary: (!short_summary.is_empty()).then(|| short_summary.clone()),
        external_id: Some(commit_id.clone()),
        external_url: Some(url.clone()),
        output_variables: vars,
        artifact_revision: Some((
            commit_id.clone(),
            Some(short_summary.clone()),
            Some(url.clone()),
        )),
        source_revision: Some(SourceRevision {
            action_name: decl.name.clone(),
            revision_id: commit_id,
            revision_summary: (!short_summary.is_empty()).then_some(short_summary),
            revision_url: Some(url),
        }),
        error: None,
    })
}

async fn s3_source(call: &ActionCall<'_>) -> AwsResult<ActionOutcome> {
    let ActionCall { host, ref ctx, exec, run, decl, .. } = *call;
    let objects = host.platform().hub.objects()?;
    let bucket = config(run, "S3Bucket").unwrap_or_default();
    let key = config(run, "S3ObjectKey").unwrap_or_default();
    let version = exec.revision_overrides.get(&decl.name).map(String::as_str);
    let Some(info) = objects
        .head_object(ctx, bucket, key, version)
        .await
        .map_err(s3_denied)?
    else {
        return Ok(ActionOutcome::failed(format!(
            "The object s3://{bucket}/{key} does not exist"
        )));
    };
    let out = source_output(run)?;
    let scratch = Scratch::new(host, ".zip")?;
    let got = objects
        .get_object_to_file(ctx, bucket, key, info.version_id.as_deref(), &scratch.0)
        .await
        .map_err(s3_denied)?;
    objects
        .put_object_file(ctx, &out.bucket, &out.key, &scratch.0, zip_options(out))
        .await
        .map_err(s3_denied)?;
    let revision = got
        .version_id
        .clone()
        .unwrap_or_else(|| got.etag.trim_matches('"').to_string());
    let mut vars = BTreeMap::new();
    vars.insert("ObjectKey".into(), key.to_string());
    vars.insert("ETag".into(), got.etag.trim_matches('"').to_string());
    if let Some(v) = &got.version_id {
        vars.insert("VersionId".into(), v.clone());
    }
    let summary = format!("s3://{bucket}/{key}");
    Ok(ActionOutcome {
        succeeded: true,
        summary: Some(summary.clone()),
        external_id: Some(revision.clone()),
        external_url: None,
        output_variables: vars,
        artifact_revision: Some((revision.clone(), Some(summary.clone()), None)),
        source_revision: Some(SourceRevision {
            action_name: decl.name.clone(),
            revision_id: revision,
            revision_summary: Some(summary),
            revision_url: None,
        }),
        error: None,
    })
}

/// `EnvironmentVariables`: `[{"name","value","type"}]`.
fn environment_variables(json: Option<&str>) -> AwsResult<Vec<(String, String, String)>> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let list: Vec<serde_json::Value> = serde_json::from_str(json).map_err(|e| {
        AwsError::client(
            "JobFailed",
            format!("EnvironmentVariables is not a JSON list: {e}"),
        )
    })?;
    Ok(list
        .iter()
        .map(|v| {
            (
                codeyard_wire::str_of(v, "name").to_string(),
                codeyard_wire::str_of(v, "value").to_string(),
                codeyard_wire::opt_str(v, "type").unwrap_or_else(|| "PLAINTEXT".into()),
            )
        })
        .collect())
}

/// A build's state as a pipeline cares about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BuildState {
    Running,
    Succeeded,
    /// Any other end: the action fails with the build's message.
    Ended,
}

impl BuildState {
    fn of(outcome: &BuildOutcome) -> BuildState {
        match outcome.status {
            BuildStatus::InProgress => BuildState::Running,
            BuildStatus::Succeeded => BuildState::Succeeded,
            _ => BuildState::Ended,
        }
    }
}

async fn codebuild(call: &ActionCall<'_>) -> AwsResult<ActionOutcome> {
    let ActionCall { host, ref ctx, exec, run, decl, resume } = *call;
    let builds = host.platform().hub.builds()?;
    let mut outcome = match (&run.external_execution_id, resume) {
        (Some(build_id), true) => builds
            .build_outcome(ctx, build_id)
            .await
            .map_err(codebuild_denied("batchGetBuilds"))?,
        _ => {
            // The primary source first, then the others in declaration order.
            let primary = config(run, "PrimarySource").map(str::to_string);
            let mut inputs: Vec<ArtifactLocation> = run.input_artifacts.clone();
            if let Some(p) = &primary {
                inputs.sort_by_key(|a| &a.name != p);
            }
            let source_revision = inputs
                .first()
                .and_then(|a| exec.artifacts.get(&a.name))
                .and_then(|p| p.revision.clone());
            let request = PipelineBuildRequest {
                project_name: config(run, "ProjectName").unwrap_or_default().to_string(),
                inputs,
                outputs: run.output_artifacts.clone(),
                environment_variables: environment_variables(config(run, "EnvironmentVariables"))?,
                buildspec_override: config(run, "BuildspecOverride").map(str::to_string),
                source_revision,
                initiator: format!("codepipeline/{}", exec.pipeline),
            };
            let started = builds
                .start_pipeline_build(ctx, request)
                .await
                .map_err(codebuild_denied("startBuild"))?;
            host.checkpoint(call, &started.build_id, started.log_url.clone()).await?;
            started
        }
    };
    let mut wait = host.build_poll();
    while BuildState::of(&outcome) == BuildState::Running {
        if host.platform().shutdown.is_cancelled() {
            // Left InProgress on purpose: the next start follows the build again.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 3 / 2).min(Duration::from_secs(2));
        outcome = builds
            .build_outcome(ctx, &outcome.build_id)
            .await
            .map_err(codebuild_denied("batchGetBuilds"))?;
    }
    let primary_revision = run
        .input_artifacts
        .iter()
        .find(|a| Some(a.name.as_str()) == config(run, "PrimarySource"))
        .or(run.input_artifacts.first())
        .and_then(|a| exec.artifacts.get(&a.name))
        .and_then(|p| {
            p.revision
                .clone()
                .map(|r| (r, p.revision_summary.clone(), p.revision_url.clone()))
        });
    let _ = decl;
    let succeeded = BuildState::of(&outcome) == BuildState::Succeeded;
    Ok(ActionOutcome {
        succeeded,
        summary: if succeeded {
            None
        } else {
            outcome.message.clone()
        },
        error: (!succeeded).then(|| {
            (
                "JobFailed".to_string(),
                outcome.message.clone().unwrap_or_else(|| {
                    format!(
                        "Build {} ended with status {}",
                        outcome.build_id, outcome.status
                    )
                }),
            )
        }),
        external_id: Some(outcome.build_id.clone()),
        external_url: outcome.log_url.clone(),
        output_variables: outcome.exported_variables.iter().cloned().collect(),
        artifact_revision: primary_revision,
        source_revision: None,
    })
}

async fn s3_deploy(call: &ActionCall<'_>) -> AwsResult<ActionOutcome> {
    let ActionCall { host, ref ctx, run, .. } = *call;
    let objects = host.platform().hub.objects()?;
    let bucket = config(run, "BucketName").unwrap_or_default().to_string();
    let extract = config(run, "Extract").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let object_key = config(run, "ObjectKey").map(|k| k.trim_matches('/').to_string());
    let input = deploy_input(run)?;
    if !objects
        .bucket_exists(ctx, &bucket)
        .await
        .map_err(s3_denied)?
    {
        return Ok(ActionOutcome::failed(format!(
            "The bucket {bucket} does not exist"
        )));
    }
    let options = || PutObjectOptions {
        content_type: None,
        cache_control: config(run, "CacheControl").map(str::to_string),
        canned_acl: config(run, "CannedACL").map(str::to_string),
        metadata: Default::default(),
        kms_key_id: config(run, "KMSEncryptionKeyARN").map(str::to_string),
    };
    let zip = Scratch::new(host, ".zip")?;
    objects
        .get_object_to_file(ctx, &input.bucket, &input.key, None, &zip.0)
        .await
        .map_err(s3_denied)?;
    let mut written = 0usize;
    if extract {
        let dir = Scratch::new(host, ".d")?;
        let files = unzip(&zip.0, &dir.0).await?;
        for rel in &files {
            let key = match &object_key {
                Some(p) if !p.is_empty() => format!("{p}/{rel}"),
                _ => rel.clone(),
            };
            let mut opts = options();
            opts.content_type = Some(content_type(rel).into());
            objects
                .put_object_file(ctx, &bucket, &key, &dir.0.join(rel), opts)
                .await
                .map_err(s3_denied)?;
            written += 1;
        }
    } else {
        let key = object_key.clone().unwrap_or_default();
        let mut opts = options();
        opts.content_type = Some("application/zip".into());
        objects
            .put_object_file(ctx, &bucket, &key, &zip.0, opts)
            .await
            .map_err(s3_denied)?;
        written = 1;
    }
    let target = match &object_key {
        Some(k) if !k.is_empty() => format!("s3://{bucket}/{k}"),
        _ => format!("s3://{bucket}"),
    };
    Ok(ActionOutcome {
        succeeded: true,
        summary: Some(format!("Deployed {written} object(s) to {target}")),
        external_url: Some(format!(
            "https://s3.console.aws.amazon.com/s3/buckets/{bucket}"
        )),
        ..Default::default()
    })
}

/// Unzips into `dir`; returns the relative paths of the files (entries escaping `dir` are refused).
pub(crate) async fn unzip(zip_path: &Path, dir: &Path) -> AwsResult<Vec<String>> {
    let (zip_path, dir) = (zip_path.to_path_buf(), dir.to_path_buf());
    tokio::task::spawn_blocking(move || -> AwsResult<Vec<String>> {
        let file = std::fs::File::open(&zip_path)?;
        let mut archive = zip::ZipArchive::new(file).map_err(|e| {
            AwsError::client("JobFailed", format!("The input artifact is not a zip: {e}"))
        })?;
        let mut out = Vec::new();
        for i in 0..archive.len() {
            let mut entry = archive
                .by_index(i)
                .map_err(|e| AwsError::client("JobFailed", format!("zip: {e}")))?;
            let Some(rel) = entry.enclosed_name() else {
                continue;
            };
            if entry.is_dir() {
                continue;
            }
            let dest = dir.join(&rel);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut f = std::fs::File::create(&dest)?;
            std::io::copy(&mut entry, &mut f)?;
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
        Ok(out)
    })
    .await
    .map_err(AwsError::internal)?
}

fn content_type(path: &str) -> &'static str {
    match path
        .rsplit('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
        .as_str()
    {
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" => "application/javascript",
        "json" => "application/json",
        "txt" => "text/plain",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "svg" => "image/svg+xml",
        "jar" => "application/java-archive",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Writes a file atomically (temp file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
