//! The CodePipeline API (awsJson1.1, `CodePipeline_20150709.*`): a thin adapter from JSON to
//! the domain ([`crate::validate`], [`crate::engine`]) and back, in AWS's member names.

use crate::action_types::{self, CATALOG};
use crate::engine::{self, Engine, StartRequest, ns};
use crate::model::{Execution, PipelineDeclaration, PipelineDoc, Transition, status};
use crate::{doctor, validate};
use async_trait::async_trait;
use codeyard_core::time::{Timestamp, epoch_json, now};
use codeyard_core::{AwsError, AwsResult, RequestContext, arn::Arn};
use codeyard_store::{Batch, Expect, StateStoreExt};
use codeyard_wire::{AwsService, opt_str, str_of};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct CodePipelineService {
    pub engine: Arc<Engine>,
}

const OPERATIONS: &[&str] = &[
    "CreatePipeline",
    "GetPipeline",
    "UpdatePipeline",
    "DeletePipeline",
    "ListPipelines",
    "StartPipelineExecution",
    "StopPipelineExecution",
    "GetPipelineState",
    "GetPipelineExecution",
    "ListPipelineExecutions",
    "ListActionExecutions",
    "RetryStageExecution",
    "PutApprovalResult",
    "EnableStageTransition",
    "DisableStageTransition",
    "ListActionTypes",
    "GetActionType",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
];

fn ts(t: &Timestamp) -> Value {
    epoch_json(t)
}

pub fn pipeline_not_found(account: &str, name: &str) -> AwsError {
    AwsError::client(
        "PipelineNotFoundException",
        format!("Account '{account}' does not have a pipeline with name '{name}'"),
    )
}

/// Drops null members so answers carry only what is known (the model has no nullable members).
fn compact(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, compact(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(compact).collect()),
        other => other,
    }
}

/// A page of `items` from an index-valued `nextToken`.
fn page(
    items: Vec<Value>,
    input: &Value,
    default_max: usize,
) -> AwsResult<(Vec<Value>, Option<String>)> {
    let start = match opt_str(input, "nextToken") {
        Some(t) => t.parse::<usize>().map_err(|_| {
            AwsError::client("InvalidNextTokenException", "The next token is not valid")
        })?,
        None => 0,
    };
    let max = input
        .get("maxResults")
        .and_then(Value::as_u64)
        .map(|m| m as usize)
        .unwrap_or(default_max)
        .max(1);
    let end = (start + max).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items.into_iter().skip(start).take(max).collect(), next))
}

fn parse_tags(input: &Value) -> AwsResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for t in input
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = str_of(t, "key").to_string();
        if key.starts_with("aws:") {
            return Err(AwsError::client(
                "InvalidTagsException",
                "Tag keys starting with 'aws:' are reserved",
            ));
        }
        out.push((key, str_of(t, "value").to_string()));
    }
    Ok(out)
}

fn tags_json(tags: &BTreeMap<String, String>) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

impl CodePipelineService {
    fn store(&self) -> &codeyard_store::SharedStore {
        &self.engine.platform.store
    }

    async fn load(&self, ctx: &RequestContext, name: &str) -> AwsResult<(PipelineDoc, i64)> {
        self.engine
            .pipeline(&ctx.account, &ctx.region, name)
            .await?
            .ok_or_else(|| pipeline_not_found(&ctx.account, name))
    }

    fn declaration(input: &Value) -> AwsResult<PipelineDeclaration> {
        let mut decl: PipelineDeclaration = serde_json::from_value(
            input.get("pipeline").cloned().unwrap_or(Value::Null),
        )
        .map_err(|e| AwsError::validation(format!("The pipeline declaration is not valid: {e}")))?;
        decl.execution_mode
            .get_or_insert_with(|| "SUPERSEDED".into());
        decl.pipeline_type.get_or_insert_with(|| "V1".into());
        validate::pipeline(&decl)?;
        Ok(decl)
    }

