//! The decisions of a tick, as functions over execution documents (no store, no tasks):
//! record an action's outcome, move an execution inside its stage, admit waiting executions
//! into stages by execution mode, and the state changes of stop and retry. [`super::Engine`]
//! loads the documents, calls these, and commits what changed.

use crate::actions::ActionOutcome;
use crate::events;
use crate::model::{
    ActionDeclaration, ActionRun, Execution, PipelineDoc, ProducedArtifact, Status, StopRequest,
};
use crate::variables;
use codeyard_core::hub::{ArtifactLocation, BusEvent};
use codeyard_core::time::now;
use codeyard_core::{AwsError, AwsResult, ids};
use std::collections::{BTreeMap, HashSet};

pub(super) fn action_decl<'a>(
    exec: &'a Execution,
    stage: &str,
    action: &str,
) -> Option<&'a ActionDeclaration> {
    exec.declaration
        .stages
        .iter()
        .find(|s| s.name == stage)?
        .actions
        .iter()
        .find(|a| a.name == action)
}

pub fn apply_outcome(
    e: &mut Execution,
    run_id: &str,
    outcome: ActionOutcome,
    evs: &mut Vec<BusEvent>,
) {
    let Some(run) = e.run_by_id_mut(run_id) else {
        return;
    };
    if run.status != Status::InProgress {
        return; // abandoned or already recorded
    }
    let t = now();
    run.status = if outcome.succeeded {
        Status::Succeeded
    } else {
        Status::Failed
    };
    run.last_update_time = t;
    run.summary = outcome.summary.clone().or(run.summary.take());
    if let Some(id) = outcome.external_id.clone() {
        run.external_execution_id = Some(id);
    }
    if let Some(u) = outcome.external_url.clone() {
        run.external_execution_url = Some(u);
    }
    if let Some((code, msg)) = outcome.error.clone() {
        run.error_code = Some(code);
        run.error_message = Some(msg);
    }
    run.output_variables = outcome.output_variables.clone();
    let run = run.clone();
    let Some(decl) = action_decl(e, &run.stage, &run.action).cloned() else {
        return;
    };
    if outcome.succeeded {
        for loc in &run.output_artifacts {
            let (revision, revision_summary, revision_url) =
                outcome.artifact_revision.clone().unwrap_or_default();
            e.artifacts.insert(
                loc.name.clone(),
                ProducedArtifact {
                    location: loc.clone(),
                    revision: (!revision.is_empty()).then_some(revision),
                    revision_summary,
                    revision_url,
                    created: t,
                },
            );
        }
        if let Some(ns) = &decl.namespace {
            e.namespaces
                .insert(ns.clone(), outcome.output_variables.clone());
        }
        if let Some(sr) = outcome.source_revision {
            e.source_revisions
                .retain(|s| s.action_name != sr.action_name);
            e.source_revisions.push(sr);
        }
    }
    let result = serde_json::json!({
        "external-execution-id": run.external_execution_id,
        "external-execution-summary": run.summary.clone().or(run.error_message.clone()),
        "external-execution-url": run.external_execution_url,
    });
    evs.push(events::action(
        e,
        &run.stage,
        &decl,
        if outcome.succeeded {
            "SUCCEEDED"
        } else {
            "FAILED"
        },
        Some(result),
    ));
}

/// One live execution being moved by a tick.
pub(super) struct Work {
    pub(super) original: Execution,
    pub(super) exec: Execution,
    pub(super) version: i64,
    pub(super) events: Vec<BusEvent>,
    /// Action runs created by this tick.
    pub(super) starts: Vec<String>,
    /// Builds to stop (abandoned actions).
    pub(super) stops: Vec<String>,
}

fn set_exec_status(w: &mut Work, st: Status, summary: Option<String>, event_state: &str) {
    w.exec.status = st;
    if summary.is_some() {
        w.exec.status_summary = summary;
    }
    w.events.push(events::pipeline(&w.exec, event_state));
}

fn set_stage_status(w: &mut Work, stage: &str, st: Status, event_state: &str) {
    let entry = w.exec.stages.entry(stage.to_string()).or_default();
    entry.status = Some(st);
    w.events.push(events::stage(&w.exec, stage, event_state));
}

