//! The IAM API (awsQuery) as a thin adapter: input JSON (decoded from the form by the wire
//! layer) to domain calls, domain types to output JSON in the model's shapes.

use crate::iam::{
    Iam, ManagedPolicy, NewPolicy, NewRole, PolicyVersion, Role, Scope, Tag, check_policy_arn,
};
use crate::policy_document::url_encode;
use crate::query_validation_error;
use async_trait::async_trait;
use codeyard_core::time::epoch_json;
use codeyard_core::{AwsError, AwsResult, RequestContext};
use codeyard_wire::shapes::Problem;
use codeyard_wire::{AwsService, opt_str, str_of};
use serde_json::{Map, Value, json};

pub struct IamService {
    pub iam: Iam,
}

const OPERATIONS: &[&str] = &[
    "CreateRole",
    "GetRole",
    "UpdateRole",
    "UpdateRoleDescription",
    "UpdateAssumeRolePolicy",
    "DeleteRole",
    "ListRoles",
    "TagRole",
    "UntagRole",
    "ListRoleTags",
    "PutRolePolicy",
    "GetRolePolicy",
    "DeleteRolePolicy",
    "ListRolePolicies",
    "CreatePolicy",
    "GetPolicy",
    "GetPolicyVersion",
    "CreatePolicyVersion",
    "DeletePolicyVersion",
    "SetDefaultPolicyVersion",
    "ListPolicyVersions",
    "DeletePolicy",
    "ListPolicies",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "ListAttachedRolePolicies",
    "ListInstanceProfilesForRole",
];