    async fn create(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let mut decl = Self::declaration(&input)?;
        decl.version = Some(1);
        let tags = parse_tags(&input)?;
        if tags.len() > 50 {
            return Err(AwsError::client(
                "TooManyTagsException",
                "A pipeline can have at most 50 tags",
            ));
        }
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
        let batch = Batch::new()
            .put(
                ns(&ctx.account, &ctx.region, "pipelines"),
                &decl.name,
                &doc,
                Expect::Absent,
            )
            .put(
                ns(&ctx.account, &ctx.region, "pipeline-versions"),
                format!("{}/1", decl.name),
                &decl,
                Expect::Any,
            );
        if let Err(codeyard_store::StoreError::Conflict(..)) = self.store().commit(batch).await {
            return Err(AwsError::client(
                "PipelineNameInUseException",
                format!(
                    "A pipeline with the name '{}' already exists in account '{}'",
                    decl.name, ctx.account
                ),
            ));
        }
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
        doctor::warn_later(
            self.engine.clone(),
            ctx.account.clone(),
            ctx.region.clone(),
            decl.name.clone(),
        );
        Ok(json!({"pipeline": decl, "tags": tags_json(&doc.tags)}))
    }

    async fn update(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let mut decl = Self::declaration(&input)?;
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
        let batch = Batch::new()
            .put(
                ns(&ctx.account, &ctx.region, "pipelines"),
                &decl.name,
                &doc,
                Expect::Version(version),
            )
            .put(
                ns(&ctx.account, &ctx.region, "pipeline-versions"),
                format!("{}/{next}", decl.name),
                &decl,
                Expect::Any,
            );
        self.store().commit(batch).await?;
        doctor::warn_later(
            self.engine.clone(),
            ctx.account.clone(),
            ctx.region.clone(),
            decl.name.clone(),
        );
        Ok(json!({"pipeline": decl}))
    }

    async fn delete(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let name = str_of(&input, "name");
        let _guard = self.engine.lock(&ctx.account, &ctx.region, name).await;
        let (_, version) = self.load(ctx, name).await?;
        let mut batch = Batch::new().delete(
            ns(&ctx.account, &ctx.region, "pipelines"),
            name,
            Expect::Version(version),
        );
        let exec_ns = ns(&ctx.account, &ctx.region, "executions");
        for d in self
            .store()
            .list(&exec_ns, &format!("{name}/"), None, 100_000)
            .await?
        {
            batch = batch.delete(&exec_ns, d.key, Expect::Any);
        }
        let ver_ns = ns(&ctx.account, &ctx.region, "pipeline-versions");
        for d in self
            .store()
            .list(&ver_ns, &format!("{name}/"), None, 100_000)
            .await?
        {
            batch = batch.delete(&ver_ns, d.key, Expect::Any);
        }
        self.store().commit(batch).await?;
        Ok(json!({}))
    }

    async fn get(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let name = str_of(&input, "name");
        let (doc, _) = self.load(ctx, name).await?;
        let mut decl = doc.declaration.clone();
        if let Some(v) = input.get("version").and_then(Value::as_i64)
            && Some(v) != decl.version
        {
            decl = self
                .store()
                .get_as::<PipelineDeclaration>(
                    &ns(&ctx.account, &ctx.region, "pipeline-versions"),
                    &format!("{name}/{v}"),
                )
                .await?
                .map(|(d, _)| d)
                .ok_or_else(|| {
                    AwsError::client(
                        "PipelineVersionNotFoundException",
                        format!("Pipeline {name} has no version {v}"),
                    )
                })?;
        }
        Ok(json!({
            "pipeline": decl,
            "metadata": {"pipelineArn": doc.arn, "created": ts(&doc.created), "updated": ts(&doc.updated)},
        }))
    }

    async fn list(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let docs: Vec<PipelineDoc> = self
            .store()
            .list_all_as(&ns(&ctx.account, &ctx.region, "pipelines"))
            .await?;
        let items = docs
            .iter()
            .map(|d| {
                json!({
                    "name": d.declaration.name,
                    "version": d.declaration.version.unwrap_or(1),
                    "pipelineType": d.declaration.pipeline_type(),
                    "executionMode": d.declaration.execution_mode(),
                    "created": ts(&d.created),
                    "updated": ts(&d.updated),
                })
            })
            .collect();
        let (pipelines, next) = page(items, &input, 1000)?;
        Ok(compact(json!({"pipelines": pipelines, "nextToken": next})))
    }

