//! The ECS (standard) deploy action (`ClusterName`, `ServiceName`, `FileName` default
//! `imagedefinitions.json`): reads `[{"name", "imageUri"}]` from the input artifact, has ECS
//! register a revision of the service's task definition with those images and update the
//! service ([`ServiceDeployer`]), and succeeds only when that deployment's rollout is
//! COMPLETED (the new tasks run and the old ones are gone); a FAILED rollout fails the action
//! with ECS's reason. The deployment id is checkpointed, so a restart follows it.
//!
//! [`ServiceDeployer`]: codeyard_core::hub::ServiceDeployer

use super::{ActionCall, ActionHost, ActionOutcome, Scratch, config, s3_denied, unzip};
use crate::model::ActionRun;
use codeyard_core::hub::{ServiceDeployRequest, ServiceDeploymentState};
use codeyard_core::{AwsError, AwsResult, RequestContext};
use serde::Deserialize;
use std::time::{Duration, Instant};

/// The longest pause between two looks at the deployment: a rollout completes when its tasks
/// have run for a few seconds, and a look is one read of the service.
const MAX_POLL: Duration = Duration::from_millis(500);

#[derive(Deserialize)]
struct ImageDefinition {
    name: String,
    #[serde(rename = "imageUri")]
    image_uri: String,
}

/// ECS refused the role.
fn ecs_error(e: AwsError) -> AwsError {
    match e.status {
        403 => AwsError::client(
            "JobFailed",
            format!(
                "The provided role does not have sufficient permissions to access ECS: {}",
                e.message
            ),
        ),
        _ => AwsError::client("JobFailed", e.message),
    }
}

async fn image_definitions(
    host: &dyn ActionHost,
    ctx: &RequestContext,
    run: &ActionRun,
    file: &str,
) -> AwsResult<Result<Vec<(String, String)>, String>> {
    let objects = host.platform().hub.objects()?;
    let input = run
        .input_artifacts
        .first()
        .ok_or_else(|| AwsError::internal("deploy action without input artifact"))?;
    let zip = Scratch::new(host, ".zip")?;
    objects
        .get_object_to_file(ctx, &input.bucket, &input.key, None, &zip.0)
        .await
        .map_err(s3_denied)?;
    let dir = Scratch::new(host, ".d")?;
    let files = unzip(&zip.0, &dir.0).await?;
    if !files.iter().any(|f| f == file) {
        return Ok(Err(format!(
            "Exception while trying to read the image artifact file. Please make sure that the file {file} exists in the artifact {}",
            input.name
        )));
    }
    let text = std::fs::read_to_string(dir.0.join(file))?;
    match serde_json::from_str::<Vec<ImageDefinition>>(&text) {
        Ok(list) if !list.is_empty() => Ok(Ok(list
            .into_iter()
            .map(|d| (d.name, d.image_uri))
            .collect())),
        Ok(_) => Ok(Err(format!(
            "Image definitions file {file} does not contain any image definitions"
        ))),
        Err(e) => {
            tracing::debug!(file, artifact = %input.name, error = %e, "image definitions do not parse");
            Ok(Err(format!(
                "The image definition file {file} contains invalid JSON format"
            )))
        }
    }
}

pub async fn run(call: &ActionCall<'_>) -> AwsResult<ActionOutcome> {
    let ActionCall { host, ref ctx, run, resume, .. } = *call;
    let deployer = host.platform().hub.service_deployer()?;
    let cluster = config(run, "ClusterName").unwrap_or_default().to_string();
    let service = config(run, "ServiceName").unwrap_or_default().to_string();
    let file = config(run, "FileName")
        .filter(|f| !f.is_empty())
        .unwrap_or("imagedefinitions.json")
        .to_string();
    let timeout_minutes: u64 = config(run, "DeploymentTimeout")
        .and_then(|t| t.parse().ok())
        .unwrap_or(60);
    let url = format!(
        "https://{0}.console.aws.amazon.com/ecs/v2/clusters/{cluster}/services/{service}/deployments?region={0}",
        ctx.region
    );
    let deployment_id = match (&run.external_execution_id, resume) {
        (Some(id), true) => id.clone(),
        _ => {
            let images = match image_definitions(host, ctx, run, &file).await? {
                Ok(images) => images,
                Err(message) => return Ok(ActionOutcome::failed(message)),
            };
            let request = ServiceDeployRequest {
                cluster: cluster.clone(),
                service: service.clone(),
                images,
            };
            let started = deployer
                .deploy_images(ctx, &request)
                .await
                .map_err(ecs_error)?;
            host.checkpoint(call, &started.deployment_id, Some(url.clone())).await?;
            started.deployment_id
        }
    };
    let deadline = Instant::now() + Duration::from_secs(timeout_minutes * 60);
    let mut wait = host.build_poll();
    loop {
        match deployer
            .deployment_state(ctx, &cluster, &service, &deployment_id)
            .await
            .map_err(ecs_error)?
        {
            ServiceDeploymentState::Completed => {
                return Ok(ActionOutcome {
                    succeeded: true,
                    summary: Some(format!(
                        "Deployment {deployment_id} of service {service} in cluster {cluster} completed"
                    )),
                    external_id: Some(deployment_id),
                    external_url: Some(url),
                    ..Default::default()
                });
            }
            ServiceDeploymentState::Failed(reason) => {
                let mut out = ActionOutcome::failed(format!(
                    "Deployment {deployment_id} of service {service} failed. {reason}"
                ));
                out.external_id = Some(deployment_id);
                out.external_url = Some(url);
                return Ok(out);
            }
            ServiceDeploymentState::InProgress => {}
        }
        if Instant::now() > deadline {
            return Ok(ActionOutcome::failed(format!(
                "The deployment {deployment_id} of service {service} timed out after {timeout_minutes} minutes"
            )));
        }
        if host.platform().shutdown.is_cancelled() {
            // Left InProgress on purpose: the next start follows the deployment again.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 3 / 2).min(MAX_POLL);
    }
}
