//! The domain's records as the model's output shapes: one conversion per record, used by
//! every operation that answers it.

use super::{reshape, ts};
use crate::model::{ActionDeclaration, ActionRun, Execution, PipelineDoc, SourceRevision, Status, Transition};
use codeyard_api::codepipeline as cp;
use codeyard_core::AwsResult;
use codeyard_core::hub::ArtifactLocation;

impl From<&PipelineDoc> for cp::PipelineSummary {
    fn from(d: &PipelineDoc) -> Self {
        cp::PipelineSummary {
            name: Some(d.declaration.name.clone()),
            version: Some(d.declaration.version.unwrap_or(1) as i32),
            pipeline_type: Some(cp::PipelineType::from(d.declaration.pipeline_type())),
            execution_mode: Some(cp::ExecutionMode::from(d.declaration.execution_mode())),
            created: Some(ts(&d.created)),
            updated: Some(ts(&d.updated)),
        }
    }
}

impl From<&PipelineDoc> for cp::PipelineMetadata {
    fn from(d: &PipelineDoc) -> Self {
        cp::PipelineMetadata {
            pipeline_arn: Some(d.arn.clone()),
            created: Some(ts(&d.created)),
            updated: Some(ts(&d.updated)),
            polling_disabled_at: None,
        }
    }
}

impl From<&Execution> for cp::PipelineExecution {
    fn from(e: &Execution) -> Self {
        let artifact_revisions = e
            .artifacts
            .iter()
            .filter(|(_, a)| a.revision.is_some())
            .map(|(name, a)| cp::ArtifactRevision {
                name: Some(name.clone()),
                revision_id: a.revision.clone(),
                revision_change_identifier: a.revision.as_deref().map(change_id),
                revision_summary: a.revision_summary.clone(),
                created: Some(ts(&a.created)),
                revision_url: a.revision_url.clone(),
            })
            .collect();
        let variables = e
            .variables
            .iter()
            .map(|(n, v)| cp::ResolvedPipelineVariable { name: Some(n.clone()), resolved_value: Some(v.clone()) })
            .collect();
        cp::PipelineExecution {
            pipeline_name: Some(e.pipeline.clone()),
            pipeline_version: Some(e.pipeline_version as i32),
            pipeline_execution_id: Some(e.id.clone()),
            status: Some(cp::PipelineExecutionStatus::from(e.status.as_str())),
            status_summary: e.status_summary.clone(),
            artifact_revisions: Some(artifact_revisions),
            variables: Some(variables),
            trigger: Some(e.into()),
            execution_mode: Some(cp::ExecutionMode::from(e.execution_mode.as_str())),
            execution_type: Some(standard()),
            rollback_metadata: None,
        }
    }
}

impl From<&Execution> for cp::PipelineExecutionSummary {
    fn from(e: &Execution) -> Self {
        cp::PipelineExecutionSummary {
            pipeline_execution_id: Some(e.id.clone()),
            status: Some(cp::PipelineExecutionStatus::from(e.status.as_str())),
            status_summary: e.status_summary.clone(),
            start_time: Some(ts(&e.start_time)),
            last_update_time: Some(ts(&e.last_update_time)),
            source_revisions: Some(e.source_revisions.iter().map(Into::into).collect()),
            trigger: Some(e.into()),
            stop_trigger: e
                .stop
                .as_ref()
                .map(|s| cp::StopExecutionTrigger { reason: Some(s.reason.clone().unwrap_or_default()) }),
            execution_mode: Some(cp::ExecutionMode::from(e.execution_mode.as_str())),
            execution_type: Some(standard()),
            rollback_metadata: None,
        }
    }
}

impl From<&Execution> for cp::ExecutionTrigger {
    fn from(e: &Execution) -> Self {
        cp::ExecutionTrigger {
            trigger_type: Some(cp::TriggerType::from(e.trigger_type.as_str())),
            trigger_detail: Some(e.trigger_detail.clone()),
        }
    }
}

impl From<&SourceRevision> for cp::SourceRevision {
    fn from(s: &SourceRevision) -> Self {
        cp::SourceRevision {
            action_name: s.action_name.clone(),
            revision_id: Some(s.revision_id.clone()),
            revision_summary: s.revision_summary.clone(),
            revision_url: s.revision_url.clone(),
        }
    }
}

impl From<Transition> for cp::TransitionState {
    fn from(t: Transition) -> Self {
        cp::TransitionState {
            enabled: Some(t.enabled),
            last_changed_by: t.last_changed_by,
            last_changed_at: t.last_changed_at.as_ref().map(ts),
            disabled_reason: t.disabled_reason,
        }
    }
}