/// Moves one execution inside the stage it is in. Returns whether anything changed.
pub(super) fn progress(w: &mut Work) -> bool {
    if w.exec.is_terminal() {
        return false;
    }
    let Some(fi) = w.exec.frontier() else {
        set_exec_status(w, Status::Succeeded, None, "SUCCEEDED");
        return true;
    };
    let stage = w.exec.declaration.stages[fi].clone();
    let srun = w.exec.stage(&stage.name);
    let Some(st) = srun.status.clone() else {
        // Waiting to enter: a stop request ends it here.
        if w.exec.stop.is_some() {
            set_exec_status(w, Status::Stopped, None, "STOPPED");
            return true;
        }
        return false;
    };
    if st != Status::InProgress && st != Status::Stopping {
        // Failed or Stopped stage of a live execution cannot happen; end it rather than spin.
        set_exec_status(
            w,
            Status::Failed,
            Some(format!("Stage {} is {st}", stage.name)),
            "FAILED",
        );
        return true;
    }
    let mut changed = false;
    if let Some(stop) = w.exec.stop.clone() {
        let mut in_progress = 0;
        for r in w
            .exec
            .runs
            .iter_mut()
            .filter(|r| r.current && r.stage == stage.name && r.status == Status::InProgress)
        {
            if stop.abandon {
                r.status = Status::Abandoned;
                r.last_update_time = now();
                r.summary = Some(
                    stop.reason
                        .clone()
                        .unwrap_or_else(|| "Abandoned by StopPipelineExecution".into()),
                );
                if let Some(id) = &r.external_execution_id
                    && stage
                        .actions
                        .iter()
                        .any(|a| a.name == r.action && a.action_type_id.provider == "CodeBuild")
                {
                    w.stops.push(id.clone());
                }
                changed = true;
            } else {
                in_progress += 1;
            }
        }
        if stop.abandon {
            let abandoned: Vec<ActionRun> = w
                .exec
                .runs
                .iter()
                .filter(|r| r.current && r.stage == stage.name && r.status == Status::Abandoned)
                .cloned()
                .collect();
            for r in abandoned.iter().filter(|r| {
                w.original.runs.iter().any(|o| {
                    o.action_execution_id == r.action_execution_id && o.status == Status::InProgress
                })
            }) {
                if let Some(d) = stage.actions.iter().find(|a| a.name == r.action) {
                    w.events
                        .push(events::action(&w.exec, &stage.name, d, "ABANDONED", None));
                }
            }
        }
        if in_progress == 0 {
            set_stage_status(w, &stage.name, Status::Stopped, "STOPPED");
            set_exec_status(w, Status::Stopped, None, "STOPPED");
            return true;
        }
        if st != Status::Stopping {
            w.exec.stages.get_mut(&stage.name).unwrap().status = Some(Status::Stopping);
            changed = true;
        }
        return changed;
    }
    let mut orders: Vec<i64> = stage.actions.iter().map(|a| a.run_order).collect();
    orders.sort();
    orders.dedup();
    for order in orders {
        let group: Vec<&ActionDeclaration> = stage
            .actions
            .iter()
            .filter(|a| a.run_order == order)
            .collect();
        for a in &group {
            if w.exec.current_run(&stage.name, &a.name).is_none() {
                let run = new_run(&w.exec, &stage.name, a);
                if run.status == Status::InProgress {
                    w.events
                        .push(events::action(&w.exec, &stage.name, a, "STARTED", None));
                    w.starts.push(run.action_execution_id.clone());
                } else {
                    w.events
                        .push(events::action(&w.exec, &stage.name, a, "FAILED", None));
                }
                w.exec.runs.push(run);
                changed = true;
            }
        }
        let runs: Vec<&ActionRun> = group
            .iter()
            .filter_map(|a| w.exec.current_run(&stage.name, &a.name))
            .collect();
        if runs.iter().any(|r| r.status == Status::InProgress) {
            return changed;
        }
        if let Some(failed) = runs.iter().find(|r| r.status != Status::Succeeded) {
            let summary = format!(
                "Action {} in stage {} failed: {}",
                failed.action,
                stage.name,
                failed
                    .error_message
                    .clone()
                    .or(failed.summary.clone())
                    .unwrap_or_else(|| failed.status.to_string())
            );
            set_stage_status(w, &stage.name, Status::Failed, "FAILED");
            set_exec_status(w, Status::Failed, Some(summary), "FAILED");
            return true;
        }
    }
    set_stage_status(w, &stage.name, Status::Succeeded, "SUCCEEDED");
    if w.exec.frontier().is_none() {
        set_exec_status(w, Status::Succeeded, None, "SUCCEEDED");
    }
    true
}

