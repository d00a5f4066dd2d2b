//! The CodeBuild API (awsJson1.1, `CodeBuild_20161006.*`): the generated [`CodeBuildApi`]
//! trait implemented over the project, runner and report modules. Inputs arrive as the
//! model's types (the wire validated them first) and outputs leave as the model's types,
//! made from the domain records ([`ProjectRecord`], [`BuildRecord`], the report records);
//! every operation not defined here answers UnknownOperationException, and the list of
//! implemented operations comes from this impl.

use crate::build::BuildRecord;
use crate::error::CodeBuildError;
use crate::project::{self, ProjectRecord};
use crate::reports::{self, ReportGroupRecord, ReportRecord};
use crate::runner::{Engine, ns};
use codeyard_core::{AwsError, AwsResult, RequestContext};
use codeyard_store::{Batch, Expect, StateStoreExt, StoreError};
use codeyard_api::codebuild::*;
use serde_json::Value;
use std::sync::Arc;

pub struct CodeBuildService {
    pub engine: Arc<Engine>,
}

fn invalid(msg: impl Into<String>) -> AwsError {
    CodeBuildError::Invalid(msg.into()).into()
}

/// ResourceAlreadyExistsException for the project `p`.
fn exists(p: &ProjectRecord) -> AwsError {
    CodeBuildError::ProjectExists(p.arn.clone()).into()
}

/// Offset-based paging: `nextToken` is the index of the next item.
fn page<T: Clone>(
    items: &[T],
    next_token: Option<&str>,
    max_results: Option<i32>,
    default_size: usize,
) -> AwsResult<(Vec<T>, Option<String>)> {
    let start = match next_token {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| invalid(format!("Invalid next token: {t}")))?,
        None => 0,
    };
    let size = max_results.map(|m| m.max(1) as usize).unwrap_or(default_size);
    let end = (start + size).min(items.len());
    let slice = items.get(start.min(items.len())..end).unwrap_or(&[]).to_vec();
    Ok((slice, (end < items.len()).then(|| end.to_string())))
}

/// A build id from an id or a build ARN.
fn build_id_of(s: &str) -> &str {
    s.split_once(":build/").map(|(_, id)| id).unwrap_or(s)
}

/// A report group name from its ARN (or a name).
fn group_name_of(a: &str) -> &str {
    a.rsplit_once("report-group/").map(|(_, n)| n).unwrap_or(a)
}

/// A BatchGet* answer: each name's item as `get` finds it, or the name among the missing.
async fn found_or_missing<T, F, Fut>(names: Vec<String>, mut get: F) -> AwsResult<(Vec<T>, Vec<String>)>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = AwsResult<Option<T>>>,
{
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    for name in names {
        match get(name.clone()).await? {
            Some(item) => found.push(item),
            None => missing.push(name),
        }
    }
    Ok((found, missing))
}

fn descending(order: Option<&SortOrderType>) -> bool {
    order == Some(&SortOrderType::Descending)
}

impl CodeBuildService {
    fn store(&self) -> &codeyard_store::SharedStore {
        &self.engine.platform.store
    }

    /// `iam:PassRole` of the role a request names for builds (serviceRole,
    /// serviceRoleOverride), and CodeBuild's own right to assume it, as CodeBuild checks them.
    async fn pass_role(&self, ctx: &RequestContext, role: Option<&str>) -> AwsResult<()> {
        let Some(role) = role.filter(|r| !r.is_empty()) else {
            return Ok(());
        };
        let platform = &self.engine.platform;
        platform
            .hub
            .authorize(ctx, &codeyard_core::AccessRequest::pass_role(role, crate::access::SERVICE_PRINCIPAL))
            .await
            .map_err(|d| d.to_error("AccessDeniedException"))?;
        crate::access::trusted(platform, &ctx.account, role, "AWSCodeBuild-CreateProject").await.map_err(invalid)
    }

