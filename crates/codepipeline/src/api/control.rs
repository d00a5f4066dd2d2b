//! Stage retries, manual approvals, stage transitions, action types and tags.

use super::*;
use crate::action_types::{self, CATALOG};
use crate::errors::stage_not_found;

impl CodePipelineService {
    pub(super) async fn retry(&self, ctx: &RequestContext, input: cp::RetryStageExecutionInput) -> AwsResult<cp::RetryStageExecutionOutput> {
        let name = input.pipeline_name.as_str();
        let stage = input.stage_name.as_str();
        let id = input.pipeline_execution_id.as_str();
        let (doc, _) = self.load(ctx, name).await?;
        if !doc.declaration.stages.iter().any(|s| s.name == stage) {
            return Err(stage_not_found(name, stage));
        }
        let all = input.retry_mode.as_str() == "ALL_ACTIONS";
        let target = self.execution(ctx, name, id).await?;
        let newer_in_stage = self
            .executions(ctx, name)
            .await?
            .iter()
            .any(|e| e.seq > target.seq && e.stage(stage).status.is_some());
        if newer_in_stage && target.execution_mode != "PARALLEL" {
            return Err(AwsError::client(
                "NotLatestPipelineExecutionException",
                format!("Execution {id} is not the latest execution of stage {stage}"),
            ));
        }
        let retry = |e: &mut Execution, evs: &mut Vec<_>| engine::retry_stage(e, stage, all, evs);
        self.engine.update_execution(&ctx.account, &ctx.region, name, id, retry).await?;
        Ok(cp::RetryStageExecutionOutput { pipeline_execution_id: Some(id.to_string()) })
    }

    pub(super) async fn approval(&self, ctx: &RequestContext, input: cp::PutApprovalResultInput) -> AwsResult<cp::PutApprovalResultOutput> {
        let name = input.pipeline_name.as_str();
        let stage = input.stage_name.as_str();
        let action = input.action_name.as_str();
        let token = input.token.as_str();
        let (doc, _) = self.load(ctx, name).await?;
        let Some(sdecl) = doc.declaration.stages.iter().find(|s| s.name == stage) else {
            return Err(stage_not_found(name, stage));
        };
        if !sdecl.actions.iter().any(|a| a.name == action) {
            return Err(AwsError::client(
                "ActionNotFoundException",
                format!("Action {action} does not exist in stage {stage}"),
            ));
        }
        let holder = self.executions(ctx, name).await?.into_iter().find(|e| {
            e.runs.iter().any(|r| {
                r.stage == stage && r.action == action && r.token.as_deref() == Some(token)
            })
        });
        let Some(holder) = holder else {
            return Err(AwsError::client(
                "InvalidApprovalTokenException",
                format!(
                    "The approval token {token} is not valid for action {action} in stage {stage}"
                ),
            ));
        };
        let approved = input.result.status == cp::ApprovalStatus::Approved;
        let summary = input.result.summary.clone();
        let caller = ctx.caller_arn.clone();
        let at = now();
        self.engine
            .update_execution(&ctx.account, &ctx.region, name, &holder.id, |e, evs| {
                let run_id = e
                    .runs
                    .iter()
                    .find(|r| r.token.as_deref() == Some(token))
                    .map(|r| (r.action_execution_id.clone(), r.status, r.current));
                match run_id {
                    Some((id, Status::InProgress, true)) => {
                        let outcome = crate::actions::ActionOutcome {
                            succeeded: approved,
                            summary: (!summary.is_empty()).then(|| summary.clone()),
                            error: (!approved).then(|| ("JobFailed".to_string(), format!("Rejected by {caller}: {summary}"))),
                            external_id: Some(caller.clone()),
                            ..Default::default()
                        };
                        engine::apply_outcome(e, &id, outcome, evs);
                        Ok(())
                    }
                    _ => Err(AwsError::client(
                        "ApprovalAlreadyCompletedException",
                        format!("The approval for action {action} in stage {stage} was already completed"),
                    )),
                }
            })
            .await?;
        Ok(cp::PutApprovalResultOutput { approved_at: Some(ts(&at)) })
    }

