//! The build runtime: from StartBuild to COMPLETED.
//!
//! [`Engine::start`] records a build (SUBMITTED, QUEUED) and spawns its task; the task waits for
//! one of `build_concurrency` slots, then walks AWS's phases: PROVISIONING (sandbox, role
//! credentials, build environment providers), DOWNLOAD_SOURCE (sources, buildspec, cache
//! restore), INSTALL / PRE_BUILD / BUILD / POST_BUILD (one generated script per phase, see
//! `script.rs`), UPLOAD_ARTIFACTS, FINALIZING (cache save, reports) and COMPLETED. Every phase
//! transition is saved to the store together with its EventBridge events, so a reader always
//! sees a consistent build and an event never describes a state that was not stored.
//!
//! Stop and timeout cancel the build's token; a watcher kills the sandbox, the running phase
//! ends STOPPED or TIMED_OUT and the build is finalized at once.

use crate::build::{BuildRecord, PhaseRecord, PipelineContext, build_arn};
use crate::buildspec::{Buildspec, OnFailure, PHASES};
use crate::executor::{Executor, Exit, Invocation, Sandbox, SandboxSpec};
use crate::logs;
use crate::reports;
use crate::script::{self, PhaseScript};
use codeyard_core::hub::{BusEvent, PutObjectOptions};
use codeyard_core::{AwsError, AwsResult, RequestContext, ids, time};
use codeyard_store::{Batch, Expect, StateStoreExt};
use codeyard_wire::Platform;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub fn ns(account: &str, region: &str, kind: &str) -> String {
    format!("codebuild/{account}/{region}/{kind}")
}

/// How long a "minute" of build and queue timeouts lasts: 60 s, or `CODEYARD_BUILD_MINUTE_MS`
/// (tests use it to reach TIMED_OUT without waiting AWS's 5-minute minimum).
fn minute() -> Duration {
    std::env::var("CODEYARD_BUILD_MINUTE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(60))
}

fn now_ms() -> i64 {
    time::epoch_millis(&time::now())
}

fn invalid(msg: impl Into<String>) -> AwsError {
    AwsError::client("InvalidInputException", msg)
}

/// Why a build was cut short.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Interrupt {
    Stopped,
    TimedOut,
    /// The server is shutting down: the build ends FAULT, as after a crash.
    Shutdown,
}

const SHUTDOWN_MESSAGE: &str = "codeyard stopped during the build";

struct Control {
    cancel: CancellationToken,
    reason: Arc<Mutex<Option<Interrupt>>>,
    done: CancellationToken,
    /// Set once PROVISIONING created it, so shutdown can kill it without waiting for a task.
    sandbox: Mutex<Option<Arc<dyn Sandbox>>>,
}

/// Runs builds. One per server.
pub struct Engine {
    pub platform: Platform,
    executor: Arc<dyn Executor>,
    /// Serves the role credentials of builds in containers.
    pub credentials: Arc<crate::credentials::CredentialsEndpoint>,
    /// A line for every build's log (the executor `auto` fell back to the host, ...).
    executor_note: Option<String>,
    slots: Arc<Semaphore>,
    running: Mutex<HashMap<String, Arc<Control>>>,
}

/// A phase's outcome.
enum PhaseResult {
    Succeeded,
    Failed(String, String),
    Interrupted,
}

impl Engine {
    pub fn new(platform: Platform, executor: Arc<dyn Executor>) -> Arc<Engine> {
        Self::with_note(platform, executor, None)
    }

    pub fn with_note(
        platform: Platform,
        executor: Arc<dyn Executor>,
        executor_note: Option<String>,
    ) -> Arc<Engine> {
        let slots = Arc::new(Semaphore::new(platform.config.build_concurrency.max(1)));
        Arc::new(Engine {
            credentials: Arc::new(crate::credentials::CredentialsEndpoint::new(
                platform.clone(),
            )),
            executor_note,
            platform,
            executor,
            slots,
            running: Mutex::new(HashMap::new()),
        })
    }

    pub async fn load_project(&self, account: &str, region: &str, name: &str) -> AwsResult<Value> {
        match self
            .platform
            .store
            .get_as::<Value>(&ns(account, region, "projects"), name)
            .await?
        {
            Some((p, _)) => Ok(p),
            None => Err(AwsError::client(
                "ResourceNotFoundException",
                format!(
                    "Project cannot be found: {}",
                    crate::project::project_arn(region, account, name)
                ),
            )),
        }
    }

