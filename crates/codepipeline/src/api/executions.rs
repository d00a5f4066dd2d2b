//! Executions: start, stop, get, list, the actions they ran and the pipeline's state.

use super::shapes::{action_execution_detail, action_revision, stage_execution};
use super::*;
use crate::errors::execution_not_found;

impl CodePipelineService {
    pub(super) async fn start(&self, ctx: &RequestContext, input: cp::StartPipelineExecutionInput) -> AwsResult<cp::StartPipelineExecutionOutput> {
        let name = input.name.as_str();
        let (doc, _) = self.load(ctx, name).await?;
        let variables: Vec<(String, String)> = input
            .variables
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.name, v.value))
            .collect();
        if !variables.is_empty() && doc.declaration.pipeline_type() != "V2" {
            return Err(AwsError::validation(
                "Pipeline variables are only supported for pipelines of type V2",
            ));
        }
        let mut overrides = BTreeMap::new();
        for o in input.source_revisions.iter().flatten() {
            let action = o.action_name.as_str();
            let source = doc
                .declaration
                .stages
                .first()
                .and_then(|s| s.actions.iter().find(|a| a.name == action));
            let Some(source) = source else {
                return Err(AwsError::validation(format!(
                    "Source action '{action}' does not exist in pipeline '{name}'"
                )));
            };
            let kind = o.revision_type.as_str();
            let fits = matches!(
                (source.action_type_id.provider.as_str(), kind),
                ("CodeCommit", "COMMIT_ID") | ("S3", "S3_OBJECT_VERSION_ID")
            );
            if !fits {
                return Err(AwsError::validation(format!(
                    "Revision type {kind} is not supported for the {} source action '{action}'",
                    source.action_type_id.provider
                )));
            }
            overrides.insert(action.to_string(), o.revision_value.clone());
        }
        let id = self
            .engine
            .start_execution(
                &ctx.account,
                &ctx.region,
                &doc,
                StartRequest {
                    trigger_type: "StartPipelineExecution".into(),
                    trigger_detail: ctx.caller_arn.clone(),
                    variables,
                    revision_overrides: overrides,
                    client_request_token: input.client_request_token,
                },
            )
            .await?;
        Ok(cp::StartPipelineExecutionOutput { pipeline_execution_id: Some(id) })
    }

    pub(super) async fn stop(&self, ctx: &RequestContext, input: cp::StopPipelineExecutionInput) -> AwsResult<cp::StopPipelineExecutionOutput> {
        let name = input.pipeline_name.as_str();
        self.load(ctx, name).await?;
        let id = input.pipeline_execution_id.as_str();
        let (abandon, reason) = (input.abandon.unwrap_or(false), input.reason);
        let stop = |e: &mut Execution, evs: &mut Vec<_>| engine::request_stop(e, abandon, reason, evs);
        self.engine.update_execution(&ctx.account, &ctx.region, name, id, stop).await?;
        Ok(cp::StopPipelineExecutionOutput { pipeline_execution_id: Some(id.to_string()) })
    }

    pub(super) async fn execution(&self, ctx: &RequestContext, name: &str, id: &str) -> AwsResult<Execution> {
        self.load(ctx, name).await?;
        let found = self.engine.execution(&ctx.account, &ctx.region, name, id).await?;
        found.map(|(e, _)| e).ok_or_else(|| execution_not_found(name, id))
    }

    /// Every execution of pipeline `name`, oldest first.
    pub(super) async fn executions(&self, ctx: &RequestContext, name: &str) -> AwsResult<Vec<Execution>> {
        let loaded = self.engine.executions(&ctx.account, &ctx.region, name).await?;
        Ok(loaded.into_iter().map(|(e, _)| e).collect())
    }

    pub(super) async fn get_execution(
        &self,
        ctx: &RequestContext,
        input: cp::GetPipelineExecutionInput,
    ) -> AwsResult<cp::GetPipelineExecutionOutput> {
        let e = self
            .execution(ctx, &input.pipeline_name, &input.pipeline_execution_id)
            .await?;
        Ok(cp::GetPipelineExecutionOutput { pipeline_execution: Some((&e).into()) })
    }

    pub(super) async fn list_executions(
        &self,
        ctx: &RequestContext,
        input: cp::ListPipelineExecutionsInput,
    ) -> AwsResult<cp::ListPipelineExecutionsOutput> {
        let name = input.pipeline_name.as_str();
        self.load(ctx, name).await?;
        let succeeded_in = input
            .filter
            .as_ref()
            .and_then(|f| f.succeeded_in_stage.as_ref())
            .and_then(|s| s.stage_name.as_deref());
        let items = self
            .executions(ctx, name)
            .await?
            .iter()
            .rev()
            .filter(|e| succeeded_in.is_none_or(|s| e.stage(s).status == Some(Status::Succeeded)))
            .map(Into::into)
            .collect();
        let (list, next_token) = page(items, input.next_token.as_deref(), input.max_results, 100)?;
        Ok(cp::ListPipelineExecutionsOutput { pipeline_execution_summaries: Some(list), next_token })
    }

    pub(super) async fn list_action_executions(
        &self,
        ctx: &RequestContext,
        input: cp::ListActionExecutionsInput,
    ) -> AwsResult<cp::ListActionExecutionsOutput> {
        let name = input.pipeline_name.as_str();
        self.load(ctx, name).await?;
        let filter_id = input.filter.as_ref().and_then(|f| {
            f.pipeline_execution_id
                .as_deref()
                .or_else(|| f.latest_in_pipeline_execution.as_ref().map(|l| l.pipeline_execution_id.as_str()))
        });
        let execs: Vec<Execution> = match filter_id {
            Some(id) => vec![self.execution(ctx, name, id).await?],
            None => self.executions(ctx, name).await?,
        };
        let mut details: Vec<(Timestamp, cp::ActionExecutionDetail)> = Vec::new();
        for e in &execs {
            for r in &e.runs {
                let decl = e
                    .declaration
                    .stages
                    .iter()
                    .find(|s| s.name == r.stage)
                    .and_then(|s| s.actions.iter().find(|a| a.name == r.action));
                if let Some(decl) = decl {
                    details.push((r.start_time, action_execution_detail(e, r, decl, &ctx.region)?));
                }
            }
        }
        details.sort_by_key(|d| std::cmp::Reverse(d.0));
        let details = details.into_iter().map(|(_, d)| d).collect();
        let (list, next_token) = page(details, input.next_token.as_deref(), input.max_results, 100)?;
        Ok(cp::ListActionExecutionsOutput { action_execution_details: Some(list), next_token })
    }

    pub(super) async fn state(&self, ctx: &RequestContext, input: cp::GetPipelineStateInput) -> AwsResult<cp::GetPipelineStateOutput> {
        let name = input.name.as_str();
        let (doc, _) = self.load(ctx, name).await?;
        let execs = self.executions(ctx, name).await?;
        let mut stages = Vec::new();
        for (i, s) in doc.declaration.stages.iter().enumerate() {
            let mut st = cp::StageState { stage_name: Some(s.name.clone()), ..Default::default() };
            if i > 0 {
                let t = doc.transitions.get(&s.name).cloned().unwrap_or(Transition {
                    enabled: true,
                    ..Default::default()
                });
                st.inbound_transition_state = Some(t.into());
            }
            if let Some((e, status)) = execs
                .iter()
                .rev()
                .find_map(|e| e.stage(&s.name).status.map(|status| (e, status)))
            {
                st.latest_execution = Some(stage_execution(&e.id, status.as_str()));
            }
            let waiting: Vec<&Execution> = execs
                .iter()
                .filter(|e| {
                    !e.is_terminal()
                        && i > 0
                        && e.frontier() == Some(i)
                        && e.stage(&s.name).status.is_none()
                })
                .collect();
            if let Some(e) = waiting.last() {
                st.inbound_execution = Some(stage_execution(&e.id, "InProgress"));
                st.inbound_executions =
                    Some(waiting.iter().map(|e| stage_execution(&e.id, "InProgress")).collect());
            }
            let mut actions = Vec::new();
            for a in &s.actions {
                let mut state = cp::ActionState { action_name: Some(a.name.clone()), ..Default::default() };
                let latest = execs
                    .iter()
                    .flat_map(|e| {
                        e.runs
                            .iter()
                            .filter(|r| r.stage == s.name && r.action == a.name)
                            .map(move |r| (e, r))
                    })
                    .max_by_key(|(_, r)| r.start_time);
                if let Some((e, r)) = latest {
                    state.latest_execution = Some(r.into());
                    if let Some(sr) = e.source_revisions.iter().find(|x| x.action_name == a.name) {
                        state.current_revision = Some(action_revision(sr, r));
                        state.revision_url = sr.revision_url.clone();
                    }
                }
                actions.push(state);
            }
            st.action_states = Some(actions);
            stages.push(st);
        }
        Ok(cp::GetPipelineStateOutput {
            pipeline_name: Some(name.to_string()),
            pipeline_version: Some(doc.declaration.version.unwrap_or(1) as i32),
            stage_states: Some(stages),
            created: Some(ts(&doc.created)),
            updated: Some(ts(&doc.updated)),
        })
    }
}
