//! ECS's resources over the state store: clusters, task definitions, services and tasks.
//! What runs (containers) is the scheduler's and the runtime's business; this module only
//! records what is wanted (a task PENDING with desiredStatus RUNNING, a service's desired
//! count and deployments) and answers what is there.

use crate::errors::{EcsError, EcsResult};
use crate::records::Scope;
use crate::records::*;
use codeyard_api::Timestamp;
use codeyard_api::ecs::*;
use codeyard_store::{Batch, Expect, SharedStore, StateStoreExt, Update};
use std::sync::Arc;
use tokio::sync::Notify;

/// Each Update* input member named replaces the record's when it is given.
macro_rules! set_given {
    ($record:expr, $input:expr; $($member:ident,)*) => {
        $(if $input.$member.is_some() {
            $record.$member = $input.$member.clone();
        })*
    };
}

#[derive(Clone)]
pub struct Ecs {
    pub store: SharedStore,
    /// Wakes the scheduler after a change that needs containers started or stopped.
    pub wake: Arc<Notify>,
}

pub fn now() -> Timestamp {
    Timestamp(codeyard_core::time::now())
}

/// ECS's deployment ids: `ecs-svc/` and 19 digits.
pub fn deployment_id() -> String {
    let hex = codeyard_core::ids::hex(16);
    let n = u64::from_str_radix(&hex, 16).unwrap_or(0) % 10_000_000_000_000_000_000;
    format!("ecs-svc/{n:019}")
}

/// A task id: 32 hex digits.
pub fn new_task_id() -> String {
    codeyard_core::ids::hex(32)
}

pub fn is_stopped(t: &Task) -> bool {
    is(&t.last_status, TaskStatus::Stopped)
}

pub fn service_event(message: String) -> ServiceEvent {
    ServiceEvent {
        id: Some(codeyard_core::ids::uuid()),
        created_at: Some(now()),
        message: Some(message),
    }
}

/// Adds an event first (ECS lists the newest first) and keeps the last hundred.
pub fn push_event(svc: &mut Service, message: String) {
    let events = svc.events.get_or_insert_with(Vec::new);
    events.insert(0, service_event(message));
    events.truncate(100);
}

/// ECS's names (clusters, services, task definition families): 1-255 letters, digits, `-`, `_`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn invalid(msg: impl Into<String>) -> EcsError {
    EcsError::Invalid(msg.into())
}

impl Ecs {
    pub async fn cluster(&self, s: &Scope, name: &str) -> EcsResult<Option<Cluster>> {
        Ok(self
            .store
            .get_as::<Cluster>(&s.clusters(), name)
            .await?
            .map(|(c, _)| c))
    }

    /// An ACTIVE cluster, or ClusterNotFoundException.
    pub async fn active_cluster(&self, s: &Scope, name: &str) -> EcsResult<Cluster> {
        match self.cluster(s, name).await? {
            Some(c) if is(&c.status, ResourceStatus::Active) => Ok(c),
            _ => Err(EcsError::ClusterNotFound),
        }
    }

    pub async fn create_cluster(&self, s: &Scope, input: CreateClusterInput) -> EcsResult<Cluster> {
        let name = input
            .cluster_name
            .clone()
            .unwrap_or_else(|| "default".into());
        if !valid_name(&name) {
            return Err(invalid(
                "Cluster name must be 1-255 characters long and contain only letters, numbers, hyphens and underscores.",
            ));
        }
        let fresh = Cluster {
            cluster_arn: Some(s.cluster_arn(&name)),
            cluster_name: Some(name.clone()),
            configuration: input.configuration.clone(),
            status: ResourceStatus::Active.field(),
            tags: Some(input.tags.clone().unwrap_or_default()),
            settings: Some(input.settings.clone().unwrap_or_else(|| {
                vec![ClusterSetting {
                    name: Some(ClusterSettingName::ContainerInsights),
                    value: Some("disabled".into()),
                }]
            })),
            capacity_providers: Some(input.capacity_providers.clone().unwrap_or_default()),
            default_capacity_provider_strategy: Some(
                input
                    .default_capacity_provider_strategy
                    .clone()
                    .unwrap_or_default(),
            ),
            ..Default::default()
        };
        let stored = self
            .store
            .update::<Cluster, EcsError, _>(&s.clusters(), &name, |cur| match cur {
                // CreateCluster of an existing ACTIVE cluster answers it unchanged (idempotent).
                Some(c) if is(&c.status, ResourceStatus::Active) => Ok(Update::keep(Some(c))),
                _ => Ok(Update::put(fresh.clone())),
            })
            .await?;
        Ok(stored.unwrap_or(fresh))
    }