    pub async fn load_build(
        &self,
        account: &str,
        region: &str,
        id: &str,
    ) -> AwsResult<Option<BuildRecord>> {
        Ok(self
            .platform
            .store
            .get_as::<BuildRecord>(&ns(account, region, "builds"), id)
            .await?
            .map(|(b, _)| b))
    }

    async fn save(&self, b: &BuildRecord, events: Vec<(&str, Value)>) -> AwsResult<()> {
        let mut batch =
            Batch::new().put(ns(&b.account, &b.region, "builds"), &b.id, b, Expect::Any);
        for (detail_type, detail) in events {
            batch = batch.publish_event(BusEvent::aws_service_event(
                &b.account,
                &b.region,
                "aws.codebuild",
                detail_type,
                vec![b.arn.clone()],
                detail,
            ));
        }
        self.platform.store.commit(batch).await?;
        Ok(())
    }

    /// StartBuild: the project merged with the input's overrides; returns the new build.
    pub async fn start(
        self: &Arc<Self>,
        ctx: &RequestContext,
        input: &Value,
        pipeline: Option<PipelineContext>,
        initiator: &str,
    ) -> AwsResult<BuildRecord> {
        let name = crate::project::name_of(input["projectName"].as_str().unwrap_or("")).to_string();
        let project = self.load_project(&ctx.account, &ctx.region, &name).await?;
        if let Some(limit) = project["concurrentBuildLimit"].as_u64() {
            let prefix = format!("{name}:");
            let running = self
                .running
                .lock()
                .unwrap()
                .keys()
                .filter(|id| id.starts_with(&prefix))
                .count() as u64;
            if running >= limit {
                return Err(AwsError::client(
                    "AccountLimitExceededException",
                    format!("Project {name} has reached its concurrent build limit of {limit}"),
                ));
            }
        }
        let o = |k: &str| input.get(k).filter(|v| !v.is_null());

        let mut source = project["source"].clone();
        if let Some(t) = o("sourceTypeOverride") {
            source["type"] = t.clone();
        }
        if let Some(l) = o("sourceLocationOverride") {
            source["location"] = l.clone();
        }
        if let Some(d) = o("gitCloneDepthOverride") {
            source["gitCloneDepth"] = d.clone();
        }
        if let Some(s) = o("insecureSslOverride") {
            source["insecureSsl"] = s.clone();
        }
        if let Some(b) = o("buildspecOverride") {
            source["buildspec"] = b.clone();
        }
        if pipeline.is_some() {
            source["type"] = json!("CODEPIPELINE");
            if let Some(obj) = source.as_object_mut() {
                obj.remove("location");
                obj.remove("gitCloneDepth");
            }
        } else if source["type"] == "CODEPIPELINE" {
            return Err(invalid(
                "Project source type CODEPIPELINE can only be built by CodePipeline; give sourceTypeOverride to start it directly",
            ));
        }
        let stype = source["type"].as_str().unwrap_or("").to_string();
        if !matches!(stype.as_str(), "NO_SOURCE" | "CODEPIPELINE")
            && source["location"].as_str().unwrap_or("").is_empty()
        {
            return Err(invalid(format!(
                "Source location is required for source type {stype}"
            )));
        }
        if !matches!(
            stype.as_str(),
            "NO_SOURCE" | "CODEPIPELINE" | "CODECOMMIT" | "S3"
        ) {
            return Err(invalid(format!(
                "codeyard builds do not support source type {stype} yet"
            )));
        }
        let mut environment = project["environment"].clone();
        for (ov, field) in [
            ("imageOverride", "image"),
            ("computeTypeOverride", "computeType"),
            ("environmentTypeOverride", "type"),
            ("privilegedModeOverride", "privilegedMode"),
            ("certificateOverride", "certificate"),
            (
                "imagePullCredentialsTypeOverride",
                "imagePullCredentialsType",
            ),
        ] {
            if let Some(v) = o(ov) {
                environment[field] = v.clone();
            }
        }
        let mut vars: Vec<Value> = environment["environmentVariables"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Some(Value::Array(over)) = o("environmentVariablesOverride") {
            crate::project::validate_env_vars(over)?;
            for v in over {
                let mut v = v.clone();
                if v.get("type").is_none() {
                    v["type"] = json!("PLAINTEXT");
                }
                vars.retain(|x| x["name"] != v["name"]);
                vars.push(v);
            }
        }
        environment["environmentVariables"] = json!(vars);

        let pick = |ov: &str, field: &str| o(ov).cloned().unwrap_or_else(|| project[field].clone());
        let arr = |v: Value| v.as_array().cloned().unwrap_or_default();
        let artifacts_config = if pipeline.is_some() {
            json!({"type": "CODEPIPELINE"})
        } else {
            pick("artifactsOverride", "artifacts")
        };
        let number = self
            .platform
            .store
            .next_counter(&format!(
                "codebuild/{}/{}/build-number/{name}",
                ctx.account, ctx.region
            ))
            .await?;
        let uuid = ids::uuid();
        let id = format!("{name}:{uuid}");
        let logs_config = pick("logsConfigOverride", "logsConfig");
        let log_group = logs_config["cloudWatchLogs"]["groupName"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("/aws/codebuild/{name}"));
        let log_stream = match logs_config["cloudWatchLogs"]["streamName"]
            .as_str()
            .filter(|s| !s.is_empty())
        {
            Some(prefix) => format!("{prefix}/{uuid}"),
            None => uuid.clone(),
        };
        let start = now_ms();
        let mut request = input.clone();
        if let Some(obj) = request.as_object_mut() {
            obj.remove("idempotencyToken");
        }
        let rec = BuildRecord {
            arn: build_arn(&ctx.region, &ctx.account, &id),
            id: id.clone(),
            uuid,
            account: ctx.account.clone(),
            region: ctx.region.clone(),
            project_name: name.clone(),
            build_number: number,
            start_ms: start,
            end_ms: None,
            current_phase: "QUEUED".into(),
            build_status: "IN_PROGRESS".into(),
            build_complete: false,
            source_version: o("sourceVersion")
                .and_then(Value::as_str)
                .or(project["sourceVersion"].as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            resolved_source_version: None,
            phases: vec![
                PhaseRecord {
                    phase_type: "SUBMITTED".into(),
                    status: Some("SUCCEEDED".into()),
                    start_ms: start,
                    end_ms: Some(start),
                    contexts: vec![],
                },
                PhaseRecord {
                    phase_type: "QUEUED".into(),
                    status: None,
                    start_ms: start,
                    end_ms: None,
                    contexts: vec![],
                },
            ],
            source,
            secondary_sources: arr(pick("secondarySourcesOverride", "secondarySources")),
            secondary_source_versions: arr(pick(
                "secondarySourcesVersionOverride",
                "secondarySourceVersions",
            )),
            artifacts: json!({}),
            secondary_artifacts: vec![],
            secondary_artifacts_config: if pipeline.is_some() {
                vec![]
            } else {
                arr(pick("secondaryArtifactsOverride", "secondaryArtifacts"))
            },
            artifacts_config,
            cache: pick("cacheOverride", "cache"),
            environment,
            service_role: pick("serviceRoleOverride", "serviceRole")
                .as_str()
                .unwrap_or("")
                .to_string(),
            logs_config,
            log_group,
            log_stream,
            timeout_minutes: pick("timeoutInMinutesOverride", "timeoutInMinutes")
                .as_i64()
                .unwrap_or(60),
            queued_timeout_minutes: pick(
                "queuedTimeoutInMinutesOverride",
                "queuedTimeoutInMinutes",
            )
            .as_i64()
            .unwrap_or(480),
            encryption_key: pick("encryptionKeyOverride", "encryptionKey")
                .as_str()
                .map(str::to_string),
            initiator: initiator.to_string(),
            exported: vec![],
            report_arns: vec![],
            buildspec_override: o("buildspecOverride")
                .and_then(Value::as_str)
                .map(str::to_string),
            pipeline,
            request,
            message: None,
            endpoint: ctx.endpoint.clone(),
        };
        self.save(
            &rec,
            vec![("CodeBuild Build State Change", rec.state_event_detail())],
        )
        .await?;
        let control = Arc::new(Control {
            cancel: CancellationToken::new(),
            reason: Arc::new(Mutex::new(None)),
            done: CancellationToken::new(),
            sandbox: Mutex::new(None),
        });
        self.running
            .lock()
            .unwrap()
            .insert(id.clone(), control.clone());
        let engine = self.clone();
        let record = rec.clone();
        tokio::spawn(async move {
            let id = record.id.clone();
            let finished = engine.clone().run(record, control.clone()).await;
            if let Err(e) = finished {
                tracing::error!(build = %id, error = %e, "build runner failed");
            }
            engine.running.lock().unwrap().remove(&id);
            control.done.cancel();
        });
        Ok(rec)
    }

    /// Asks a running build to stop; waits (up to 2 s) for it to end.
    pub async fn stop(&self, id: &str) {
        let control = self.running.lock().unwrap().get(id).cloned();
        if let Some(c) = control {
            c.reason.lock().unwrap().get_or_insert(Interrupt::Stopped);
            c.cancel.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(2), c.done.cancelled()).await;
        }
    }

    /// Kills every running build's processes because the server is going down (what is
    /// saved before the process exits says FAULT; `recover` finishes the rest at start-up).
    pub fn shutdown(&self) {
        let controls: Vec<Arc<Control>> = self.running.lock().unwrap().values().cloned().collect();
        for c in controls {
            c.reason.lock().unwrap().get_or_insert(Interrupt::Shutdown);
            c.cancel.cancel();
            if let Some(s) = c.sandbox.lock().unwrap().as_ref() {
                s.kill();
            }
        }
    }

    /// Ends builds that were running when the server went down.
    pub async fn recover(&self) -> anyhow::Result<()> {
        for namespace in self.platform.store.namespaces("codebuild/").await? {
            if !namespace.ends_with("/builds") {
                continue;
            }
            let builds: Vec<BuildRecord> = self.platform.store.list_all_as(&namespace).await?;
            for mut b in builds.into_iter().filter(|b| !b.build_complete) {
                crate::executor::kill_orphans(&b.id);
                let now = now_ms();
                let msg = "codeyard restarted during the build".to_string();
                let mut events = Vec::new();
                if let Some(p) = b.phases.iter_mut().rev().find(|p| p.end_ms.is_none()) {
                    p.status = Some("FAULT".into());
                    p.end_ms = Some(now);
                    p.contexts = vec![("CLIENT_ERROR".to_string(), msg.clone())];
                }
                if let Some(p) = b.phases.last().cloned() {
                    events.push(("CodeBuild Build Phase Change", b.phase_event_detail(&p)));
                }
                b.phases.push(PhaseRecord {
                    phase_type: "COMPLETED".into(),
                    status: None,
                    start_ms: now,
                    end_ms: None,
                    contexts: vec![],
                });
                b.current_phase = "COMPLETED".into();
                b.build_status = "FAULT".into();
                b.build_complete = true;
                b.end_ms = Some(now);
                b.message = Some(msg);
                events.push(("CodeBuild Build State Change", b.state_event_detail()));
                self.save(&b, events).await?;
                tracing::warn!(build = %b.id, "build was running when codeyard stopped: marked FAULT");
            }
        }
        Ok(())
    }

    async fn enter(
        &self,
        b: &mut BuildRecord,
        phase: &str,
        sandbox: Option<&Arc<dyn Sandbox>>,
    ) -> AwsResult<()> {
        b.current_phase = phase.to_string();
        b.phases.push(PhaseRecord {
            phase_type: phase.into(),
            status: None,
            start_ms: now_ms(),
            end_ms: None,
            contexts: vec![],
        });
        if let Some(s) = sandbox {
            s.note(&logs::agent_line(&format!("Entering phase {phase}")));
        }
        self.save(b, vec![]).await
    }

    async fn finish(
        &self,
        b: &mut BuildRecord,
        status: &str,
        context: Option<(String, String)>,
        sandbox: Option<&Arc<dyn Sandbox>>,
    ) -> AwsResult<()> {
        let now = now_ms();
        let Some(p) = b.phases.last_mut() else {
            return Ok(());
        };
        p.status = Some(status.to_string());
        p.end_ms = Some(now);
        p.contexts = context.into_iter().collect();
        let p = p.clone();
        if let Some(s) = sandbox {
            s.note(&logs::agent_line(&format!(
                "Phase complete: {} State: {status}",
                p.phase_type
            )));
            for (code, msg) in &p.contexts {
                s.note(&logs::agent_line(&format!(
                    "Phase context status code: {code} Message: {msg}"
                )));
            }
        }
        if status != "SUCCEEDED" && b.message.is_none() {
            b.message = Some(match p.contexts.first() {
                Some((code, msg)) => format!("{} {status}: {code}: {msg}", p.phase_type),
                None => format!("{} {status}", p.phase_type),
            });
        }
        self.save(
            b,
            vec![("CodeBuild Build Phase Change", b.phase_event_detail(&p))],
        )
        .await
    }

    fn interrupt_status(control: &Control) -> Option<&'static str> {
        match *control.reason.lock().unwrap() {
            Some(Interrupt::Stopped) => Some("STOPPED"),
            Some(Interrupt::TimedOut) => Some("TIMED_OUT"),
            Some(Interrupt::Shutdown) => Some("FAULT"),
            None => None,
        }
    }

