//! ECS as CodePipeline's ECS deploy action uses it (the hub's [`ServiceDeployer`]): a new
//! revision of the service's task definition with the images of `imagedefinitions.json`, the
//! service updated to it, and the deployment followed to its rollout state.

use crate::domain::Ecs;
use crate::errors::EcsError;
use crate::records::Scope;
use crate::records::*;
use async_trait::async_trait;
use codeyard_api::ecs::*;
use codeyard_core::hub::{
    Hub, ServiceDeployRequest, ServiceDeployer, ServiceDeployment, ServiceDeploymentState,
};
use codeyard_core::{AccessRequest, AwsResult, RequestContext};
use std::sync::Arc;

pub struct Deployer {
    pub ecs: Ecs,
    pub hub: Arc<Hub>,
}

impl Deployer {
    /// DescribeServices as the caller: the service of an ACTIVE cluster.
    async fn describe_service(
        &self,
        ctx: &RequestContext,
        s: &Scope,
        cluster: &str,
        name: &str,
    ) -> AwsResult<Service> {
        self.authorize(ctx, "ecs:DescribeServices", &s.service_arn(cluster, name))
            .await?;
        self.ecs.active_cluster(s, cluster).await?;
        let (svc, _) = self
            .ecs
            .service(s, cluster, name)
            .await?
            .ok_or(EcsError::ServiceNotFound)?;
        Ok(svc)
    }

    async fn authorize(&self, ctx: &RequestContext, action: &str, resource: &str) -> AwsResult<()> {
        self.hub
            .authorize(ctx, &AccessRequest::new(action, resource))
            .await
            .map_err(|d| d.to_error("AccessDeniedException"))
    }
}

/// The registration input that copies a task definition.
pub fn reregistration(
    td: &TaskDefinition,
    containers: Vec<ContainerDefinition>,
    tags: Vec<Tag>,
) -> RegisterTaskDefinitionRequest {
    RegisterTaskDefinitionRequest {
        family: td.family.clone().unwrap_or_default(),
        task_role_arn: td.task_role_arn.clone(),
        execution_role_arn: td.execution_role_arn.clone(),
        network_mode: td.network_mode.clone(),
        container_definitions: containers,
        volumes: td.volumes.clone(),
        placement_constraints: td.placement_constraints.clone(),
        requires_compatibilities: td.requires_compatibilities.clone(),
        cpu: td.cpu.clone(),
        memory: td.memory.clone(),
        tags: (!tags.is_empty()).then_some(tags),
        pid_mode: td.pid_mode.clone(),
        ipc_mode: td.ipc_mode.clone(),
        proxy_configuration: td.proxy_configuration.clone(),
        inference_accelerators: td.inference_accelerators.clone(),
        ephemeral_storage: td.ephemeral_storage.clone(),
        runtime_platform: td.runtime_platform.clone(),
        enable_fault_injection: td.enable_fault_injection,
    }
}

