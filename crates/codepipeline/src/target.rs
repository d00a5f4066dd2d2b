//! The pipeline as an EventBridge target: a matched rule starts an execution with trigger
//! `CloudWatchEvent` and the rule's ARN as trigger detail. When the event is CodeCommit's
//! "Repository State Change" for the branch a source action follows, the execution takes the
//! pushed commit (not whatever the branch points at when the action runs); for ECR's "ECR Image
//! Action" push of the image an ECR source action follows, the pushed digest; for S3's
//! "Object Created" of the object an S3 source action follows, the uploaded version.

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
        let overrides = event_revisions(&pipe.declaration, &inv.input);
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

/// Source action -> revision the event names, for the source actions of the first stage the
/// event is about: a CodeCommit push on the branch an action follows (the pushed commit), an
/// ECR "Image Action" push of the repository and tag (the pushed digest, not the tag's later
/// image), an S3 "Object Created" of the bucket and key (the uploaded version; an unversioned
/// bucket's event has none, and the action then reads the object as it is).
pub(crate) fn event_revisions(decl: &crate::model::PipelineDeclaration, event: &Value) -> BTreeMap<String, String> {
    let detail = event.get("detail").unwrap_or(&Value::Null);
    let at = |path: &str| detail.pointer(path).and_then(Value::as_str);
    // The event's field at `path` is the action's configured `value` (which must be set).
    let is = |path: &str, value: Option<&str>| value.is_some() && at(path) == value;
    let detail_type = event.get("detail-type").and_then(Value::as_str);
    let mut out = BTreeMap::new();
    for a in decl.stages.first().map(|s| s.actions.as_slice()).unwrap_or_default() {
        let revision = match a.action_type_id.provider.as_str() {
            "CodeCommit" if is("/repositoryName", a.config("RepositoryName")) && is("/referenceName", a.config("BranchName")) => {
                at("/commitId")
            }
            "ECR" if at("/action-type") == Some("PUSH")
                && is("/repository-name", a.config("RepositoryName"))
                && is("/image-tag", Some(a.config("ImageTag").filter(|t| !t.is_empty()).unwrap_or("latest"))) =>
            {
                at("/image-digest")
            }
            "S3" if detail_type == Some("Object Created")
                && is("/bucket/name", a.config("S3Bucket"))
                && is("/object/key", a.config("S3ObjectKey")) =>
            {
                at("/object/version-id")
            }
            _ => None,
        };
        if let Some(r) = revision {
            out.insert(a.name.clone(), r.to_string());
        }
    }
    out
}