#[async_trait]
impl AwsService for IamService {
    fn model_name(&self) -> &'static str {
        "iam"
    }
    fn implemented(&self) -> &'static [&'static str] {
        OPERATIONS
    }
    fn validation_error(&self, _operation: &str, problems: &[Problem]) -> AwsError {
        query_validation_error(problems)
    }
    async fn call(&self, ctx: &RequestContext, op: &str, input: Value) -> AwsResult<Value> {
        let acct = ctx.account.as_str();
        let iam = &self.iam;
        let role_name = str_of(&input, "RoleName");
        match op {
            "CreateRole" => {
                let role = iam
                    .create_role(
                        acct,
                        NewRole {
                            name: role_name.to_string(),
                            path: opt_str(&input, "Path"),
                            assume_role_policy: str_of(&input, "AssumeRolePolicyDocument")
                                .to_string(),
                            description: opt_str(&input, "Description"),
                            max_session_duration: input["MaxSessionDuration"].as_i64(),
                            permissions_boundary: opt_str(&input, "PermissionsBoundary"),
                            tags: tags_in(&input["Tags"]),
                        },
                    )
                    .await?;
                Ok(json!({"Role": role_json(&role, RoleView::Created)}))
            }
            "GetRole" => Ok(
                json!({"Role": role_json(&iam.get_role(acct, role_name).await?, RoleView::Full)}),
            ),
            "UpdateRole" => {
                iam.update_role_settings(
                    acct,
                    role_name,
                    opt_str(&input, "Description"),
                    input["MaxSessionDuration"].as_i64(),
                )
                .await?;
                Ok(json!({}))
            }
            "UpdateRoleDescription" => {
                iam.update_role_settings(
                    acct,
                    role_name,
                    Some(str_of(&input, "Description").to_string()),
                    None,
                )
                .await?;
                Ok(
                    json!({"Role": role_json(&iam.get_role(acct, role_name).await?, RoleView::Full)}),
                )
            }
            "UpdateAssumeRolePolicy" => {
                iam.update_assume_role_policy(
                    acct,
                    role_name,
                    str_of(&input, "PolicyDocument").to_string(),
                )
                .await?;
                Ok(json!({}))
            }
            "DeleteRole" => {
                iam.delete_role(acct, role_name).await?;
                Ok(json!({}))
            }
            "ListRoles" => {
                let roles = iam
                    .list_roles(acct, opt_str(&input, "PathPrefix").as_deref())
                    .await?;
                let (items, marker) = page(roles, |r| r.name.to_ascii_lowercase(), &input)?;
                let list: Vec<Value> = items
                    .iter()
                    .map(|r| role_json(r, RoleView::Listed))
                    .collect();
                Ok(paged(json!({"Roles": list}), marker))
            }
            "TagRole" => {
                iam.tag_role(acct, role_name, tags_in(&input["Tags"]))
                    .await?;
                Ok(json!({}))
            }
            "UntagRole" => {
                let keys: Vec<String> = input["TagKeys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect();
                iam.untag_role(acct, role_name, &keys).await?;
                Ok(json!({}))
            }
            "ListRoleTags" => {
                let role = iam.get_role(acct, role_name).await?;
                let (items, marker) = page(role.tags.clone(), |t| t.key.clone(), &input)?;
                Ok(paged(json!({"Tags": tags_out(&items)}), marker))
            }
            "PutRolePolicy" => {
                let document = str_of(&input, "PolicyDocument").to_string();
                iam.put_role_policy(acct, role_name, str_of(&input, "PolicyName"), document)
                    .await?;
                Ok(json!({}))
            }
            "GetRolePolicy" => {
                let (role, name, document) = iam
                    .get_role_policy(acct, role_name, str_of(&input, "PolicyName"))
                    .await?;
                Ok(
                    json!({"RoleName": role, "PolicyName": name, "PolicyDocument": url_encode(&document)}),
                )
            }
            "DeleteRolePolicy" => {
                iam.delete_role_policy(acct, role_name, str_of(&input, "PolicyName"))
                    .await?;
                Ok(json!({}))
            }
            "ListRolePolicies" => {
                let role = iam.get_role(acct, role_name).await?;
                let names: Vec<String> = role.inline_policies.keys().cloned().collect();
                let (items, marker) = page(names, |n| n.clone(), &input)?;
                Ok(paged(json!({"PolicyNames": items}), marker))
            }
            "CreatePolicy" => {
                let policy = iam
                    .create_policy(
                        acct,
                        NewPolicy {
                            name: str_of(&input, "PolicyName").to_string(),
                            path: opt_str(&input, "Path"),
                            document: str_of(&input, "PolicyDocument").to_string(),
                            description: opt_str(&input, "Description"),
                            tags: tags_in(&input["Tags"]),
                        },
                    )
                    .await?;
                Ok(json!({"Policy": policy_json(&policy, true)}))
            }
            "GetPolicy" => {
                let arn = policy_arn(&input)?;
                Ok(json!({"Policy": policy_json(&iam.get_policy(acct, arn).await?, true)}))
            }
            "GetPolicyVersion" => {
                let arn = policy_arn(&input)?;
                let (policy, version) = iam
                    .get_policy_version(acct, arn, str_of(&input, "VersionId"))
                    .await?;
                Ok(json!({"PolicyVersion": version_json(&policy, &version, true)}))
            }
            "CreatePolicyVersion" => {
                let arn = policy_arn(&input)?;
                let set_default = input["SetAsDefault"].as_bool().unwrap_or(false);
                let version = iam
                    .create_policy_version(
                        acct,
                        arn,
                        str_of(&input, "PolicyDocument").to_string(),
                        set_default,
                    )
                    .await?;
                Ok(json!({"PolicyVersion": {
                    "VersionId": version.id, "IsDefaultVersion": set_default, "CreateDate": epoch_json(&version.created)
                }}))
            }
            "SetDefaultPolicyVersion" => {
                let arn = policy_arn(&input)?;
                iam.set_default_policy_version(acct, arn, str_of(&input, "VersionId"))
                    .await?;
                Ok(json!({}))
            }
            "DeletePolicyVersion" => {
                let arn = policy_arn(&input)?;
                iam.delete_policy_version(acct, arn, str_of(&input, "VersionId"))
                    .await?;
                Ok(json!({}))
            }
            "ListPolicyVersions" => {
                let arn = policy_arn(&input)?;
                let policy = iam.get_policy(acct, arn).await?;
                // Newest first, as IAM lists them.
                let mut versions = policy.versions.clone();
                versions.reverse();
                let (items, marker) = page_in_order(versions, |v| v.id.clone(), &input)?;
                let list: Vec<Value> = items
                    .iter()
                    .map(|v| version_json(&policy, v, false))
                    .collect();
                Ok(paged(json!({"Versions": list}), marker))
            }
            "DeletePolicy" => {
                let arn = policy_arn(&input)?;
                iam.delete_policy(acct, arn).await?;
                Ok(json!({}))
            }
            "ListPolicies" => {
                let scope = match str_of(&input, "Scope") {
                    "AWS" => Scope::Aws,
                    "Local" => Scope::Local,
                    _ => Scope::All,
                };
                let only_attached = input["OnlyAttached"].as_bool().unwrap_or(false);
                let policies = iam
                    .list_policies(
                        acct,
                        scope,
                        only_attached,
                        opt_str(&input, "PathPrefix").as_deref(),
                    )
                    .await?;
                let (items, marker) = page(policies, |p| p.name.to_ascii_lowercase(), &input)?;
                let list: Vec<Value> = items.iter().map(|p| policy_json(p, false)).collect();
                Ok(paged(json!({"Policies": list}), marker))
            }
            "AttachRolePolicy" => {
                let arn = policy_arn(&input)?;
                iam.attach_role_policy(acct, role_name, arn).await?;
                Ok(json!({}))
            }
            "DetachRolePolicy" => {
                let arn = policy_arn(&input)?;
                iam.detach_role_policy(acct, role_name, arn).await?;
                Ok(json!({}))
            }
            "ListAttachedRolePolicies" => {
                let role = iam.get_role(acct, role_name).await?;
                let prefix = opt_str(&input, "PathPrefix");
                let attached: Vec<(String, String, String)> = role
                    .attached
                    .iter()
                    .map(|arn| {
                        let resource = arn.split_once(":policy").map(|(_, r)| r).unwrap_or("/");
                        let (path, name) = resource
                            .rsplit_once('/')
                            .map(|(p, n)| (format!("{p}/"), n))
                            .unwrap_or(("/".into(), resource));
                        (name.to_string(), arn.clone(), path)
                    })
                    .filter(|(_, _, path)| prefix.as_deref().is_none_or(|p| path.starts_with(p)))
                    .collect();
                let (items, marker) = page_in_order(attached, |a| a.1.clone(), &input)?;
                let list: Vec<Value> = items
                    .iter()
                    .map(|(name, arn, _)| json!({"PolicyName": name, "PolicyArn": arn}))
                    .collect();
                Ok(paged(json!({"AttachedPolicies": list}), marker))
            }
            "ListInstanceProfilesForRole" => {
                // codeyard has no instance profiles: the role must exist, the list is empty.
                iam.get_role(acct, role_name).await?;
                Ok(json!({"InstanceProfiles": [], "IsTruncated": false}))
            }
            _ => Err(AwsError::unknown_operation("IAM", op)),
        }
    }
}