#[async_trait]
impl ServiceDeployer for Deployer {
    async fn deploy_images(
        &self,
        ctx: &RequestContext,
        request: &ServiceDeployRequest,
    ) -> AwsResult<ServiceDeployment> {
        let s = Scope::of(ctx);
        let cluster = cluster_name(Some(&request.cluster));
        let name = service_name(&request.service);
        let service_arn = s.service_arn(&cluster, &name);
        let svc = self.describe_service(ctx, &s, &cluster, &name).await?;
        if !is(&svc.status, ResourceStatus::Active) {
            return Err(EcsError::ServiceNotActive.into());
        }
        let current = svc.task_definition.clone().unwrap_or_default();
        self.authorize(ctx, "ecs:DescribeTaskDefinition", "*")
            .await?;
        let (rec, _) = self.ecs.task_definition(&s, &current).await?;
        let mut containers = rec
            .definition
            .container_definitions
            .clone()
            .unwrap_or_default();
        for (container, image) in &request.images {
            match containers
                .iter_mut()
                .find(|c| c.name.as_deref() == Some(container.as_str()))
            {
                Some(c) => c.image = Some(image.clone()),
                None => {
                    return Err(EcsError::Client(format!(
                        "The container {container} does not exist in the task definition."
                    ))
                    .into());
                }
            }
        }
        let family = rec.definition.family.clone().unwrap_or_default();
        self.authorize(ctx, "ecs:RegisterTaskDefinition", "*")
            .await?;
        for role in [
            &rec.definition.task_role_arn,
            &rec.definition.execution_role_arn,
        ]
        .into_iter()
        .flatten()
        {
            self.authorize(ctx, "iam:PassRole", role).await?;
        }
        let input = reregistration(&rec.definition, containers, rec.tags.clone());
        let new = self
            .ecs
            .register_task_definition(&s, &ctx.caller_arn, input)
            .await?;
        let td_arn = new
            .definition
            .task_definition_arn
            .clone()
            .unwrap_or_default();
        self.authorize(ctx, "ecs:UpdateService", &service_arn)
            .await?;
        let updated = self
            .ecs
            .update_service(
                &s,
                UpdateServiceRequest {
                    cluster: Some(cluster.clone()),
                    service: name.clone(),
                    task_definition: Some(td_arn.clone()),
                    force_new_deployment: Some(true),
                    ..Default::default()
                },
            )
            .await?;
        let deployment_id = updated
            .deployments
            .as_ref()
            .and_then(|d| d.first())
            .and_then(|d| d.id.clone())
            .unwrap_or_default();
        tracing::info!(service = %name, family = %family, deployment = %deployment_id, "ecs: deploying new images");
        Ok(ServiceDeployment {
            deployment_id,
            service_arn,
            task_definition_arn: td_arn,
        })
    }

    async fn deployment_state(
        &self,
        ctx: &RequestContext,
        cluster: &str,
        service: &str,
        deployment_id: &str,
    ) -> AwsResult<ServiceDeploymentState> {
        let s = Scope::of(ctx);
        let cluster = cluster_name(Some(cluster));
        let name = service_name(service);
        let svc = self.describe_service(ctx, &s, &cluster, &name).await?;
        if !is(&svc.status, ResourceStatus::Active) {
            return Ok(ServiceDeploymentState::Failed(format!(
                "The ECS service {name} is {}",
                svc.status.unwrap_or_default()
            )));
        }
        let deployments = svc.deployments.clone().unwrap_or_default();
        let Some(d) = deployments
            .iter()
            .find(|d| d.id.as_deref() == Some(deployment_id))
        else {
            return Ok(ServiceDeploymentState::Failed(format!(
                "The ECS deployment {deployment_id} of service {name} was replaced by another deployment"
            )));
        };
        Ok(match d.rollout_state {
            Some(DeploymentRolloutState::Completed) => ServiceDeploymentState::Completed,
            Some(DeploymentRolloutState::Failed) => {
                // The reason of the deployment's last failed task, as the console shows it.
                let tasks = self.ecs.tasks(&s, &cluster).await?;
                let last = tasks
                    .iter()
                    .filter(|t| {
                        t.started_by.as_deref() == Some(deployment_id) && t.stopped_reason.is_some()
                    })
                    .max_by_key(|t| t.stopped_at)
                    .map(|t| {
                        let exit = t
                            .containers
                            .iter()
                            .flatten()
                            .find_map(|c| c.exit_code)
                            .map(|c| format!(" (exit code {c})"))
                            .unwrap_or_default();
                        format!(
                            " Last task stopped: {}{exit}.",
                            t.stopped_reason.clone().unwrap_or_default()
                        )
                    })
                    .unwrap_or_default();
                ServiceDeploymentState::Failed(format!(
                    "{}{last}",
                    d.rollout_state_reason
                        .clone()
                        .unwrap_or_else(|| "The deployment failed.".into())
                ))
            }
            _ => ServiceDeploymentState::InProgress,
        })
    }
}