    async fn list_build_ids(
        &self,
        ctx: &RequestContext,
        project: Option<&str>,
        order: Option<&SortOrderType>,
        next_token: Option<&str>,
    ) -> AwsResult<(Vec<String>, Option<String>)> {
        let name = project.map(project::name_of);
        if let Some(name) = name {
            self.engine.load_project(&ctx.account, &ctx.region, name).await?;
        }
        let ascending = order == Some(&SortOrderType::Ascending);
        crate::index::page(self.store(), &ctx.account, &ctx.region, name, ascending, next_token).await
    }

    async fn load_build(&self, ctx: &RequestContext, id: &str) -> AwsResult<BuildRecord> {
        self.engine
            .load_build(&ctx.account, &ctx.region, id)
            .await?
            .ok_or_else(|| CodeBuildError::BuildNotFound(id.to_string()).into())
    }

    async fn report_group(&self, ctx: &RequestContext, name: &str) -> AwsResult<Option<ReportGroupRecord>> {
        Ok(self
            .store()
            .get_as::<ReportGroupRecord>(&ns(&ctx.account, &ctx.region, "report-groups"), name)
            .await?
            .map(|(g, _)| g))
    }
}

#[codeyard_api::service]
impl CodeBuildApi for CodeBuildService {
    /// The IAM data's requests (the input names the project; PassRole is checked in the
    /// handlers that take a role, as CodeBuild does).
    async fn access_requests(&self, ctx: &RequestContext, operation: &str, input: &Value) -> AwsResult<Vec<codeyard_core::AccessRequest>> {
        Ok(codeyard_api::access::access_requests("codebuild", ctx, operation, input))
    }

    /// CodeBuild answers constraint violations with InvalidInputException.
    fn validation_error(&self, _operation: &str, problems: &[codeyard_wire::shapes::Problem]) -> AwsError {
        invalid(codeyard_wire::shapes::validation_message(problems))
    }

    async fn create_project(&self, ctx: &RequestContext, input: CreateProjectInput) -> AwsResult<CreateProjectOutput> {
        let p = project::create(&input, &ctx.region, &ctx.account)?;
        self.pass_role(ctx, Some(&p.service_role)).await?;
        let pns = ns(&ctx.account, &ctx.region, "projects");
        if self.store().get(&pns, &p.name).await?.is_some() {
            return Err(exists(&p));
        }
        if self.store().list(&pns, "", None, project::MAX_PROJECTS).await?.len() >= project::MAX_PROJECTS {
            return Err(CodeBuildError::LimitExceeded(format!("Cannot have more than {} projects", project::MAX_PROJECTS)).into());
        }
        match self.store().commit(Batch::new().put(&pns, &p.name, &p, Expect::Absent)).await {
            Ok(()) => Ok(CreateProjectOutput { project: Some(p.to_api()) }),
            Err(StoreError::Conflict(..)) => Err(exists(&p)),
            Err(e) => Err(e.into()),
        }
    }

    async fn update_project(&self, ctx: &RequestContext, input: UpdateProjectInput) -> AwsResult<UpdateProjectOutput> {
        let name = project::name_of(&input.name).to_string();
        let pns = ns(&ctx.account, &ctx.region, "projects");
        let Some((current, version)) = self.store().get_as::<ProjectRecord>(&pns, &name).await? else {
            return Err(CodeBuildError::ProjectNotFound(project::project_arn(&ctx.region, &ctx.account, &name)).into());
        };
        let p = project::update(&current, &input)?;
        self.pass_role(ctx, input.service_role.as_deref()).await?;
        self.store().commit(Batch::new().put(&pns, &name, &p, Expect::Version(version))).await?;
        Ok(UpdateProjectOutput { project: Some(p.to_api()) })
    }

    async fn delete_project(&self, ctx: &RequestContext, input: DeleteProjectInput) -> AwsResult<DeleteProjectOutput> {
        // AWS answers success for a project that does not exist.
        let name = project::name_of(&input.name).to_string();
        self.store()
            .commit(Batch::new().delete(ns(&ctx.account, &ctx.region, "projects"), &name, Expect::Any))
            .await?;
        Ok(DeleteProjectOutput::default())
    }

