//! The execution engine.
//!
//! State lives in the store only: one document per execution (`executions/<pipeline>/<id>`)
//! holding every stage's progress and every action run. The engine is a scheduler over those
//! documents, driven by the durable queue [`WORK_QUEUE`]: every state change commits a "tick"
//! for its pipeline in the same batch, and the worker loop runs [`Engine::tick`], which looks
//! at all live executions of the pipeline together (execution modes and stage occupancy are
//! decisions across executions) and moves each as far as it can:
//!
//! * an execution waits for the first stage it has not passed; it enters it when the inbound
//!   transition is enabled and (SUPERSEDED, QUEUED) no other execution is in that stage;
//!   in SUPERSEDED mode only the newest waiting execution stays, older waiting ones become
//!   `Superseded`; QUEUED lets the oldest in; PARALLEL lets all in;
//! * in a stage, the lowest runOrder group whose actions have not all succeeded runs; a
//!   failed action fails the stage and the execution once nothing in the group is running.
//!
//! Actions run as tokio tasks ([`crate::actions`]) that record their result through
//! [`Engine::complete`] (which commits the next tick). All updates of one pipeline's
//! executions happen under a per-pipeline lock, and every write is also a compare-and-swap on
//! the document version. After a restart the first tick finds InProgress runs with no task and
//! resumes them: a build is followed again by its id, other actions run again (they are
//! idempotent: same source revision, same object keys), approvals keep waiting.

mod progress;

use progress::{Work, action_decl, admit, progress};
pub use progress::{apply_outcome, artifact_key, request_stop, retry_stage};

use crate::actions::{self, ActionCall, ActionHost, ActionOutcome};
use crate::events;
use crate::model::{Execution, PipelineDoc, Status};
use codeyard_core::hub::BusEvent;
use codeyard_core::time::now;
use codeyard_core::{AwsError, AwsResult, ids};
use codeyard_store::{Batch, Expect, Scan, StateStore, StateStoreExt, StoreError};
use codeyard_wire::Platform;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The durable queue of pipeline ticks.
pub const WORK_QUEUE: &str = "codepipeline.work";

pub fn ns(account: &str, region: &str, kind: &str) -> String {
    format!("codepipeline/{account}/{region}/{kind}")
}