fn policy_arn(input: &Value) -> AwsResult<&str> {
    let arn = str_of(input, "PolicyArn");
    check_policy_arn(arn)?;
    Ok(arn)
}

pub fn tags_in(v: &Value) -> Vec<Tag> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|t| Tag {
            key: str_of(t, "Key").to_string(),
            value: str_of(t, "Value").to_string(),
        })
        .collect()
}

fn tags_out(tags: &[Tag]) -> Vec<Value> {
    tags.iter()
        .map(|t| json!({"Key": t.key, "Value": t.value}))
        .collect()
}

#[derive(PartialEq)]
enum RoleView {
    /// GetRole: everything, RoleLastUsed included.
    Full,
    /// CreateRole: what was created (tags when given).
    Created,
    /// ListRoles: no tags, no RoleLastUsed, no permissions boundary (as IAM lists them).
    Listed,
}

fn role_json(r: &Role, view: RoleView) -> Value {
    let mut o = Map::new();
    o.insert("Path".into(), json!(r.path));
    o.insert("RoleName".into(), json!(r.name));
    o.insert("RoleId".into(), json!(r.id));
    o.insert("Arn".into(), json!(r.arn));
    o.insert("CreateDate".into(), epoch_json(&r.created));
    o.insert(
        "AssumeRolePolicyDocument".into(),
        json!(url_encode(&r.assume_role_policy)),
    );
    if let Some(d) = &r.description {
        o.insert("Description".into(), json!(d));
    }
    o.insert("MaxSessionDuration".into(), json!(r.max_session_duration));
    if view != RoleView::Listed {
        if let Some(b) = &r.permissions_boundary {
            o.insert(
                "PermissionsBoundary".into(),
                json!({"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": b}),
            );
        }
        if !r.tags.is_empty() {
            o.insert("Tags".into(), json!(tags_out(&r.tags)));
        }
    }
    if view == RoleView::Full {
        let last_used = match &r.last_used {
            Some((at, region)) if region.is_empty() => json!({"LastUsedDate": epoch_json(at)}),
            Some((at, region)) => json!({"LastUsedDate": epoch_json(at), "Region": region}),
            None => json!({}),
        };
        o.insert("RoleLastUsed".into(), last_used);
    }
    Value::Object(o)
}

