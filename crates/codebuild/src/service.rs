//! The CodeBuild API (awsJson1.1, `CodeBuild_20161006.*`): a thin adapter from JSON to the
//! project, runner and report modules.

use crate::build::BuildRecord;
use crate::project;
use crate::reports;
use crate::runner::{Engine, ns};
use async_trait::async_trait;
use codeyard_core::{AwsError, AwsResult, RequestContext};
use codeyard_store::{Batch, Expect, StateStoreExt, StoreError};
use codeyard_wire::AwsService;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct CodeBuildService {
    pub engine: Arc<Engine>,
}

const OPERATIONS: &[&str] = &[
    "CreateProject",
    "UpdateProject",
    "DeleteProject",
    "BatchGetProjects",
    "ListProjects",
    "StartBuild",
    "BatchGetBuilds",
    "ListBuilds",
    "ListBuildsForProject",
    "StopBuild",
    "RetryBuild",
    "BatchDeleteBuilds",
    "CreateReportGroup",
    "BatchGetReportGroups",
    "ListReportGroups",
    "DeleteReportGroup",
    "BatchGetReports",
    "ListReportsForReportGroup",
    "DescribeTestCases",
];

fn invalid(msg: impl Into<String>) -> AwsError {
    AwsError::client("InvalidInputException", msg)
}

