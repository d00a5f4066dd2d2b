//! The ECS API (awsJson1.1): the generated `codeyard_api::ecs::EcsApi` trait as a thin adapter
//! over [`Ecs`].

use crate::domain::Ecs;
use crate::errors::EcsError;
use crate::records::Scope;
use crate::records::*;
use codeyard_api::ecs::*;
use codeyard_core::{AwsError, AwsResult, RequestContext};
use codeyard_wire::shapes::{Problem, validation_message};

pub struct EcsService {
    pub ecs: Ecs,
}

/// One page of `items` from the offset a `nextToken` names.
fn page<T: Clone>(
    items: &[T],
    next_token: Option<&str>,
    max: Option<i32>,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let start = match next_token {
        Some(t) if !t.is_empty() => t
            .parse::<usize>()
            .map_err(|_| AwsError::client("InvalidParameterException", "Invalid token"))?,
        _ => 0,
    };
    let max = max.unwrap_or(100).clamp(1, 100) as usize;
    let end = (start + max).min(items.len());
    let out = items.get(start..end).unwrap_or_default().to_vec();
    Ok((out, (end < items.len()).then(|| end.to_string())))
}

fn missing(arn: String) -> Failure {
    Failure {
        arn: Some(arn),
        reason: Some("MISSING".into()),
        detail: None,
    }
}

/// A resource's `tags` as a Describe answers them: only when its `include` asked for TAGS.
fn keep_tags(include_tags: bool, tags: &mut Option<Vec<Tag>>) {
    if !include_tags {
        *tags = None;
    }
}

/// Whether a Describe input's `include` asks for `TAGS`.
fn include_tags<F: std::fmt::Display>(include: &Option<Vec<F>>) -> bool {
    include.iter().flatten().any(|i| i.to_string() == "TAGS")
}

/// Each reference looked up: what `find` finds, or a MISSING failure for the ARN it answers
/// when there is nothing (the shape of every DescribeX answer).
async fn describe_each<R, T, Fut>(
    refs: impl IntoIterator<Item = R>,
    find: impl Fn(R) -> Fut,
) -> AwsResult<(Option<Vec<T>>, Option<Vec<Failure>>)>
where
    Fut: std::future::Future<Output = Result<Result<T, String>, EcsError>>,
{
    let (mut found, mut failures) = (Vec::new(), Vec::new());
    for r in refs {
        match find(r).await? {
            Ok(t) => found.push(t),
            Err(arn) => failures.push(missing(arn)),
        }
    }
    Ok((Some(found), Some(failures)))
}

#[codeyard_api::service]
impl EcsApi for EcsService {
    /// ECS answers constraint violations with InvalidParameterException.
    fn validation_error(&self, _operation: &str, problems: &[Problem]) -> AwsError {
        AwsError::client("InvalidParameterException", validation_message(problems))
    }

    async fn create_cluster(
        &self,
        ctx: &RequestContext,
        input: CreateClusterInput,
    ) -> AwsResult<CreateClusterOutput> {
        let s = Scope::of(ctx);
        let c = self.ecs.create_cluster(&s, input).await?;
        self.cluster_response(&s, c).await
    }

    async fn describe_clusters(
        &self,
        ctx: &RequestContext,
        input: DescribeClustersInput,
    ) -> AwsResult<DescribeClustersOutput> {
        let s = Scope::of(ctx);
        let names = input
            .clusters
            .clone()
            .unwrap_or_else(|| vec!["default".into()]);
        let include_tags = include_tags(&input.include);
        let (s, ecs) = (&s, &self.ecs);
        let (clusters, failures) = describe_each(names, |n| async move {
            let name = cluster_name(Some(&n));
            Ok(match ecs.cluster(s, &name).await? {
                Some(c) => {
                    let mut c = ecs.describe_cluster(s, c).await?;
                    keep_tags(include_tags, &mut c.tags);
                    Ok(c)
                }
                None => Err(s.cluster_arn(&name)),
            })
        })
        .await?;
        Ok(DescribeClustersResponse { clusters, failures })
    }

    async fn list_clusters(
        &self,
        ctx: &RequestContext,
        input: ListClustersInput,
    ) -> AwsResult<ListClustersOutput> {
        let s = Scope::of(ctx);
        let arns: Vec<String> = self
            .ecs
            .clusters(&s)
            .await?
            .into_iter()
            .filter(|c| is(&c.status, ResourceStatus::Active))
            .filter_map(|c| c.cluster_arn)
            .collect();
        let (arns, next) = page(&arns, input.next_token.as_deref(), input.max_results)?;
        Ok(ListClustersResponse {
            cluster_arns: Some(arns),
            next_token: next,
        })
    }

