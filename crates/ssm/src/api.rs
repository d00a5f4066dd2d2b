//! The Parameter Store operations of the SSM API: the generated [`SsmApi`] trait implemented
//! over [`crate::store::Parameters`]. Every other SSM operation answers
//! UnknownOperationException naming it.

use crate::error::SsmError;
use crate::filters::{FilterSet, Use};
use crate::names;
use crate::store::{
    Page, Paging, ParameterRecord, ParameterVersion, Parameters, PutRequest, Resolved,
};
use codeyard_api::Timestamp;
use codeyard_api::ssm::*;
use codeyard_core::{AccessRequest, AwsError, AwsResult, RequestContext};
use serde_json::Value;

pub struct SsmService {
    pub parameters: Parameters,
}

const DEFAULT_BY_PATH_RESULTS: usize = 10;
const DEFAULT_DESCRIBE_RESULTS: usize = 50;
const DEFAULT_HISTORY_RESULTS: usize = 50;

fn paging(max: Option<i32>, default: usize, token: &Option<String>) -> Paging<'_> {
    Paging {
        max: max.map_or(default, |m| m.max(1) as usize),
        token: token.as_deref(),
    }
}

fn parameter(p: Resolved) -> Parameter {
    Parameter {
        name: Some(p.name),
        r#type: Some(p.version.r#type.clone()),
        value: Some(p.value),
        version: Some(p.version.version),
        selector: p.selector,
        source_result: None,
        last_modified_date: Some(Timestamp::from_millis(p.version.modified_ms)),
        arn: Some(p.arn),
        data_type: Some(p.version.data_type.clone()),
    }
}

/// A `$shape` (ParameterMetadata, ParameterHistory) of version `$v`: the members both take from
/// a version, with the `$field`s only that shape has.
macro_rules! version_shape {
    ($shape:ident, $v:expr, { $($field:ident: $value:expr),* $(,)? }) => {{
        let v: &ParameterVersion = $v;
        $shape {
            r#type: Some(v.r#type.clone()),
            key_id: v.key_id.clone(),
            last_modified_date: Some(Timestamp::from_millis(v.modified_ms)),
            last_modified_user: Some(v.modified_by.clone()),
            description: v.description.clone(),
            allowed_pattern: v.allowed_pattern.clone(),
            version: Some(v.version),
            tier: Some(v.tier.clone()),
            policies: Some(vec![]),
            data_type: Some(v.data_type.clone()),
            $($field: $value,)*
        }
    }};
}

fn metadata(ctx: &RequestContext, r: &ParameterRecord) -> ParameterMetadata {
    version_shape!(ParameterMetadata, r.current(), {
        name: Some(r.name.clone()),
        arn: Some(names::arn(&ctx.account, &ctx.region, &r.name)),
    })
}

fn history(p: Resolved) -> ParameterHistory {
    version_shape!(ParameterHistory, &p.version, {
        name: Some(p.name),
        value: Some(p.value),
        labels: Some(p.version.labels.clone()),
    })
}

/// A page's items in their API shape, and where the next page starts.
fn page_of<T, U>(page: Page<T>, shape: impl FnMut(T) -> U) -> (Option<Vec<U>>, Option<String>) {
    (
        Some(page.items.into_iter().map(shape).collect()),
        page.next_token,
    )
}

fn string_filters(
    filters: Option<Vec<ParameterStringFilter>>,
) -> Vec<(String, Option<String>, Vec<String>)> {
    filters
        .unwrap_or_default()
        .into_iter()
        .map(|f| (f.key, f.option, f.values.unwrap_or_default()))
        .collect()
}

/// Tags are kept on parameters only.
fn parameter_resource(t: &ResourceTypeForTagging) -> Result<(), SsmError> {
    match t {
        ResourceTypeForTagging::Parameter => Ok(()),
        other => Err(SsmError::InvalidResourceType(other.as_str().to_string())),
    }
}

/// The parameter ARNs an input names (its `Name`, `Names`, `Path` or, for tags, `ResourceId`),
/// without selectors; `parameter/*` when it names none.
fn parameter_arns(ctx: &RequestContext, op: &str, input: &Value) -> Vec<String> {
    let mut refs: Vec<String> = Vec::new();
    let mut push = |v: &Value| {
        if let Some(s) = v.as_str() {
            refs.push(s.to_string());
        }
    };
    match op {
        "GetParametersByPath" => push(&input["Path"]),
        "AddTagsToResource" | "RemoveTagsFromResource" | "ListTagsForResource" => {
            push(&input["ResourceId"])
        }
        _ => {
            push(&input["Name"]);
            if let Some(list) = input["Names"].as_array() {
                list.iter().for_each(&mut push);
            }
        }
    }
    let mut arns: Vec<String> = refs
        .iter()
        .filter(|r| !r.is_empty())
        .map(|r| {
            if r.starts_with("arn:") {
                // Without a selector: the ARN of the parameter itself.
                match r.rsplit_once(':') {
                    Some((head, _)) if head.contains(":parameter/") => head.to_string(),
                    _ => r.clone(),
                }
            } else {
                let name = r.split(':').next().unwrap_or_default();
                names::arn(&ctx.account, &ctx.region, name)
            }
        })
        .collect();
    arns.dedup();
    if arns.is_empty() {
        arns.push(names::arn(&ctx.account, &ctx.region, "*"));
    }
    arns
}