/// Decides which waiting executions enter their next stage (execution modes, transitions).
pub(super) fn admit(pipe: &PipelineDoc, live: &mut [Work]) -> bool {
    let mut changed = false;
    // Stages occupied by an execution now.
    let mut occupied: HashSet<String> = HashSet::new();
    for w in live.iter() {
        if w.exec.is_terminal() {
            continue;
        }
        if let Some(fi) = w.exec.frontier() {
            let name = &w.exec.declaration.stages[fi].name;
            if matches!(
                w.exec.stage(name).status,
                Some(Status::InProgress) | Some(Status::Stopping)
            ) {
                occupied.insert(name.clone());
            }
        }
    }
    // Waiting executions by the stage they wait for, oldest first (live is sorted by seq).
    let mut waiting: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, w) in live.iter().enumerate() {
        if w.exec.is_terminal() || w.exec.stop.is_some() {
            continue;
        }
        if let Some(fi) = w.exec.frontier() {
            let name = &w.exec.declaration.stages[fi].name;
            if w.exec.stage(name).status.is_none() {
                waiting.entry(name.clone()).or_default().push(i);
            }
        }
    }
    for (stage, idxs) in waiting {
        let mode = live[*idxs.last().unwrap()].exec.execution_mode.clone();
        let first_stage = pipe
            .declaration
            .stages
            .first()
            .is_some_and(|s| s.name == stage);
        let open = first_stage || pipe.transition_enabled(&stage);
        match mode.as_str() {
            "PARALLEL" => {
                if open {
                    for i in idxs {
                        enter(&mut live[i], &stage);
                        changed = true;
                    }
                }
            }
            "QUEUED" => {
                if open && !occupied.contains(&stage) {
                    enter(&mut live[idxs[0]], &stage);
                    changed = true;
                }
            }
            _ => {
                let (newest, older) = idxs.split_last().unwrap();
                for &i in older {
                    let w = &mut live[i];
                    set_exec_status(
                        w,
                        Status::Superseded,
                        Some("This execution was superseded by a newer one waiting for the same stage".into()),
                        "SUPERSEDED",
                    );
                    changed = true;
                }
                if open && !occupied.contains(&stage) {
                    enter(&mut live[*newest], &stage);
                    changed = true;
                }
            }
        }
    }
    changed
}

fn enter(w: &mut Work, stage: &str) {
    let s = w.exec.stages.entry(stage.to_string()).or_default();
    s.status = Some(Status::InProgress);
    s.entered_at = Some(now());
    w.events.push(events::stage(&w.exec, stage, "STARTED"));
}