    pub async fn update_cluster(
        &self,
        s: &Scope,
        name: &str,
        change: impl Fn(&mut Cluster) + Send + Sync,
    ) -> EcsResult<Cluster> {
        let c = self
            .store
            .update::<Cluster, EcsError, _>(&s.clusters(), name, |cur| match cur {
                Some(mut c) if is(&c.status, ResourceStatus::Active) => {
                    change(&mut c);
                    Ok(Update::put(c))
                }
                _ => Err(EcsError::ClusterNotFound),
            })
            .await?;
        c.ok_or(EcsError::ClusterNotFound)
    }

    pub async fn delete_cluster(&self, s: &Scope, name: &str) -> EcsResult<Cluster> {
        self.active_cluster(s, name).await?;
        let services = self.services(s, name).await?;
        if services
            .iter()
            .any(|v| !is(&v.status, ResourceStatus::Inactive))
        {
            return Err(EcsError::ClusterContainsServices);
        }
        if self.tasks(s, name).await?.iter().any(|t| !is_stopped(t)) {
            return Err(EcsError::ClusterContainsTasks);
        }
        self.update_cluster(s, name, |c| c.status = ResourceStatus::Inactive.field())
            .await
    }

    pub async fn clusters(&self, s: &Scope) -> EcsResult<Vec<Cluster>> {
        Ok(self.store.list_all_as::<Cluster>(&s.clusters()).await?)
    }

    /// A cluster with its counts filled in.
    pub async fn describe_cluster(&self, s: &Scope, mut c: Cluster) -> EcsResult<Cluster> {
        let name = c.cluster_name.clone().unwrap_or_default();
        let tasks = self.tasks(s, &name).await?;
        let services = self.services(s, &name).await?;
        c.running_tasks_count = Some(
            tasks
                .iter()
                .filter(|t| is(&t.last_status, TaskStatus::Running))
                .count() as i32,
        );
        c.pending_tasks_count = Some(
            tasks
                .iter()
                .filter(|t| is(&t.last_status, TaskStatus::Pending) || is(&t.last_status, TaskStatus::Provisioning))
                .count() as i32,
        );
        c.active_services_count = Some(
            services
                .iter()
                .filter(|v| is(&v.status, ResourceStatus::Active))
                .count() as i32,
        );
        c.registered_container_instances_count = Some(0);
        c.statistics = Some(Vec::new());
        Ok(c)
    }

    // ---- task definitions ----

