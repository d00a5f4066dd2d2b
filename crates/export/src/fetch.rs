//! Reading what a server holds, through its real APIs as the caller ([`App::call`]: validated,
//! authorized, model-checked) and the hub's object store for S3. Everything is typed with the
//! generated shapes of `codeyard_api`; policy documents stay the JSON text the API answered.

use crate::ExportError;
use codeyard_api::{codebuild, codecommit, codepipeline, ecr, events, iam, logs};
use codeyard_core::hub::{BucketSettings, BucketSummary};
use codeyard_core::{AwsError, RequestContext};
use codeyard_wire::dispatch::App;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) type Tags = BTreeMap<String, String>;

/// Everything an export can recreate, read once.
#[derive(Default)]
pub(crate) struct Snapshot {
    pub roles: Vec<RoleRecord>,
    /// Customer managed policies some exported role has attached.
    pub policies: Vec<PolicyRecord>,
    pub repositories: Vec<(codecommit::RepositoryMetadata, Tags)>,
    pub projects: Vec<codebuild::Project>,
    pub pipelines: Vec<PipelineRecord>,
    pub images: Vec<ImageRepositoryRecord>,
    pub buckets: Vec<(BucketSummary, BucketSettings)>,
    /// Event buses other than `default`.
    pub buses: Vec<(events::EventBus, Tags)>,
    pub rules: Vec<RuleRecord>,
    pub log_groups: Vec<(logs::LogGroup, Tags)>,
    /// What could not be read, as `(resource type, why)`: written as comments.
    pub skipped: Vec<(String, String)>,
}

pub(crate) struct RoleRecord {
    pub role: iam::Role,
    /// (policy name, document JSON)
    pub inline: Vec<(String, String)>,
    pub attached: Vec<String>,
}

pub(crate) struct PolicyRecord {
    pub policy: iam::Policy,
    pub document: String,
}

pub(crate) struct PipelineRecord {
    pub pipeline: codepipeline::PipelineDeclaration,
    pub arn: String,
    pub tags: Tags,
}

pub(crate) struct ImageRepositoryRecord {
    pub repository: ecr::Repository,
    pub lifecycle_policy: Option<String>,
    pub repository_policy: Option<String>,
    pub tags: Tags,
}

pub(crate) struct RuleRecord {
    pub rule: events::Rule,
    pub targets: Vec<events::Target>,
    pub tags: Tags,
}

struct Reader<'a> {
    app: &'a Arc<App>,
    ctx: &'a RequestContext,
}

impl Reader<'_> {
    async fn call<O: DeserializeOwned>(&self, model: &'static str, op: &'static str, input: Value) -> Result<O, ExportError> {
        let unreadable = |e: serde_json::Error| ExportError::Unreadable { model, op, detail: e.to_string() };
        self.app.call_typed(model, self.ctx, op, input, unreadable).await
    }

    /// Every page of a listing: `token_in` names the request's token member, `next` reads the
    /// next token from a page.
    async fn pages<O: DeserializeOwned>(
        &self,
        model: &'static str,
        op: &'static str,
        input: Value,
        token_in: &str,
        next: impl Fn(&O) -> Option<String>,
    ) -> Result<Vec<O>, ExportError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = input.clone();
            if let Some(t) = &token {
                req[token_in] = json!(t);
            }
            let page: O = self.call(model, op, req).await?;
            token = next(&page).filter(|t| !t.is_empty());
            out.push(page);
            if token.is_none() {
                return Ok(out);
            }
        }
    }
}

/// An answer the caller may not see is skipped with its reason; a missing sub-resource
/// (no lifecycle policy) is `None`.
fn absent_if<T>(r: Result<T, ExportError>, codes: &[&str]) -> Result<Option<T>, ExportError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(ExportError::Api(e)) if codes.contains(&e.code.as_str()) => Ok(None),
        Err(e) => Err(e),
    }
}