    /// The build's task.
    async fn run(self: Arc<Self>, mut b: BuildRecord, control: Arc<Control>) -> AwsResult<()> {
        // QUEUED: wait for a slot, a stop, or the queued timeout.
        let queued_for = minute() * b.queued_timeout_minutes.max(5) as u32;
        let permit = tokio::select! {
            p = self.slots.clone().acquire_owned() => p.ok(),
            _ = control.cancel.cancelled() => None,
            _ = tokio::time::sleep(queued_for) => {
                control.reason.lock().unwrap().get_or_insert(Interrupt::TimedOut);
                None
            }
        };
        if permit.is_none() {
            let status = Self::interrupt_status(&control).unwrap_or("STOPPED");
            self.finish(&mut b, status, None, None).await?;
            return self.complete(&mut b, status).await;
        }
        self.finish(&mut b, "SUCCEEDED", None, None).await?;
        self.save(&b, vec![]).await?;

        // The build timeout covers everything after the queue.
        let timer = {
            let control = control.clone();
            let limit = minute() * b.timeout_minutes.max(1) as u32;
            tokio::spawn(async move {
                tokio::time::sleep(limit).await;
                control
                    .reason
                    .lock()
                    .unwrap()
                    .get_or_insert(Interrupt::TimedOut);
                control.cancel.cancel();
            })
        };

        // PROVISIONING
        let workspace = self
            .platform
            .config
            .data_dir
            .join("codebuild")
            .join("builds")
            .join(&b.uuid);
        let sandbox = match self
            .executor
            .create(SandboxSpec {
                build_id: b.id.clone(),
                root: workspace.clone(),
            })
            .await
        {
            Ok(s) => s,
            Err(e) => {
                self.enter(&mut b, "PROVISIONING", None).await?;
                self.finish(
                    &mut b,
                    "FAULT",
                    Some((
                        "CLIENT_ERROR".into(),
                        format!("cannot create the build sandbox: {e}"),
                    )),
                    None,
                )
                .await?;
                timer.abort();
                return self.complete(&mut b, "FAULT").await;
            }
        };
        *control.sandbox.lock().unwrap() = Some(sandbox.clone());
        let watcher = {
            let sandbox = sandbox.clone();
            let control = control.clone();
            tokio::spawn(async move {
                control.cancel.cancelled().await;
                sandbox.kill();
            })
        };
        let masks = logs::Masks::default();
        let ctx = crate::access::role_context(&b);
        let mut pump = logs::spawn_pump(&self.platform, &ctx, &b, sandbox.take_output(), masks.clone());
        let log_stream = pump.as_mut().map(|p| &mut p.stream);
        let result = self
            .run_phases(&mut b, &ctx, &sandbox, &control, &workspace, &masks, log_stream)
            .await;
        self.credentials.close(&b.uuid);
        timer.abort();
        watcher.abort();
        let _ = sandbox.teardown().await;
        if let Some(pump) = pump {
            let _ = pump.task.await;
        }
        let status = match result {
            Ok(s) => s,
            Err(e) => {
                b.message.get_or_insert(format!("internal error: {e}"));
                "FAULT".to_string()
            }
        };
        drop(permit);
        self.complete(&mut b, &status).await
    }