/// An action's latest run, as GetPipelineState answers it (the token only while it waits).
impl From<&ActionRun> for cp::ActionExecution {
    fn from(r: &ActionRun) -> Self {
        cp::ActionExecution {
            action_execution_id: Some(r.action_execution_id.clone()),
            status: Some(cp::ActionExecutionStatus::from(r.status.as_str())),
            summary: r.summary.clone().or(r.error_message.clone()),
            last_status_change: Some(ts(&r.last_update_time)),
            token: if r.status == Status::InProgress { r.token.clone() } else { None },
            external_execution_id: r.external_execution_id.clone(),
            external_execution_url: r.external_execution_url.clone(),
            error_details: error_details(r),
            ..Default::default()
        }
    }
}

/// A run of `decl` in execution `e`, as ListActionExecutions answers it; `region` is the
/// pipeline's, for actions that name none.
pub(super) fn action_execution_detail(
    e: &Execution,
    r: &ActionRun,
    decl: &ActionDeclaration,
    region: &str,
) -> AwsResult<cp::ActionExecutionDetail> {
    let output_variables = (decl.namespace.is_some() && !r.output_variables.is_empty()).then(|| r.output_variables.clone());
    Ok(cp::ActionExecutionDetail {
        pipeline_execution_id: Some(e.id.clone()),
        action_execution_id: Some(r.action_execution_id.clone()),
        pipeline_version: Some(e.pipeline_version as i32),
        stage_name: Some(r.stage.clone()),
        action_name: Some(r.action.clone()),
        start_time: Some(ts(&r.start_time)),
        last_update_time: Some(ts(&r.last_update_time)),
        updated_by: None,
        status: Some(cp::ActionExecutionStatus::from(r.status.as_str())),
        input: Some(cp::ActionExecutionInput {
            action_type_id: Some(reshape(&decl.action_type_id)?),
            configuration: Some(decl.configuration.clone().unwrap_or_default()),
            resolved_configuration: Some(r.resolved_configuration.clone()),
            role_arn: decl.role_arn.clone(),
            region: Some(decl.region.clone().unwrap_or_else(|| region.to_string())),
            input_artifacts: Some(artifact_details(&r.input_artifacts)),
            namespace: decl.namespace.clone(),
        }),
        output: Some(cp::ActionExecutionOutput {
            output_artifacts: Some(if r.status == Status::Succeeded {
                artifact_details(&r.output_artifacts)
            } else {
                Vec::new()
            }),
            execution_result: Some(cp::ActionExecutionResult {
                external_execution_id: r.external_execution_id.clone(),
                external_execution_summary: r.summary.clone().or(r.error_message.clone()),
                external_execution_url: r.external_execution_url.clone(),
                error_details: error_details(r),
                log_stream_arn: None,
            }),
            output_variables,
        }),
    })
}

/// The revision a source action fetched, as GetPipelineState answers it.
pub(super) fn action_revision(s: &SourceRevision, r: &ActionRun) -> cp::ActionRevision {
    cp::ActionRevision {
        revision_id: s.revision_id.clone(),
        revision_change_id: change_id(&s.revision_id),
        created: ts(&r.last_update_time),
    }
}

pub(super) fn stage_execution(id: &str, status: &str) -> cp::StageExecution {
    cp::StageExecution {
        pipeline_execution_id: id.to_string(),
        status: cp::StageExecutionStatus::from(status),
        r#type: Some(standard()),
    }
}

fn artifact_details(list: &[ArtifactLocation]) -> Vec<cp::ArtifactDetail> {
    list.iter()
        .map(|a| cp::ArtifactDetail {
            name: Some(a.name.clone()),
            s3location: Some(cp::S3Location { bucket: Some(a.bucket.clone()), key: Some(a.key.clone()) }),
        })
        .collect()
}

fn error_details(r: &ActionRun) -> Option<cp::ErrorDetails> {
    r.error_message
        .as_ref()
        .map(|m| cp::ErrorDetails { code: r.error_code.clone(), message: Some(m.clone()) })
}

/// A revision's change identifier: its first 100 characters (the model's limit).
fn change_id(revision: &str) -> String {
    revision.chars().take(100).collect()
}

/// codeyard runs every execution as AWS's STANDARD type (no rollbacks).
fn standard() -> cp::ExecutionType {
    cp::ExecutionType::from("STANDARD")
}