    async fn start(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let name = str_of(&input, "name");
        let (doc, _) = self.load(ctx, name).await?;
        let variables: Vec<(String, String)> = input
            .get("variables")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|v| {
                (
                    str_of(v, "name").to_string(),
                    str_of(v, "value").to_string(),
                )
            })
            .collect();
        if !variables.is_empty() && doc.declaration.pipeline_type() != "V2" {
            return Err(AwsError::validation(
                "Pipeline variables are only supported for pipelines of type V2",
            ));
        }
        let mut overrides = BTreeMap::new();
        for o in input
            .get("sourceRevisions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let action = str_of(o, "actionName");
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
            let kind = str_of(o, "revisionType");
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
            overrides.insert(action.to_string(), str_of(o, "revisionValue").to_string());
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
                    client_request_token: opt_str(&input, "clientRequestToken"),
                },
            )
            .await?;
        Ok(json!({"pipelineExecutionId": id}))
    }

    async fn stop(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let name = str_of(&input, "pipelineName");
        self.load(ctx, name).await?;
        let id = str_of(&input, "pipelineExecutionId");
        let abandon = input
            .get("abandon")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let reason = opt_str(&input, "reason");
        self.engine
            .update_execution(&ctx.account, &ctx.region, name, id, |e, evs| {
                engine::request_stop(e, abandon, reason, evs)
            })
            .await?;
        Ok(json!({"pipelineExecutionId": id}))
    }

    async fn execution(&self, ctx: &RequestContext, name: &str, id: &str) -> AwsResult<Execution> {
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

    async fn get_execution(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let e = self
            .execution(
                ctx,
                str_of(&input, "pipelineName"),
                str_of(&input, "pipelineExecutionId"),
            )
            .await?;
        let artifact_revisions: Vec<Value> = e
            .artifacts
            .iter()
            .filter(|(_, a)| a.revision.is_some())
            .map(|(name, a)| {
                json!({
                    "name": name,
                    "revisionId": a.revision,
                    "revisionChangeIdentifier": a.revision.as_ref().map(|r| r.chars().take(100).collect::<String>()),
                    "revisionSummary": a.revision_summary,
                    "created": ts(&a.created),
                    "revisionUrl": a.revision_url,
                })
            })
            .collect();
        let variables: Vec<Value> = e
            .variables
            .iter()
            .map(|(n, v)| json!({"name": n, "resolvedValue": v}))
            .collect();
        Ok(compact(json!({"pipelineExecution": {
            "pipelineName": e.pipeline,
            "pipelineVersion": e.pipeline_version,
            "pipelineExecutionId": e.id,
            "status": e.status,
            "statusSummary": e.status_summary,
            "artifactRevisions": artifact_revisions,
            "variables": variables,
            "trigger": {"triggerType": e.trigger_type, "triggerDetail": e.trigger_detail},
            "executionMode": e.execution_mode,
            "executionType": "STANDARD",
        }})))
    }

    async fn list_executions(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let name = str_of(&input, "pipelineName");
        self.load(ctx, name).await?;
        let succeeded_in = input
            .pointer("/filter/succeededInStage/stageName")
            .and_then(Value::as_str);
        let mut execs = self
            .engine
            .executions(&ctx.account, &ctx.region, name)
            .await?;
        execs.reverse();
        let items = execs
            .iter()
            .map(|(e, _)| e)
            .filter(|e| succeeded_in.is_none_or(|s| e.stage(s).status.as_deref() == Some(status::SUCCEEDED)))
            .map(|e| {
                let revisions: Vec<Value> = e
                    .source_revisions
                    .iter()
                    .map(|s| {
                        json!({"actionName": s.action_name, "revisionId": s.revision_id,
                               "revisionSummary": s.revision_summary, "revisionUrl": s.revision_url})
                    })
                    .collect();
                compact(json!({
                    "pipelineExecutionId": e.id,
                    "status": e.status,
                    "statusSummary": e.status_summary,
                    "startTime": ts(&e.start_time),
                    "lastUpdateTime": ts(&e.last_update_time),
                    "sourceRevisions": revisions,
                    "trigger": {"triggerType": e.trigger_type, "triggerDetail": e.trigger_detail},
                    "stopTrigger": e.stop.as_ref().map(|s| json!({"reason": s.reason.clone().unwrap_or_default()})),
                    "executionMode": e.execution_mode,
                    "executionType": "STANDARD",
                }))
            })
            .collect();
        let (list, next) = page(items, &input, 100)?;
        Ok(compact(
            json!({"pipelineExecutionSummaries": list, "nextToken": next}),
        ))
    }

    async fn list_action_executions(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let name = str_of(&input, "pipelineName");
        self.load(ctx, name).await?;
        let filter_id = input
            .pointer("/filter/pipelineExecutionId")
            .or_else(|| input.pointer("/filter/latestInPipelineExecution/pipelineExecutionId"))
            .and_then(Value::as_str);
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
        let mut details: Vec<(Timestamp, Value)> = Vec::new();
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
                let artifacts = |list: &Vec<codeyard_core::hub::ArtifactLocation>| -> Value {
                    Value::Array(
                        list.iter().map(|a| json!({"name": a.name, "s3location": {"bucket": a.bucket, "key": a.key}})).collect(),
                    )
                };
                let error = r
                    .error_message
                    .as_ref()
                    .map(|m| json!({"code": r.error_code, "message": m}));
                let output_variables = if decl.namespace.is_some() && !r.output_variables.is_empty()
                {
                    json!(r.output_variables)
                } else {
                    Value::Null
                };
                let detail = json!({
                    "pipelineExecutionId": e.id,
                    "actionExecutionId": r.action_execution_id,
                    "pipelineVersion": e.pipeline_version,
                    "stageName": r.stage,
                    "actionName": r.action,
                    "startTime": ts(&r.start_time),
                    "lastUpdateTime": ts(&r.last_update_time),
                    "status": r.status,
                    "input": {
                        "actionTypeId": decl.action_type_id,
                        "configuration": decl.configuration.clone().unwrap_or_default(),
                        "resolvedConfiguration": r.resolved_configuration,
                        "roleArn": decl.role_arn,
                        "region": decl.region.clone().unwrap_or_else(|| ctx.region.clone()),
                        "inputArtifacts": artifacts(&r.input_artifacts),
                        "namespace": decl.namespace,
                    },
                    "output": {
                        "outputArtifacts": if r.status == status::SUCCEEDED { artifacts(&r.output_artifacts) } else { json!([]) },
                        "executionResult": {
                            "externalExecutionId": r.external_execution_id,
                            "externalExecutionSummary": r.summary.clone().or(r.error_message.clone()),
                            "externalExecutionUrl": r.external_execution_url,
                            "errorDetails": error,
                        },
                        "outputVariables": output_variables,
                    },
                });
                details.push((r.start_time, compact(detail)));
            }
        }
        details.sort_by_key(|d| std::cmp::Reverse(d.0));
        let (list, next) = page(details.into_iter().map(|(_, v)| v).collect(), &input, 100)?;
        Ok(compact(
            json!({"actionExecutionDetails": list, "nextToken": next}),
        ))
    }

    async fn state(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let name = str_of(&input, "name");
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
            let mut st = Map::new();
            st.insert("stageName".into(), json!(s.name));
            if i > 0 {
                let t = doc.transitions.get(&s.name).cloned().unwrap_or(Transition {
                    enabled: true,
                    ..Default::default()
                });
                st.insert(
                    "inboundTransitionState".into(),
                    compact(json!({
                        "enabled": t.enabled,
                        "lastChangedBy": t.last_changed_by,
                        "lastChangedAt": t.last_changed_at.as_ref().map(ts),
                        "disabledReason": t.disabled_reason,
                    })),
                );
            }
            if let Some(e) = execs
                .iter()
                .rev()
                .find(|e| e.stage(&s.name).status.is_some())
            {
                st.insert(
                    "latestExecution".into(),
                    json!({"pipelineExecutionId": e.id, "status": e.stage(&s.name).status, "type": "STANDARD"}),
                );
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
                st.insert("inboundExecution".into(), json!({"pipelineExecutionId": e.id, "status": "InProgress", "type": "STANDARD"}));
                st.insert(
                    "inboundExecutions".into(),
                    Value::Array(
                        waiting.iter().map(|e| json!({"pipelineExecutionId": e.id, "status": "InProgress", "type": "STANDARD"})).collect(),
                    ),
                );
            }
            let mut actions = Vec::new();
            for a in &s.actions {
                let mut state = Map::new();
                state.insert("actionName".into(), json!(a.name));
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
                    let error = r
                        .error_message
                        .as_ref()
                        .map(|m| json!({"code": r.error_code, "message": m}));
                    state.insert(
                        "latestExecution".into(),
                        compact(json!({
                            "actionExecutionId": r.action_execution_id,
                            "status": r.status,
                            "summary": r.summary.clone().or(r.error_message.clone()),
                            "lastStatusChange": ts(&r.last_update_time),
                            "token": if r.status == status::IN_PROGRESS { r.token.clone() } else { None },
                            "externalExecutionId": r.external_execution_id,
                            "externalExecutionUrl": r.external_execution_url,
                            "errorDetails": error,
                        })),
                    );
                    if let Some(sr) = e.source_revisions.iter().find(|x| x.action_name == a.name) {
                        state.insert(
                            "currentRevision".into(),
                            json!({"revisionId": sr.revision_id, "revisionChangeId": sr.revision_id.chars().take(100).collect::<String>(), "created": ts(&r.last_update_time)}),
                        );
                        if let Some(u) = &sr.revision_url {
                            state.insert("revisionUrl".into(), json!(u));
                        }
                    }
                }
                actions.push(Value::Object(state));
            }
            st.insert("actionStates".into(), Value::Array(actions));
            stages.push(Value::Object(st));
        }
        Ok(json!({
            "pipelineName": name,
            "pipelineVersion": doc.declaration.version.unwrap_or(1),
            "stageStates": stages,
            "created": ts(&doc.created),
            "updated": ts(&doc.updated),
        }))
    }

    async fn retry(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let name = str_of(&input, "pipelineName");
        let stage = str_of(&input, "stageName");
        let id = str_of(&input, "pipelineExecutionId");
        let (doc, _) = self.load(ctx, name).await?;
        if !doc.declaration.stages.iter().any(|s| s.name == stage) {
            return Err(AwsError::client(
                "StageNotFoundException",
                format!("Stage {stage} does not exist in pipeline {name}"),
            ));
        }
        let all = str_of(&input, "retryMode") == "ALL_ACTIONS";
        let target = self.execution(ctx, name, id).await?;
        let newer_in_stage = self
            .engine
            .executions(&ctx.account, &ctx.region, name)
            .await?
            .iter()
            .any(|(e, _)| e.seq > target.seq && e.stage(stage).status.is_some());
        if newer_in_stage && target.execution_mode != "PARALLEL" {
            return Err(AwsError::client(
                "NotLatestPipelineExecutionException",
                format!("Execution {id} is not the latest execution of stage {stage}"),
            ));
        }
        self.engine
            .update_execution(&ctx.account, &ctx.region, name, id, |e, evs| {
                engine::retry_stage(e, stage, all, evs)
            })
            .await?;
        Ok(json!({"pipelineExecutionId": id}))
    }

    async fn approval(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let name = str_of(&input, "pipelineName");
        let stage = str_of(&input, "stageName");
        let action = str_of(&input, "actionName");
        let token = str_of(&input, "token");
        let (doc, _) = self.load(ctx, name).await?;
        let Some(sdecl) = doc.declaration.stages.iter().find(|s| s.name == stage) else {
            return Err(AwsError::client(
                "StageNotFoundException",
                format!("Stage {stage} does not exist in pipeline {name}"),
            ));
        };
        if !sdecl.actions.iter().any(|a| a.name == action) {
            return Err(AwsError::client(
                "ActionNotFoundException",
                format!("Action {action} does not exist in stage {stage}"),
            ));
        }
        let holder = self
            .engine
            .executions(&ctx.account, &ctx.region, name)
            .await?
            .into_iter()
            .map(|(e, _)| e)
            .find(|e| {
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
        let approved = str_of(input.get("result").unwrap_or(&Value::Null), "status") == "Approved";
        let summary = input
            .pointer("/result/summary")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let caller = ctx.caller_arn.clone();
        let at = now();
        self.engine
            .update_execution(&ctx.account, &ctx.region, name, &holder.id, |e, evs| {
                let run_id = e
                    .runs
                    .iter()
                    .find(|r| r.token.as_deref() == Some(token))
                    .map(|r| (r.action_execution_id.clone(), r.status.clone(), r.current));
                match run_id {
                    Some((id, st, true)) if st == status::IN_PROGRESS => {
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
        Ok(json!({"approvedAt": ts(&at)}))
    }

    async fn transition(
        &self,
        ctx: &RequestContext,
        input: Value,
        enable: bool,
    ) -> AwsResult<Value> {
        let name = str_of(&input, "pipelineName");
        let stage = str_of(&input, "stageName");
        let _guard = self.engine.lock(&ctx.account, &ctx.region, name).await;
        let (mut doc, version) = self.load(ctx, name).await?;
        let Some(idx) = doc.declaration.stages.iter().position(|s| s.name == stage) else {
            return Err(AwsError::client(
                "StageNotFoundException",
                format!("Stage {stage} does not exist in pipeline {name}"),
            ));
        };
        // The outbound transition of a stage is the inbound transition of the next one.
        let target = if str_of(&input, "transitionType") == "Outbound" {
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
                disabled_reason: if enable {
                    None
                } else {
                    opt_str(&input, "reason")
                },
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
        Ok(json!({}))
    }

    fn list_action_types(&self, input: Value) -> AwsResult<Value> {
        let owner = opt_str(&input, "actionOwnerFilter");
        let items: Vec<Value> = CATALOG
            .iter()
            .filter(|_| owner.as_deref().is_none_or(|o| o == "AWS"))
            .filter(|s| !action_types::not_yet_run(&s.id()))
            .map(|s| {
                json!({
                    "id": s.id(),
                    "settings": {},
                    "actionConfigurationProperties": s.properties.iter().map(|p| json!({
                        "name": p.name, "required": p.required, "key": p.key, "secret": false,
                        "queryable": false, "description": p.description, "type": "String",
                    })).collect::<Vec<_>>(),
                    "inputArtifactDetails": {"minimumCount": s.inputs.0, "maximumCount": s.inputs.1},
                    "outputArtifactDetails": {"minimumCount": s.outputs.0, "maximumCount": s.outputs.1},
                })
            })
            .collect();
        let (list, next) = page(items, &input, 1000)?;
        Ok(compact(json!({"actionTypes": list, "nextToken": next})))
    }

    fn get_action_type(&self, input: Value) -> AwsResult<Value> {
        let id = crate::model::ActionTypeId {
            category: str_of(&input, "category").into(),
            owner: str_of(&input, "owner").into(),
            provider: str_of(&input, "provider").into(),
            version: str_of(&input, "version").into(),
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
        Ok(json!({"actionType": {
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
        }}))
    }

    /// The pipeline a resource ARN names (only pipelines are taggable here).
    async fn by_arn(&self, ctx: &RequestContext, input: &Value) -> AwsResult<(PipelineDoc, i64)> {
        let arn = str_of(input, "resourceArn");
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

    async fn tag(&self, ctx: &RequestContext, input: Value, add: bool) -> AwsResult<Value> {
        let (mut doc, version) = self.by_arn(ctx, &input).await?;
        if add {
            for (k, v) in parse_tags(&input)? {
                doc.tags.insert(k, v);
            }
            if doc.tags.len() > 50 {
                return Err(AwsError::client(
                    "TooManyTagsException",
                    "A pipeline can have at most 50 tags",
                ));
            }
        } else {
            for k in input
                .get("tagKeys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                doc.tags.remove(k.as_str().unwrap_or(""));
            }
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
        self.store().commit(batch).await.map_err(|_| {
            AwsError::client(
                "ConcurrentModificationException",
                "The pipeline changed while its tags were being updated",
            )
        })?;
        Ok(json!({}))
    }
}

#[async_trait]
impl AwsService for CodePipelineService {
    fn model_name(&self) -> &'static str {
        "codepipeline"
    }

    fn implemented(&self) -> &'static [&'static str] {
        OPERATIONS
    }

    async fn call(&self, ctx: &RequestContext, operation: &str, input: Value) -> AwsResult<Value> {
        match operation {
            "CreatePipeline" => self.create(ctx, input).await,
            "GetPipeline" => self.get(ctx, input).await,
            "UpdatePipeline" => self.update(ctx, input).await,
            "DeletePipeline" => self.delete(ctx, input).await,
            "ListPipelines" => self.list(ctx, input).await,
            "StartPipelineExecution" => self.start(ctx, input).await,
            "StopPipelineExecution" => self.stop(ctx, input).await,
            "GetPipelineState" => self.state(ctx, input).await,
            "GetPipelineExecution" => self.get_execution(ctx, input).await,
            "ListPipelineExecutions" => self.list_executions(ctx, input).await,
            "ListActionExecutions" => self.list_action_executions(ctx, input).await,
            "RetryStageExecution" => self.retry(ctx, input).await,
            "PutApprovalResult" => self.approval(ctx, input).await,
            "EnableStageTransition" => self.transition(ctx, input, true).await,
            "DisableStageTransition" => self.transition(ctx, input, false).await,
            "ListActionTypes" => self.list_action_types(input),
            "GetActionType" => self.get_action_type(input),
            "TagResource" => self.tag(ctx, input, true).await,
            "UntagResource" => self.tag(ctx, input, false).await,
            "ListTagsForResource" => {
                let (doc, _) = self.by_arn(ctx, &input).await?;
                Ok(json!({"tags": tags_json(&doc.tags)}))
            }
            other => Err(AwsError::unknown_operation("codepipeline", other)),
        }
    }
}