#[codeyard_api::service]
impl SsmApi for SsmService {
    /// From the IAM data, with the resource of each parameter the input names: AWS's
    /// `parameter/${ParameterNameWithoutLeadingSlash}` (GetParameters and DeleteParameters ask
    /// once per name, GetParametersByPath on the path, the tag operations on ResourceId).
    async fn access_requests(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: &Value,
    ) -> AwsResult<Vec<AccessRequest>> {
        let requests = codeyard_api::access::access_requests("ssm", ctx, operation, input);
        let on_parameters = matches!(
            operation,
            "PutParameter"
                | "GetParameter"
                | "GetParameters"
                | "GetParametersByPath"
                | "GetParameterHistory"
                | "DeleteParameter"
                | "DeleteParameters"
                | "LabelParameterVersion"
                | "UnlabelParameterVersion"
        ) || (matches!(
            operation,
            "AddTagsToResource" | "RemoveTagsFromResource" | "ListTagsForResource"
        ) && input["ResourceType"].as_str() == Some("Parameter"));
        if !on_parameters {
            return Ok(requests);
        }
        let arns = parameter_arns(ctx, operation, input);
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for r in requests {
            if !seen.insert(r.action.clone()) {
                continue;
            }
            for arn in &arns {
                out.push(AccessRequest {
                    resource: arn.clone(),
                    ..r.clone()
                });
            }
        }
        Ok(out)
    }

