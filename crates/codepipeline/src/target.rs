//! The pipeline as an EventBridge target: a matched rule starts an execution with trigger
//! `CloudWatchEvent` and the rule's ARN as trigger detail. When the event is CodeCommit's
//! "Repository State Change" for the branch a source action follows, the execution takes the
//! pushed commit (not whatever the branch points at when the action runs); for ECR's "ECR Image
//! Action" push of the image an ECR source action follows, the pushed digest.

use crate::engine::{Engine, StartRequest};
use crate::errors::pipeline_not_found;
use async_trait::async_trait;
use codeyard_core::arn::Arn;
use codeyard_core::hub::{TargetInvocation, TargetInvoker};
use codeyard_core::{AccessRequest, AwsError, AwsResult};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct PipelineTarget {
    pub engine: Arc<Engine>,
}

#[async_trait]
impl TargetInvoker for PipelineTarget {
    async fn invoke(&self, inv: &TargetInvocation) -> AwsResult<String> {
        let arn = Arn::parse(&inv.target_arn)
            .filter(|a| a.service == "codepipeline")
            .ok_or_else(|| {
                AwsError::client(
                    "InvalidArnException",
                    format!("{} is not a pipeline ARN", inv.target_arn),
                )
            })?;
        let account = if arn.account.is_empty() {
            inv.account.clone()
        } else {
            arn.account.clone()
        };
        let region = if arn.region.is_empty() {
            inv.region.clone()
        } else {
            arn.region.clone()
        };
        let name = arn.resource.clone();
        // The rule's role (when the target has one) must allow starting this pipeline.
        let ctx = inv.context();
        let pipeline_arn = codeyard_core::arn::arn("codepipeline", &region, &account, &name);
        self.engine
            .platform
            .hub
            .authorize(&ctx, &AccessRequest::new("codepipeline:StartPipelineExecution", pipeline_arn))
            .await
            .map_err(|d| d.to_error("AccessDeniedException"))?;
        let (pipe, _) = self
            .engine
            .pipeline(&account, &region, &name)
            .await?
            .ok_or_else(|| pipeline_not_found(&account, &name))?;
        let mut overrides = pushed_commits(&pipe.declaration, &inv.input);
        overrides.extend(pushed_images(&pipe.declaration, &inv.input));
        let id = self
            .engine
            .start_execution(
                &account,
                &region,
                &pipe,
                StartRequest {
                    trigger_type: "CloudWatchEvent".into(),
                    trigger_detail: inv.rule_arn.clone(),
                    revision_overrides: overrides,
                    ..Default::default()
                },
            )
            .await?;
        Ok(format!("pipeline execution {id}"))
    }
}

/// Source action -> commit, for a CodeCommit push event on a branch a source action follows.
fn pushed_commits(
    decl: &crate::model::PipelineDeclaration,
    event: &Value,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let detail = event.get("detail").unwrap_or(&Value::Null);
    let (Some(repo), Some(reference), Some(commit)) = (
        detail.get("repositoryName").and_then(Value::as_str),
        detail.get("referenceName").and_then(Value::as_str),
        detail.get("commitId").and_then(Value::as_str),
    ) else {
        return out;
    };
    for a in decl
        .stages
        .first()
        .map(|s| s.actions.as_slice())
        .unwrap_or_default()
    {
        if a.action_type_id.provider == "CodeCommit"
            && a.config("RepositoryName") == Some(repo)
            && a.config("BranchName") == Some(reference)
        {
            out.insert(a.name.clone(), commit.to_string());
        }
    }
    out
}

/// Source action -> image digest, for an ECR "Image Action" push of the repository and tag an
/// ECR source action follows (so the execution takes the pushed image, not the tag's later one).
fn pushed_images(
    decl: &crate::model::PipelineDeclaration,
    event: &Value,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let detail = event.get("detail").unwrap_or(&Value::Null);
    let field = |k: &str| detail.get(k).and_then(Value::as_str);
    let (Some("PUSH"), Some(repo), Some(digest)) = (field("action-type"), field("repository-name"), field("image-digest")) else {
        return out;
    };
    let tag = field("image-tag").unwrap_or_default();
    for a in decl.stages.first().map(|s| s.actions.as_slice()).unwrap_or_default() {
        let follows = a.config("ImageTag").filter(|t| !t.is_empty()).unwrap_or("latest");
        if a.action_type_id.provider == "ECR" && a.config("RepositoryName") == Some(repo) && follows == tag {
            out.insert(a.name.clone(), digest.to_string());
        }
    }
    out
}