/// IAM answers policy documents percent-encoded.
fn decode_document(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn pairs(tags: impl IntoIterator<Item = (String, String)>) -> Tags {
    tags.into_iter().collect()
}

pub(crate) async fn snapshot(app: &Arc<App>, ctx: &RequestContext) -> Result<Snapshot, ExportError> {
    let r = Reader { app, ctx };
    let mut s = Snapshot::default();
    // Each service on its own: one the caller may not read is skipped, the rest still exported.
    macro_rules! part {
        ($what:literal, $e:expr) => {
            if let Err(e) = $e {
                match e {
                    ExportError::Api(AwsError { code, message, .. }) => s.skipped.push(($what.to_string(), format!("{code}: {message}"))),
                    other => return Err(other),
                }
            }
        };
    }
    part!("aws_iam_role", roles(&r, &mut s).await);
    part!("aws_codecommit_repository", repositories(&r, &mut s).await);
    part!("aws_codebuild_project", projects(&r, &mut s).await);
    part!("aws_codepipeline", pipelines(&r, &mut s).await);
    part!("aws_ecr_repository", images(&r, &mut s).await);
    part!("aws_cloudwatch_event_rule", rules(&r, &mut s).await);
    part!("aws_cloudwatch_log_group", log_groups(&r, &mut s).await);
    part!("aws_s3_bucket", buckets(app, ctx, &mut s).await);
    Ok(s)
}

async fn roles(r: &Reader<'_>, s: &mut Snapshot) -> Result<(), ExportError> {
    let pages: Vec<iam::ListRolesOutput> = r.pages("iam", "ListRoles", json!({}), "Marker", |p: &iam::ListRolesOutput| p.marker.clone().filter(|_| p.is_truncated == Some(true))).await?;
    let mut customer_policies: Vec<String> = Vec::new();
    for listed in pages.into_iter().flat_map(|p| p.roles) {
        // Service-linked roles are made by AWS services, not by configuration.
        if listed.path.starts_with("/aws-service-role/") {
            continue;
        }
        let got: iam::GetRoleOutput = r.call("iam", "GetRole", json!({"RoleName": listed.role_name})).await?;
        let mut role = got.role;
        role.assume_role_policy_document = role.assume_role_policy_document.as_deref().map(decode_document);
        let names: Vec<iam::ListRolePoliciesOutput> =
            r.pages("iam", "ListRolePolicies", json!({"RoleName": role.role_name}), "Marker", |p: &iam::ListRolePoliciesOutput| p.marker.clone().filter(|_| p.is_truncated == Some(true))).await?;
        let mut inline = Vec::new();
        for name in names.into_iter().flat_map(|p| p.policy_names) {
            let p: iam::GetRolePolicyOutput = r.call("iam", "GetRolePolicy", json!({"RoleName": role.role_name, "PolicyName": name})).await?;
            inline.push((p.policy_name, decode_document(&p.policy_document)));
        }
        let attached: Vec<iam::ListAttachedRolePoliciesOutput> = r
            .pages("iam", "ListAttachedRolePolicies", json!({"RoleName": role.role_name}), "Marker", |p: &iam::ListAttachedRolePoliciesOutput| {
                p.marker.clone().filter(|_| p.is_truncated == Some(true))
            })
            .await?;
        let mut arns: Vec<String> = attached.into_iter().flat_map(|p| p.attached_policies.unwrap_or_default()).filter_map(|a| a.policy_arn).collect();
        arns.sort();
        customer_policies.extend(arns.iter().filter(|a| !a.starts_with("arn:aws:iam::aws:policy/")).cloned());
        inline.sort();
        s.roles.push(RoleRecord { role, inline, attached: arns });
    }
    customer_policies.sort();
    customer_policies.dedup();
    for arn in customer_policies {
        let got: iam::GetPolicyOutput = r.call("iam", "GetPolicy", json!({"PolicyArn": arn})).await?;
        let Some(policy) = got.policy else { continue };
        let version = policy.default_version_id.clone().unwrap_or_else(|| "v1".into());
        let v: iam::GetPolicyVersionOutput = r.call("iam", "GetPolicyVersion", json!({"PolicyArn": arn, "VersionId": version})).await?;
        let document = v.policy_version.and_then(|v| v.document).map(|d| decode_document(&d)).unwrap_or_default();
        s.policies.push(PolicyRecord { policy, document });
    }
    Ok(())
}

async fn repositories(r: &Reader<'_>, s: &mut Snapshot) -> Result<(), ExportError> {
    let pages: Vec<codecommit::ListRepositoriesOutput> = r.pages("codecommit", "ListRepositories", json!({}), "nextToken", |p: &codecommit::ListRepositoriesOutput| p.next_token.clone()).await?;
    let names: Vec<String> = pages.into_iter().flat_map(|p| p.repositories.unwrap_or_default()).filter_map(|p| p.repository_name).collect();
    for chunk in names.chunks(25) {
        let got: codecommit::BatchGetRepositoriesOutput = r.call("codecommit", "BatchGetRepositories", json!({"repositoryNames": chunk})).await?;
        for repo in got.repositories.unwrap_or_default() {
            let tags: codecommit::ListTagsForResourceOutput = r.call("codecommit", "ListTagsForResource", json!({"resourceArn": repo.arn})).await?;
            s.repositories.push((repo, tags.tags.unwrap_or_default()));
        }
    }
    Ok(())
}

async fn projects(r: &Reader<'_>, s: &mut Snapshot) -> Result<(), ExportError> {
    let pages: Vec<codebuild::ListProjectsOutput> = r.pages("codebuild", "ListProjects", json!({}), "nextToken", |p: &codebuild::ListProjectsOutput| p.next_token.clone()).await?;
    let names: Vec<String> = pages.into_iter().flat_map(|p| p.projects.unwrap_or_default()).collect();
    for chunk in names.chunks(100) {
        let got: codebuild::BatchGetProjectsOutput = r.call("codebuild", "BatchGetProjects", json!({"names": chunk})).await?;
        s.projects.extend(got.projects.unwrap_or_default());
    }
    Ok(())
}

async fn pipelines(r: &Reader<'_>, s: &mut Snapshot) -> Result<(), ExportError> {
    let pages: Vec<codepipeline::ListPipelinesOutput> = r.pages("codepipeline", "ListPipelines", json!({}), "nextToken", |p: &codepipeline::ListPipelinesOutput| p.next_token.clone()).await?;
    for name in pages.into_iter().flat_map(|p| p.pipelines.unwrap_or_default()).filter_map(|p| p.name) {
        let got: codepipeline::GetPipelineOutput = r.call("codepipeline", "GetPipeline", json!({"name": name})).await?;
        let (Some(pipeline), Some(arn)) = (got.pipeline, got.metadata.and_then(|m| m.pipeline_arn)) else { continue };
        let tags: codepipeline::ListTagsForResourceOutput = r.call("codepipeline", "ListTagsForResource", json!({"resourceArn": arn})).await?;
        let tags = pairs(tags.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value)));
        s.pipelines.push(PipelineRecord { pipeline, arn, tags });
    }
    Ok(())
}