    async fn delete_cluster(
        &self,
        ctx: &RequestContext,
        input: DeleteClusterInput,
    ) -> AwsResult<DeleteClusterOutput> {
        let s = Scope::of(ctx);
        let c = self
            .ecs
            .delete_cluster(&s, &cluster_name(Some(&input.cluster)))
            .await?;
        self.cluster_response(&s, c).await
    }

    async fn update_cluster(
        &self,
        ctx: &RequestContext,
        input: UpdateClusterInput,
    ) -> AwsResult<UpdateClusterOutput> {
        self.change_cluster(ctx, &input.cluster, |c| {
            if let Some(v) = &input.settings {
                c.settings = Some(v.clone());
            }
            if let Some(v) = &input.configuration {
                c.configuration = Some(v.clone());
            }
        })
        .await
    }

    async fn update_cluster_settings(
        &self,
        ctx: &RequestContext,
        input: UpdateClusterSettingsInput,
    ) -> AwsResult<UpdateClusterSettingsOutput> {
        self.change_cluster(ctx, &input.cluster, |c| {
            c.settings = Some(input.settings.clone())
        })
        .await
    }

    async fn put_cluster_capacity_providers(
        &self,
        ctx: &RequestContext,
        input: PutClusterCapacityProvidersInput,
    ) -> AwsResult<PutClusterCapacityProvidersOutput> {
        for p in &input.capacity_providers {
            if p != "FARGATE" && p != "FARGATE_SPOT" {
                return Err(EcsError::Invalid(format!("The specified capacity provider '{p}' is not in an ACTIVE state. Specify a valid capacity provider and try again.")).into());
            }
        }
        self.change_cluster(ctx, &input.cluster, |c| {
            c.capacity_providers = Some(input.capacity_providers.clone());
            c.default_capacity_provider_strategy =
                Some(input.default_capacity_provider_strategy.clone());
        })
        .await
    }

    async fn register_task_definition(
        &self,
        ctx: &RequestContext,
        input: RegisterTaskDefinitionInput,
    ) -> AwsResult<RegisterTaskDefinitionOutput> {
        let rec = self
            .ecs
            .register_task_definition(&Scope::of(ctx), &ctx.caller_arn, input)
            .await?;
        Ok(DescribeTaskDefinitionResponse {
            task_definition: Some(rec.definition),
            tags: Some(rec.tags),
        })
    }

    async fn describe_task_definition(
        &self,
        ctx: &RequestContext,
        input: DescribeTaskDefinitionInput,
    ) -> AwsResult<DescribeTaskDefinitionOutput> {
        let (rec, _) = self
            .ecs
            .task_definition(&Scope::of(ctx), &input.task_definition)
            .await?;
        Ok(DescribeTaskDefinitionResponse {
            task_definition: Some(rec.definition),
            tags: include_tags(&input.include).then_some(rec.tags),
        })
    }

    async fn deregister_task_definition(
        &self,
        ctx: &RequestContext,
        input: DeregisterTaskDefinitionInput,
    ) -> AwsResult<DeregisterTaskDefinitionOutput> {
        let s = Scope::of(ctx);
        let (family, rev) = task_definition_ref(&input.task_definition);
        let rev = rev.ok_or_else(|| {
            EcsError::Client(
                "Invalid revision number. Number: ".to_string() + &input.task_definition,
            )
        })?;
        let rec = self
            .ecs
            .set_task_definition(&s, &family, rev, |t| {
                if t.definition.status == Some(TaskDefinitionStatus::Active) {
                    t.definition.status = Some(TaskDefinitionStatus::Inactive);
                    t.definition.deregistered_at = Some(crate::domain::now());
                }
            })
            .await?;
        Ok(DeregisterTaskDefinitionResponse {
            task_definition: Some(rec.definition),
        })
    }