    async fn batch_get_projects(&self, ctx: &RequestContext, input: BatchGetProjectsInput) -> AwsResult<BatchGetProjectsOutput> {
        if input.names.is_empty() || input.names.len() > 100 {
            return Err(invalid("names must hold between 1 and 100 project names or ARNs"));
        }
        let pns = ns(&ctx.account, &ctx.region, "projects");
        let (found, missing) = found_or_missing(input.names, |n| {
            let pns = &pns;
            async move {
                let p = self.store().get_as::<ProjectRecord>(pns, project::name_of(&n)).await?;
                Ok(p.map(|(p, _)| p.to_api()))
            }
        })
        .await?;
        Ok(BatchGetProjectsOutput { projects: Some(found), projects_not_found: Some(missing) })
    }

    async fn list_projects(&self, ctx: &RequestContext, input: ListProjectsInput) -> AwsResult<ListProjectsOutput> {
        let mut projects: Vec<ProjectRecord> = self.store().list_all_as(&ns(&ctx.account, &ctx.region, "projects")).await?;
        match input.sort_by.unwrap_or(ProjectSortByType::Name) {
            ProjectSortByType::CreatedTime => projects.sort_by_key(|p| p.created),
            ProjectSortByType::LastModifiedTime => projects.sort_by_key(|p| p.last_modified),
            _ => projects.sort_by(|a, b| a.name.cmp(&b.name)),
        }
        if descending(input.sort_order.as_ref()) {
            projects.reverse();
        }
        let names: Vec<String> = projects.into_iter().map(|p| p.name).collect();
        let (items, next_token) = page(&names, input.next_token.as_deref(), None, 100)?;
        Ok(ListProjectsOutput { projects: Some(items), next_token })
    }

    async fn start_build(&self, ctx: &RequestContext, input: StartBuildInput) -> AwsResult<StartBuildOutput> {
        let initiator = ctx.caller_arn.rsplit(['/', ':']).next().unwrap_or("root").to_string();
        self.pass_role(ctx, input.service_role_override.as_deref()).await?;
        let b = self.engine.start(ctx, &input, None, &initiator).await?;
        Ok(StartBuildOutput { build: Some(b.to_api()) })
    }

    async fn batch_get_builds(&self, ctx: &RequestContext, input: BatchGetBuildsInput) -> AwsResult<BatchGetBuildsOutput> {
        if input.ids.is_empty() || input.ids.len() > 100 {
            return Err(invalid("ids must hold between 1 and 100 build ids"));
        }
        let (found, missing) = found_or_missing(input.ids, |id| async move {
            Ok(self.engine.load_build(&ctx.account, &ctx.region, build_id_of(&id)).await?.map(|b| b.to_api()))
        })
        .await?;
        Ok(BatchGetBuildsOutput { builds: Some(found), builds_not_found: Some(missing) })
    }

    async fn list_builds(&self, ctx: &RequestContext, input: ListBuildsInput) -> AwsResult<ListBuildsOutput> {
        let (ids, next_token) = self.list_build_ids(ctx, None, input.sort_order.as_ref(), input.next_token.as_deref()).await?;
        Ok(ListBuildsOutput { ids: Some(ids), next_token })
    }

    async fn list_builds_for_project(&self, ctx: &RequestContext, input: ListBuildsForProjectInput) -> AwsResult<ListBuildsForProjectOutput> {
        let (ids, next_token) = self
            .list_build_ids(ctx, Some(&input.project_name), input.sort_order.as_ref(), input.next_token.as_deref())
            .await?;
        Ok(ListBuildsForProjectOutput { ids: Some(ids), next_token })
    }

    async fn stop_build(&self, ctx: &RequestContext, input: StopBuildInput) -> AwsResult<StopBuildOutput> {
        let id = build_id_of(&input.id).to_string();
        self.load_build(ctx, &id).await?;
        self.engine.stop(&id).await;
        let b = self.load_build(ctx, &id).await?;
        Ok(StopBuildOutput { build: Some(b.to_api()) })
    }