    pub(super) async fn enable_transition(&self, ctx: &RequestContext, input: cp::EnableStageTransitionInput) -> AwsResult<Unit> {
        self.transition(ctx, &input.pipeline_name, &input.stage_name, &input.transition_type, None).await
    }

    pub(super) async fn disable_transition(&self, ctx: &RequestContext, input: cp::DisableStageTransitionInput) -> AwsResult<Unit> {
        let reason = Some(input.reason);
        self.transition(ctx, &input.pipeline_name, &input.stage_name, &input.transition_type, reason).await
    }

    /// Enables (`disabled_reason` None) or disables a stage's inbound or outbound transition.
    async fn transition(
        &self,
        ctx: &RequestContext,
        name: &str,
        stage: &str,
        kind: &cp::StageTransitionType,
        disabled_reason: Option<String>,
    ) -> AwsResult<Unit> {
        let enable = disabled_reason.is_none();
        let outbound = kind.as_str() == "Outbound";
        let _guard = self.engine.lock(&ctx.account, &ctx.region, name).await;
        let (mut doc, version) = self.load(ctx, name).await?;
        let Some(idx) = doc.declaration.stages.iter().position(|s| s.name == stage) else {
            return Err(stage_not_found(name, stage));
        };
        // The outbound transition of a stage is the inbound transition of the next one.
        let target = if outbound {
            match doc.declaration.stages.get(idx + 1) {
                Some(s) => s.name.clone(),
                None => {
                    return Err(AwsError::validation(format!(
                        "Stage {stage} is the last stage and has no outbound transition"
                    )));
                }
            }
        } else {
            stage.to_string()
        };
        doc.transitions.insert(
            target,
            Transition {
                enabled: enable,
                last_changed_by: Some(ctx.caller_arn.clone()),
                last_changed_at: Some(now()),
                disabled_reason,
            },
        );
        let batch = Batch::new().put(
            ns(&ctx.account, &ctx.region, "pipelines"),
            name,
            &doc,
            Expect::Version(version),
        );
        self.engine
            .commit(Engine::tick_batch(batch, &ctx.account, &ctx.region, name))
            .await?;
        Ok(Unit {})
    }

    pub(super) async fn action_types(&self, _: &RequestContext, input: cp::ListActionTypesInput) -> AwsResult<cp::ListActionTypesOutput> {
        let owner = input.action_owner_filter.as_ref().map(|o| o.as_str());
        let items: Vec<cp::ActionType> = CATALOG
            .iter()
            .filter(|_| owner.is_none_or(|o| o == "AWS"))
            .filter(|s| !action_types::not_yet_run(&s.id()))
            .map(|s| {
                Ok(cp::ActionType {
                    id: reshape(&s.id())?,
                    settings: Some(cp::ActionTypeSettings::default()),
                    action_configuration_properties: Some(
                        s.properties
                            .iter()
                            .map(|p| cp::ActionConfigurationProperty {
                                name: p.name.to_string(),
                                required: p.required,
                                key: p.key,
                                secret: false,
                                queryable: Some(false),
                                description: Some(p.description.to_string()),
                                r#type: Some(cp::ActionConfigurationPropertyType::from("String")),
                            })
                            .collect(),
                    ),
                    input_artifact_details: artifact_details(s.inputs),
                    output_artifact_details: artifact_details(s.outputs),
                })
            })
            .collect::<AwsResult<_>>()?;
        // ListActionTypes has no maxResults: one page of up to 1000.
        let (action_types, next_token) = page(items, input.next_token.as_deref(), None, 1000)?;
        Ok(cp::ListActionTypesOutput { action_types, next_token })
    }