async fn images(r: &Reader<'_>, s: &mut Snapshot) -> Result<(), ExportError> {
    let pages: Vec<ecr::DescribeRepositoriesOutput> = r.pages("ecr", "DescribeRepositories", json!({}), "nextToken", |p: &ecr::DescribeRepositoriesOutput| p.next_token.clone()).await?;
    for repository in pages.into_iter().flat_map(|p| p.repositories.unwrap_or_default()) {
        let name = repository.repository_name.clone().unwrap_or_default();
        let lifecycle: Option<ecr::GetLifecyclePolicyOutput> =
            absent_if(r.call("ecr", "GetLifecyclePolicy", json!({"repositoryName": name})).await, &["LifecyclePolicyNotFoundException"])?;
        let policy: Option<ecr::GetRepositoryPolicyOutput> =
            absent_if(r.call("ecr", "GetRepositoryPolicy", json!({"repositoryName": name})).await, &["RepositoryPolicyNotFoundException"])?;
        let tags: ecr::ListTagsForResourceOutput = r.call("ecr", "ListTagsForResource", json!({"resourceArn": repository.repository_arn})).await?;
        s.images.push(ImageRepositoryRecord {
            repository,
            lifecycle_policy: lifecycle.and_then(|l| l.lifecycle_policy_text),
            repository_policy: policy.and_then(|p| p.policy_text),
            tags: pairs(tags.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value))),
        });
    }
    Ok(())
}