/// Prepares a run of an action: input and output artifact locations, resolved configuration.
/// A configuration that does not resolve gives a run that failed at once.
fn new_run(exec: &Execution, stage: &str, a: &ActionDeclaration) -> ActionRun {
    let t = now();
    let mut run = ActionRun {
        action_execution_id: ids::uuid(),
        stage: stage.to_string(),
        action: a.name.clone(),
        current: true,
        status: Status::InProgress,
        start_time: t,
        last_update_time: t,
        input_artifacts: Vec::new(),
        output_artifacts: Vec::new(),
        resolved_configuration: BTreeMap::new(),
        external_execution_id: None,
        external_execution_url: None,
        summary: None,
        error_code: None,
        error_message: None,
        output_variables: BTreeMap::new(),
        token: None,
    };
    let fail = |mut run: ActionRun, msg: String| {
        run.status = Status::Failed;
        run.error_code = Some("JobFailed".into());
        run.error_message = Some(msg);
        run
    };
    for i in &a.input_artifacts {
        match exec.artifacts.get(&i.name) {
            Some(p) => run.input_artifacts.push(p.location.clone()),
            None => {
                return fail(
                    run,
                    format!(
                        "Input artifact {} was not produced in this execution",
                        i.name
                    ),
                );
            }
        }
    }
    let region = exec.pipeline_arn.split(':').nth(3).unwrap_or("");
    let Some(store) = exec
        .declaration
        .artifact_store_in(a.region.as_deref().unwrap_or(region))
    else {
        return fail(run, "The pipeline has no artifact store".into());
    };
    for o in &a.output_artifacts {
        run.output_artifacts.push(ArtifactLocation {
            name: o.name.clone(),
            bucket: store.location.clone(),
            key: artifact_key(&exec.pipeline, &o.name),
            kms_key_id: store.encryption_key.as_ref().map(|k| k.id.clone()),
        });
    }
    let lookup = |namespace: &str, var: &str| -> Option<String> {
        match namespace {
            "codepipeline" if var == "PipelineExecutionId" => Some(exec.id.clone()),
            "variables" => exec
                .variables
                .iter()
                .find(|(n, _)| n == var)
                .map(|(_, v)| v.clone()),
            other => exec.namespaces.get(other).and_then(|m| m.get(var)).cloned(),
        }
    };
    match variables::resolve_map(&a.configuration.clone().unwrap_or_default(), &lookup) {
        Ok(c) => run.resolved_configuration = c,
        Err(msg) => return fail(run, msg),
    }
    if a.action_type_id.category == "Approval" {
        run.token = Some(ids::uuid());
    }
    run
}

/// `<pipeline name, 20 chars>/<artifact name, 10 chars>/<7 random characters>`, as AWS lays
/// artifacts out in the artifact bucket.
pub fn artifact_key(pipeline: &str, artifact: &str) -> String {
    let p: String = pipeline.chars().take(20).collect();
    let a: String = artifact.chars().take(10).collect();
    format!("{p}/{a}/{}", ids::alnum(7))
}

/// Marks an execution for a stop (API side of StopPipelineExecution).
pub fn request_stop(
    e: &mut Execution,
    abandon: bool,
    reason: Option<String>,
    evs: &mut Vec<BusEvent>,
) -> AwsResult<()> {
    match e.status {
        Status::InProgress => {}
        Status::Stopping if abandon => {}
        Status::Stopping => {
            return Err(AwsError::client(
                "DuplicatedStopRequestException",
                format!("Execution {} is already being stopped", e.id),
            ));
        }
        other => {
            return Err(AwsError::client(
                "PipelineExecutionNotStoppableException",
                format!("Execution {} is {other} and cannot be stopped", e.id),
            ));
        }
    }
    e.stop = Some(StopRequest { abandon, reason });
    e.status = Status::Stopping;
    evs.push(events::pipeline(e, "STOPPING"));
    Ok(())
}

/// Re-opens a failed or stopped stage (API side of RetryStageExecution).
pub fn retry_stage(
    e: &mut Execution,
    stage: &str,
    all_actions: bool,
    evs: &mut Vec<BusEvent>,
) -> AwsResult<()> {
    let Some(fi) = e.declaration.stages.iter().position(|s| s.name == stage) else {
        return Err(AwsError::client(
            "StageNotFoundException",
            format!(
                "Stage {stage} does not exist in pipeline {} version {}",
                e.pipeline, e.pipeline_version
            ),
        ));
    };
    let st = e.stage(stage).status;
    let retryable = matches!(e.status, Status::Failed | Status::Stopped)
        && matches!(st, Some(Status::Failed) | Some(Status::Stopped))
        && e.frontier() == Some(fi);
    if !retryable {
        return Err(AwsError::client(
            "StageNotRetryableException",
            format!(
                "Stage {stage} of execution {} cannot be retried: it is not failed or stopped",
                e.id
            ),
        ));
    }
    for r in e.runs.iter_mut().filter(|r| r.current && r.stage == stage) {
        if all_actions || r.status != Status::Succeeded {
            r.current = false;
        }
    }
    e.stop = None;
    e.status = Status::InProgress;
    e.status_summary = None;
    let s = e.stages.entry(stage.to_string()).or_default();
    s.status = Some(Status::InProgress);
    s.manual_retries += 1;
    evs.push(events::pipeline(e, "RESUMED"));
    evs.push(events::stage(e, stage, "RESUMED"));
    Ok(())
}