    pub async fn register_task_definition(
        &self,
        s: &Scope,
        caller: &str,
        input: RegisterTaskDefinitionInput,
    ) -> EcsResult<TaskDefinitionRecord> {
        let family = input.family.clone();
        if !valid_name(&family) {
            return Err(EcsError::Client(
                "Family contains invalid characters. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.".into(),
            ));
        }
        if input.container_definitions.is_empty() {
            return Err(EcsError::Client("Container list cannot be empty.".into()));
        }
        let mut names = std::collections::BTreeSet::new();
        for c in &input.container_definitions {
            let name = c.name.as_deref().unwrap_or_default();
            if name.is_empty() {
                return Err(EcsError::Client(
                    "Container.name should not be null or empty.".into(),
                ));
            }
            if c.image.as_deref().unwrap_or_default().is_empty() {
                return Err(EcsError::Client(
                    "Container.image should not be null or empty.".into(),
                ));
            }
            if !names.insert(name.to_string()) {
                return Err(EcsError::Client(format!(
                    "Duplicate container name found: {name}"
                )));
            }
        }
        let fargate = input
            .requires_compatibilities
            .as_ref()
            .is_some_and(|r| r.contains(&Compatibility::Fargate));
        if fargate {
            if input.network_mode != Some(NetworkMode::Awsvpc) {
                return Err(EcsError::Client(
                    "Fargate only supports network mode ‘awsvpc’.".into(),
                ));
            }
            if input.cpu.is_none() || input.memory.is_none() {
                return Err(EcsError::Client(
                    "Fargate requires task definition to have execution role ARN to support log driver awslogs."
                        .replace("execution role ARN to support log driver awslogs", "'cpu' and 'memory' set"),
                ));
            }
        }
        let revision = self
            .store
            .next_counter(&format!("{}/{family}", s.taskdefs()))
            .await? as i32;
        let mut containers = input.container_definitions.clone();
        for c in &mut containers {
            c.essential.get_or_insert(true);
            c.environment.get_or_insert_with(Vec::new);
            c.mount_points.get_or_insert_with(Vec::new);
            c.volumes_from.get_or_insert_with(Vec::new);
            if let Some(ports) = c.port_mappings.as_mut() {
                for p in ports.iter_mut() {
                    p.protocol.get_or_insert(TransportProtocol::Tcp);
                    if input.network_mode == Some(NetworkMode::Awsvpc)
                        || input.network_mode == Some(NetworkMode::Host)
                    {
                        p.host_port = p.host_port.or(p.container_port);
                    }
                }
            } else {
                c.port_mappings = Some(Vec::new());
            }
        }
        let mut compat = vec![Compatibility::Ec2];
        if input.network_mode == Some(NetworkMode::Awsvpc) {
            compat.push(Compatibility::Fargate);
        }
        let definition = TaskDefinition {
            task_definition_arn: Some(s.task_definition_arn(&family, revision)),
            container_definitions: Some(containers),
            family: Some(family.clone()),
            task_role_arn: input.task_role_arn.clone(),
            execution_role_arn: input.execution_role_arn.clone(),
            network_mode: Some(input.network_mode.clone().unwrap_or(NetworkMode::Bridge)),
            revision: Some(revision),
            volumes: Some(input.volumes.clone().unwrap_or_default()),
            status: Some(TaskDefinitionStatus::Active),
            requires_attributes: Some(Vec::new()),
            placement_constraints: Some(input.placement_constraints.clone().unwrap_or_default()),
            compatibilities: Some(compat),
            runtime_platform: input.runtime_platform.clone(),
            requires_compatibilities: input.requires_compatibilities.clone(),
            cpu: input.cpu.clone(),
            memory: input.memory.clone(),
            inference_accelerators: input.inference_accelerators.clone(),
            pid_mode: input.pid_mode.clone(),
            ipc_mode: input.ipc_mode.clone(),
            proxy_configuration: input.proxy_configuration.clone(),
            registered_at: Some(now()),
            registered_by: Some(caller.to_string()),
            ephemeral_storage: input.ephemeral_storage.clone(),
            enable_fault_injection: input.enable_fault_injection,
            ..Default::default()
        };
        let rec = TaskDefinitionRecord {
            definition,
            tags: input.tags.clone().unwrap_or_default(),
        };
        self.store
            .commit(Batch::new().put(
                s.taskdefs(),
                taskdef_key(&family, revision),
                &rec,
                Expect::Absent,
            ))
            .await?;
        Ok(rec)
    }

