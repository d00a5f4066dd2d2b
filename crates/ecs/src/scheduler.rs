//! The service scheduler: once a second (and at once after a change) it compares what is
//! wanted with what is there, as ECS's scheduler does.
//!
//! * Tasks: a PROVISIONING task is launched, one whose desiredStatus is STOPPED is stopped.
//! * Services: the PRIMARY deployment gets tasks up to the desired count (an exited task is
//!   replaced); once all of them have run for 3 s, the older deployments' tasks are stopped and those
//!   deployments removed, and the rollout is COMPLETED ("has reached a steady state"). Tasks of
//!   the primary deployment that fail to start or exit count as failed; at the circuit
//!   breaker's threshold (half the desired count, at least 3, at most 200) the rollout is
//!   FAILED and no more tasks are started for it (the older deployment keeps serving).
//! * A DRAINING service (DeleteService) has its tasks stopped, then becomes INACTIVE.

use crate::domain::{Ecs, is_stopped, mark_stopping, now, push_event};
use crate::records::Scope;
use crate::records::*;
use crate::runtime::Runtime;
use codeyard_api::ecs::*;
use codeyard_store::{Batch, Expect, StateStoreExt};
use std::sync::Arc;
use std::time::Duration;

pub const TICK: Duration = Duration::from_secs(1);
/// How long a deployment's tasks must have run before its rollout is COMPLETED.
pub const STABLE_AFTER: chrono::Duration = chrono::Duration::seconds(3);