fn not_found(msg: impl Into<String>) -> AwsError {
    AwsError::client("ResourceNotFoundException", msg)
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

    async fn create_project(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let p = project::create(&input, &ctx.region, &ctx.account)?;
        self.pass_role(ctx, p["serviceRole"].as_str()).await?;
        let name = p["name"].as_str().unwrap_or("").to_string();
        let pns = ns(&ctx.account, &ctx.region, "projects");
        if self.store().get(&pns, &name).await?.is_some() {
            return Err(AwsError::client(
                "ResourceAlreadyExistsException",
                format!(
                    "Project already exists: {}",
                    p["arn"].as_str().unwrap_or("")
                ),
            ));
        }
        if self
            .store()
            .list(&pns, "", None, project::MAX_PROJECTS)
            .await?
            .len()
            >= project::MAX_PROJECTS
        {
            return Err(AwsError::client(
                "AccountLimitExceededException",
                format!("Cannot have more than {} projects", project::MAX_PROJECTS),
            ));
        }
        match self
            .store()
            .commit(Batch::new().put(&pns, &name, &p, Expect::Absent))
            .await
        {
            Ok(()) => Ok(json!({"project": p})),
            Err(StoreError::Conflict(..)) => Err(AwsError::client(
                "ResourceAlreadyExistsException",
                format!(
                    "Project already exists: {}",
                    p["arn"].as_str().unwrap_or("")
                ),
            )),
            Err(e) => Err(e.into()),
        }
    }

    async fn update_project(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let name = project::name_of(input["name"].as_str().unwrap_or("")).to_string();
        let pns = ns(&ctx.account, &ctx.region, "projects");
        let Some((current, version)) = self.store().get_as::<Value>(&pns, &name).await? else {
            return Err(not_found(format!(
                "Project cannot be found: {}",
                project::project_arn(&ctx.region, &ctx.account, &name)
            )));
        };
        let p = project::update(&current, &input, &ctx.region, &ctx.account)?;
        self.pass_role(ctx, input["serviceRole"].as_str()).await?;
        self.store()
            .commit(Batch::new().put(&pns, &name, &p, Expect::Version(version)))
            .await?;
        Ok(json!({"project": p}))
    }

    async fn delete_project(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
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

    async fn batch_get_projects(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
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

    async fn list_projects(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
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

    async fn start_build(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let initiator = ctx
            .caller_arn
            .rsplit(['/', ':'])
            .next()
            .unwrap_or("root")
            .to_string();
        self.pass_role(ctx, input["serviceRoleOverride"].as_str()).await?;
        let b = self.engine.start(ctx, &input, None, &initiator).await?;
        Ok(json!({"build": b.to_api()}))
    }

    async fn batch_get_builds(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
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

    async fn list_builds(
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

    async fn stop_build(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let id = build_id_of(input["id"].as_str().unwrap_or("")).to_string();
        if self
            .engine
            .load_build(&ctx.account, &ctx.region, &id)
            .await?
            .is_none()
        {
            return Err(not_found(format!("Build {id} does not exist")));
        }
        self.engine.stop(&id).await;
        let b = self
            .engine
            .load_build(&ctx.account, &ctx.region, &id)
            .await?
            .ok_or_else(|| not_found(format!("Build {id} does not exist")))?;
        Ok(json!({"build": b.to_api()}))
    }

    async fn retry_build(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let id = build_id_of(input["id"].as_str().unwrap_or("")).to_string();
        let Some(old) = self
            .engine
            .load_build(&ctx.account, &ctx.region, &id)
            .await?
        else {
            return Err(not_found(format!("Build {id} does not exist")));
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

    async fn batch_delete_builds(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
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

    async fn create_report_group(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
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
            Err(StoreError::Conflict(..)) => Err(AwsError::client(
                "ResourceAlreadyExistsException",
                format!("Report group with name {name} already exists"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    async fn batch_get_report_groups(
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

    async fn list_report_groups(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
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

    async fn delete_report_group(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
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

    async fn batch_get_reports(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
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

    async fn list_reports_for_group(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
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
            return Err(not_found(format!("Report group {a} does not exist")));
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

    async fn describe_test_cases(&self, ctx: &RequestContext, input: Value) -> AwsResult<Value> {
        let a = input["reportArn"].as_str().unwrap_or("");
        let Some(r) = reports::load_report(&self.engine.platform, ctx, a).await? else {
            return Err(not_found(format!("Report {a} does not exist")));
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

#[async_trait]
impl AwsService for CodeBuildService {
    fn model_name(&self) -> &'static str {
        "codebuild"
    }

    fn implemented(&self) -> &'static [&'static str] {
        OPERATIONS
    }

    async fn call(&self, ctx: &RequestContext, operation: &str, input: Value) -> AwsResult<Value> {
        match operation {
            "CreateProject" => self.create_project(ctx, input).await,
            "UpdateProject" => self.update_project(ctx, input).await,
            "DeleteProject" => self.delete_project(ctx, input).await,
            "BatchGetProjects" => self.batch_get_projects(ctx, input).await,
            "ListProjects" => self.list_projects(ctx, input).await,
            "StartBuild" => self.start_build(ctx, input).await,
            "BatchGetBuilds" => self.batch_get_builds(ctx, input).await,
            "ListBuilds" => self.list_builds(ctx, input, None).await,
            "ListBuildsForProject" => {
                let p = input["projectName"].as_str().unwrap_or("").to_string();
                self.list_builds(ctx, input, Some(p)).await
            }
            "StopBuild" => self.stop_build(ctx, input).await,
            "RetryBuild" => self.retry_build(ctx, input).await,
            "BatchDeleteBuilds" => self.batch_delete_builds(ctx, input).await,
            "CreateReportGroup" => self.create_report_group(ctx, input).await,
            "BatchGetReportGroups" => self.batch_get_report_groups(ctx, input).await,
            "ListReportGroups" => self.list_report_groups(ctx, input).await,
            "DeleteReportGroup" => self.delete_report_group(ctx, input).await,
            "BatchGetReports" => self.batch_get_reports(ctx, input).await,
            "ListReportsForReportGroup" => self.list_reports_for_group(ctx, input).await,
            "DescribeTestCases" => self.describe_test_cases(ctx, input).await,
            other => Err(AwsError::unknown_operation("CodeBuild", other)),
        }
    }

    async fn access_requests(&self, ctx: &RequestContext, op: &str, input: &Value) -> AwsResult<Vec<codeyard_core::AccessRequest>> {
        Ok(codeyard_api::access::access_requests("codebuild", ctx, op, input))
    }

    fn validation_error(
        &self,
        _operation: &str,
        problems: &[codeyard_wire::shapes::Problem],
    ) -> AwsError {
        invalid(codeyard_wire::shapes::validation_message(problems))
    }
}