    async fn complete(&self, b: &mut BuildRecord, status: &str) -> AwsResult<()> {
        let now = now_ms();
        b.phases.push(PhaseRecord {
            phase_type: "COMPLETED".into(),
            status: None,
            start_ms: now,
            end_ms: None,
            contexts: vec![],
        });
        b.current_phase = "COMPLETED".into();
        b.build_status = status.to_string();
        b.build_complete = true;
        b.end_ms = Some(now);
        self.save(
            b,
            vec![("CodeBuild Build State Change", b.state_event_detail())],
        )
        .await
    }

    /// PROVISIONING to FINALIZING, acting as `ctx` (the service role's session); returns the
    /// build status. `log_stream` answers whether the role could create the log stream.
    #[allow(clippy::too_many_arguments)]
    async fn run_phases(
        &self,
        b: &mut BuildRecord,
        ctx: &RequestContext,
        sandbox: &Arc<dyn Sandbox>,
        control: &Arc<Control>,
        workspace: &Path,
        masks: &logs::Masks,
        log_stream: Option<&mut tokio::sync::oneshot::Receiver<Result<(), String>>>,
    ) -> AwsResult<String> {
        let sb = Some(sandbox);
        let ctx = ctx.clone();
        self.enter(b, "PROVISIONING", sb).await?;
        let src_dir = workspace.join("src");
        let home = workspace.join("home");
        let state_dir = workspace.join("state");
        let scratch = workspace.join("scratch");
        for d in [&src_dir, &home, &state_dir, &scratch] {
            std::fs::create_dir_all(d)?;
        }
        if let Some(n) = &self.executor_note {
            sandbox.note(&logs::agent_line(n));
        }
        let provisioning = crate::executor::Provisioning {
            image: b.environment["image"].as_str().unwrap_or("").to_string(),
            privileged: b.environment["privilegedMode"].as_bool().unwrap_or(false),
            pull_credentials: b.environment["imagePullCredentialsType"]
                .as_str()
                .unwrap_or("CODEBUILD")
                .to_string(),
        };
        if let Err(context) = crate::access::provisioning(&self.platform, &ctx, b, &provisioning, log_stream).await {
            self.finish(b, "FAILED", Some(context), sb).await?;
            return self.finalize(b, sb, "FAILED").await;
        }
        let placement = match sandbox.provision(&provisioning).await {
            Ok(p) => p,
            Err(e) => {
                let status = Self::interrupt_status(control).unwrap_or("FAILED");
                self.finish(b, status, Some((e.code, e.message)), sb)
                    .await?;
                return self.finalize(b, sb, status).await;
            }
        };
        let access = match placement {
            crate::executor::Placement::Container { .. } => Some(self.credentials.open(b).await),
            crate::executor::Placement::Host => None,
        };
        let image_path = match &placement {
            crate::executor::Placement::Container { path, .. } => path.clone(),
            crate::executor::Placement::Host => None,
        };
        let runs = match &access {
            Some(credentials) => crate::environment::Runs::Container {
                credentials,
                image_path,
            },
            None => crate::environment::Runs::Host,
        };
        let mut env = match crate::environment::assemble(
            &self.platform,
            &ctx,
            b,
            &src_dir,
            &home,
            &scratch,
            runs,
        )
        .await
        {
            Ok(env) => env,
            Err(msg) => {
                self.finish(b, "FAILED", Some(("CLIENT_ERROR".into(), msg)), sb)
                    .await?;
                return self.finalize(b, sb, "FAILED").await;
            }
        };
        masks.lock().unwrap().extend(env.secrets.iter().cloned());
        for w in env.warnings.drain(..) {
            sandbox.note(&logs::agent_line(&w));
        }
        if let Some(s) = Self::interrupt_status(control) {
            self.finish(b, s, None, sb).await?;
            return self.finalize(b, sb, s).await;
        }
        self.finish(b, "SUCCEEDED", None, sb).await?;

        // DOWNLOAD_SOURCE
        self.enter(b, "DOWNLOAD_SOURCE", sb).await?;
        let spec = match self
            .download_source(&ctx, b, &src_dir, workspace, &mut env)
            .await
        {
            Ok(spec) => spec,
            Err((code, msg)) => {
                let status = Self::interrupt_status(control).unwrap_or("FAILED");
                self.finish(b, status, Some((code, msg)), sb).await?;
                return self.finalize(b, sb, status).await;
            }
        };
        for w in env.warnings.drain(..) {
            sandbox.note(&logs::agent_line(&w));
        }
        let cache = crate::cache::Cache::new(&self.platform, b, &spec, &src_dir, &home);
        if let Some(c) = &cache
            && let Err(e) = c.restore(&ctx).await
        {
            sandbox.note(&logs::agent_line(&format!("cache restore skipped: {e}")));
        }
        self.finish(b, "SUCCEEDED", None, sb).await?;

        // INSTALL .. POST_BUILD
        let mut failed = false;
        let mut abort = false;
        let mut interrupted: Option<&'static str> = None;
        for (i, (key, api)) in PHASES.iter().enumerate() {
            if abort || interrupted.is_some() {
                break;
            }
            self.enter(b, api, sb).await?;
            let phase = &spec.phases[i];
            let result = if phase.commands.is_empty() && phase.finally.is_empty() {
                PhaseResult::Succeeded
            } else {
                let script = PhaseScript {
                    phase: key,
                    version: &spec.version,
                    commands: &phase.commands,
                    finally: &phase.finally,
                    state_dir: &state_dir,
                    succeeding: !failed,
                    exported_variables: &spec.exported_variables,
                    posix: spec
                        .shell
                        .as_deref()
                        .is_some_and(|s| s == "/bin/sh" || s == "sh"),
                }
                .write()?;
                let inv = Invocation {
                    program: "bash".into(),
                    args: vec![script.display().to_string()],
                    env: env.vars.clone(),
                    cwd: src_dir.clone(),
                };
                match sandbox.run(inv).await {
                    Ok(Exit::Code(0)) => PhaseResult::Succeeded,
                    Ok(Exit::Code(code)) => {
                        let f = script::failure(&state_dir, &phase.commands, &phase.finally, code);
                        PhaseResult::Failed(
                            "COMMAND_EXECUTION_ERROR".into(),
                            format!(
                                "Error while executing command: {}. Reason: exit status {}",
                                f.command, f.status
                            ),
                        )
                    }
                    Ok(Exit::Killed) => PhaseResult::Interrupted,
                    Err(e) => PhaseResult::Failed(
                        "CLIENT_ERROR".into(),
                        format!("cannot run the phase: {e}"),
                    ),
                }
            };
            let exported = script::exported(&state_dir);
            for (k, v) in exported {
                b.exported.retain(|(n, _)| *n != k);
                b.exported.push((k, v));
            }
            match result {
                PhaseResult::Succeeded => self.finish(b, "SUCCEEDED", None, sb).await?,
                PhaseResult::Failed(code, msg) => {
                    failed = true;
                    self.finish(b, "FAILED", Some((code, msg)), sb).await?;
                    if phase.on_failure == OnFailure::Abort
                        && matches!(*api, "INSTALL" | "PRE_BUILD")
                    {
                        abort = true;
                    }
                }
                PhaseResult::Interrupted => {
                    let s = Self::interrupt_status(control).unwrap_or("STOPPED");
                    let context = (s == "FAULT")
                        .then(|| ("CLIENT_ERROR".to_string(), SHUTDOWN_MESSAGE.to_string()));
                    self.finish(b, s, context, sb).await?;
                    interrupted = Some(s);
                }
            }
        }
        // Exported variables keep the names AWS reports even when unset (empty value).
        for n in &spec.exported_variables {
            if !b.exported.iter().any(|(k, _)| k == n) {
                b.exported.push((n.clone(), String::new()));
            }
        }
        if let Some(s) = interrupted {
            return self.finalize(b, sb, s).await;
        }

        // UPLOAD_ARTIFACTS: attempted unless INSTALL or PRE_BUILD aborted the build.
        if !abort {
            self.enter(b, "UPLOAD_ARTIFACTS", sb).await?;
            match crate::upload::upload(&self.platform, &ctx, b, &spec, &src_dir, &scratch).await {
                Ok(()) => self.finish(b, "SUCCEEDED", None, sb).await?,
                Err(msg) => {
                    failed = true;
                    self.finish(b, "FAILED", Some(("CLIENT_ERROR".into(), msg)), sb)
                        .await?;
                }
            }
        }
        if let Some(c) = &cache
            && let Err(e) = c.save(&ctx).await
        {
            sandbox.note(&logs::agent_line(&format!("cache save failed: {e}")));
        }
        match reports::collect(&self.platform, &ctx, b, &spec, &src_dir).await {
            Ok(arns) => b.report_arns = arns,
            Err(e) => sandbox.note(&logs::agent_line(&format!("reports: {e}"))),
        }
        let status = if failed { "FAILED" } else { "SUCCEEDED" };
        self.finalize(b, sb, status).await
    }