    async fn delete_task_definitions(
        &self,
        ctx: &RequestContext,
        input: DeleteTaskDefinitionsInput,
    ) -> AwsResult<DeleteTaskDefinitionsOutput> {
        let s = Scope::of(ctx);
        let (mut done, mut failures) = (Vec::new(), Vec::new());
        for r in &input.task_definitions {
            let (family, rev) = task_definition_ref(r);
            let Some(rev) = rev else {
                failures.push(Failure { arn: Some(r.clone()), reason: Some("The specified task definition identifier is invalid. Specify a valid name or ARN and try again.".into()), detail: None });
                continue;
            };
            match self.ecs.task_definition(&s, &format!("{family}:{rev}")).await {
                Ok((t, _)) if t.definition.status == Some(TaskDefinitionStatus::Active) => failures.push(Failure {
                    arn: t.definition.task_definition_arn.clone(),
                    reason: Some("The specified task definition is still in ACTIVE status. Please deregister the target and try again.".into()),
                    detail: None,
                }),
                Ok(_) => {
                    let rec = self
                        .ecs
                        .set_task_definition(&s, &family, rev, |t| {
                            t.definition.status = Some(TaskDefinitionStatus::DeleteInProgress);
                            t.definition.delete_requested_at = Some(crate::domain::now());
                        })
                        .await?;
                    done.push(rec.definition);
                }
                Err(_) => failures.push(missing(s.task_definition_arn(&family, rev))),
            }
        }
        Ok(DeleteTaskDefinitionsResponse {
            task_definitions: Some(done),
            failures: Some(failures),
        })
    }

    async fn list_task_definitions(
        &self,
        ctx: &RequestContext,
        input: ListTaskDefinitionsInput,
    ) -> AwsResult<ListTaskDefinitionsOutput> {
        let status = input.status.clone().unwrap_or(TaskDefinitionStatus::Active);
        let mut defs: Vec<TaskDefinition> = self
            .ecs
            .task_definitions(&Scope::of(ctx))
            .await?
            .into_iter()
            .map(|r| r.definition)
            .filter(|d| d.status.as_ref() == Some(&status))
            .filter(|d| {
                input
                    .family_prefix
                    .as_deref()
                    .is_none_or(|p| d.family.as_deref() == Some(p))
            })
            .collect();
        defs.sort_by_key(|d| (d.family.clone(), d.revision));
        if input.sort == Some(SortOrder::Desc) {
            defs.reverse();
        }
        let arns: Vec<String> = defs
            .into_iter()
            .filter_map(|d| d.task_definition_arn)
            .collect();
        let (arns, next) = page(&arns, input.next_token.as_deref(), input.max_results)?;
        Ok(ListTaskDefinitionsResponse {
            task_definition_arns: Some(arns),
            next_token: next,
        })
    }

    async fn list_task_definition_families(
        &self,
        ctx: &RequestContext,
        input: ListTaskDefinitionFamiliesInput,
    ) -> AwsResult<ListTaskDefinitionFamiliesOutput> {
        let all = self.ecs.task_definitions(&Scope::of(ctx)).await?;
        let status = input
            .status
            .clone()
            .unwrap_or(TaskDefinitionFamilyStatus::Active);
        let mut families: std::collections::BTreeMap<String, bool> = Default::default();
        for r in all {
            let f = r.definition.family.clone().unwrap_or_default();
            let active = r.definition.status == Some(TaskDefinitionStatus::Active);
            let e = families.entry(f).or_insert(false);
            *e = *e || active;
        }
        let names: Vec<String> = families
            .into_iter()
            .filter(|(f, active)| {
                input
                    .family_prefix
                    .as_deref()
                    .is_none_or(|p| f.starts_with(p))
                    && match status {
                        TaskDefinitionFamilyStatus::Active => *active,
                        TaskDefinitionFamilyStatus::Inactive => !*active,
                        _ => true,
                    }
            })
            .map(|(f, _)| f)
            .collect();
        let (names, next) = page(&names, input.next_token.as_deref(), input.max_results)?;
        Ok(ListTaskDefinitionFamiliesResponse {
            families: Some(names),
            next_token: next,
        })
    }

    async fn create_service(
        &self,
        ctx: &RequestContext,
        input: CreateServiceInput,
    ) -> AwsResult<CreateServiceOutput> {
        let v = self
            .ecs
            .create_service(&Scope::of(ctx), &ctx.caller_arn, input)
            .await?;
        Ok(CreateServiceResponse { service: Some(v) })
    }

    async fn update_service(
        &self,
        ctx: &RequestContext,
        input: UpdateServiceInput,
    ) -> AwsResult<UpdateServiceOutput> {
        let mut v = self.ecs.update_service(&Scope::of(ctx), input).await?;
        v.tags = None;
        Ok(CreateServiceResponse { service: Some(v) })
    }