pub fn exec_key(pipeline: &str, id: &str) -> String {
    format!("{pipeline}/{id}")
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tick {
    pub account: String,
    pub region: String,
    pub pipeline: String,
}

/// How an execution is started.
#[derive(Clone, Debug, Default)]
pub struct StartRequest {
    pub trigger_type: String,
    pub trigger_detail: String,
    pub variables: Vec<(String, String)>,
    pub revision_overrides: BTreeMap<String, String>,
    pub client_request_token: Option<String>,
}

pub struct Engine {
    pub platform: Platform,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Action runs that have a live task in this process.
    running: Mutex<HashSet<String>>,
    wake: Notify,
    /// How soon a running build is first looked at again (the interval then grows to 2 s):
    /// short builds are noticed at once, long ones cost little.
    pub build_poll: Duration,
}

pub type Loaded = (Execution, i64);

impl Engine {
    pub fn new(platform: Platform) -> Arc<Engine> {
        Arc::new(Engine {
            platform,
            locks: Mutex::new(HashMap::new()),
            running: Mutex::new(HashSet::new()),
            wake: Notify::new(),
            build_poll: Duration::from_millis(50),
        })
    }

    pub async fn lock(
        &self,
        account: &str,
        region: &str,
        pipeline: &str,
    ) -> tokio::sync::OwnedMutexGuard<()> {
        let m = self
            .locks
            .lock()
            .unwrap()
            .entry(format!("{account}/{region}/{pipeline}"))
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
            .clone();
        m.lock_owned().await
    }

    /// Commits a batch and wakes the worker (the batch usually carries a tick).
    pub async fn commit(&self, batch: Batch) -> AwsResult<()> {
        self.platform.store.commit(batch).await?;
        self.wake.notify_one();
        Ok(())
    }

    pub fn tick_batch(batch: Batch, account: &str, region: &str, pipeline: &str) -> Batch {
        batch.enqueue(
            WORK_QUEUE,
            Tick {
                account: account.into(),
                region: region.into(),
                pipeline: pipeline.into(),
            },
        )
    }

    pub async fn pipeline(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> AwsResult<Option<(PipelineDoc, i64)>> {
        Ok(self
            .platform
            .store
            .get_as::<PipelineDoc>(&ns(account, region, "pipelines"), name)
            .await?)
    }

    pub async fn execution(
        &self,
        account: &str,
        region: &str,
        pipeline: &str,
        id: &str,
    ) -> AwsResult<Option<Loaded>> {
        Ok(self
            .platform
            .store
            .get_as::<Execution>(&ns(account, region, "executions"), &exec_key(pipeline, id))
            .await?)
    }

    /// A paged read of a pipeline's execution documents, in key order.
    fn executions_scan(&self, account: &str, region: &str, pipeline: &str) -> Scan<'_, dyn StateStore> {
        self.platform.store.scan(&ns(account, region, "executions"), &format!("{pipeline}/"))
    }

    /// Every execution of a pipeline, oldest first.
    pub async fn executions(
        &self,
        account: &str,
        region: &str,
        pipeline: &str,
    ) -> AwsResult<Vec<Loaded>> {
        let docs = self.executions_scan(account, region, pipeline).collect().await?;
        let mut out = docs.iter().map(|d| Ok((d.parse::<Execution>()?, d.version))).collect::<Result<Vec<Loaded>, StoreError>>()?;
        out.sort_by_key(|(e, _)| e.seq);
        Ok(out)
    }

    /// The executions of a pipeline that are not over, oldest first. Finished ones are skipped
    /// before they are decoded: a pipeline's history grows, its live set does not.
    pub async fn live_executions(
        &self,
        account: &str,
        region: &str,
        pipeline: &str,
    ) -> AwsResult<Vec<Loaded>> {
        let mut scan = self.executions_scan(account, region, pipeline);
        let mut out = Vec::new();
        while let Some(page) = scan.next_page().await? {
            for d in &page {
                // Only live executions are parsed whole: the status is read from the raw value.
                let st = d.value.get("status").cloned().map(serde_json::from_value::<Status>);
                if matches!(st, Some(Ok(s)) if s.is_live()) {
                    out.push((d.parse::<Execution>()?, d.version));
                }
            }
        }
        out.sort_by_key(|(e, _)| e.seq);
        Ok(out)
    }

    /// Starts an execution: stores it InProgress and queues its first tick. Idempotent on the
    /// client request token.
    pub async fn start_execution(
        &self,
        account: &str,
        region: &str,
        pipe: &PipelineDoc,
        req: StartRequest,
    ) -> AwsResult<String> {
        let decl = &pipe.declaration;
        let token_ns = ns(account, region, "request-tokens");
        let token_key = req
            .client_request_token
            .as_ref()
            .map(|t| format!("{}/{t}", decl.name));
        if let Some(k) = &token_key
            && let Some((id, _)) = self.platform.store.get_as::<String>(&token_ns, k).await?
        {
            return Ok(id);
        }
        // Declared defaults, overridden by the request.
        let mut vars: Vec<(String, String)> = Vec::new();
        for v in decl.variables.iter().flatten() {
            let given = req
                .variables
                .iter()
                .find(|(n, _)| n == &v.name)
                .map(|(_, x)| x.clone());
            match given.or_else(|| v.default_value.clone()) {
                Some(value) => vars.push((v.name.clone(), value)),
                None => {
                    return Err(AwsError::validation(format!(
                        "Variable '{}' has no default value and no value was given",
                        v.name
                    )));
                }
            }
        }
        for (n, _) in &req.variables {
            if !decl.variables.iter().flatten().any(|v| &v.name == n) {
                return Err(AwsError::validation(format!(
                    "Variable '{n}' is not declared in pipeline '{}'",
                    decl.name
                )));
            }
        }
        let id = ids::uuid();
        let seq = self
            .platform
            .store
            .next_counter("codepipeline.execution-seq")
            .await?;
        let t = now();
        let exec = Execution {
            id: id.clone(),
            pipeline: decl.name.clone(),
            pipeline_arn: pipe.arn.clone(),
            pipeline_version: decl.version.unwrap_or(1),
            declaration: decl.clone(),
            seq,
            status: Status::InProgress,
            status_summary: None,
            trigger_type: req.trigger_type.clone(),
            trigger_detail: req.trigger_detail.clone(),
            execution_mode: decl.execution_mode().to_string(),
            start_time: t,
            last_update_time: t,
            client_request_token: req.client_request_token.clone(),
            variables: vars,
            revision_overrides: req.revision_overrides.clone(),
            source_revisions: Vec::new(),
            stages: BTreeMap::new(),
            runs: Vec::new(),
            artifacts: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            stop: None,
        };
        let mut batch = Batch::new()
            .put(
                ns(account, region, "executions"),
                exec_key(&decl.name, &id),
                &exec,
                Expect::Absent,
            )
            .publish_event(events::pipeline(&exec, "STARTED"));
        if let Some(k) = &token_key {
            batch = batch.put(&token_ns, k, &id, Expect::Absent);
        }
        batch = Self::tick_batch(batch, account, region, &decl.name);
        match self.platform.store.commit(batch).await {
            Ok(()) => {
                self.wake.notify_one();
                Ok(id)
            }
            Err(StoreError::Conflict(..)) if token_key.is_some() => {
                // A concurrent request with the same token won.
                let k = token_key.unwrap();
                match self.platform.store.get_as::<String>(&token_ns, &k).await? {
                    Some((id, _)) => Ok(id),
                    None => Err(AwsError::client(
                        "ConflictException",
                        "Concurrent start with the same clientRequestToken",
                    )),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Runs the worker loop until shutdown; also resumes work left by a previous process.
    pub fn spawn_workers(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.recover().await {
                tracing::error!(error = %e, "codepipeline: recovery scan failed");
            }
            me.work_loop().await;
        });
    }

    /// Queues a tick for every pipeline with a live execution (after a restart).
    async fn recover(&self) -> AwsResult<()> {
        let store = &self.platform.store;
        let mut batch = Batch::new();
        for namespace in store.namespaces("codepipeline/").await? {
            let parts: Vec<&str> = namespace.split('/').collect();
            if parts.len() != 4 || parts[3] != "executions" {
                continue;
            }
            let mut seen = BTreeSet::new();
            for e in store.list_all_as::<Execution>(&namespace).await? {
                if !e.is_terminal() && seen.insert(e.pipeline.clone()) {
                    tracing::info!(pipeline = %e.pipeline, execution = %e.id, "codepipeline: resuming execution after restart");
                    batch = Self::tick_batch(batch, parts[1], parts[2], &e.pipeline);
                }
            }
        }
        if !batch.is_empty() {
            self.commit(batch).await?;
        }
        Ok(())
    }

    async fn work_loop(self: Arc<Self>) {
        let shutdown = self.platform.shutdown.clone();
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let items = match self
                .platform
                .store
                .lease(WORK_QUEUE, 256, Duration::from_secs(120))
                .await
            {
                Ok(items) => items,
                Err(e) => {
                    tracing::error!(error = %e, "codepipeline: lease failed");
                    Vec::new()
                }
            };
            if items.is_empty() {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => return,
                }
                continue;
            }
            let mut ticks: BTreeMap<Tick, Vec<i64>> = BTreeMap::new();
            for item in items {
                match serde_json::from_value::<Tick>(item.payload.clone()) {
                    Ok(t) => ticks.entry(t).or_default().push(item.id),
                    Err(_) => {
                        let _ = self.platform.store.ack(item.id).await;
                    }
                }
            }
            for (t, item_ids) in ticks {
                let result = self.tick(&t.account, &t.region, &t.pipeline).await;
                for id in item_ids {
                    let _ = match &result {
                        Ok(()) => self.platform.store.ack(id).await,
                        Err(e) => {
                            tracing::warn!(pipeline = %t.pipeline, error = %e, "codepipeline: tick failed, retrying");
                            self.platform
                                .store
                                .release(id, Duration::from_secs(1))
                                .await
                        }
                    };
                }
            }
        }
    }

    /// Moves every live execution of a pipeline as far as it can go now.
    pub async fn tick(
        self: &Arc<Self>,
        account: &str,
        region: &str,
        pipeline: &str,
    ) -> AwsResult<()> {
        let _guard = self.lock(account, region, pipeline).await;
        let Some((pipe, _)) = self.pipeline(account, region, pipeline).await? else {
            return Ok(());
        };
        let loaded = self.live_executions(account, region, pipeline).await?;
        let mut live: Vec<Work> = loaded
            .into_iter()
            .map(|(exec, version)| Work {
                original: exec.clone(),
                exec,
                version,
                events: Vec::new(),
                starts: Vec::new(),
                stops: Vec::new(),
            })
            .collect();
        if live.is_empty() {
            return Ok(());
        }
        for _ in 0..32 {
            let mut changed = false;
            for w in live.iter_mut() {
                changed |= progress(w);
            }
            changed |= admit(&pipe, &mut live);
            if !changed {
                break;
            }
        }
        let ns_exec = ns(account, region, "executions");
        let mut batch = Batch::new();
        for w in &live {
            if w.exec != w.original {
                let mut e = w.exec.clone();
                e.last_update_time = now();
                batch = batch.put(
                    &ns_exec,
                    exec_key(pipeline, &e.id),
                    &e,
                    Expect::Version(w.version),
                );
                for ev in &w.events {
                    batch = batch.publish_event(ev.clone());
                }
            }
        }
        if !batch.is_empty() {
            self.commit(batch).await?;
        }
        for w in &live {
            for build_id in &w.stops {
                let ctx = crate::actions::role_context(&self.platform, account, region, &w.exec, None);
                if let Ok(builds) = self.platform.hub.builds() {
                    let _ = builds.stop_build(&ctx, build_id).await;
                }
            }
            if w.exec.is_terminal() {
                continue;
            }
            // New runs and, after a restart, runs that lost their task.
            for run in w
                .exec
                .runs
                .iter()
                .filter(|r| r.current && r.status == Status::InProgress)
            {
                let Some(decl) = action_decl(&w.exec, &run.stage, &run.action) else {
                    continue;
                };
                if decl.action_type_id.category == "Approval" {
                    continue;
                }
                let fresh = w.starts.contains(&run.action_execution_id);
                if !self
                    .running
                    .lock()
                    .unwrap()
                    .insert(run.action_execution_id.clone())
                {
                    continue;
                }
                let me = self.clone();
                let exec = w.exec.clone();
                let run = run.clone();
                let decl = decl.clone();
                let (account, region) = (account.to_string(), region.to_string());
                tokio::spawn(async move {
                    // The provider runs in a task of its own so that a panic fails the action
                    // instead of leaving it InProgress.
                    let provider = {
                        let (me, account, region, exec, run) = (
                            me.clone(),
                            account.clone(),
                            region.clone(),
                            exec.clone(),
                            run.clone(),
                        );
                        tokio::spawn(async move {
                            actions::run(&*me, &account, &region, &exec, &run, &decl, !fresh).await
                        })
                    };
                    let outcome = match provider.await {
                        Ok(outcome) => outcome,
                        Err(e) if e.is_panic() => ActionOutcome::failed(format!(
                            "codeyard: the {} action crashed",
                            run.action
                        )),
                        // Cancelled: the server is shutting down; the next start resumes it.
                        Err(_) => {
                            me.running.lock().unwrap().remove(&run.action_execution_id);
                            return;
                        }
                    };
                    if let Err(e) = me
                        .complete(
                            &account,
                            &region,
                            &exec.pipeline,
                            &exec.id,
                            &run.action_execution_id,
                            outcome,
                        )
                        .await
                    {
                        tracing::error!(error = %e, action = %run.action, "codepipeline: recording an action result failed");
                    }
                    me.running.lock().unwrap().remove(&run.action_execution_id);
                });
            }
        }
        Ok(())
    }

    /// Applies `f` to an execution under the pipeline lock and commits it with a tick.
    pub async fn update_execution<T>(
        &self,
        account: &str,
        region: &str,
        pipeline: &str,
        id: &str,
        f: impl FnOnce(&mut Execution, &mut Vec<BusEvent>) -> AwsResult<T>,
    ) -> AwsResult<T> {
        let _guard = self.lock(account, region, pipeline).await;
        let Some((mut exec, version)) = self.execution(account, region, pipeline, id).await? else {
            return Err(crate::errors::execution_not_found(pipeline, id));
        };
        let before = exec.clone();
        let mut evs = Vec::new();
        let out = f(&mut exec, &mut evs)?;
        if exec != before {
            exec.last_update_time = now();
            let mut batch = Batch::new().put(
                ns(account, region, "executions"),
                exec_key(pipeline, id),
                &exec,
                Expect::Version(version),
            );
            for e in evs {
                batch = batch.publish_event(e);
            }
            self.commit(Self::tick_batch(batch, account, region, pipeline))
                .await?;
        }
        Ok(out)
    }

    /// Records an action's result; the next tick moves the execution on.
    pub async fn complete(
        &self,
        account: &str,
        region: &str,
        pipeline: &str,
        exec_id: &str,
        run_id: &str,
        outcome: ActionOutcome,
    ) -> AwsResult<()> {
        let r = self
            .update_execution(account, region, pipeline, exec_id, |e, evs| {
                apply_outcome(e, run_id, outcome, evs);
                Ok(())
            })
            .await;
        match r {
            // The pipeline (and its executions) may have been deleted meanwhile.
            Err(e) if e.code == "PipelineExecutionNotFoundException" => Ok(()),
            other => other,
        }
    }
}

/// The engine as the action providers see it.
#[async_trait::async_trait]
impl ActionHost for Engine {
    fn platform(&self) -> &Platform {
        &self.platform
    }

    fn build_poll(&self) -> Duration {
        self.build_poll
    }

    /// Records an external id for a running action (so a restart can follow the build).
    async fn checkpoint(&self, call: &ActionCall<'_>, external_id: &str, url: Option<String>) -> AwsResult<()> {
        let (ctx, exec) = (&call.ctx, call.exec);
        self.update_execution(&ctx.account, &ctx.region, &exec.pipeline, &exec.id, |e, _| {
            if let Some(r) = e.run_by_id_mut(&call.run.action_execution_id) {
                r.external_execution_id = Some(external_id.to_string());
                r.external_execution_url = url;
            }
            Ok(())
        })
        .await
    }
}
