//! The CodeBuild API (awsJson1.1, `CodeBuild_20161006.*`): the generated [`CodeBuildApi`]
//! trait implemented over the project, runner and report modules. Inputs arrive as the
//! model's types (the wire validated them first); every operation not defined here answers
//! UnknownOperationException, and the list of implemented operations comes from this impl.
//!
//! Most handlers (`json_*`) still read their input and build their output as JSON in the
//! model's shape; [`wire`] bridges them to the typed trait until each is typed through.

use crate::build::BuildRecord;
use crate::error::CodeBuildError;
use crate::project;
use crate::reports;
use crate::runner::{Engine, ns};
use codeyard_core::{AwsError, AwsResult, RequestContext};
use codeyard_store::{Batch, Expect, StateStoreExt, StoreError};
use codeyard_api::codebuild::*;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct CodeBuildService {
    pub engine: Arc<Engine>,
}

fn invalid(msg: impl Into<String>) -> AwsError {
    CodeBuildError::Invalid(msg.into()).into()
}

/// ResourceAlreadyExistsException for the project `p` (as stored).
fn exists(p: &Value) -> AwsError {
    CodeBuildError::ProjectExists(p["arn"].as_str().unwrap_or("").to_string()).into()
}

/// Offset-based paging: `nextToken` is the index of the next item.
fn page<T: Clone>(
    items: &[T],
    input: &Value,
    default_size: usize,
) -> AwsResult<(Vec<T>, Option<String>)> {
    let start = match input["nextToken"].as_str() {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| invalid(format!("Invalid next token: {t}")))?,
        None => 0,
    };
    let size = input["maxResults"]
        .as_u64()
        .map(|m| m as usize)
        .unwrap_or(default_size)
        .max(1);
    let end = (start + size).min(items.len());
    let slice = items
        .get(start.min(items.len())..end)
        .unwrap_or(&[])
        .to_vec();
    Ok((slice, (end < items.len()).then(|| end.to_string())))
}