    async fn retry_build(&self, ctx: &RequestContext, input: RetryBuildInput) -> AwsResult<RetryBuildOutput> {
        let id = build_id_of(input.id.as_deref().unwrap_or("")).to_string();
        let old = self.load_build(ctx, &id).await?;
        if !old.build_complete {
            return Err(invalid(format!("Build {id} is still in progress")));
        }
        if old.pipeline.is_some() {
            return Err(invalid("Builds started by CodePipeline are retried from the pipeline"));
        }
        let b = self.engine.start(ctx, &old.request, None, &old.initiator).await?;
        Ok(RetryBuildOutput { build: Some(b.to_api()) })
    }

    async fn batch_delete_builds(&self, ctx: &RequestContext, input: BatchDeleteBuildsInput) -> AwsResult<BatchDeleteBuildsOutput> {
        if input.ids.is_empty() || input.ids.len() > 100 {
            return Err(invalid("ids must hold between 1 and 100 build ids"));
        }
        let bns = ns(&ctx.account, &ctx.region, "builds");
        let mut deleted = Vec::new();
        let mut not_deleted = Vec::new();
        let refused = |id: String, code: &str| BuildNotDeleted { id: Some(id), status_code: Some(code.to_string()) };
        for id in input.ids {
            match self.engine.load_build(&ctx.account, &ctx.region, build_id_of(&id)).await? {
                None => not_deleted.push(refused(id, "BUILD_NOT_FOUND")),
                Some(b) if !b.build_complete => not_deleted.push(refused(id, "BUILD_IN_PROGRESS")),
                Some(b) => {
                    let batch = Batch::new().delete(&bns, &b.id, Expect::Any);
                    self.store().commit(crate::index::remove(batch, &b)).await?;
                    deleted.push(id);
                }
            }
        }
        Ok(BatchDeleteBuildsOutput { builds_deleted: Some(deleted), builds_not_deleted: Some(not_deleted) })
    }

    async fn create_report_group(&self, ctx: &RequestContext, input: CreateReportGroupInput) -> AwsResult<CreateReportGroupOutput> {
        let export = &input.export_config;
        if export.export_config_type == Some(ReportExportConfigType::S3)
            && export.s3_destination.as_ref().and_then(|d| d.bucket.as_deref()).unwrap_or("").is_empty()
        {
            return Err(invalid("exportConfig.s3Destination.bucket is required for export type S3"));
        }
        let g = reports::new_group(
            &ctx.region,
            &ctx.account,
            &input.name,
            input.r#type.clone(),
            input.export_config.clone(),
            input.tags.clone().unwrap_or_default(),
        );
        match self
            .store()
            .commit(Batch::new().put(ns(&ctx.account, &ctx.region, "report-groups"), &g.name, &g, Expect::Absent))
            .await
        {
            Ok(()) => Ok(CreateReportGroupOutput { report_group: Some(g.to_api()) }),
            Err(StoreError::Conflict(..)) => Err(CodeBuildError::ReportGroupExists(input.name).into()),
            Err(e) => Err(e.into()),
        }
    }

    async fn batch_get_report_groups(&self, ctx: &RequestContext, input: BatchGetReportGroupsInput) -> AwsResult<BatchGetReportGroupsOutput> {
        let (found, missing) = found_or_missing(input.report_group_arns, |a| async move {
            Ok(self.report_group(ctx, group_name_of(&a)).await?.map(|g| g.to_api()))
        })
        .await?;
        Ok(BatchGetReportGroupsOutput { report_groups: Some(found), report_groups_not_found: Some(missing) })
    }

    async fn list_report_groups(&self, ctx: &RequestContext, input: ListReportGroupsInput) -> AwsResult<ListReportGroupsOutput> {
        let mut groups: Vec<ReportGroupRecord> = self.store().list_all_as(&ns(&ctx.account, &ctx.region, "report-groups")).await?;
        match input.sort_by.unwrap_or(ReportGroupSortByType::CreatedTime) {
            ReportGroupSortByType::Name => groups.sort_by(|a, b| a.name.cmp(&b.name)),
            ReportGroupSortByType::LastModifiedTime => groups.sort_by_key(|g| g.last_modified),
            _ => groups.sort_by_key(|g| g.created),
        }
        if descending(input.sort_order.as_ref()) {
            groups.reverse();
        }
        let arns: Vec<String> = groups.into_iter().map(|g| g.arn).collect();
        let (items, next_token) = page(&arns, input.next_token.as_deref(), input.max_results, 100)?;
        Ok(ListReportGroupsOutput { report_groups: Some(items), next_token })
    }