    async fn put_parameter(
        &self,
        ctx: &RequestContext,
        input: PutParameterInput,
    ) -> AwsResult<PutParameterOutput> {
        let req = PutRequest {
            name: input.name.trim().to_string(),
            value: input.value,
            r#type: input.r#type,
            description: input.description,
            key_id: input.key_id,
            overwrite: input.overwrite.unwrap_or(false),
            allowed_pattern: input.allowed_pattern,
            tags: input
                .tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.key, t.value))
                .collect(),
            tier: input.tier,
            data_type: input.data_type,
            policies: input.policies,
        };
        let (version, tier) = self.parameters.put(ctx, req).await?;
        Ok(PutParameterResult {
            version: Some(version),
            tier: Some(tier),
        })
    }

    async fn get_parameter(
        &self,
        ctx: &RequestContext,
        input: GetParameterInput,
    ) -> AwsResult<GetParameterOutput> {
        let p = self
            .parameters
            .get(ctx, &input.name, input.with_decryption.unwrap_or(false))
            .await?;
        Ok(GetParameterResult {
            parameter: Some(parameter(p)),
        })
    }

    async fn get_parameters(
        &self,
        ctx: &RequestContext,
        input: GetParametersInput,
    ) -> AwsResult<GetParametersOutput> {
        let (found, missing) = self
            .parameters
            .get_many(ctx, &input.names, input.with_decryption.unwrap_or(false))
            .await?;
        Ok(GetParametersResult {
            parameters: Some(found.into_iter().map(parameter).collect()),
            invalid_parameters: Some(missing),
        })
    }

    async fn get_parameters_by_path(
        &self,
        ctx: &RequestContext,
        input: GetParametersByPathInput,
    ) -> AwsResult<GetParametersByPathOutput> {
        let filters = FilterSet::parse(&string_filters(input.parameter_filters), Use::ByPath)?;
        let page = self
            .parameters
            .by_path(
                ctx,
                &input.path,
                input.recursive.unwrap_or(false),
                &filters,
                input.with_decryption.unwrap_or(false),
                paging(
                    input.max_results,
                    DEFAULT_BY_PATH_RESULTS,
                    &input.next_token,
                ),
            )
            .await?;
        let (parameters, next_token) = page_of(page, parameter);
        Ok(GetParametersByPathResult {
            parameters,
            next_token,
        })
    }

    async fn describe_parameters(
        &self,
        ctx: &RequestContext,
        input: DescribeParametersInput,
    ) -> AwsResult<DescribeParametersOutput> {
        let legacy = input.filters.unwrap_or_default();
        let modern = string_filters(input.parameter_filters);
        if !legacy.is_empty() && !modern.is_empty() {
            return Err(AwsError::validation(
                "You can use either Filters or ParameterFilters in a single request.",
            ));
        }
        if input.shared == Some(true) {
            return Err(AwsError::validation(
                "Shared parameters (Shared: true) are not supported by codeyard: it keeps no resource shares.",
            ));
        }
        let filters = if legacy.is_empty() {
            FilterSet::parse(&modern, Use::Describe)?
        } else {
            FilterSet::legacy(
                &legacy
                    .into_iter()
                    .map(|f| (f.key.as_str().to_string(), f.values))
                    .collect::<Vec<_>>(),
            )?
        };
        let page = self
            .parameters
            .describe(
                ctx,
                &filters,
                paging(
                    input.max_results,
                    DEFAULT_DESCRIBE_RESULTS,
                    &input.next_token,
                ),
            )
            .await?;
        let (parameters, next_token) = page_of(page, |r| metadata(ctx, &r));
        Ok(DescribeParametersResult {
            parameters,
            next_token,
        })
    }

    async fn get_parameter_history(
        &self,
        ctx: &RequestContext,
        input: GetParameterHistoryInput,
    ) -> AwsResult<GetParameterHistoryOutput> {
        let (_, page) = self
            .parameters
            .history(
                ctx,
                &input.name,
                input.with_decryption.unwrap_or(false),
                paging(
                    input.max_results,
                    DEFAULT_HISTORY_RESULTS,
                    &input.next_token,
                ),
            )
            .await?;
        let (parameters, next_token) = page_of(page, history);
        Ok(GetParameterHistoryResult {
            parameters,
            next_token,
        })
    }

    async fn label_parameter_version(
        &self,
        ctx: &RequestContext,
        input: LabelParameterVersionInput,
    ) -> AwsResult<LabelParameterVersionOutput> {
        let (invalid, version) = self
            .parameters
            .label(ctx, &input.name, input.parameter_version, &input.labels)
            .await?;
        Ok(LabelParameterVersionResult {
            invalid_labels: Some(invalid),
            parameter_version: Some(version),
        })
    }

    async fn unlabel_parameter_version(
        &self,
        ctx: &RequestContext,
        input: UnlabelParameterVersionInput,
    ) -> AwsResult<UnlabelParameterVersionOutput> {
        let (removed, invalid) = self
            .parameters
            .unlabel(ctx, &input.name, input.parameter_version, &input.labels)
            .await?;
        Ok(UnlabelParameterVersionResult {
            removed_labels: Some(removed),
            invalid_labels: Some(invalid),
        })
    }

    async fn delete_parameter(
        &self,
        ctx: &RequestContext,
        input: DeleteParameterInput,
    ) -> AwsResult<DeleteParameterOutput> {
        self.parameters.delete(ctx, &input.name).await?;
        Ok(DeleteParameterResult {})
    }

    async fn delete_parameters(
        &self,
        ctx: &RequestContext,
        input: DeleteParametersInput,
    ) -> AwsResult<DeleteParametersOutput> {
        let (deleted, missing) = self.parameters.delete_many(ctx, &input.names).await?;
        Ok(DeleteParametersResult {
            deleted_parameters: Some(deleted),
            invalid_parameters: Some(missing),
        })
    }

    async fn add_tags_to_resource(
        &self,
        ctx: &RequestContext,
        input: AddTagsToResourceInput,
    ) -> AwsResult<AddTagsToResourceOutput> {
        parameter_resource(&input.resource_type)?;
        let add: Vec<(String, String)> = input.tags.into_iter().map(|t| (t.key, t.value)).collect();
        self.parameters
            .change_tags(ctx, &input.resource_id, &add, &[])
            .await?;
        Ok(AddTagsToResourceResult {})
    }

    async fn remove_tags_from_resource(
        &self,
        ctx: &RequestContext,
        input: RemoveTagsFromResourceInput,
    ) -> AwsResult<RemoveTagsFromResourceOutput> {
        parameter_resource(&input.resource_type)?;
        self.parameters
            .change_tags(ctx, &input.resource_id, &[], &input.tag_keys)
            .await?;
        Ok(AddTagsToResourceResult {})
    }

    async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        input: ListTagsForResourceInput,
    ) -> AwsResult<ListTagsForResourceOutput> {
        parameter_resource(&input.resource_type)?;
        let tags = self.parameters.tags(ctx, &input.resource_id).await?;
        Ok(ListTagsForResourceResult {
            tag_list: Some(
                tags.into_iter()
                    .map(|(key, value)| Tag { key, value })
                    .collect(),
            ),
        })
    }
}
