//! PollForSourceChanges: every [`POLL_INTERVAL`] the source of every polling pipeline is looked
//! at (a CodeCommit branch head, an S3 object's version) and a change starts an execution with
//! trigger `PollForSourceChanges`. The last revision seen is kept in the pipeline document.

use crate::engine::{Engine, StartRequest, ns};
use crate::model::{ActionDeclaration, PipelineDoc};
use codeyard_store::{Expect, StateStoreExt};
use std::sync::Arc;
use std::time::Duration;

pub const POLL_INTERVAL: Duration = Duration::from_secs(15);

/// Whether a source action polls. AWS's default when the key is absent is true for V1
/// pipelines (and off for V2, which use triggers).
pub fn polls(pipeline_type: &str, a: &ActionDeclaration) -> bool {
    if a.action_type_id.category != "Source"
        || !matches!(a.action_type_id.provider.as_str(), "CodeCommit" | "S3")
    {
        return false;
    }
    match a.config("PollForSourceChanges") {
        Some(v) => v.eq_ignore_ascii_case("true"),
        None => pipeline_type == "V1",
    }
}

pub async fn run(engine: Arc<Engine>) {
    let shutdown = engine.platform.shutdown.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(e) = poll_all(&engine).await {
            tracing::warn!(error = %e, "codepipeline: source polling failed");
        }
    }
}

pub async fn poll_all(engine: &Arc<Engine>) -> codeyard_core::AwsResult<()> {
    let store = &engine.platform.store;
    for namespace in store.namespaces("codepipeline/").await? {
        let parts: Vec<&str> = namespace.split('/').collect();
        if parts.len() != 4 || parts[3] != "pipelines" {
            continue;
        }
        let (account, region) = (parts[1].to_string(), parts[2].to_string());
        for doc in store.scan(&namespace, "").collect().await? {
            let Ok(pipe) = doc.parse::<PipelineDoc>() else {
                continue;
            };
            if let Err(e) = poll_pipeline(engine, &account, &region, pipe, doc.version).await {
                tracing::debug!(pipeline = %doc.key, error = %e, "codepipeline: polling a source failed");
            }
        }
    }
    Ok(())
}

async fn poll_pipeline(
    engine: &Arc<Engine>,
    account: &str,
    region: &str,
    mut pipe: PipelineDoc,
    version: i64,
) -> codeyard_core::AwsResult<()> {
    let Some(first) = pipe.declaration.stages.first().cloned() else {
        return Ok(());
    };
    // Polling is CodePipeline acting as the pipeline's role, as every source call is.
    let session = codeyard_core::time::epoch_millis(&codeyard_core::time::now()).to_string();
    let ctx = engine
        .platform
        .internal_context(account, region)
        .acting_as_role(&pipe.declaration.role_arn, &session);
    let mut changed_action = None;
    let mut touched = false;
    for a in first
        .actions
        .iter()
        .filter(|a| polls(pipe.declaration.pipeline_type(), a))
    {
        let revision = match a.action_type_id.provider.as_str() {
            "CodeCommit" => {
                let git = engine.platform.hub.git()?;
                git.resolve_branch(
                    &ctx,
                    a.config("RepositoryName").unwrap_or(""),
                    a.config("BranchName").unwrap_or(""),
                )
                .await?
            }
            _ => {
                let objects = engine.platform.hub.objects()?;
                match objects
                    .head_object(
                        &ctx,
                        a.config("S3Bucket").unwrap_or(""),
                        a.config("S3ObjectKey").unwrap_or(""),
                        None,
                    )
                    .await?
                {
                    Some(info) => info.version_id.unwrap_or(info.etag),
                    None => continue,
                }
            }
        };
        match pipe.polled_revisions.get(&a.name) {
            Some(seen) if *seen == revision => {}
            // No look yet: start only if no execution took (or is about to take) this revision,
            // e.g. the first push to a branch that did not exist when the pipeline was created.
            None => {
                let latest = engine
                    .executions(account, region, &pipe.declaration.name)
                    .await?
                    .pop()
                    .map(|(e, _)| e);
                let covered = latest.is_some_and(|e| {
                    match e.source_revisions.iter().find(|r| r.action_name == a.name) {
                        Some(r) => r.revision_id == revision,
                        None => !e.is_terminal(),
                    }
                });
                pipe.polled_revisions.insert(a.name.clone(), revision);
                touched = true;
                if !covered {
                    changed_action.get_or_insert(a.name.clone());
                }
            }
            Some(_) => {
                pipe.polled_revisions.insert(a.name.clone(), revision);
                touched = true;
                changed_action.get_or_insert(a.name.clone());
            }
        }
    }
    if !touched {
        return Ok(());
    }
    let name = pipe.declaration.name.clone();
    let batch = codeyard_store::Batch::new().put(
        ns(account, region, "pipelines"),
        &name,
        &pipe,
        Expect::Version(version),
    );
    engine.commit(batch).await?;
    if let Some(action) = changed_action {
        tracing::info!(pipeline = %name, action = %action, "codepipeline: source changed, starting an execution");
        engine
            .start_execution(
                account,
                region,
                &pipe,
                StartRequest {
                    trigger_type: "PollForSourceChanges".into(),
                    trigger_detail: action,
                    ..Default::default()
                },
            )
            .await?;
    }
    Ok(())
}