    pub(super) async fn action_type(&self, _: &RequestContext, input: cp::GetActionTypeInput) -> AwsResult<cp::GetActionTypeOutput> {
        let id = crate::model::ActionTypeId {
            category: input.category.as_str().into(),
            owner: input.owner,
            provider: input.provider,
            version: input.version,
        };
        let Some(spec) = action_types::find(&id).filter(|_| !action_types::not_yet_run(&id)) else {
            return Err(AwsError::client(
                "ActionTypeNotFoundException",
                format!(
                    "Action type {}/{}/{}/{} does not exist",
                    id.category, id.owner, id.provider, id.version
                ),
            ));
        };
        let declaration = json!({
            "description": format!("{} {} action run by codeyard", spec.provider, spec.category),
            "executor": {"configuration": {}, "type": "JobWorker"},
            "id": spec.id(),
            "inputArtifactDetails": {"minimumCount": spec.inputs.0, "maximumCount": spec.inputs.1},
            "outputArtifactDetails": {"minimumCount": spec.outputs.0, "maximumCount": spec.outputs.1},
            "properties": spec.properties.iter().map(|p| json!({
                "name": p.name, "optional": !p.required, "key": p.key, "noEcho": false,
                "queryable": false, "description": p.description,
            })).collect::<Vec<_>>(),
            "urls": {},
        });
        Ok(cp::GetActionTypeOutput { action_type: Some(reshape(&declaration)?) })
    }

    /// The pipeline a resource ARN names (only pipelines are taggable here).
    async fn by_arn(&self, ctx: &RequestContext, arn: &str) -> AwsResult<(PipelineDoc, i64)> {
        let parsed = Arn::parse(arn)
            .filter(|a| a.service == "codepipeline")
            .ok_or_else(|| {
                AwsError::client("InvalidArnException", format!("The ARN {arn} is not valid"))
            })?;
        let name = parsed.resource.clone();
        self.engine.pipeline(&parsed.account, &parsed.region, &name).await?.ok_or_else(|| {
            AwsError::client(
                "ResourceNotFoundException",
                format!("The account with id '{}' does not include a pipeline with the name '{name}'", ctx.account),
            )
        })
    }

    pub(super) async fn tags(&self, ctx: &RequestContext, input: cp::ListTagsForResourceInput) -> AwsResult<cp::ListTagsForResourceOutput> {
        let (doc, _) = self.by_arn(ctx, &input.resource_arn).await?;
        Ok(cp::ListTagsForResourceOutput { tags: Some(tags_out(&doc.tags)), next_token: None })
    }

    pub(super) async fn tag(&self, ctx: &RequestContext, input: cp::TagResourceInput) -> AwsResult<cp::TagResourceOutput> {
        self.retag(ctx, &input.resource_arn, &input.tags, &[]).await
    }

    pub(super) async fn untag(&self, ctx: &RequestContext, input: cp::UntagResourceInput) -> AwsResult<cp::UntagResourceOutput> {
        self.retag(ctx, &input.resource_arn, &[], &input.tag_keys).await
    }

    /// TagResource (`add`) and UntagResource (`remove`) on the pipeline `arn` names.
    async fn retag<Output: Default>(&self, ctx: &RequestContext, arn: &str, add: &[cp::Tag], remove: &[String]) -> AwsResult<Output> {
        let (mut doc, version) = self.by_arn(ctx, arn).await?;
        if !add.is_empty() {
            for (k, v) in parse_tags(add)? {
                doc.tags.insert(k, v);
            }
            at_most_50_tags(doc.tags.len())?;
        }
        for k in remove {
            doc.tags.remove(k);
        }
        let (account, region) = {
            let a = Arn::parse(&doc.arn).unwrap();
            (a.account, a.region)
        };
        let name = doc.declaration.name.clone();
        let batch = Batch::new().put(
            ns(&account, &region, "pipelines"),
            &name,
            &doc,
            Expect::Version(version),
        );
        on_conflict(self.store().commit(batch).await, || {
            AwsError::client(
                "ConcurrentModificationException",
                "The pipeline changed while its tags were being updated",
            )
        })?;
        Ok(Output::default())
    }
}

fn artifact_details((minimum_count, maximum_count): (u32, u32)) -> cp::ArtifactDetails {
    cp::ArtifactDetails { minimum_count: minimum_count as i32, maximum_count: maximum_count as i32 }
}