pub async fn run(rt: Arc<Runtime>) {
    rt.adopt().await;
    loop {
        if let Err(e) = tick(&rt).await {
            tracing::warn!(error = %e, "ecs: scheduling failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = rt.ecs.wake.notified() => {}
            _ = rt.shutdown.cancelled() => return,
        }
    }
}

async fn tick(rt: &Arc<Runtime>) -> codeyard_core::AwsResult<()> {
    let namespaces = rt.ecs.store.namespaces("ecs/").await?;
    for ns in &namespaces {
        let Some((s, kind)) = Scope::of_namespace(ns) else {
            continue;
        };
        if kind == "services" {
            for d in rt.ecs.store.scan(ns, "").collect().await? {
                let Ok(svc) = d.parse::<Service>() else {
                    continue;
                };
                if is(&svc.status, ResourceStatus::Inactive) {
                    continue;
                }
                match reconcile_service(&rt.ecs, &s, &d.key, svc, d.version).await {
                    Ok(Some(waiting)) => rt.prefetch(s.clone(), waiting),
                    Ok(None) => {}
                    Err(e) => tracing::debug!(service = %d.key, error = %e, "ecs: service reconcile"),
                }
            }
        }
    }
    for ns in &namespaces {
        let Some((s, kind)) = Scope::of_namespace(ns) else {
            continue;
        };
        if kind != "tasks" {
            continue;
        }
        for d in rt.ecs.store.scan(ns, "").collect().await? {
            let Ok(t) = d.parse::<Task>() else { continue };
            if is_stopped(&t) {
                continue;
            }
            let id = format!("{ns}|{}", d.key);
            if rt.launching.lock().unwrap().contains(&id) {
                continue;
            }
            if is(&t.desired_status, TaskStatus::Stopped) {
                if rt.stopping.lock().unwrap().insert(id) {
                    tokio::spawn(rt.clone().stop(s.clone(), d.key.clone()));
                }
            } else if is(&t.last_status, TaskStatus::Provisioning)
                && rt.launching.lock().unwrap().insert(id)
            {
                tokio::spawn(rt.clone().launch(s.clone(), d.key.clone()));
            }
        }
    }
    Ok(())
}

fn failed(t: &Task) -> bool {
    matches!(
        t.stop_code,
        Some(TaskStopCode::TaskFailedToStart) | Some(TaskStopCode::EssentialContainerExited)
    )
}

fn threshold(desired: i32) -> usize {
    (((desired as f64) / 2.0).ceil() as usize).clamp(3, 200)
}

/// One pass over one service; writes the service (conditional on the version read) and the
/// tasks it starts or stops in one commit. Answers the task definition whose tasks wait for
/// older tasks to free their host ports (its images can be pulled meanwhile).
async fn reconcile_service(
    ecs: &Ecs,
    s: &Scope,
    key: &str,
    mut svc: Service,
    version: i64,
) -> codeyard_core::AwsResult<Option<String>> {
    let (cluster, name) = key.split_once('/').unwrap_or(("default", key));
    let group = format!("service:{name}");
    let docs = ecs
        .store
        .scan(&s.tasks(), &format!("{cluster}/"))
        .collect()
        .await?;
    let versions: std::collections::HashMap<String, i64> =
        docs.iter().map(|d| (d.key.clone(), d.version)).collect();
    let tasks: Vec<(String, Task)> = docs
        .into_iter()
        .filter_map(|d| d.parse::<Task>().ok().map(|t| (d.key, t)))
        .filter(|(_, t)| t.group.as_deref() == Some(group.as_str()))
        .collect();
    let before = serde_json::to_string(&svc).unwrap_or_default();
    let mut batch = Batch::new();
    let stop = |batch: Batch, k: &str, t: &Task, reason: String| -> Batch {
        let mut t = t.clone();
        mark_stopping(&mut t, TaskStopCode::ServiceSchedulerInitiated, reason);
        t.version = Some(t.version.unwrap_or(1) + 1);
        let expect = versions
            .get(k)
            .map(|v| Expect::Version(*v))
            .unwrap_or(Expect::Any);
        batch.put(s.tasks(), k.to_string(), &t, expect)
    };
    let live = |t: &Task| !is_stopped(t) && is(&t.desired_status, TaskStatus::Running);
    let draining = is(&svc.status, ResourceStatus::Draining);
    let desired = if draining {
        0
    } else {
        svc.desired_count.unwrap_or(0)
    };
    let mut deployments = svc.deployments.clone().unwrap_or_default();
    let primary_id = deployments
        .first()
        .and_then(|d| d.id.clone())
        .unwrap_or_default();
    let td_arn = deployments
        .first()
        .and_then(|d| d.task_definition.clone())
        .or(svc.task_definition.clone())
        .unwrap_or_default();
    let mut started = Vec::new();
    let mut waiting = None;
    if draining {
        for (k, t) in tasks.iter().filter(|(_, t)| live(t)) {
            batch = stop(
                batch,
                k,
                t,
                format!("Scaling activity initiated by (service {name})"),
            );
        }
        if tasks.iter().all(|(_, t)| is_stopped(t)) {
            svc.status = ResourceStatus::Inactive.field();
            for d in deployments.iter_mut() {
                d.status = ResourceStatus::Inactive.field();
            }
        }
    } else if let Some(primary) = deployments.first_mut() {
        let mine: Vec<&(String, Task)> = tasks
            .iter()
            .filter(|(_, t)| t.started_by.as_deref() == Some(primary_id.as_str()))
            .collect();
        let live_mine: Vec<&&(String, Task)> = mine.iter().filter(|(_, t)| live(t)).collect();
        let failed_mine: Vec<&&(String, Task)> = mine
            .iter()
            .filter(|(_, t)| is_stopped(t) && failed(t))
            .collect();
        primary.failed_tasks = Some(failed_mine.len() as i32);
        primary.desired_count = Some(desired);
        let breaker_tripped = failed_mine.len() >= threshold(desired)
            && primary.rollout_state == Some(DeploymentRolloutState::InProgress);
        if breaker_tripped {
            let reason = "ECS deployment circuit breaker: tasks failed to start.".to_string();
            primary.rollout_state = Some(DeploymentRolloutState::Failed);
            primary.rollout_state_reason = Some(reason);
            primary.updated_at = Some(now());
            let last = failed_mine
                .last()
                .map(|(_, t)| t.stopped_reason.clone().unwrap_or_default())
                .unwrap_or_default();
            let msg = format!(
                "(service {name}) (deployment {primary_id}) deployment failed: tasks failed to start. {last}"
            );
            svc.events
                .get_or_insert_with(Vec::new)
                .insert(0, crate::domain::service_event(msg));
        }
        let failed_rollout = primary.rollout_state == Some(DeploymentRolloutState::Failed);
        // Replacements of failed tasks back off (1 s, 2 s, 4 s ... 30 s), as ECS throttles them.
        let last_failure = failed_mine.iter().filter_map(|(_, t)| t.stopped_at).max();
        let backoff =
            chrono::Duration::seconds(1i64 << failed_mine.len().clamp(1, 6).saturating_sub(1))
                .min(chrono::Duration::seconds(30));
        let throttled = last_failure.is_some_and(|at| codeyard_core::time::now() - at.0 < backoff);
        let mut wanted = !failed_rollout && !throttled && (live_mine.len() as i32) < desired;
        if wanted {
            // Every task is on this one host: when the task definition publishes fixed host
            // ports, older deployments' tasks holding them stop first (as ECS does on a single
            // container instance with minimumHealthyPercent allowing it).
            let (td, _) = ecs
                .task_definition(s, &td_arn)
                .await
                .map_err(codeyard_core::AwsError::from)?;
            if fixed_host_ports(&td.definition) {
                let older: Vec<&(String, Task)> = tasks
                    .iter()
                    .filter(|(_, t)| {
                        !is_stopped(t) && t.started_by.as_deref() != Some(primary_id.as_str())
                    })
                    .collect();
                if !older.is_empty() {
                    let need = (desired - live_mine.len() as i32).max(0) as usize;
                    for (k, t) in older.iter().filter(|(_, t)| live(t)).take(need) {
                        batch = stop(
                            batch,
                            k,
                            t,
                            format!("Scaling activity initiated by (deployment {primary_id})"),
                        );
                    }
                    wanted = false;
                    waiting = Some(td_arn.clone());
                }
            }
        }
        if wanted {
            tracing::debug!(service = %name, deployment = %primary_id, live = live_mine.len(), all = tasks.len(),
                states = ?tasks.iter().map(|(_, t)| (t.started_by.clone(), t.last_status.clone(), t.desired_status.clone(), t.stopped_reason.clone())).collect::<Vec<_>>(),
                "ecs: starting tasks");
            let (td, _) = ecs
                .task_definition(s, &td_arn)
                .await
                .map_err(codeyard_core::AwsError::from)?;
            let tags = if svc.propagate_tags == Some(PropagateTags::Service) {
                svc.tags.clone().unwrap_or_default()
            } else {
                Vec::new()
            };
            let launch = TaskLaunch {
                group: group.clone(),
                started_by: Some(primary_id.clone()),
                launch_type: primary.launch_type.clone(),
                overrides: None,
                tags,
            };
            for _ in live_mine.len() as i32..desired {
                let (b, t) = Ecs::put_new_task(batch, s, cluster, &td.definition, &launch);
                batch = b;
                started.push(task_id(t.task_arn.as_deref().unwrap_or_default()));
            }
        }
        if (live_mine.len() as i32) > desired {
            let extra = live_mine.len() - desired.max(0) as usize;
            for (k, t) in live_mine.iter().rev().take(extra) {
                batch = stop(
                    batch,
                    k,
                    t,
                    format!("Scaling activity initiated by (deployment {primary_id})"),
                );
            }
        }
        let running = live_mine
            .iter()
            .filter(|(_, t)| is(&t.last_status, TaskStatus::Running))
            .count() as i32;
        primary.running_count = Some(running.min(desired));
        primary.pending_count =
            Some((live_mine.len() as i32 - running).max(0) + started.len() as i32);
        // Steady: every task of the deployment has been RUNNING for STABLE_AFTER (a container
        // that exits at once never makes a deployment COMPLETED).
        let settled = live_mine.iter().all(|(_, t)| {
            is(&t.last_status, TaskStatus::Running)
                && t.started_at
                    .is_some_and(|at| codeyard_core::time::now() - at.0 >= STABLE_AFTER)
        });
        let steady = running >= desired && (live_mine.len() as i32) == desired && settled;
        // Older deployments: their tasks stop once the primary runs fully, and they are dropped
        // when their tasks are gone. A FAILED rollout leaves the deployment before it serving
        // (its tasks are kept at the desired count).
        let primary_done = steady;
        let mut kept = vec![primary.clone()];
        for (i, d) in deployments.iter().skip(1).enumerate() {
            let id = d.id.clone().unwrap_or_default();
            let theirs: Vec<&(String, Task)> = tasks
                .iter()
                .filter(|(_, t)| t.started_by.as_deref() == Some(id.as_str()) && !is_stopped(t))
                .collect();
            if primary_done {
                for (k, t) in theirs.iter().filter(|(_, t)| live(t)) {
                    batch = stop(
                        batch,
                        k,
                        t,
                        format!("Scaling activity initiated by (deployment {primary_id})"),
                    );
                }
            }
            let live_theirs = theirs.iter().filter(|(_, t)| live(t)).count() as i32;
            let mut restarted = 0;
            if failed_rollout && i == 0 && live_theirs < desired {
                let old_td = d.task_definition.clone().unwrap_or_default();
                let (td, _) = ecs
                    .task_definition(s, &old_td)
                    .await
                    .map_err(codeyard_core::AwsError::from)?;
                let launch = TaskLaunch {
                    group: group.clone(),
                    started_by: Some(id.clone()),
                    launch_type: d.launch_type.clone(),
                    ..Default::default()
                };
                for _ in live_theirs..desired {
                    let (b, t) = Ecs::put_new_task(batch, s, cluster, &td.definition, &launch);
                    batch = b;
                    started.push(task_id(t.task_arn.as_deref().unwrap_or_default()));
                    restarted += 1;
                }
            }
            if !primary_done || !theirs.is_empty() {
                let mut d = d.clone();
                let r = theirs
                    .iter()
                    .filter(|(_, t)| is(&t.last_status, TaskStatus::Running))
                    .count() as i32;
                d.running_count = Some(r);
                d.pending_count = Some(theirs.len() as i32 - r + restarted);
                kept.push(d);
            }
        }
        if primary_done
            && kept.len() == 1
            && kept[0].rollout_state == Some(DeploymentRolloutState::InProgress)
        {
            kept[0].rollout_state = Some(DeploymentRolloutState::Completed);
            kept[0].rollout_state_reason = Some(format!("ECS deployment {primary_id} completed."));
            kept[0].updated_at = Some(now());
            push_event(
                &mut svc,
                format!("(service {name}) (deployment {primary_id}) deployment completed."),
            );
            push_event(
                &mut svc,
                format!("(service {name}) has reached a steady state."),
            );
        }
        deployments = kept;
    }
    if !started.is_empty() {
        push_event(
            &mut svc,
            format!(
                "(service {name}) has started {} tasks: {}.",
                started.len(),
                started
                    .iter()
                    .map(|t| format!("(task {t})"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        );
    }
    let all_live: Vec<&Task> = tasks
        .iter()
        .map(|(_, t)| t)
        .filter(|t| !is_stopped(t))
        .collect();
    svc.running_count = Some(
        all_live
            .iter()
            .filter(|t| is(&t.last_status, TaskStatus::Running))
            .count() as i32,
    );
    svc.pending_count = Some(
        all_live
            .iter()
            .filter(|t| !is(&t.last_status, TaskStatus::Running))
            .count() as i32
            + started.len() as i32,
    );
    svc.deployments = Some(deployments);
    let after = serde_json::to_string(&svc).unwrap_or_default();
    if after == before && batch.is_empty() {
        return Ok(waiting);
    }
    batch = batch.put(
        s.services(),
        key.to_string(),
        &svc,
        Expect::Version(version),
    );
    match ecs.store.commit(batch).await {
        Ok(()) => {
            if !started.is_empty() {
                ecs.wake.notify_one();
            }
            Ok(waiting)
        }
        // The service changed meanwhile (UpdateService): the next tick looks again.
        Err(codeyard_store::StoreError::Conflict(..)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_circuit_breaker_threshold_is_half_the_desired_count_within_3_and_200() {
        assert_eq!(super::threshold(1), 3);
        assert_eq!(super::threshold(10), 5);
        assert_eq!(super::threshold(1000), 200);
    }
}

/// Whether the task's containers publish fixed ports on the host (awsvpc and host mode: the
/// containerPort; bridge: a hostPort other than 0).
fn fixed_host_ports(td: &TaskDefinition) -> bool {
    let mode = td.network_mode.clone().unwrap_or(NetworkMode::Bridge);
    td.container_definitions
        .iter()
        .flatten()
        .flat_map(|c| c.port_mappings.iter().flatten())
        .any(|p| match mode {
            NetworkMode::Awsvpc | NetworkMode::Host => p.container_port.is_some(),
            _ => p.host_port.unwrap_or(0) > 0,
        })
}
