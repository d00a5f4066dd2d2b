//! The CodePipeline API (awsJson1.1, `CodePipeline_20150709.*`): the generated
//! [`cp::CodePipelineApi`] trait implemented as a thin adapter from the model's typed inputs to
//! the domain ([`crate::validate`], [`crate::engine`]) and back to its typed outputs. Inputs
//! arrive validated; every operation not defined here answers UnknownOperationException.
//!
//! This file: the service, the trait impl, shared helpers, and the pipelines themselves
//! (create, get, update, delete, list); [`executions`] starts, stops and
//! reports executions; [`control`] is retries, approvals, transitions, action types and tags.

mod control;
mod executions;
mod shapes;

use crate::engine::{self, Engine, StartRequest, ns};
use crate::errors::{on_conflict, pipeline_name_in_use, pipeline_not_found};
use crate::model::{Execution, PipelineDeclaration, PipelineDoc, Status, Transition};
use crate::{doctor, validate};
use codeyard_api::Unit;
use codeyard_api::codepipeline as cp;
use codeyard_core::time::{Timestamp, now};
use codeyard_core::{AwsError, AwsResult, RequestContext, arn::Arn};
use codeyard_store::{Batch, Expect, StateStoreExt};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct CodePipelineService {
    pub engine: Arc<Engine>,
}

pub(super) fn ts(t: &Timestamp) -> codeyard_api::Timestamp {
    codeyard_api::Timestamp(*t)
}

/// Moves a value between the domain's serde types and the model's shapes of the same JSON
/// (the pipeline declaration is stored exactly as AWS spells it); a mismatch is a bug here.
pub(super) fn reshape<T: Serialize, U: DeserializeOwned>(from: &T) -> AwsResult<U> {
    serde_json::from_value(codeyard_api::encode(from)?)
        .map_err(|e| AwsError::internal(format!("CodePipeline shape does not fit the model: {e}")))
}

/// A page of `items` from an index-valued `nextToken`.
pub(super) fn page<T>(
    items: Vec<T>,
    next_token: Option<&str>,
    max_results: Option<i32>,
    default_max: usize,
) -> AwsResult<(Vec<T>, Option<String>)> {
    let start = match next_token {
        Some(t) => t.parse::<usize>().map_err(|_| {
            AwsError::client("InvalidNextTokenException", "The next token is not valid")
        })?,
        None => 0,
    };
    let max = max_results
        .and_then(|m| usize::try_from(m).ok())
        .unwrap_or(default_max)
        .max(1);
    let total = items.len();
    let end = (start + max).min(total);
    let next = (end < total).then(|| end.to_string());
    Ok((items.into_iter().skip(start).take(max).collect(), next))
}

pub(super) fn parse_tags(tags: &[cp::Tag]) -> AwsResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for t in tags {
        if t.key.starts_with("aws:") {
            return Err(AwsError::client(
                "InvalidTagsException",
                "Tag keys starting with 'aws:' are reserved",
            ));
        }
        out.push((t.key.clone(), t.value.clone()));
    }
    Ok(out)
}

pub(super) fn at_most_50_tags(count: usize) -> AwsResult<()> {
    if count > 50 {
        return Err(AwsError::client("TooManyTagsException", "A pipeline can have at most 50 tags"));
    }
    Ok(())
}

pub(super) fn tags_out(tags: &BTreeMap<String, String>) -> Vec<cp::Tag> {
    tags.iter()
        .map(|(k, v)| cp::Tag { key: k.clone(), value: v.clone() })
        .collect()
}

/// The batch that stores `doc` (on condition `expect`) and keeps its declaration as the
/// pipeline's version `<name>/<version>`, for GetPipeline of an earlier version.
fn with_version(ctx: &RequestContext, doc: &PipelineDoc, expect: Expect) -> Batch {
    let decl = &doc.declaration;
    let version = decl.version.unwrap_or(1);
    Batch::new()
        .put(ns(&ctx.account, &ctx.region, "pipelines"), &decl.name, doc, expect)
        .put(ns(&ctx.account, &ctx.region, "pipeline-versions"), format!("{}/{version}", decl.name), decl, Expect::Any)
}

impl CodePipelineService {
    pub(super) fn store(&self) -> &codeyard_store::SharedStore {
        &self.engine.platform.store
    }