    async fn describe_services(
        &self,
        ctx: &RequestContext,
        input: DescribeServicesInput,
    ) -> AwsResult<DescribeServicesOutput> {
        let (s, cluster) = self.active_cluster(ctx, input.cluster.as_deref()).await?;
        let include_tags = include_tags(&input.include);
        let (s, ecs, cluster) = (&s, &self.ecs, &cluster);
        let (services, failures) = describe_each(&input.services, |r| async move {
            let name = service_name(r);
            Ok(match ecs.service(s, cluster, &name).await? {
                Some((mut v, _)) => {
                    keep_tags(include_tags, &mut v.tags);
                    Ok(v)
                }
                None => Err(s.service_arn(cluster, &name)),
            })
        })
        .await?;
        Ok(DescribeServicesResponse { services, failures })
    }

    async fn list_services(
        &self,
        ctx: &RequestContext,
        input: ListServicesInput,
    ) -> AwsResult<ListServicesOutput> {
        let (s, cluster) = self.active_cluster(ctx, input.cluster.as_deref()).await?;
        let arns: Vec<String> = self
            .ecs
            .services(&s, &cluster)
            .await?
            .into_iter()
            .filter(|v| !is(&v.status, ResourceStatus::Inactive))
            .filter(|v| input.launch_type.is_none() || v.launch_type == input.launch_type)
            .filter(|v| {
                input.scheduling_strategy.is_none()
                    || v.scheduling_strategy == input.scheduling_strategy
            })
            .filter_map(|v| v.service_arn)
            .collect();
        let (arns, next) = page(&arns, input.next_token.as_deref(), input.max_results)?;
        Ok(ListServicesByNamespaceResponse {
            service_arns: Some(arns),
            next_token: next,
        })
    }

    async fn delete_service(
        &self,
        ctx: &RequestContext,
        input: DeleteServiceInput,
    ) -> AwsResult<DeleteServiceOutput> {
        let s = Scope::of(ctx);
        let mut v = self
            .ecs
            .delete_service(
                &s,
                &cluster_name(input.cluster.as_deref()),
                &service_name(&input.service),
                input.force.unwrap_or(false),
            )
            .await?;
        v.tags = None;
        Ok(CreateServiceResponse { service: Some(v) })
    }

    async fn run_task(
        &self,
        ctx: &RequestContext,
        input: RunTaskInput,
    ) -> AwsResult<RunTaskOutput> {
        let tasks = self.ecs.run_task(&Scope::of(ctx), input).await?;
        Ok(DescribeTasksResponse {
            tasks: Some(tasks),
            failures: Some(Vec::new()),
        })
    }

    async fn stop_task(
        &self,
        ctx: &RequestContext,
        input: StopTaskInput,
    ) -> AwsResult<StopTaskOutput> {
        let s = Scope::of(ctx);
        let t = self
            .ecs
            .stop_task(
                &s,
                &cluster_name(input.cluster.as_deref()),
                &task_id(&input.task),
                input.reason.clone(),
            )
            .await?;
        Ok(StopTaskResponse { task: Some(t) })
    }

    async fn describe_tasks(
        &self,
        ctx: &RequestContext,
        input: DescribeTasksInput,
    ) -> AwsResult<DescribeTasksOutput> {
        let (s, cluster) = self.active_cluster(ctx, input.cluster.as_deref()).await?;
        let include_tags = include_tags(&input.include);
        let (s, ecs, cluster) = (&s, &self.ecs, &cluster);
        let (tasks, failures) = describe_each(&input.tasks, |r| async move {
            let id = task_id(r);
            Ok(match ecs.task(s, cluster, &id).await? {
                Some(mut t) => {
                    keep_tags(include_tags, &mut t.tags);
                    Ok(t)
                }
                None => Err(s.task_arn(cluster, &id)),
            })
        })
        .await?;
        Ok(DescribeTasksResponse { tasks, failures })
    }

    async fn list_tasks(
        &self,
        ctx: &RequestContext,
        input: ListTasksInput,
    ) -> AwsResult<ListTasksOutput> {
        let (s, cluster) = self.active_cluster(ctx, input.cluster.as_deref()).await?;
        let desired = input
            .desired_status
            .as_ref()
            .map(|d| d.as_str().to_string())
            .unwrap_or_else(|| TaskStatus::Running.as_str().into());
        let family = input.family.clone();
        let mut tasks = self.ecs.tasks(&s, &cluster).await?;
        tasks.sort_by_key(|t| t.created_at);
        let arns: Vec<String> = tasks
            .into_iter()
            .filter(|t| t.desired_status.as_deref() == Some(desired.as_str()))
            .filter(|t| {
                input.service_name.as_deref().is_none_or(|n| {
                    t.group.as_deref() == Some(format!("service:{}", service_name(n)).as_str())
                })
            })
            .filter(|t| {
                input
                    .started_by
                    .as_deref()
                    .is_none_or(|b| t.started_by.as_deref() == Some(b))
            })
            .filter(|t| input.launch_type.is_none() || t.launch_type == input.launch_type)
            .filter(|t| {
                family.as_deref().is_none_or(|f| {
                    t.task_definition_arn
                        .as_deref()
                        .map(|a| task_definition_ref(a).0)
                        == Some(f.to_string())
                })
            })
            .filter_map(|t| t.task_arn)
            .collect();
        let (arns, next) = page(&arns, input.next_token.as_deref(), input.max_results)?;
        Ok(ListTasksResponse {
            task_arns: Some(arns),
            next_token: next,
        })
    }