fn ids_of(input: &Value, key: &str) -> Vec<String> {
    input[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// A build id from an id or a build ARN.
fn build_id_of(s: &str) -> &str {
    s.split_once(":build/").map(|(_, id)| id).unwrap_or(s)
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

    async fn builds(&self, ctx: &RequestContext) -> AwsResult<Vec<BuildRecord>> {
        Ok(self
            .store()
            .list_all_as::<BuildRecord>(&ns(&ctx.account, &ctx.region, "builds"))
            .await?)
    }

    fn sorted_ids(mut builds: Vec<BuildRecord>, input: &Value) -> Vec<String> {
        builds.sort_by_key(|b| (b.start_ms, b.build_number));
        if input["sortOrder"].as_str() != Some("ASCENDING") {
            builds.reverse();
        }
        builds.into_iter().map(|b| b.id).collect()
    }

    async fn json_create_project(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let p = project::create(&input, &ctx.region, &ctx.account)?;
        self.pass_role(ctx, p["serviceRole"].as_str()).await?;
        let name = p["name"].as_str().unwrap_or("").to_string();
        let pns = ns(&ctx.account, &ctx.region, "projects");
        if self.store().get(&pns, &name).await?.is_some() {
            return Err(exists(&p));
        }
        if self
            .store()
            .list(&pns, "", None, project::MAX_PROJECTS)
            .await?
            .len()
            >= project::MAX_PROJECTS
        {
            return Err(CodeBuildError::LimitExceeded(format!("Cannot have more than {} projects", project::MAX_PROJECTS)).into());
        }
        match self
            .store()
            .commit(Batch::new().put(&pns, &name, &p, Expect::Absent))
            .await
        {
            Ok(()) => Ok(json!({"project": p})),
            Err(StoreError::Conflict(..)) => Err(exists(&p)),
            Err(e) => Err(e.into()),
        }
    }

    async fn json_update_project(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let name = project::name_of(input["name"].as_str().unwrap_or("")).to_string();
        let pns = ns(&ctx.account, &ctx.region, "projects");
        let Some((current, version)) = self.store().get_as::<Value>(&pns, &name).await? else {
            return Err(CodeBuildError::ProjectNotFound(project::project_arn(&ctx.region, &ctx.account, &name)).into());
        };
        let p = project::update(&current, &input, &ctx.region, &ctx.account)?;
        self.pass_role(ctx, input["serviceRole"].as_str()).await?;
        self.store()
            .commit(Batch::new().put(&pns, &name, &p, Expect::Version(version)))
            .await?;
        Ok(json!({"project": p}))
    }

    async fn json_delete_project(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        // AWS answers success for a project that does not exist.
        let name = project::name_of(input["name"].as_str().unwrap_or("")).to_string();
        self.store()
            .commit(Batch::new().delete(
                ns(&ctx.account, &ctx.region, "projects"),
                &name,
                Expect::Any,
            ))
            .await?;
        Ok(json!({}))
    }

    async fn json_batch_get_projects(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let names = ids_of(&input, "names");
        if names.is_empty() || names.len() > 100 {
            return Err(invalid(
                "names must hold between 1 and 100 project names or ARNs",
            ));
        }
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for n in names {
            match self
                .store()
                .get_as::<Value>(
                    &ns(&ctx.account, &ctx.region, "projects"),
                    project::name_of(&n),
                )
                .await?
            {
                Some((p, _)) => found.push(p),
                None => missing.push(n),
            }
        }
        Ok(json!({"projects": found, "projectsNotFound": missing}))
    }

    async fn json_list_projects(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let mut projects: Vec<Value> = self
            .store()
            .list_all_as(&ns(&ctx.account, &ctx.region, "projects"))
            .await?;
        let key = input["sortBy"].as_str().unwrap_or("NAME").to_string();
        projects.sort_by(|a, b| match key.as_str() {
            "CREATED_TIME" => a["created"]
                .as_f64()
                .partial_cmp(&b["created"].as_f64())
                .unwrap_or(std::cmp::Ordering::Equal),
            "LAST_MODIFIED_TIME" => a["lastModified"]
                .as_f64()
                .partial_cmp(&b["lastModified"].as_f64())
                .unwrap_or(std::cmp::Ordering::Equal),
            _ => a["name"].as_str().cmp(&b["name"].as_str()),
        });
        if input["sortOrder"].as_str() == Some("DESCENDING") {
            projects.reverse();
        }
        let names: Vec<String> = projects
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect();
        let (items, next) = page(&names, &input, 100)?;
        let mut out = json!({"projects": items});
        if let Some(n) = next {
            out["nextToken"] = json!(n);
        }
        Ok(out)
    }

    async fn json_batch_get_builds(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let ids = ids_of(&input, "ids");
        if ids.is_empty() || ids.len() > 100 {
            return Err(invalid("ids must hold between 1 and 100 build ids"));
        }
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            match self
                .engine
                .load_build(&ctx.account, &ctx.region, build_id_of(&id))
                .await?
            {
                Some(b) => found.push(b.to_api()),
                None => missing.push(id),
            }
        }
        Ok(json!({"builds": found, "buildsNotFound": missing}))
    }

    async fn json_list_builds(
        &self,
        ctx: &RequestContext,
        input: Value,
        project: Option<String>,
    ) -> AwsResult<Value> {
        let mut builds = self.builds(ctx).await?;
        if let Some(p) = &project {
            let name = project::name_of(p);
            self.engine
                .load_project(&ctx.account, &ctx.region, name)
                .await?;
            builds.retain(|b| b.project_name == name);
        }
        let ids = Self::sorted_ids(builds, &input);
        let (items, next) = page(&ids, &input, 100)?;
        let mut out = json!({"ids": items});
        if let Some(n) = next {
            out["nextToken"] = json!(n);
        }
        Ok(out)
    }

    async fn json_stop_build(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let id = build_id_of(input["id"].as_str().unwrap_or("")).to_string();
        if self
            .engine
            .load_build(&ctx.account, &ctx.region, &id)
            .await?
            .is_none()
        {
            return Err(CodeBuildError::BuildNotFound(id).into());
        }
        self.engine.stop(&id).await;
        let b = self
            .engine
            .load_build(&ctx.account, &ctx.region, &id)
            .await?
            .ok_or_else(|| CodeBuildError::BuildNotFound(id.clone()))?;
        Ok(json!({"build": b.to_api()}))
    }

    async fn json_retry_build(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let id = build_id_of(input["id"].as_str().unwrap_or("")).to_string();
        let Some(old) = self
            .engine
            .load_build(&ctx.account, &ctx.region, &id)
            .await?
        else {
            return Err(CodeBuildError::BuildNotFound(id).into());
        };
        if !old.build_complete {
            return Err(invalid(format!("Build {id} is still in progress")));
        }
        if old.pipeline.is_some() {
            return Err(invalid(
                "Builds started by CodePipeline are retried from the pipeline",
            ));
        }
        let b = self
            .engine
            .start(ctx, &old.request, None, &old.initiator)
            .await?;
        Ok(json!({"build": b.to_api()}))
    }

    async fn json_batch_delete_builds(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let ids = ids_of(&input, "ids");
        if ids.is_empty() || ids.len() > 100 {
            return Err(invalid("ids must hold between 1 and 100 build ids"));
        }
        let bns = ns(&ctx.account, &ctx.region, "builds");
        let mut deleted = Vec::new();
        let mut not_deleted = Vec::new();
        for id in ids {
            match self
                .engine
                .load_build(&ctx.account, &ctx.region, build_id_of(&id))
                .await?
            {
                None => not_deleted.push(json!({"id": id, "statusCode": "BUILD_NOT_FOUND"})),
                Some(b) if !b.build_complete => {
                    not_deleted.push(json!({"id": id, "statusCode": "BUILD_IN_PROGRESS"}))
                }
                Some(b) => {
                    self.store()
                        .commit(Batch::new().delete(&bns, &b.id, Expect::Any))
                        .await?;
                    deleted.push(id);
                }
            }
        }
        Ok(json!({"buildsDeleted": deleted, "buildsNotDeleted": not_deleted}))
    }

    async fn json_create_report_group(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let name = input["name"].as_str().unwrap_or("").to_string();
        let export = input["exportConfig"].clone();
        if export["exportConfigType"] == "S3"
            && export["s3Destination"]["bucket"]
                .as_str()
                .unwrap_or("")
                .is_empty()
        {
            return Err(invalid(
                "exportConfig.s3Destination.bucket is required for export type S3",
            ));
        }
        let g = reports::new_group(
            &ctx.region,
            &ctx.account,
            &name,
            input["type"].as_str().unwrap_or("TEST"),
            export,
            input.get("tags").cloned().unwrap_or(json!([])),
        );
        match self
            .store()
            .commit(Batch::new().put(
                ns(&ctx.account, &ctx.region, "report-groups"),
                &name,
                &g,
                Expect::Absent,
            ))
            .await
        {
            Ok(()) => Ok(json!({"reportGroup": g})),
            Err(StoreError::Conflict(..)) => Err(CodeBuildError::ReportGroupExists(name).into()),
            Err(e) => Err(e.into()),
        }
    }

    async fn json_batch_get_report_groups(
        &self,
        ctx: &RequestContext,
        input: Value,
    ) -> AwsResult<Value> {
        let arns = ids_of(&input, "reportGroupArns");
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for a in arns {
            let name = a.rsplit_once("report-group/").map(|(_, n)| n).unwrap_or(&a);
            match self
                .store()
                .get_as::<Value>(&ns(&ctx.account, &ctx.region, "report-groups"), name)
                .await?
            {
                Some((g, _)) => found.push(g),
                None => missing.push(a),
            }
        }
        Ok(json!({"reportGroups": found, "reportGroupsNotFound": missing}))
    }

    async fn json_list_report_groups(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let mut groups: Vec<Value> = self
            .store()
            .list_all_as(&ns(&ctx.account, &ctx.region, "report-groups"))
            .await?;
        if input["sortBy"].as_str() != Some("NAME") {
            groups.sort_by(|a, b| {
                a["created"]
                    .as_f64()
                    .partial_cmp(&b["created"].as_f64())
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
        }
        if input["sortOrder"].as_str() == Some("DESCENDING") {
            groups.reverse();
        }
        let arns: Vec<String> = groups
            .iter()
            .filter_map(|g| g["arn"].as_str().map(str::to_string))
            .collect();
        let (items, next) = page(&arns, &input, 100)?;
        let mut out = json!({"reportGroups": items});
        if let Some(n) = next {
            out["nextToken"] = json!(n);
        }
        Ok(out)
    }

    async fn json_delete_report_group(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let a = input["arn"].as_str().unwrap_or("");
        let name = a
            .rsplit_once("report-group/")
            .map(|(_, n)| n)
            .unwrap_or(a)
            .to_string();
        let rns = ns(&ctx.account, &ctx.region, "reports");
        let prefix = format!("{name}:");
        let existing = self.store().list(&rns, &prefix, None, 1000).await?;
        if !existing.is_empty() && input["deleteReports"].as_bool() != Some(true) {
            return Err(invalid(format!(
                "Report group {a} has reports; set deleteReports to delete them"
            )));
        }
        let mut batch = Batch::new().delete(
            ns(&ctx.account, &ctx.region, "report-groups"),
            &name,
            Expect::Any,
        );
        for d in existing {
            batch = batch.delete(&rns, &d.key, Expect::Any);
        }
        self.store().commit(batch).await?;
        Ok(json!({}))
    }

    async fn json_batch_get_reports(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for a in ids_of(&input, "reportArns") {
            match reports::load_report(&self.engine.platform, ctx, &a).await? {
                Some(r) => found.push(reports::report_api(&r)),
                None => missing.push(a),
            }
        }
        Ok(json!({"reports": found, "reportsNotFound": missing}))
    }

    async fn json_list_reports_for_group(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let a = input["reportGroupArn"].as_str().unwrap_or("");
        let name = a
            .rsplit_once("report-group/")
            .map(|(_, n)| n)
            .unwrap_or(a)
            .to_string();
        if self
            .store()
            .get(&ns(&ctx.account, &ctx.region, "report-groups"), &name)
            .await?
            .is_none()
        {
            return Err(CodeBuildError::ReportGroupNotFound(a.to_string()).into());
        }
        let docs = self
            .store()
            .list(
                &ns(&ctx.account, &ctx.region, "reports"),
                &format!("{name}:"),
                None,
                10_000,
            )
            .await?;
        let mut reports: Vec<Value> = docs.into_iter().map(|d| d.value).collect();
        if let Some(s) = input["filter"]["status"].as_str() {
            reports.retain(|r| r["status"] == s);
        }
        reports.sort_by(|a, b| {
            a["created"]
                .as_f64()
                .partial_cmp(&b["created"].as_f64())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        if input["sortOrder"].as_str() != Some("ASCENDING") {
            reports.reverse();
        }
        let arns: Vec<String> = reports
            .iter()
            .filter_map(|r| r["arn"].as_str().map(str::to_string))
            .collect();
        let (items, next) = page(&arns, &input, 100)?;
        let mut out = json!({"reports": items});
        if let Some(n) = next {
            out["nextToken"] = json!(n);
        }
        Ok(out)
    }

    async fn json_describe_test_cases(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let a = input["reportArn"].as_str().unwrap_or("");
        let Some(r) = reports::load_report(&self.engine.platform, ctx, a).await? else {
            return Err(CodeBuildError::ReportNotFound(a.to_string()).into());
        };
        let mut cases: Vec<Value> = r["testCases"].as_array().cloned().unwrap_or_default();
        if let Some(s) = input["filter"]["status"].as_str() {
            cases.retain(|c| c["status"] == s);
        }
        if let Some(k) = input["filter"]["keyword"].as_str() {
            cases.retain(|c| {
                c["name"].as_str().unwrap_or("").contains(k)
                    || c["prefix"].as_str().unwrap_or("").contains(k)
            });
        }
        let (items, next) = page(&cases, &input, 50)?;
        let mut out = json!({"testCases": items});
        if let Some(n) = next {
            out["nextToken"] = json!(n);
        }
        Ok(out)
    }
}

/// A typed input as the `json_*` handlers read it, and their JSON output as the typed output.
async fn wire<I: serde::Serialize, O: serde::de::DeserializeOwned>(
    input: I,
    handler: impl AsyncFnOnce(Value) -> AwsResult<Value>,
) -> AwsResult<O> {
    let output = handler(codeyard_api::encode(input)?).await?;
    serde_json::from_value(output).map_err(|e| AwsError::internal(format!("CodeBuild output does not fit the model: {e}")))
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
        wire(input, async |v| self.json_create_project(ctx, v).await).await
    }

    async fn update_project(&self, ctx: &RequestContext, input: UpdateProjectInput) -> AwsResult<UpdateProjectOutput> {
        wire(input, async |v| self.json_update_project(ctx, v).await).await
    }

    async fn delete_project(&self, ctx: &RequestContext, input: DeleteProjectInput) -> AwsResult<DeleteProjectOutput> {
        wire(input, async |v| self.json_delete_project(ctx, v).await).await
    }

    async fn batch_get_projects(&self, ctx: &RequestContext, input: BatchGetProjectsInput) -> AwsResult<BatchGetProjectsOutput> {
        wire(input, async |v| self.json_batch_get_projects(ctx, v).await).await
    }

    async fn list_projects(&self, ctx: &RequestContext, input: ListProjectsInput) -> AwsResult<ListProjectsOutput> {
        wire(input, async |v| self.json_list_projects(ctx, v).await).await
    }

    async fn start_build(&self, ctx: &RequestContext, input: StartBuildInput) -> AwsResult<StartBuildOutput> {
        let initiator = ctx.caller_arn.rsplit(['/', ':']).next().unwrap_or("root").to_string();
        self.pass_role(ctx, input.service_role_override.as_deref()).await?;
        let b = self.engine.start(ctx, &input, None, &initiator).await?;
        wire((), async |_| Ok(json!({"build": b.to_api()}))).await
    }

    async fn batch_get_builds(&self, ctx: &RequestContext, input: BatchGetBuildsInput) -> AwsResult<BatchGetBuildsOutput> {
        wire(input, async |v| self.json_batch_get_builds(ctx, v).await).await
    }

    async fn list_builds(&self, ctx: &RequestContext, input: ListBuildsInput) -> AwsResult<ListBuildsOutput> {
        wire(input, async |v| self.json_list_builds(ctx, v, None).await).await
    }

    async fn list_builds_for_project(&self, ctx: &RequestContext, input: ListBuildsForProjectInput) -> AwsResult<ListBuildsForProjectOutput> {
        let project = input.project_name.clone();
        wire(input, async |v| self.json_list_builds(ctx, v, Some(project)).await).await
    }

    async fn stop_build(&self, ctx: &RequestContext, input: StopBuildInput) -> AwsResult<StopBuildOutput> {
        wire(input, async |v| self.json_stop_build(ctx, v).await).await
    }

    async fn retry_build(&self, ctx: &RequestContext, input: RetryBuildInput) -> AwsResult<RetryBuildOutput> {
        wire(input, async |v| self.json_retry_build(ctx, v).await).await
    }

    async fn batch_delete_builds(&self, ctx: &RequestContext, input: BatchDeleteBuildsInput) -> AwsResult<BatchDeleteBuildsOutput> {
        wire(input, async |v| self.json_batch_delete_builds(ctx, v).await).await
    }

    async fn create_report_group(&self, ctx: &RequestContext, input: CreateReportGroupInput) -> AwsResult<CreateReportGroupOutput> {
        wire(input, async |v| self.json_create_report_group(ctx, v).await).await
    }

    async fn batch_get_report_groups(&self, ctx: &RequestContext, input: BatchGetReportGroupsInput) -> AwsResult<BatchGetReportGroupsOutput> {
        wire(input, async |v| self.json_batch_get_report_groups(ctx, v).await).await
    }

    async fn list_report_groups(&self, ctx: &RequestContext, input: ListReportGroupsInput) -> AwsResult<ListReportGroupsOutput> {
        wire(input, async |v| self.json_list_report_groups(ctx, v).await).await
    }

    async fn delete_report_group(&self, ctx: &RequestContext, input: DeleteReportGroupInput) -> AwsResult<DeleteReportGroupOutput> {
        wire(input, async |v| self.json_delete_report_group(ctx, v).await).await
    }

    async fn batch_get_reports(&self, ctx: &RequestContext, input: BatchGetReportsInput) -> AwsResult<BatchGetReportsOutput> {
        wire(input, async |v| self.json_batch_get_reports(ctx, v).await).await
    }

    async fn list_reports_for_report_group(&self, ctx: &RequestContext, input: ListReportsForReportGroupInput) -> AwsResult<ListReportsForReportGroupOutput> {
        wire(input, async |v| self.json_list_reports_for_group(ctx, v).await).await
    }

    async fn describe_test_cases(&self, ctx: &RequestContext, input: DescribeTestCasesInput) -> AwsResult<DescribeTestCasesOutput> {
        wire(input, async |v| self.json_describe_test_cases(ctx, v).await).await
    }
}