    async fn finalize(
        &self,
        b: &mut BuildRecord,
        sb: Option<&Arc<dyn Sandbox>>,
        status: &str,
    ) -> AwsResult<String> {
        self.enter(b, "FINALIZING", sb).await?;
        self.finish(b, "SUCCEEDED", None, sb).await?;
        Ok(status.to_string())
    }

    /// Fetches the primary and secondary sources and reads the buildspec.
    async fn download_source(
        &self,
        ctx: &RequestContext,
        b: &mut BuildRecord,
        src_dir: &Path,
        workspace: &Path,
        env: &mut crate::environment::BuildEnv,
    ) -> Result<Buildspec, (String, String)> {
        let client = |m: String| ("CLIENT_ERROR".to_string(), m);
        if let Some(p) = b.pipeline.clone() {
            for (i, input) in p.inputs.iter().enumerate() {
                let dest = if i == 0 {
                    src_dir.to_path_buf()
                } else {
                    workspace.join(format!("src_{}", input.name))
                };
                crate::source::fetch_pipeline_input(
                    &self.platform,
                    ctx,
                    &input.bucket,
                    &input.key,
                    &dest,
                    workspace,
                )
                .await
                .map_err(client)?;
                if i == 0 {
                    env.set(
                        "CODEBUILD_SOURCE_VERSION",
                        &format!("arn:aws:s3:::{}/{}", input.bucket, input.key),
                    );
                } else {
                    env.set(
                        &format!("CODEBUILD_SRC_DIR_{}", input.name),
                        &dest.display().to_string(),
                    );
                }
            }
            if let Some(rev) = &p.source_revision {
                b.resolved_source_version = Some(rev.clone());
                env.set("CODEBUILD_RESOLVED_SOURCE_VERSION", rev);
            }
        } else {
            let fetched = crate::source::fetch(
                &self.platform,
                ctx,
                &b.source,
                b.source_version.as_deref(),
                src_dir,
                workspace,
            )
            .await
            .map_err(client)?;
            if let Some(r) = &fetched.resolved {
                b.resolved_source_version = Some(r.clone());
                env.set("CODEBUILD_RESOLVED_SOURCE_VERSION", r);
            }
            env.set(
                "CODEBUILD_SOURCE_VERSION",
                b.source_version
                    .as_deref()
                    .unwrap_or(fetched.resolved.as_deref().unwrap_or("")),
            );
            env.set(
                "CODEBUILD_SOURCE_REPO_URL",
                b.source["location"].as_str().unwrap_or(""),
            );
            for s in b.secondary_sources.clone() {
                let ident = s["sourceIdentifier"].as_str().unwrap_or("").to_string();
                let version = b
                    .secondary_source_versions
                    .iter()
                    .find(|v| v["sourceIdentifier"] == ident.as_str())
                    .and_then(|v| v["sourceVersion"].as_str())
                    .map(str::to_string);
                let dest = workspace.join(format!("src_{ident}"));
                crate::source::fetch(
                    &self.platform,
                    ctx,
                    &s,
                    version.as_deref(),
                    &dest,
                    workspace,
                )
                .await
                .map_err(client)?;
                env.set(
                    &format!("CODEBUILD_SRC_DIR_{ident}"),
                    &dest.display().to_string(),
                );
            }
        }
        let text = crate::source::buildspec_text(
            &self.platform,
            ctx,
            b.source["buildspec"].as_str(),
            src_dir,
            workspace,
        )
        .await
        .map_err(|m| ("YAML_FILE_ERROR".to_string(), m))?;
        let spec = Buildspec::parse(&text).map_err(|e| ("YAML_FILE_ERROR".to_string(), e.0))?;
        let unsupported = spec.unsupported_secret_sources();
        if !unsupported.is_empty() {
            return Err(client(format!(
                "codeyard cannot resolve parameter-store or secrets-manager variables yet: {}",
                unsupported.join(", ")
            )));
        }
        env.apply_buildspec(&spec);
        if spec.run_as.is_some() || spec.phases.iter().any(|p| p.run_as.is_some()) {
            env.warnings.push("run-as is not supported by the local executor: commands run as codeyard's own user".into());
        }
        if spec.git_credential_helper {
            crate::environment::git_credential_helper(env, &workspace.join("home"))
                .map_err(|e| client(e.to_string()))?;
        }
        Ok(spec)
    }
}

/// Uploads a file to S3 through the hub.
pub async fn put_file(
    platform: &Platform,
    ctx: &RequestContext,
    bucket: &str,
    key: &str,
    path: &Path,
) -> Result<(), String> {
    let objects = platform.hub.objects().map_err(|e| e.message)?;
    objects
        .put_object_file(ctx, bucket, key, path, PutObjectOptions::default())
        .await
        .map(|_| ())
        .map_err(|e| match e.status {
            403 => format!("Error uploading artifacts: {}", crate::source::s3_error(&e)),
            _ => format!("cannot upload s3://{bucket}/{key}: {}", e.message),
        })
}

pub fn scratch_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{}-{name}", ids::hex(8)))
}