    /// The revision a reference names: `family:rev`, an ARN, or `family` (its latest ACTIVE).
    pub async fn task_definition(
        &self,
        s: &Scope,
        reference: &str,
    ) -> EcsResult<(TaskDefinitionRecord, i64)> {
        let (family, revision) = task_definition_ref(reference);
        match revision {
            Some(r) => self
                .store
                .get_as::<TaskDefinitionRecord>(&s.taskdefs(), &taskdef_key(&family, r))
                .await?
                .filter(|(t, _)| {
                    t.definition.status != Some(TaskDefinitionStatus::DeleteInProgress)
                })
                .ok_or(EcsError::TaskDefinitionNotFound),
            None => {
                let all: Vec<codeyard_store::Doc> = self
                    .store
                    .scan(&s.taskdefs(), &format!("{family}:"))
                    .collect()
                    .await?;
                let mut best: Option<(TaskDefinitionRecord, i64)> = None;
                for d in all {
                    let t: TaskDefinitionRecord = d.parse()?;
                    if t.definition.status == Some(TaskDefinitionStatus::Active) {
                        best = Some((t, d.version));
                    }
                }
                best.ok_or(EcsError::TaskDefinitionNotFound)
            }
        }
    }

    pub async fn set_task_definition(
        &self,
        s: &Scope,
        family: &str,
        revision: i32,
        change: impl Fn(&mut TaskDefinitionRecord) + Send + Sync,
    ) -> EcsResult<TaskDefinitionRecord> {
        let r = self
            .store
            .update::<TaskDefinitionRecord, EcsError, _>(
                &s.taskdefs(),
                &taskdef_key(family, revision),
                |cur| match cur {
                    Some(mut t) => {
                        change(&mut t);
                        Ok(Update::put(t))
                    }
                    None => Err(EcsError::TaskDefinitionNotFound),
                },
            )
            .await?;
        r.ok_or(EcsError::TaskDefinitionNotFound)
    }

    pub async fn task_definitions(&self, s: &Scope) -> EcsResult<Vec<TaskDefinitionRecord>> {
        Ok(self
            .store
            .list_all_as::<TaskDefinitionRecord>(&s.taskdefs())
            .await?)
    }

    // ---- services ----

    pub async fn service(
        &self,
        s: &Scope,
        cluster: &str,
        name: &str,
    ) -> EcsResult<Option<(Service, i64)>> {
        Ok(self
            .store
            .get_as::<Service>(&s.services(), &service_key(cluster, name))
            .await?)
    }

    pub async fn services(&self, s: &Scope, cluster: &str) -> EcsResult<Vec<Service>> {
        self.in_cluster(&s.services(), cluster).await
    }

    /// The records of one cluster in a namespace keyed `<cluster>/...` (services, tasks).
    async fn in_cluster<T: serde::de::DeserializeOwned>(
        &self,
        ns: &str,
        cluster: &str,
    ) -> EcsResult<Vec<T>> {
        Ok(self
            .store
            .scan(ns, &format!("{cluster}/"))
            .collect_as()
            .await?)
    }