    async fn delete_report_group(&self, ctx: &RequestContext, input: DeleteReportGroupInput) -> AwsResult<DeleteReportGroupOutput> {
        let name = group_name_of(&input.arn).to_string();
        let rns = ns(&ctx.account, &ctx.region, "reports");
        let existing = self.store().list(&rns, &format!("{name}:"), None, 1000).await?;
        if !existing.is_empty() && input.delete_reports != Some(true) {
            return Err(invalid(format!("Report group {} has reports; set deleteReports to delete them", input.arn)));
        }
        let mut batch = Batch::new().delete(ns(&ctx.account, &ctx.region, "report-groups"), &name, Expect::Any);
        for d in existing {
            batch = batch.delete(&rns, &d.key, Expect::Any);
        }
        self.store().commit(batch).await?;
        Ok(DeleteReportGroupOutput::default())
    }

    async fn batch_get_reports(&self, ctx: &RequestContext, input: BatchGetReportsInput) -> AwsResult<BatchGetReportsOutput> {
        let (found, missing) = found_or_missing(input.report_arns, |a| async move {
            Ok(reports::load_report(&self.engine.platform, ctx, &a).await?.map(|r| r.to_api()))
        })
        .await?;
        Ok(BatchGetReportsOutput { reports: Some(found), reports_not_found: Some(missing) })
    }

    async fn list_reports_for_report_group(&self, ctx: &RequestContext, input: ListReportsForReportGroupInput) -> AwsResult<ListReportsForReportGroupOutput> {
        let name = group_name_of(&input.report_group_arn).to_string();
        if self.report_group(ctx, &name).await?.is_none() {
            return Err(CodeBuildError::ReportGroupNotFound(input.report_group_arn).into());
        }
        let mut reports: Vec<ReportRecord> = self
            .store()
            .list(&ns(&ctx.account, &ctx.region, "reports"), &format!("{name}:"), None, 10_000)
            .await?
            .into_iter()
            .filter_map(|d| serde_json::from_value(d.value).ok())
            .collect();
        if let Some(s) = input.filter.as_ref().and_then(|f| f.status.as_ref()) {
            reports.retain(|r| &r.status == s);
        }
        reports.sort_by_key(|r| r.created);
        if input.sort_order != Some(SortOrderType::Ascending) {
            reports.reverse();
        }
        let arns: Vec<String> = reports.into_iter().map(|r| r.arn).collect();
        let (items, next_token) = page(&arns, input.next_token.as_deref(), input.max_results, 100)?;
        Ok(ListReportsForReportGroupOutput { reports: Some(items), next_token })
    }

    async fn describe_test_cases(&self, ctx: &RequestContext, input: DescribeTestCasesInput) -> AwsResult<DescribeTestCasesOutput> {
        let Some(r) = reports::load_report(&self.engine.platform, ctx, &input.report_arn).await? else {
            return Err(CodeBuildError::ReportNotFound(input.report_arn).into());
        };
        let mut cases = r.test_cases;
        if let Some(f) = &input.filter {
            if let Some(s) = &f.status {
                cases.retain(|c| c.status.as_str() == s);
            }
            if let Some(k) = &f.keyword {
                cases.retain(|c| c.name.contains(k.as_str()) || c.prefix.contains(k.as_str()));
            }
        }
        let (items, next_token) = page(&cases, input.next_token.as_deref(), input.max_results, 50)?;
        Ok(DescribeTestCasesOutput { test_cases: Some(items.iter().map(|c| c.to_api()).collect()), next_token })
    }
}