async fn rules(r: &Reader<'_>, s: &mut Snapshot) -> Result<(), ExportError> {
    let buses: Vec<events::ListEventBusesOutput> = r.pages("events", "ListEventBuses", json!({}), "NextToken", |p: &events::ListEventBusesOutput| p.next_token.clone()).await?;
    let buses: Vec<events::EventBus> = buses.into_iter().flat_map(|p| p.event_buses.unwrap_or_default()).collect();
    for bus in &buses {
        let bus_name = bus.name.clone().unwrap_or_else(|| "default".into());
        if bus_name != "default" {
            let tags: events::ListTagsForResourceOutput = r.call("events", "ListTagsForResource", json!({"ResourceARN": bus.arn})).await?;
            s.buses.push((bus.clone(), pairs(tags.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value)))));
        }
        let pages: Vec<events::ListRulesOutput> =
            r.pages("events", "ListRules", json!({"EventBusName": bus_name}), "NextToken", |p: &events::ListRulesOutput| p.next_token.clone()).await?;
        for rule in pages.into_iter().flat_map(|p| p.rules.unwrap_or_default()) {
            // Rules a service manages for itself are not configuration.
            if rule.managed_by.is_some() {
                continue;
            }
            let name = rule.name.clone().unwrap_or_default();
            let targets: Vec<events::ListTargetsByRuleOutput> = r
                .pages("events", "ListTargetsByRule", json!({"Rule": name, "EventBusName": bus_name}), "NextToken", |p: &events::ListTargetsByRuleOutput| p.next_token.clone())
                .await?;
            let tags: events::ListTagsForResourceOutput = r.call("events", "ListTagsForResource", json!({"ResourceARN": rule.arn})).await?;
            let mut targets: Vec<events::Target> = targets.into_iter().flat_map(|p| p.targets.unwrap_or_default()).collect();
            targets.sort_by(|a, b| a.id.cmp(&b.id));
            s.rules.push(RuleRecord { rule, targets, tags: pairs(tags.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value))) });
        }
    }
    Ok(())
}

async fn log_groups(r: &Reader<'_>, s: &mut Snapshot) -> Result<(), ExportError> {
    let pages: Vec<logs::DescribeLogGroupsOutput> = r.pages("logs", "DescribeLogGroups", json!({}), "nextToken", |p: &logs::DescribeLogGroupsOutput| p.next_token.clone()).await?;
    for group in pages.into_iter().flat_map(|p| p.log_groups.unwrap_or_default()) {
        let arn = group.log_group_arn.clone().or_else(|| group.arn.as_deref().map(|a| a.trim_end_matches(":*").to_string()));
        let tags: logs::ListTagsForResourceOutput = r.call("logs", "ListTagsForResource", json!({"resourceArn": arn})).await?;
        s.log_groups.push((group, tags.tags.unwrap_or_default()));
    }
    Ok(())
}

async fn buckets(app: &Arc<App>, ctx: &RequestContext, s: &mut Snapshot) -> Result<(), ExportError> {
    let objects = app.platform.hub.objects()?;
    let mut listed = objects.list_buckets(ctx).await?;
    // The provider block is regional: buckets of other regions belong to other exports.
    listed.retain(|b| b.region == ctx.region);
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    for bucket in listed {
        let settings = objects.bucket_settings(ctx, &bucket.name).await?;
        s.buckets.push((bucket, settings));
    }
    Ok(())
}