    async fn tag_resource(
        &self,
        ctx: &RequestContext,
        input: TagResourceInput,
    ) -> AwsResult<TagResourceOutput> {
        self.retag(ctx, &input.resource_arn, |tags| {
            merge_tags(tags, &input.tags)
        })
        .await?;
        Ok(HookDetails {})
    }

    async fn untag_resource(
        &self,
        ctx: &RequestContext,
        input: UntagResourceInput,
    ) -> AwsResult<UntagResourceOutput> {
        self.retag(ctx, &input.resource_arn, |tags| {
            tags.retain(|t| !input.tag_keys.iter().any(|k| Some(k) == t.key.as_ref()))
        })
        .await?;
        Ok(HookDetails {})
    }

    async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        input: ListTagsForResourceInput,
    ) -> AwsResult<ListTagsForResourceOutput> {
        let tags = self.retag(ctx, &input.resource_arn, |_| {}).await?;
        Ok(ListTagsForResourceResponse { tags: Some(tags) })
    }
}

impl EcsService {
    /// The scope of a request and the ACTIVE cluster it names (`default` when it names none).
    async fn active_cluster(
        &self,
        ctx: &RequestContext,
        cluster: Option<&str>,
    ) -> AwsResult<(Scope, String)> {
        let s = Scope::of(ctx);
        let cluster = cluster_name(cluster);
        self.ecs.active_cluster(&s, &cluster).await?;
        Ok((s, cluster))
    }

    /// A cluster as CreateCluster, UpdateCluster and DeleteCluster answer it: counts filled in.
    async fn cluster_response(&self, s: &Scope, c: Cluster) -> AwsResult<CreateClusterResponse> {
        Ok(CreateClusterResponse {
            cluster: Some(self.ecs.describe_cluster(s, c).await?),
        })
    }

    /// Applies `change` to an ACTIVE cluster the request names; answers it described.
    async fn change_cluster(
        &self,
        ctx: &RequestContext,
        cluster: &str,
        change: impl Fn(&mut Cluster) + Send + Sync,
    ) -> AwsResult<CreateClusterResponse> {
        let s = Scope::of(ctx);
        let c = self
            .ecs
            .update_cluster(&s, &cluster_name(Some(cluster)), change)
            .await?;
        self.cluster_response(&s, c).await
    }

    /// Applies `change` to the tags of the resource an ARN names; answers the tags after.
    async fn retag(
        &self,
        ctx: &RequestContext,
        arn: &str,
        change: impl Fn(&mut Vec<Tag>) + Send + Sync,
    ) -> AwsResult<Vec<Tag>> {
        let s = Scope::of(ctx);
        let tagged =
            tagged(arn).ok_or_else(|| EcsError::Invalid("The ARN provided is invalid.".into()))?;
        Ok(match tagged {
            Tagged::Cluster(c) => self
                .ecs
                .update_cluster(&s, &c, |v| change(v.tags.get_or_insert_with(Vec::new)))
                .await?
                .tags
                .unwrap_or_default(),
            Tagged::Service(c, n) => self
                .ecs
                .change_service(&s, &c, &n, |v| {
                    change(v.tags.get_or_insert_with(Vec::new));
                    Ok(())
                })
                .await?
                .tags
                .unwrap_or_default(),
            Tagged::TaskDefinition(f, r) => {
                self.ecs
                    .set_task_definition(&s, &f, r, |t| change(&mut t.tags))
                    .await?
                    .tags
            }
            Tagged::Task(c, id) => {
                let t = self
                    .ecs
                    .change_task(&s, &task_key(&c, &id), |t| {
                        change(t.tags.get_or_insert_with(Vec::new));
                        true
                    })
                    .await?;
                t.ok_or(EcsError::ResourceNotFound)?
                    .tags
                    .unwrap_or_default()
            }
        })
    }
}