    pub async fn create_service(
        &self,
        s: &Scope,
        caller: &str,
        input: CreateServiceInput,
    ) -> EcsResult<Service> {
        let cluster = cluster_name(input.cluster.as_deref());
        let cluster_rec = self.active_cluster(s, &cluster).await?;
        let name = input.service_name.clone();
        if !valid_name(&name) {
            return Err(invalid(
                "Service name must be 1-255 letters, numbers, hyphens and underscores.",
            ));
        }
        let td_ref = input
            .task_definition
            .clone()
            .ok_or_else(|| invalid("TaskDefinition must be specified."))?;
        let (td, _) = self
            .task_definition(s, &td_ref)
            .await
            .map_err(|_| EcsError::TaskDefinitionMissing)?;
        if td.definition.status != Some(TaskDefinitionStatus::Active) {
            return Err(EcsError::TaskDefinitionInactive);
        }
        let td_arn = td
            .definition
            .task_definition_arn
            .clone()
            .unwrap_or_default();
        let desired = input.desired_count.unwrap_or(
            if input.scheduling_strategy == Some(SchedulingStrategy::Daemon) {
                1
            } else {
                0
            },
        );
        if desired < 0 {
            return Err(invalid("desiredCount cannot be negative."));
        }
        if td.definition.network_mode == Some(NetworkMode::Awsvpc)
            && input.network_configuration.is_none()
        {
            return Err(invalid(
                "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
            ));
        }
        let t = now();
        let launch = input.launch_type.clone().or_else(|| {
            input
                .capacity_provider_strategy
                .is_none()
                .then_some(Compatibility::Ec2)
        });
        let deployment = Deployment {
            id: Some(deployment_id()),
            status: ResourceStatus::Primary.field(),
            task_definition: Some(td_arn.clone()),
            desired_count: Some(desired),
            pending_count: Some(0),
            running_count: Some(0),
            failed_tasks: Some(0),
            created_at: Some(t),
            updated_at: Some(t),
            launch_type: launch.clone(),
            platform_version: input
                .platform_version
                .clone()
                .or_else(|| (launch == Some(Compatibility::Fargate)).then(|| "1.4.0".into())),
            network_configuration: input.network_configuration.clone(),
            rollout_state: Some(DeploymentRolloutState::InProgress),
            rollout_state_reason: Some("ECS deployment ecs-svc in progress.".into()),
            ..Default::default()
        };
        let dep_id = deployment.id.clone().unwrap_or_default();
        let mut deployment = deployment;
        deployment.rollout_state_reason = Some(format!("ECS deployment {dep_id} in progress."));
        let svc = Service {
            service_arn: Some(s.service_arn(&cluster, &name)),
            service_name: Some(name.clone()),
            cluster_arn: cluster_rec.cluster_arn.clone(),
            load_balancers: Some(input.load_balancers.clone().unwrap_or_default()),
            service_registries: Some(input.service_registries.clone().unwrap_or_default()),
            status: ResourceStatus::Active.field(),
            desired_count: Some(desired),
            running_count: Some(0),
            pending_count: Some(0),
            launch_type: launch,
            capacity_provider_strategy: input.capacity_provider_strategy.clone(),
            platform_version: deployment.platform_version.clone(),
            task_definition: Some(td_arn),
            deployment_configuration: Some(input.deployment_configuration.clone().unwrap_or(
                DeploymentConfiguration {
                    deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
                        enable: false,
                        rollback: false,
                    }),
                    maximum_percent: Some(200),
                    minimum_healthy_percent: Some(100),
                    ..Default::default()
                },
            )),
            deployments: Some(vec![deployment]),
            role_arn: input.role.clone(),
            events: Some(Vec::new()),
            created_at: Some(t),
            placement_constraints: Some(input.placement_constraints.clone().unwrap_or_default()),
            placement_strategy: Some(input.placement_strategy.clone().unwrap_or_default()),
            network_configuration: input.network_configuration.clone(),
            health_check_grace_period_seconds: input.health_check_grace_period_seconds,
            scheduling_strategy: Some(
                input
                    .scheduling_strategy
                    .clone()
                    .unwrap_or(SchedulingStrategy::Replica),
            ),
            deployment_controller: Some(input.deployment_controller.clone().unwrap_or(
                DeploymentController {
                    r#type: DeploymentControllerType::Ecs,
                },
            )),
            tags: Some(input.tags.clone().unwrap_or_default()),
            created_by: Some(caller.to_string()),
            enable_ecs_managed_tags: Some(input.enable_ecs_managed_tags.unwrap_or(false)),
            propagate_tags: Some(input.propagate_tags.clone().unwrap_or(PropagateTags::None)),
            enable_execute_command: Some(input.enable_execute_command.unwrap_or(false)),
            availability_zone_rebalancing: input.availability_zone_rebalancing.clone(),
            ..Default::default()
        };
        let stored = self
            .store
            .update::<Service, EcsError, _>(&s.services(), &service_key(&cluster, &name), |cur| {
                match cur {
                    Some(c) if !is(&c.status, ResourceStatus::Inactive) => {
                        Err(invalid("Creation of service was not idempotent."))
                    }
                    _ => Ok(Update::put(svc.clone())),
                }
            })
            .await?;
        self.wake.notify_one();
        Ok(stored.unwrap_or(svc))
    }

    /// Changes an ACTIVE service (ServiceNotFoundException / ServiceNotActiveException).
    pub async fn change_service<F>(
        &self,
        s: &Scope,
        cluster: &str,
        name: &str,
        mut change: F,
    ) -> EcsResult<Service>
    where
        F: FnMut(&mut Service) -> EcsResult<()> + Send,
    {
        let r = self
            .store
            .update::<Service, EcsError, _>(&s.services(), &service_key(cluster, name), |cur| {
                match cur {
                    None => Err(EcsError::ServiceNotFound),
                    Some(v) if !is(&v.status, ResourceStatus::Active) => {
                        Err(EcsError::ServiceNotActive)
                    }
                    Some(mut v) => {
                        change(&mut v)?;
                        Ok(Update::put(v))
                    }
                }
            })
            .await?;
        self.wake.notify_one();
        r.ok_or(EcsError::ServiceNotFound)
    }

    pub async fn update_service(&self, s: &Scope, input: UpdateServiceInput) -> EcsResult<Service> {
        let cluster = cluster_name(input.cluster.as_deref());
        self.active_cluster(s, &cluster).await?;
        let name = service_name(&input.service);
        let new_td = match &input.task_definition {
            Some(r) => {
                let (td, _) = self
                    .task_definition(s, r)
                    .await
                    .map_err(|_| EcsError::TaskDefinitionMissing)?;
                if td.definition.status != Some(TaskDefinitionStatus::Active) {
                    return Err(EcsError::TaskDefinitionInactive);
                }
                Some(
                    td.definition
                        .task_definition_arn
                        .clone()
                        .unwrap_or_default(),
                )
            }
            None => None,
        };
        if input.desired_count.is_some_and(|d| d < 0) {
            return Err(invalid("desiredCount cannot be negative."));
        }
        self.change_service(s, &cluster, &name, |v| {
            set_given!(v, input;
                desired_count,
                deployment_configuration,
                network_configuration,
                enable_execute_command,
                enable_ecs_managed_tags,
                propagate_tags,
                health_check_grace_period_seconds,
                platform_version,
                load_balancers,
                service_registries,
                placement_constraints,
                placement_strategy,
                capacity_provider_strategy,
            );
            let changed_td = new_td
                .as_ref()
                .is_some_and(|t| Some(t) != v.task_definition.as_ref());
            let changed_net = input.network_configuration.is_some()
                && input
                    .network_configuration
                    .as_ref()
                    .map(|n| format!("{n:?}"))
                    != v.deployments
                        .as_ref()
                        .and_then(|d| d.first())
                        .and_then(|d| d.network_configuration.as_ref())
                        .map(|n| format!("{n:?}"));
            if changed_td || changed_net || input.force_new_deployment == Some(true) {
                if let Some(t) = &new_td {
                    v.task_definition = Some(t.clone());
                }
                start_deployment(v);
            }
            let desired = v.desired_count;
            if let Some(primary) = v.deployments.as_mut().and_then(|d| d.first_mut()) {
                primary.desired_count = desired;
                primary.updated_at = Some(now());
            }
            Ok(())
        })
        .await
    }

    /// DeleteService: DRAINING (the scheduler stops its tasks, then INACTIVE).
    pub async fn delete_service(
        &self,
        s: &Scope,
        cluster: &str,
        name: &str,
        force: bool,
    ) -> EcsResult<Service> {
        self.active_cluster(s, cluster).await?;
        let r = self
            .store
            .update::<Service, EcsError, _>(&s.services(), &service_key(cluster, name), |cur| {
                match cur {
                    None => Err(EcsError::ServiceNotFound),
                    Some(v) if is(&v.status, ResourceStatus::Inactive) => {
                        Err(EcsError::ServiceNotFound)
                    }
                    Some(mut v) => {
                        if !force
                            && v.desired_count.unwrap_or(0) > 0
                            && v.scheduling_strategy != Some(SchedulingStrategy::Daemon)
                        {
                            return Err(invalid(
                                "The service cannot be stopped while it is scaled above 0.",
                            ));
                        }
                        v.status = ResourceStatus::Draining.field();
                        v.desired_count = Some(0);
                        if let Some(d) = v.deployments.as_mut() {
                            for d in d.iter_mut() {
                                d.desired_count = Some(0);
                            }
                        }
                        Ok(Update::put(v))
                    }
                }
            })
            .await?;
        self.wake.notify_one();
        r.ok_or(EcsError::ServiceNotFound)
    }

    // ---- tasks ----

    pub async fn task(&self, s: &Scope, cluster: &str, id: &str) -> EcsResult<Option<Task>> {
        Ok(self
            .store
            .get_as::<Task>(&s.tasks(), &task_key(cluster, id))
            .await?
            .map(|(t, _)| t))
    }

    pub async fn tasks(&self, s: &Scope, cluster: &str) -> EcsResult<Vec<Task>> {
        self.in_cluster(&s.tasks(), cluster).await
    }

    /// A new PROVISIONING task of a task definition (the scheduler starts its containers),
    /// put into `batch` (created when the batch commits): the batch and the task.
    pub fn put_new_task(batch: Batch, s: &Scope, cluster: &str, td: &TaskDefinition, launch: &TaskLaunch) -> (Batch, Task) {
        let id = new_task_id();
        let t = Self::new_task(s, cluster, &id, td, launch.clone());
        (batch.put(s.tasks(), task_key(cluster, &id), &t, Expect::Absent), t)
    }

    fn new_task(s: &Scope, cluster: &str, id: &str, td: &TaskDefinition, launch: TaskLaunch) -> Task {
        let TaskLaunch { group, started_by, launch_type, overrides, tags } = launch;
        let task_arn = s.task_arn(cluster, id);
        let containers = td
            .container_definitions
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|c| Container {
                container_arn: Some(s.container_arn(cluster, id)),
                task_arn: Some(task_arn.clone()),
                name: c.name.clone(),
                image: c.image.clone(),
                last_status: TaskStatus::Pending.field(),
                network_bindings: Some(Vec::new()),
                network_interfaces: Some(Vec::new()),
                health_status: Some(HealthStatus::from("UNKNOWN")),
                cpu: Some(c.cpu.unwrap_or(0).to_string()),
                memory: c.memory.map(|m| m.to_string()),
                memory_reservation: c.memory_reservation.map(|m| m.to_string()),
                ..Default::default()
            })
            .collect();
        Task {
            attachments: Some(Vec::new()),
            attributes: Some(Vec::new()),
            availability_zone: Some(format!("{}a", s.region)),
            cluster_arn: Some(s.cluster_arn(cluster)),
            containers: Some(containers),
            cpu: td.cpu.clone(),
            memory: td.memory.clone(),
            created_at: Some(now()),
            desired_status: TaskStatus::Running.field(),
            enable_execute_command: Some(false),
            group: Some(group),
            health_status: Some(HealthStatus::from("UNKNOWN")),
            last_status: TaskStatus::Provisioning.field(),
            launch_type: launch_type.clone(),
            overrides: Some(overrides.unwrap_or(TaskOverride {
                container_overrides: Some(Vec::new()),
                ..Default::default()
            })),
            platform_version: (launch_type == Some(Compatibility::Fargate)).then(|| "1.4.0".into()),
            started_by,
            tags: Some(tags),
            task_arn: Some(task_arn),
            task_definition_arn: td.task_definition_arn.clone(),
            version: Some(1),
            ..Default::default()
        }
    }

    pub async fn run_task(&self, s: &Scope, input: RunTaskInput) -> EcsResult<Vec<Task>> {
        let cluster = cluster_name(input.cluster.as_deref());
        self.active_cluster(s, &cluster).await?;
        let (td, _) = self.task_definition(s, &input.task_definition).await?;
        if td.definition.status != Some(TaskDefinitionStatus::Active) {
            return Err(EcsError::TaskDefinitionInactive);
        }
        if td.definition.network_mode == Some(NetworkMode::Awsvpc)
            && input.network_configuration.is_none()
        {
            return Err(invalid(
                "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
            ));
        }
        let count = input.count.unwrap_or(1);
        if !(1..=10).contains(&count) {
            return Err(invalid("count must be between 1 and 10."));
        }
        let family = td.definition.family.clone().unwrap_or_default();
        let group = input
            .group
            .clone()
            .unwrap_or_else(|| format!("family:{family}"));
        let launch = input.launch_type.clone().or(Some(Compatibility::Ec2));
        let launch = TaskLaunch {
            group,
            started_by: input.started_by.clone(),
            launch_type: launch,
            overrides: input.overrides.clone(),
            tags: input.tags.clone().unwrap_or_default(),
        };
        let mut batch = Batch::new();
        let mut out = Vec::new();
        for _ in 0..count {
            let (b, t) = Self::put_new_task(batch, s, &cluster, &td.definition, &launch);
            batch = b;
            out.push(t);
        }
        self.store.commit(batch).await?;
        self.wake.notify_one();
        Ok(out)
    }

    /// StopTask: desiredStatus STOPPED with the reason (the scheduler stops the containers).
    pub async fn stop_task(
        &self,
        s: &Scope,
        cluster: &str,
        id: &str,
        reason: Option<String>,
    ) -> EcsResult<Task> {
        self.active_cluster(s, cluster).await?;
        let r = self
            .store
            .update::<Task, EcsError, _>(&s.tasks(), &task_key(cluster, id), |cur| match cur {
                None => Err(EcsError::TaskNotFound),
                Some(t) if is(&t.desired_status, TaskStatus::Stopped) => {
                    Ok(Update::keep(Some(t)))
                }
                Some(mut t) => {
                    mark_stopping(
                        &mut t,
                        TaskStopCode::UserInitiated,
                        reason
                            .clone()
                            .unwrap_or_else(|| "Task stopped by user".into()),
                    );
                    Ok(Update::put(t))
                }
            })
            .await?;
        self.wake.notify_one();
        r.ok_or(EcsError::TaskNotFound)
    }

    /// Changes a task record (the scheduler's and the runtime's writes).
    pub async fn change_task<F>(
        &self,
        s: &Scope,
        key: &str,
        mut change: F,
    ) -> EcsResult<Option<Task>>
    where
        F: FnMut(&mut Task) -> bool + Send,
    {
        self.store
            .update::<Task, EcsError, _>(&s.tasks(), key, |cur| match cur {
                None => Ok(Update::keep(None)),
                Some(mut t) => {
                    if change(&mut t) {
                        t.version = Some(t.version.unwrap_or(1) + 1);
                        Ok(Update::put(t))
                    } else {
                        Ok(Update::keep(Some(t)))
                    }
                }
            })
            .await
    }
}