    pub(super) async fn load(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> AwsResult<(PipelineDoc, i64)> {
        self.engine
            .pipeline(&ctx.account, &ctx.region, name)
            .await?
            .ok_or_else(|| pipeline_not_found(&ctx.account, name))
    }

    pub(super) fn declaration(input: &cp::PipelineDeclaration) -> AwsResult<PipelineDeclaration> {
        // Absent members go as absent, not null (the domain's defaults fill them).
        let mut decl: PipelineDeclaration = serde_json::from_value(codeyard_api::encode(input)?)
            .map_err(|e| AwsError::validation(format!("The pipeline declaration is not valid: {e}")))?;
        decl.execution_mode
            .get_or_insert_with(|| "SUPERSEDED".into());
        decl.pipeline_type.get_or_insert_with(|| "V1".into());
        validate::pipeline(&decl)?;
        Ok(decl)
    }

    /// Runs the doctor's checks on the pipeline a moment after it was stored.
    fn warn_later(&self, ctx: &RequestContext, name: &str) {
        doctor::warn_later(self.engine.clone(), ctx.account.clone(), ctx.region.clone(), name.to_string());
    }

    /// `iam:PassRole` of the pipeline's `roleArn` and every action's, and (under `--iam
    /// enforce`) CodePipeline's right to assume them (their trust policy names
    /// codepipeline.amazonaws.com), as CodePipeline checks both at CreatePipeline and
    /// UpdatePipeline.
    async fn pass_roles(&self, ctx: &RequestContext, decl: &crate::model::PipelineDeclaration) -> AwsResult<()> {
        const SERVICE: &str = "codepipeline.amazonaws.com";
        let platform = &self.engine.platform;
        let actions = decl.stages.iter().flat_map(|s| s.actions.iter());
        let roles = std::iter::once(decl.role_arn.as_str()).chain(actions.filter_map(|a| a.role_arn.as_deref()));
        for role in roles.filter(|r| !r.is_empty()) {
            platform
                .hub
                .authorize(ctx, &codeyard_core::AccessRequest::pass_role(role, SERVICE))
                .await
                .map_err(|d| d.to_error("AccessDeniedException"))?;
            let is_role = codeyard_core::arn::Arn::parse(role).is_some_and(|a| a.service == "iam" && a.resource.starts_with("role/"));
            if is_role
                && platform.hub.iam_mode() == codeyard_core::IamMode::Enforce
                && let Ok(sts) = platform.hub.credentials()
                && let Err(e) = sts.assume_role_as_service(&ctx.account, role, SERVICE, &ctx.request_id, 900).await
            {
                tracing::warn!(role, error = %e.message, "CodePipeline cannot assume the pipeline's role");
                return Err(AwsError::client(
                    "InvalidStructureException",
                    format!("CodePipeline is not authorized to perform AssumeRole on role {role}"),
                ));
            }
        }
        Ok(())
    }

    pub(super) async fn create(&self, ctx: &RequestContext, input: cp::CreatePipelineInput) -> AwsResult<cp::CreatePipelineOutput> {
        let mut decl = Self::declaration(&input.pipeline)?;
        self.pass_roles(ctx, &decl).await?;
        decl.version = Some(1);
        let tags = parse_tags(input.tags.as_deref().unwrap_or_default())?;
        at_most_50_tags(tags.len())?;
        let t = now();
        let doc = PipelineDoc {
            arn: codeyard_core::arn::arn("codepipeline", &ctx.region, &ctx.account, &decl.name),
            declaration: decl.clone(),
            created: t,
            updated: t,
            tags: tags.into_iter().collect(),
            transitions: BTreeMap::new(),
            polled_revisions: BTreeMap::new(),
        };
        let batch = with_version(ctx, &doc, Expect::Absent);
        // Only the name's absence is a condition here: any other store failure is a 500, and
        // nothing is started for a pipeline that was not stored.
        on_conflict(self.store().commit(batch).await, || {
            pipeline_name_in_use(&ctx.account, &decl.name)
        })?;
        // AWS starts a pipeline when it is created.
        self.engine
            .start_execution(
                &ctx.account,
                &ctx.region,
                &doc,
                StartRequest {
                    trigger_type: "CreatePipeline".into(),
                    trigger_detail: ctx.caller_arn.clone(),
                    ..Default::default()
                },
            )
            .await?;
        self.warn_later(ctx, &decl.name);
        Ok(cp::CreatePipelineOutput { pipeline: Some(reshape(&decl)?), tags: Some(tags_out(&doc.tags)) })
    }

    pub(super) async fn update(&self, ctx: &RequestContext, input: cp::UpdatePipelineInput) -> AwsResult<cp::UpdatePipelineOutput> {
        let mut decl = Self::declaration(&input.pipeline)?;
        self.pass_roles(ctx, &decl).await?;
        let _guard = self
            .engine
            .lock(&ctx.account, &ctx.region, &decl.name)
            .await;
        let (mut doc, version) = self.load(ctx, &decl.name).await?;
        let next = doc.declaration.version.unwrap_or(1) + 1;
        decl.version = Some(next);
        doc.declaration = decl.clone();
        doc.updated = now();
        // Transitions of stages that no longer exist go with them.
        let names: Vec<String> = decl.stages.iter().map(|s| s.name.clone()).collect();
        doc.transitions.retain(|k, _| names.contains(k));
        self.store().commit(with_version(ctx, &doc, Expect::Version(version))).await?;
        self.warn_later(ctx, &decl.name);
        Ok(cp::UpdatePipelineOutput { pipeline: Some(reshape(&decl)?) })
    }

    pub(super) async fn delete(&self, ctx: &RequestContext, input: cp::DeletePipelineInput) -> AwsResult<Unit> {
        let name = input.name.as_str();
        let _guard = self.engine.lock(&ctx.account, &ctx.region, name).await;
        let (_, version) = self.load(ctx, name).await?;
        let mut batch = Batch::new().delete(
            ns(&ctx.account, &ctx.region, "pipelines"),
            name,
            Expect::Version(version),
        );
        // Its executions and earlier versions go with it (both keyed `<name>/...`).
        for kind in ["executions", "pipeline-versions"] {
            let kind_ns = ns(&ctx.account, &ctx.region, kind);
            for d in self.store().scan(&kind_ns, &format!("{name}/")).collect().await? {
                batch = batch.delete(&kind_ns, d.key, Expect::Any);
            }
        }
        self.store().commit(batch).await?;
        Ok(Unit {})
    }

    pub(super) async fn get(&self, ctx: &RequestContext, input: cp::GetPipelineInput) -> AwsResult<cp::GetPipelineOutput> {
        let name = input.name.as_str();
        let (doc, _) = self.load(ctx, name).await?;
        let mut decl = doc.declaration.clone();
        if let Some(v) = input.version.map(i64::from)
            && Some(v) != decl.version
        {
            let versions = ns(&ctx.account, &ctx.region, "pipeline-versions");
            let Some((old, _)) = self.store().get_as::<PipelineDeclaration>(&versions, &format!("{name}/{v}")).await? else {
                return Err(AwsError::client("PipelineVersionNotFoundException", format!("Pipeline {name} has no version {v}")));
            };
            decl = old;
        }
        Ok(cp::GetPipelineOutput { pipeline: Some(reshape(&decl)?), metadata: Some((&doc).into()) })
    }

    pub(super) async fn list(&self, ctx: &RequestContext, input: cp::ListPipelinesInput) -> AwsResult<cp::ListPipelinesOutput> {
        let docs: Vec<PipelineDoc> = self
            .store()
            .list_all_as(&ns(&ctx.account, &ctx.region, "pipelines"))
            .await?;
        let items = docs.iter().map(Into::into).collect();
        let (pipelines, next_token) = page(items, input.next_token.as_deref(), input.max_results, 1000)?;
        Ok(cp::ListPipelinesOutput { pipelines: Some(pipelines), next_token })
    }
}

impl CodePipelineService {
    /// Runs one operation as the registry does once the wire has validated its input (the
    /// crate's tests drive the API through this).
    pub async fn call(&self, ctx: &RequestContext, operation: &str, input: Value) -> AwsResult<Value> {
        cp::dispatch(self, ctx, operation, input).await
    }
}

/// The generated trait's one `#[codeyard_api::service]` impl, written as a table: each
/// operation is answered by the [`CodePipelineService`] method named after it (here, in
/// [`executions`] or in [`control`]), which takes the typed input and answers the typed output.
macro_rules! operations {
    ($($operation:ident($input:ident) -> $output:ident => $method:ident;)*) => {
        #[codeyard_api::service]
        impl cp::CodePipelineApi for CodePipelineService {
            $(
                async fn $operation(&self, ctx: &RequestContext, input: cp::$input) -> AwsResult<cp::$output> {
                    self.$method(ctx, input).await
                }
            )*
        }
    };
}

operations! {
    create_pipeline(CreatePipelineInput) -> CreatePipelineOutput => create;
    get_pipeline(GetPipelineInput) -> GetPipelineOutput => get;
    update_pipeline(UpdatePipelineInput) -> UpdatePipelineOutput => update;
    delete_pipeline(DeletePipelineInput) -> DeletePipelineOutput => delete;
    list_pipelines(ListPipelinesInput) -> ListPipelinesOutput => list;
    start_pipeline_execution(StartPipelineExecutionInput) -> StartPipelineExecutionOutput => start;
    stop_pipeline_execution(StopPipelineExecutionInput) -> StopPipelineExecutionOutput => stop;
    get_pipeline_state(GetPipelineStateInput) -> GetPipelineStateOutput => state;
    get_pipeline_execution(GetPipelineExecutionInput) -> GetPipelineExecutionOutput => get_execution;
    list_pipeline_executions(ListPipelineExecutionsInput) -> ListPipelineExecutionsOutput => list_executions;
    list_action_executions(ListActionExecutionsInput) -> ListActionExecutionsOutput => list_action_executions;
    retry_stage_execution(RetryStageExecutionInput) -> RetryStageExecutionOutput => retry;
    put_approval_result(PutApprovalResultInput) -> PutApprovalResultOutput => approval;
    enable_stage_transition(EnableStageTransitionInput) -> EnableStageTransitionOutput => enable_transition;
    disable_stage_transition(DisableStageTransitionInput) -> DisableStageTransitionOutput => disable_transition;
    list_action_types(ListActionTypesInput) -> ListActionTypesOutput => action_types;
    get_action_type(GetActionTypeInput) -> GetActionTypeOutput => action_type;
    tag_resource(TagResourceInput) -> TagResourceOutput => tag;
    untag_resource(UntagResourceInput) -> UntagResourceOutput => untag;
    list_tags_for_resource(ListTagsForResourceInput) -> ListTagsForResourceOutput => tags;
}
