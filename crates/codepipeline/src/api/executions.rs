//! Executions: start, stop, get, list, the actions they ran and the pipeline's state.

use super::*;

impl CodePipelineService {
    pub(super) async fn start(
        &self,
        ctx: &RequestContext,
        input: cp::StartPipelineExecutionInput,
    ) -> AwsResult<cp::StartPipelineExecutionOutput> {
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

    pub(super) async fn stop(
        &self,
        ctx: &RequestContext,
        input: cp::StopPipelineExecutionInput,
    ) -> AwsResult<cp::StopPipelineExecutionOutput> {
        let name = input.pipeline_name.as_str();
        self.load(ctx, name).await?;
        let id = input.pipeline_execution_id.as_str();
        let abandon = input.abandon.unwrap_or(false);
        let reason = input.reason;
        self.engine
            .update_execution(&ctx.account, &ctx.region, name, id, |e, evs| {
                engine::request_stop(e, abandon, reason, evs)
            })
            .await?;
        Ok(cp::StopPipelineExecutionOutput { pipeline_execution_id: Some(id.to_string()) })
    }

    pub(super) async fn execution(
        &self,
        ctx: &RequestContext,
        name: &str,
        id: &str,
    ) -> AwsResult<Execution> {
        self.load(ctx, name).await?;
        self.engine
            .execution(&ctx.account, &ctx.region, name, id)
            .await?
            .map(|(e, _)| e)
            .ok_or_else(|| {
                AwsError::client(
                    "PipelineExecutionNotFoundException",
                    format!("Pipeline execution ID {id} does not exist in pipeline {name}"),
                )
            })
    }

    pub(super) async fn get_execution(
        &self,
        ctx: &RequestContext,
        input: cp::GetPipelineExecutionInput,
    ) -> AwsResult<cp::GetPipelineExecutionOutput> {
        let e = self
            .execution(ctx, &input.pipeline_name, &input.pipeline_execution_id)
            .await?;
        let artifact_revisions = e
            .artifacts
            .iter()
            .filter(|(_, a)| a.revision.is_some())
            .map(|(name, a)| cp::ArtifactRevision {
                name: Some(name.clone()),
                revision_id: a.revision.clone(),
                revision_change_identifier: a.revision.as_ref().map(|r| r.chars().take(100).collect::<String>()),
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
        Ok(cp::GetPipelineExecutionOutput {
            pipeline_execution: Some(cp::PipelineExecution {
                pipeline_name: Some(e.pipeline.clone()),
                pipeline_version: Some(e.pipeline_version as i32),
                pipeline_execution_id: Some(e.id.clone()),
                status: Some(cp::PipelineExecutionStatus::from(e.status.as_str())),
                status_summary: e.status_summary.clone(),
                artifact_revisions: Some(artifact_revisions),
                variables: Some(variables),
                trigger: Some(trigger(&e)),
                execution_mode: Some(cp::ExecutionMode::from(e.execution_mode.as_str())),
                execution_type: Some(standard()),
                rollback_metadata: None,
            }),
        })
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
        let mut execs = self
            .engine
            .executions(&ctx.account, &ctx.region, name)
            .await?;
        execs.reverse();
        let items = execs
            .iter()
            .map(|(e, _)| e)
            .filter(|e| succeeded_in.is_none_or(|s| e.stage(s).status == Some(Status::Succeeded)))
            .map(|e| cp::PipelineExecutionSummary {
                pipeline_execution_id: Some(e.id.clone()),
                status: Some(cp::PipelineExecutionStatus::from(e.status.as_str())),
                status_summary: e.status_summary.clone(),
                start_time: Some(ts(&e.start_time)),
                last_update_time: Some(ts(&e.last_update_time)),
                source_revisions: Some(
                    e.source_revisions
                        .iter()
                        .map(|s| cp::SourceRevision {
                            action_name: s.action_name.clone(),
                            revision_id: Some(s.revision_id.clone()),
                            revision_summary: s.revision_summary.clone(),
                            revision_url: s.revision_url.clone(),
                        })
                        .collect(),
                ),
                trigger: Some(trigger(e)),
                stop_trigger: e
                    .stop
                    .as_ref()
                    .map(|s| cp::StopExecutionTrigger { reason: Some(s.reason.clone().unwrap_or_default()) }),
                execution_mode: Some(cp::ExecutionMode::from(e.execution_mode.as_str())),
                execution_type: Some(standard()),
                rollback_metadata: None,
            })
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
            None => self
                .engine
                .executions(&ctx.account, &ctx.region, name)
                .await?
                .into_iter()
                .map(|(e, _)| e)
                .collect(),
        };
        let artifacts = |list: &Vec<codeyard_core::hub::ArtifactLocation>| -> Vec<cp::ArtifactDetail> {
            list.iter()
                .map(|a| cp::ArtifactDetail {
                    name: Some(a.name.clone()),
                    s3location: Some(cp::S3Location { bucket: Some(a.bucket.clone()), key: Some(a.key.clone()) }),
                })
                .collect()
        };
        let mut details: Vec<(Timestamp, cp::ActionExecutionDetail)> = Vec::new();
        for e in &execs {
            for r in &e.runs {
                let Some(decl) = e
                    .declaration
                    .stages
                    .iter()
                    .find(|s| s.name == r.stage)
                    .and_then(|s| s.actions.iter().find(|a| a.name == r.action))
                else {
                    continue;
                };
                let output_variables = (decl.namespace.is_some() && !r.output_variables.is_empty())
                    .then(|| r.output_variables.clone());
                let detail = cp::ActionExecutionDetail {
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
                        region: Some(decl.region.clone().unwrap_or_else(|| ctx.region.clone())),
                        input_artifacts: Some(artifacts(&r.input_artifacts)),
                        namespace: decl.namespace.clone(),
                    }),
                    output: Some(cp::ActionExecutionOutput {
                        output_artifacts: Some(if r.status == Status::Succeeded {
                            artifacts(&r.output_artifacts)
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
                };
                details.push((r.start_time, detail));
            }
        }
        details.sort_by_key(|d| std::cmp::Reverse(d.0));
        let details = details.into_iter().map(|(_, d)| d).collect();
        let (list, next_token) = page(details, input.next_token.as_deref(), input.max_results, 100)?;
        Ok(cp::ListActionExecutionsOutput { action_execution_details: Some(list), next_token })
    }

    pub(super) async fn state(
        &self,
        ctx: &RequestContext,
        input: cp::GetPipelineStateInput,
    ) -> AwsResult<cp::GetPipelineStateOutput> {
        let name = input.name.as_str();
        let (doc, _) = self.load(ctx, name).await?;
        let execs: Vec<Execution> = self
            .engine
            .executions(&ctx.account, &ctx.region, name)
            .await?
            .into_iter()
            .map(|(e, _)| e)
            .collect();
        let mut stages = Vec::new();
        for (i, s) in doc.declaration.stages.iter().enumerate() {
            let mut st = cp::StageState { stage_name: Some(s.name.clone()), ..Default::default() };
            if i > 0 {
                let t = doc.transitions.get(&s.name).cloned().unwrap_or(Transition {
                    enabled: true,
                    ..Default::default()
                });
                st.inbound_transition_state = Some(cp::TransitionState {
                    enabled: Some(t.enabled),
                    last_changed_by: t.last_changed_by,
                    last_changed_at: t.last_changed_at.as_ref().map(ts),
                    disabled_reason: t.disabled_reason,
                });
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
                    state.latest_execution = Some(cp::ActionExecution {
                        action_execution_id: Some(r.action_execution_id.clone()),
                        status: Some(cp::ActionExecutionStatus::from(r.status.as_str())),
                        summary: r.summary.clone().or(r.error_message.clone()),
                        last_status_change: Some(ts(&r.last_update_time)),
                        token: if r.status == Status::InProgress { r.token.clone() } else { None },
                        external_execution_id: r.external_execution_id.clone(),
                        external_execution_url: r.external_execution_url.clone(),
                        error_details: error_details(r),
                        ..Default::default()
                    });
                    if let Some(sr) = e.source_revisions.iter().find(|x| x.action_name == a.name) {
                        state.current_revision = Some(cp::ActionRevision {
                            revision_id: sr.revision_id.clone(),
                            revision_change_id: sr.revision_id.chars().take(100).collect::<String>(),
                            created: ts(&r.last_update_time),
                        });
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

fn trigger(e: &Execution) -> cp::ExecutionTrigger {
    cp::ExecutionTrigger {
        trigger_type: Some(cp::TriggerType::from(e.trigger_type.as_str())),
        trigger_detail: Some(e.trigger_detail.clone()),
    }
}

/// codeyard runs every execution as AWS's STANDARD type (no rollbacks).
fn standard() -> cp::ExecutionType {
    cp::ExecutionType::from("STANDARD")
}

fn stage_execution(id: &str, status: &str) -> cp::StageExecution {
    cp::StageExecution {
        pipeline_execution_id: id.to_string(),
        status: cp::StageExecutionStatus::from(status),
        r#type: Some(standard()),
    }
}

fn error_details(r: &crate::model::ActionRun) -> Option<cp::ErrorDetails> {
    r.error_message
        .as_ref()
        .map(|m| cp::ErrorDetails { code: r.error_code.clone(), message: Some(m.clone()) })
}
