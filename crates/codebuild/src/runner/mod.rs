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

mod phases;

use crate::build::{BuildRecord, PhaseRecord, PipelineContext, build_arn};
use crate::executor::{Executor, Sandbox, SandboxSpec};
use crate::error::CodeBuildError;
use crate::logs;
use codeyard_api::codebuild::{BuildPhaseType, StartBuildInput};
use codeyard_core::hub::{BuildStatus, BusEvent};
use codeyard_core::{AwsResult, RequestContext, ids, time};
use codeyard_store::{Batch, Expect, StateStoreExt};
use codeyard_wire::Platform;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use crate::io::ns;

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

    pub async fn load_project(&self, account: &str, region: &str, name: &str) -> AwsResult<crate::project::ProjectRecord> {
        match self
            .platform
            .store
            .get_as::<crate::project::ProjectRecord>(&ns(account, region, "projects"), name)
            .await?
        {
            Some((p, _)) => Ok(p),
            None => Err(CodeBuildError::ProjectNotFound(crate::project::project_arn(region, account, name)).into()),
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
        self.save_with(Batch::new(), b, events).await
    }

    /// Saves `b` with its events, in one commit with `batch` (a new build's index entries).
    async fn save_with(&self, batch: Batch, b: &BuildRecord, events: Vec<(&str, Value)>) -> AwsResult<()> {
        let mut batch = batch.put(ns(&b.account, &b.region, "builds"), &b.id, b, Expect::Any);
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
        input: &StartBuildInput,
        pipeline: Option<PipelineContext>,
        initiator: &str,
    ) -> AwsResult<BuildRecord> {
        let name = crate::project::name_of(&input.project_name).to_string();
        let project = self.load_project(&ctx.account, &ctx.region, &name).await?;
        if let Some(limit) = project.concurrent_build_limit.map(|l| l.max(0) as u64) {
            let prefix = format!("{name}:");
            let running = self
                .running
                .lock()
                .unwrap()
                .keys()
                .filter(|id| id.starts_with(&prefix))
                .count() as u64;
            if running >= limit {
                return Err(CodeBuildError::LimitExceeded(format!(
                    "Project {name} has reached its concurrent build limit of {limit}"
                ))
                .into());
            }
        }
        let config = crate::overrides::effective(&project, input, pipeline.is_some())?;
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
        let cloud_watch = config.logs_config.cloud_watch_logs.as_ref();
        let log_group = cloud_watch
            .and_then(|c| c.group_name.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("/aws/codebuild/{name}"));
        let log_stream = match cloud_watch.and_then(|c| c.stream_name.as_deref()).filter(|s| !s.is_empty()) {
            Some(prefix) => format!("{prefix}/{uuid}"),
            None => uuid.clone(),
        };
        let start = now_ms();
        let mut request = input.clone();
        request.idempotency_token = None;
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
            current_phase: BuildPhaseType::Queued,
            build_status: BuildStatus::InProgress,
            build_complete: false,
            resolved_source_version: None,
            phases: vec![
                PhaseRecord {
                    phase_type: BuildPhaseType::Submitted,
                    status: Some(BuildStatus::Succeeded),
                    start_ms: start,
                    end_ms: Some(start),
                    contexts: vec![],
                },
                PhaseRecord {
                    phase_type: BuildPhaseType::Queued,
                    status: None,
                    start_ms: start,
                    end_ms: None,
                    contexts: vec![],
                },
            ],
            artifacts: Default::default(),
            secondary_artifacts: vec![],
            config,
            log_group,
            log_stream,
            initiator: initiator.to_string(),
            exported: vec![],
            report_arns: vec![],
            buildspec_override: input.buildspec_override.clone(),
            pipeline,
            request,
            message: None,
            endpoint: ctx.endpoint.clone(),
        };
        self.save_with(
            crate::index::add(Batch::new(), &rec),
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

    /// Ends builds that were running when the server went down; indexes the builds of a data
    /// dir from before the build index ([`crate::index::rebuild`]).
    pub async fn recover(&self) -> anyhow::Result<()> {
        for namespace in self.platform.store.namespaces("codebuild/").await? {
            let Some((account, region)) = namespace
                .strip_prefix("codebuild/")
                .and_then(|r| r.strip_suffix("/builds"))
                .and_then(|r| r.split_once('/'))
            else {
                continue;
            };
            let builds: Vec<BuildRecord> = self.platform.store.list_all_as(&namespace).await?;
            if !crate::index::complete(&self.platform.store, account, region).await? {
                crate::index::rebuild(&self.platform.store, account, region, &builds).await?;
                tracing::info!(account, region, builds = builds.len(), "indexed the builds of an earlier version");
            }
            for mut b in builds.into_iter().filter(|b| !b.build_complete) {
                crate::executor::kill_orphans(&b.id);
                let now = now_ms();
                let msg = "codeyard restarted during the build".to_string();
                let mut events = Vec::new();
                if let Some(p) = b.phases.iter_mut().rev().find(|p| p.end_ms.is_none()) {
                    p.status = Some(BuildStatus::Fault);
                    p.end_ms = Some(now);
                    p.contexts = vec![("CLIENT_ERROR".to_string(), msg.clone())];
                }
                if let Some(p) = b.phases.last().cloned() {
                    events.push(("CodeBuild Build Phase Change", b.phase_event_detail(&p)));
                }
                mark_completed(&mut b, BuildStatus::Fault, now);
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
        b.current_phase = BuildPhaseType::from(phase);
        b.phases.push(PhaseRecord {
            phase_type: BuildPhaseType::from(phase),
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
        status: BuildStatus,
        context: Option<(String, String)>,
        sandbox: Option<&Arc<dyn Sandbox>>,
    ) -> AwsResult<()> {
        let now = now_ms();
        let Some(p) = b.phases.last_mut() else {
            return Ok(());
        };
        p.status = Some(status);
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
        if status != BuildStatus::Succeeded && b.message.is_none() {
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

    fn interrupt_status(control: &Control) -> Option<BuildStatus> {
        match *control.reason.lock().unwrap() {
            Some(Interrupt::Stopped) => Some(BuildStatus::Stopped),
            Some(Interrupt::TimedOut) => Some(BuildStatus::TimedOut),
            Some(Interrupt::Shutdown) => Some(BuildStatus::Fault),
            None => None,
        }
    }

    /// The build's task.
    async fn run(self: Arc<Self>, mut b: BuildRecord, control: Arc<Control>) -> AwsResult<()> {
        // QUEUED: wait for a slot, a stop, or the queued timeout.
        let queued_for = minute() * b.config.queued_timeout_minutes.max(5) as u32;
        let permit = tokio::select! {
            p = self.slots.clone().acquire_owned() => p.ok(),
            _ = control.cancel.cancelled() => None,
            _ = tokio::time::sleep(queued_for) => {
                control.reason.lock().unwrap().get_or_insert(Interrupt::TimedOut);
                None
            }
        };
        if permit.is_none() {
            let status = Self::interrupt_status(&control).unwrap_or(BuildStatus::Stopped);
            self.finish(&mut b, status, None, None).await?;
            return self.complete(&mut b, status).await;
        }
        // The first container build probes podman here: queue time, not build time.
        self.executor.prepare().await;
        self.finish(&mut b, BuildStatus::Succeeded, None, None).await?;
        self.save(&b, vec![]).await?;

        // The build timeout covers everything after the queue.
        let timer = {
            let control = control.clone();
            let limit = minute() * b.config.timeout_minutes.max(1) as u32;
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
                    BuildStatus::Fault,
                    Some((
                        "CLIENT_ERROR".into(),
                        format!("cannot create the build sandbox: {e}"),
                    )),
                    None,
                )
                .await?;
                timer.abort();
                return self.complete(&mut b, BuildStatus::Fault).await;
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
                BuildStatus::Fault
            }
        };
        drop(permit);
        self.complete(&mut b, status).await
    }

    async fn complete(&self, b: &mut BuildRecord, status: BuildStatus) -> AwsResult<()> {
        mark_completed(b, status, now_ms());
        self.save(
            b,
            vec![("CodeBuild Build State Change", b.state_event_detail())],
        )
        .await
    }
}

/// Ends a build: the COMPLETED phase CodeBuild lists last, and the final status.
fn mark_completed(b: &mut BuildRecord, status: BuildStatus, now: i64) {
    b.phases.push(PhaseRecord { phase_type: BuildPhaseType::Completed, status: None, start_ms: now, end_ms: None, contexts: vec![] });
    b.current_phase = BuildPhaseType::Completed;
    b.build_status = status;
    b.build_complete = true;
    b.end_ms = Some(now);
}