/// desiredStatus STOPPED, with the stop code and reason (kept if one was set first).
pub fn mark_stopping(t: &mut Task, code: TaskStopCode, reason: String) {
    t.desired_status = TaskStatus::Stopped.field();
    if t.stop_code.is_none() {
        t.stop_code = Some(code);
        t.stopped_reason = Some(reason);
    }
    t.stopping_at.get_or_insert(now());
}

/// A new PRIMARY deployment of the service's task definition; the previous ones become ACTIVE.
pub fn start_deployment(v: &mut Service) {
    let t = now();
    let deployments = v.deployments.get_or_insert_with(Vec::new);
    for d in deployments.iter_mut() {
        d.status = ResourceStatus::Active.field();
    }
    let id = deployment_id();
    let primary = Deployment {
        id: Some(id.clone()),
        status: ResourceStatus::Primary.field(),
        task_definition: v.task_definition.clone(),
        desired_count: v.desired_count,
        pending_count: Some(0),
        running_count: Some(0),
        failed_tasks: Some(0),
        created_at: Some(t),
        updated_at: Some(t),
        launch_type: v.launch_type.clone(),
        platform_version: v.platform_version.clone(),
        network_configuration: v.network_configuration.clone(),
        rollout_state: Some(DeploymentRolloutState::InProgress),
        rollout_state_reason: Some(format!("ECS deployment {id} in progress.")),
        ..Default::default()
    };
    deployments.insert(0, primary);
}
