//! What CodeBuild offers other services through the hub: builds for CodePipeline's CodeBuild
//! action ([`PipelineBuilds`]) and projects as EventBridge targets ([`ProjectTarget`]).

use crate::build::PipelineContext;
use crate::runner::Engine;
use async_trait::async_trait;
use codeyard_api::codebuild::{EnvironmentVariable, EnvironmentVariableType, StartBuildInput};
use codeyard_core::hub::{
    BuildOutcome, BuildRunner, PipelineBuildRequest, TargetInvocation, TargetInvoker,
};
use codeyard_core::{AccessRequest, AwsError, AwsResult, RequestContext, arn::Arn};
use serde_json::{Value, json};
use std::sync::Arc;

pub struct PipelineBuilds {
    pub engine: Arc<Engine>,
}

/// Asks IAM whether the context's caller may do `action` on the project a build or project
/// name names (`<project>:<uuid>` or `<project>`), with CodeBuild's AccessDeniedException.
pub(crate) async fn authorize_project(engine: &Engine, ctx: &RequestContext, action: &str, name: &str) -> AwsResult<()> {
    let project = match name.starts_with("arn:") {
        true => crate::project::name_of(name),
        false => name.split(':').next().unwrap_or(name),
    };
    let arn = crate::project::project_arn(&ctx.region, &ctx.account, project);
    engine
        .platform
        .hub
        .authorize(ctx, &AccessRequest::new(action, arn))
        .await
        .map_err(|d| d.to_error("AccessDeniedException"))
}

#[async_trait]
impl BuildRunner for PipelineBuilds {
    async fn start_pipeline_build(
        &self,
        ctx: &RequestContext,
        request: PipelineBuildRequest,
    ) -> AwsResult<BuildOutcome> {
        let vars = request
            .environment_variables
            .iter()
            .map(|(n, v, t)| EnvironmentVariable {
                name: n.clone(),
                value: v.clone(),
                r#type: Some(EnvironmentVariableType::from(t.as_str())),
            })
            .collect();
        let input = StartBuildInput {
            project_name: request.project_name.clone(),
            environment_variables_override: Some(vars),
            buildspec_override: request.buildspec_override.clone(),
            ..Default::default()
        };
        authorize_project(&self.engine, ctx, "codebuild:StartBuild", &request.project_name).await?;
        let pipeline = PipelineContext {
            inputs: request.inputs.clone(),
            outputs: request.outputs.clone(),
            source_revision: request.source_revision.clone(),
        };
        let b = self
            .engine
            .start(ctx, &input, Some(pipeline), &request.initiator)
            .await?;
        Ok(b.outcome())
    }

    async fn build_outcome(&self, ctx: &RequestContext, build_id: &str) -> AwsResult<BuildOutcome> {
        authorize_project(&self.engine, ctx, "codebuild:BatchGetBuilds", build_id).await?;
        match self
            .engine
            .load_build(&ctx.account, &ctx.region, build_id)
            .await?
        {
            Some(b) => Ok(b.outcome()),
            None => Err(crate::error::CodeBuildError::BuildNotFound(build_id.to_string()).into()),
        }
    }

    async fn stop_build(&self, ctx: &RequestContext, build_id: &str) -> AwsResult<()> {
        authorize_project(&self.engine, ctx, "codebuild:StopBuild", build_id).await?;
        self.engine.stop(build_id).await;
        Ok(())
    }
}

/// StartBuild members an event's (transformed) input may carry, as on AWS.
const OVERRIDES: &[&str] = &[
    "sourceVersion",
    "artifactsOverride",
    "secondaryArtifactsOverride",
    "environmentVariablesOverride",
    "sourceTypeOverride",
    "sourceLocationOverride",
    "gitCloneDepthOverride",
    "buildspecOverride",
    "secondarySourcesOverride",
    "secondarySourcesVersionOverride",
    "timeoutInMinutesOverride",
    "queuedTimeoutInMinutesOverride",
    "imageOverride",
    "computeTypeOverride",
    "environmentTypeOverride",
    "privilegedModeOverride",
    "cacheOverride",
    "serviceRoleOverride",
    "logsConfigOverride",
];

pub struct ProjectTarget {
    pub engine: Arc<Engine>,
}

#[async_trait]
impl TargetInvoker for ProjectTarget {
    async fn invoke(&self, inv: &TargetInvocation) -> AwsResult<String> {
        let arn = Arn::parse(&inv.target_arn).ok_or_else(|| {
            AwsError::validation(format!("invalid target ARN {}", inv.target_arn))
        })?;
        let mut input = json!({"projectName": arn.resource_name()});
        if let Value::Object(given) = &inv.input {
            for k in OVERRIDES {
                if let Some(v) = given.get(*k) {
                    input[*k] = v.clone();
                }
            }
        }
        // The event's input did not pass the wire: the model checks it here.
        let input = crate::overrides::validated_input(input)?;
        let ctx = inv.context();
        authorize_project(&self.engine, &ctx, "codebuild:StartBuild", arn.resource_name()).await?;
        let rule = inv.rule_arn.rsplit('/').next().unwrap_or("rule");
        let b = self
            .engine
            .start(&ctx, &input, None, &format!("events/{rule}"))
            .await?;
        Ok(b.id)
    }
}