fn policy_json(p: &ManagedPolicy, full: bool) -> Value {
    let mut o = json!({
        "PolicyName": p.name,
        "PolicyId": p.id,
        "Arn": p.arn,
        "Path": p.path,
        "DefaultVersionId": p.default_version,
        "AttachmentCount": p.attachment_count,
        "PermissionsBoundaryUsageCount": 0,
        "IsAttachable": true,
        "CreateDate": epoch_json(&p.created),
        "UpdateDate": epoch_json(&p.updated),
    });
    if full {
        if let Some(d) = &p.description {
            o["Description"] = json!(d);
        }
        if !p.tags.is_empty() {
            o["Tags"] = json!(tags_out(&p.tags));
        }
    }
    o
}

fn version_json(p: &ManagedPolicy, v: &PolicyVersion, with_document: bool) -> Value {
    let mut o = json!({"VersionId": v.id, "IsDefaultVersion": p.default_version == v.id, "CreateDate": epoch_json(&v.created)});
    if with_document {
        o["Document"] = json!(url_encode(&v.document));
    }
    o
}

/// One page of a listing ordered by `key`: the items after `Marker`, at most `MaxItems`
/// (default 100), and the marker of the next page when there is one.
fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    input: &Value,
) -> AwsResult<(Vec<T>, Option<String>)> {
    let marker = opt_str(input, "Marker");
    let max = input["MaxItems"].as_u64().unwrap_or(100) as usize;
    let mut rest: Vec<T> = match &marker {
        Some(m) => items
            .into_iter()
            .filter(|i| key(i).as_str() > m.as_str())
            .collect(),
        None => items,
    };
    if rest.len() > max {
        rest.truncate(max);
        let next = rest.last().map(&key);
        return Ok((rest, next));
    }
    Ok((rest, None))
}

/// Like [`page`] for listings in a fixed order that is not the key order: the marker is the
/// key of the last item returned.
fn page_in_order<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    input: &Value,
) -> AwsResult<(Vec<T>, Option<String>)> {
    let max = input["MaxItems"].as_u64().unwrap_or(100) as usize;
    let start = match opt_str(input, "Marker") {
        Some(m) => match items.iter().position(|i| key(i) == m) {
            Some(pos) => pos + 1,
            None => return Err(AwsError::client("InvalidInput", "Invalid Marker.")),
        },
        None => 0,
    };
    let mut rest: Vec<T> = items.into_iter().skip(start).collect();
    if rest.len() > max {
        rest.truncate(max);
        let next = rest.last().map(&key);
        return Ok((rest, next));
    }
    Ok((rest, None))
}

fn paged(mut out: Value, marker: Option<String>) -> Value {
    out["IsTruncated"] = json!(marker.is_some());
    if let Some(m) = marker {
        out["Marker"] = json!(m);
    }
    out
}
