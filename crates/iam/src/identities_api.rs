//! The IAM API's user, group and access key operations, mapped between the model's shapes and
//! [`crate::users`], [`crate::groups`], [`crate::access_keys`]. The `IamApi` impl in
//! [`crate::iam_api`] delegates here (one trait impl must hold every method).

use crate::entities::{Holder, attached_listing};
use crate::groups::Group as DomainGroup;
use crate::iam::{Iam, check_policy_arn};
use crate::api_shapes::{Page, tags_in, tags_out};
use crate::policy_document::url_encode;
use crate::users::{NewUser, User as DomainUser};
use codeyard_api::iam::*;
use codeyard_api::{Timestamp, Unit};
use codeyard_core::{AwsError, AwsResult, RequestContext};

/// The user an operation without `UserName` acts on: the calling user.
fn user_or_caller(ctx: &RequestContext, user_name: Option<String>) -> AwsResult<String> {
    if let Some(u) = user_name {
        return Ok(u);
    }
    match codeyard_policy::Principal::from_arn(&ctx.caller_arn).kind {
        codeyard_policy::PrincipalKind::User { name } => Ok(name),
        _ => Err(AwsError::client("ValidationError", "Must specify userName when calling with non-User credentials")),
    }
}

pub(crate) fn user_shape(u: &DomainUser, with_tags: bool) -> User {
    User {
        path: u.path.clone(),
        user_name: u.name.clone(),
        user_id: u.id.clone(),
        arn: u.arn.clone(),
        create_date: Timestamp(u.created),
        password_last_used: None,
        permissions_boundary: u.permissions_boundary.as_ref().filter(|_| with_tags).map(|arn| AttachedPermissionsBoundary {
            permissions_boundary_type: Some(PermissionsBoundaryAttachmentType::Unknown("Policy".into())),
            permissions_boundary_arn: Some(arn.clone()),
        }),
        tags: (with_tags && !u.tags.is_empty()).then(|| tags_out(&u.tags)),
    }
}

fn group_shape(g: &DomainGroup) -> Group {
    Group { path: g.path.clone(), group_name: g.name.clone(), group_id: g.id.clone(), arn: g.arn.clone(), create_date: Timestamp(g.created) }
}

// ------------------------------------------------------------------ users

pub async fn create_user(iam: &Iam, ctx: &RequestContext, input: CreateUserInput) -> AwsResult<CreateUserOutput> {
    let new = NewUser { name: input.user_name, path: input.path, permissions_boundary: input.permissions_boundary, tags: tags_in(input.tags) };
    let user = iam.create_user(&ctx.account, new).await?;
    Ok(CreateUserOutput { user: Some(user_shape(&user, true)) })
}

pub async fn get_user(iam: &Iam, ctx: &RequestContext, input: GetUserInput) -> AwsResult<GetUserOutput> {
    let name = user_or_caller(ctx, input.user_name)?;
    let user = iam.get_user(&ctx.account, &name).await?;
    Ok(GetUserOutput { user: user_shape(&user, true) })
}

pub async fn update_user(iam: &Iam, ctx: &RequestContext, input: UpdateUserInput) -> AwsResult<UpdateUserOutput> {
    iam.update_user(&ctx.account, &input.user_name, input.new_user_name.as_deref(), input.new_path.as_deref()).await?;
    Ok(Unit {})
}

pub async fn delete_user(iam: &Iam, ctx: &RequestContext, input: DeleteUserInput) -> AwsResult<DeleteUserOutput> {
    iam.delete_user(&ctx.account, &input.user_name).await?;
    Ok(Unit {})
}

pub async fn list_users(iam: &Iam, ctx: &RequestContext, input: ListUsersInput) -> AwsResult<ListUsersOutput> {
    let users = iam.list_under::<DomainUser>(&ctx.account, input.path_prefix.as_deref()).await?;
    let (items, marker) = Page::of(input.marker, input.max_items).by_key(users, |u| u.name.to_ascii_lowercase());
    Ok(ListUsersOutput { users: items.iter().map(|u| user_shape(u, false)).collect(), is_truncated: Some(marker.is_some()), marker })
}

pub async fn list_user_tags(iam: &Iam, ctx: &RequestContext, input: ListUserTagsInput) -> AwsResult<ListUserTagsOutput> {
    let user = iam.get_user(&ctx.account, &input.user_name).await?;
    let (items, marker) = Page::of(input.marker, input.max_items).by_key(user.tags, |t| t.key.clone());
    Ok(ListUserTagsOutput { tags: tags_out(&items), is_truncated: Some(marker.is_some()), marker })
}

// ------------------------------------------------------------------ groups

pub async fn create_group(iam: &Iam, ctx: &RequestContext, input: CreateGroupInput) -> AwsResult<CreateGroupOutput> {
    let g = iam.create_group(&ctx.account, input.group_name, input.path).await?;
    Ok(CreateGroupOutput { group: group_shape(&g) })
}

pub async fn get_group(iam: &Iam, ctx: &RequestContext, input: GetGroupInput) -> AwsResult<GetGroupOutput> {
    let g = iam.get_group(&ctx.account, &input.group_name).await?;
    let members = iam.group_members(&ctx.account, &g.name).await?;
    let (items, marker) = Page::of(input.marker, input.max_items).by_key(members, |u| u.name.to_ascii_lowercase());
    Ok(GetGroupOutput {
        group: group_shape(&g),
        users: items.iter().map(|u| user_shape(u, false)).collect(),
        is_truncated: Some(marker.is_some()),
        marker,
    })
}

pub async fn update_group(iam: &Iam, ctx: &RequestContext, input: UpdateGroupInput) -> AwsResult<UpdateGroupOutput> {
    iam.update_group(&ctx.account, &input.group_name, input.new_group_name.as_deref(), input.new_path.as_deref()).await?;
    Ok(Unit {})
}

pub async fn delete_group(iam: &Iam, ctx: &RequestContext, input: DeleteGroupInput) -> AwsResult<DeleteGroupOutput> {
    iam.delete_group(&ctx.account, &input.group_name).await?;
    Ok(Unit {})
}

pub async fn list_groups(iam: &Iam, ctx: &RequestContext, input: ListGroupsInput) -> AwsResult<ListGroupsOutput> {
    let groups = iam.list_under::<DomainGroup>(&ctx.account, input.path_prefix.as_deref()).await?;
    let (items, marker) = Page::of(input.marker, input.max_items).by_key(groups, |g| g.name.to_ascii_lowercase());
    Ok(ListGroupsOutput { groups: items.iter().map(group_shape).collect(), is_truncated: Some(marker.is_some()), marker })
}

pub async fn list_groups_for_user(iam: &Iam, ctx: &RequestContext, input: ListGroupsForUserInput) -> AwsResult<ListGroupsForUserOutput> {
    let groups = iam.groups_for_user(&ctx.account, &input.user_name).await?;
    let (items, marker) = Page::of(input.marker, input.max_items).in_order(groups, |g| g.name.to_ascii_lowercase())?;
    Ok(ListGroupsForUserOutput { groups: items.iter().map(group_shape).collect(), is_truncated: Some(marker.is_some()), marker })
}

// ------------------------------------------------------------------ access keys

pub async fn create_access_key(iam: &Iam, ctx: &RequestContext, input: CreateAccessKeyInput) -> AwsResult<CreateAccessKeyOutput> {
    let user = user_or_caller(ctx, input.user_name)?;
    let k = iam.create_access_key(&ctx.account, &user).await?;
    Ok(CreateAccessKeyOutput {
        access_key: AccessKey {
            user_name: k.user,
            access_key_id: k.id,
            status: k.status.clone(),
            secret_access_key: k.secret,
            create_date: Some(Timestamp(k.created)),
        },
    })
}

pub async fn list_access_keys(iam: &Iam, ctx: &RequestContext, input: ListAccessKeysInput) -> AwsResult<ListAccessKeysOutput> {
    let user = user_or_caller(ctx, input.user_name)?;
    let keys = iam.list_access_keys(&ctx.account, &user).await?;
    let (items, marker) = Page::of(input.marker, input.max_items).in_order(keys, |k| k.id.clone())?;
    Ok(ListAccessKeysOutput {
        access_key_metadata: items
            .into_iter()
            .map(|k| AccessKeyMetadata {
                user_name: Some(k.user),
                access_key_id: Some(k.id),
                status: Some(k.status.clone()),
                create_date: Some(Timestamp(k.created)),
            })
            .collect(),
        is_truncated: Some(marker.is_some()),
        marker,
    })
}

pub async fn update_access_key(iam: &Iam, ctx: &RequestContext, input: UpdateAccessKeyInput) -> AwsResult<UpdateAccessKeyOutput> {
    let user = user_or_caller(ctx, input.user_name)?;
    iam.update_access_key(&ctx.account, &user, &input.access_key_id, input.status).await?;
    Ok(Unit {})
}

pub async fn delete_access_key(iam: &Iam, ctx: &RequestContext, input: DeleteAccessKeyInput) -> AwsResult<DeleteAccessKeyOutput> {
    let user = user_or_caller(ctx, input.user_name)?;
    iam.delete_access_key(&ctx.account, &user, &input.access_key_id).await?;
    Ok(Unit {})
}

pub async fn get_access_key_last_used(iam: &Iam, ctx: &RequestContext, input: GetAccessKeyLastUsedInput) -> AwsResult<GetAccessKeyLastUsedOutput> {
    let k = iam.access_key_last_used(&ctx.account, &input.access_key_id).await?;
    // Uses are not recorded (a write per request): IAM's answer for a key never used.
    let last = match k.last_used {
        Some((at, service, region)) => AccessKeyLastUsed { last_used_date: Some(Timestamp(at)), service_name: service, region },
        None => AccessKeyLastUsed { last_used_date: None, service_name: "N/A".into(), region: "N/A".into() },
    };
    Ok(GetAccessKeyLastUsedOutput { user_name: Some(k.user), access_key_last_used: Some(last) })
}

// ------------------------------------------------------------------ user and group policies

/// ListUserPolicies / ListGroupPolicies / ListRolePolicies: the inline policy names.
pub(crate) async fn inline_names<H: Holder>(iam: &Iam, ctx: &RequestContext, holder: &str, marker: Option<String>, max: Option<i32>) -> AwsResult<ListGroupPoliciesResponse> {
    let h = iam.entity::<H>(&ctx.account, holder).await?;
    let names: Vec<String> = h.inline_policies().keys().cloned().collect();
    let (policy_names, marker) = Page::of(marker, max).by_key(names, |n| n.clone());
    Ok(ListGroupPoliciesResponse { policy_names, is_truncated: Some(marker.is_some()), marker })
}

/// GetUserPolicy / GetGroupPolicy: (holder, policy, URL-encoded document).
pub(crate) async fn inline_policy<H: Holder>(iam: &Iam, ctx: &RequestContext, holder: &str, policy: &str) -> AwsResult<(String, String, String)> {
    let (h, p, doc) = iam.get_inline::<H>(&ctx.account, holder, policy).await?;
    Ok((h, p, url_encode(&doc)))
}

/// ListAttached{User,Group,Role}Policies.
pub(crate) async fn attached_policies<H: Holder>(
    iam: &Iam,
    ctx: &RequestContext,
    holder: &str,
    path_prefix: Option<&str>,
    marker: Option<String>,
    max: Option<i32>,
) -> AwsResult<ListAttachedGroupPoliciesResponse> {
    let h = iam.entity::<H>(&ctx.account, holder).await?;
    let listed = attached_listing(h.attached(), path_prefix);
    let (items, marker) = Page::of(marker, max).in_order(listed, |a| a.1.clone())?;
    let attached_policies = items.into_iter().map(|(name, arn, _)| AttachedPolicy { policy_name: Some(name), policy_arn: Some(arn) }).collect();
    Ok(ListAttachedGroupPoliciesResponse { attached_policies: Some(attached_policies), is_truncated: Some(marker.is_some()), marker })
}

pub(crate) async fn attach<H: Holder>(iam: &Iam, ctx: &RequestContext, holder: &str, arn: &str) -> AwsResult<Unit> {
    check_policy_arn(arn)?;
    iam.attach::<H>(&ctx.account, holder, arn).await?;
    Ok(Unit {})
}

pub(crate) async fn detach<H: Holder>(iam: &Iam, ctx: &RequestContext, holder: &str, arn: &str) -> AwsResult<Unit> {
    check_policy_arn(arn)?;
    iam.detach::<H>(&ctx.account, holder, arn).await?;
    Ok(Unit {})
}

/// ListEntitiesForPolicy: the roles, users and groups a managed policy is attached to (or, with
/// `PolicyUsageFilter=PermissionsBoundary`, that it bounds). Not paged: an account's entities
/// fit one answer.
pub async fn list_entities_for_policy(iam: &Iam, ctx: &RequestContext, input: ListEntitiesForPolicyInput) -> AwsResult<ListEntitiesForPolicyOutput> {
    check_policy_arn(&input.policy_arn)?;
    iam.get_policy(&ctx.account, &input.policy_arn).await?;
    let arn = input.policy_arn.as_str();
    let boundary = input.policy_usage_filter.as_ref().map(|f| f.as_str() == "PermissionsBoundary");
    let uses = |attached: &[String], b: Option<&String>| match boundary {
        Some(true) => b.is_some_and(|b| b == arn),
        Some(false) => attached.iter().any(|a| a == arn),
        None => attached.iter().any(|a| a == arn) || b.is_some_and(|b| b == arn),
    };
    let wanted = |kind: &str| input.entity_filter.as_ref().is_none_or(|f| f.as_str() == kind);
    let prefix = |path: &str| input.path_prefix.as_deref().is_none_or(|p| path.starts_with(p));
    let mut out = ListEntitiesForPolicyOutput { policy_groups: Some(Vec::new()), policy_users: Some(Vec::new()), policy_roles: Some(Vec::new()), is_truncated: Some(false), marker: None };
    if wanted("Role") {
        let roles = iam.list_entities::<crate::iam::Role>(&ctx.account).await?;
        out.policy_roles = Some(
            roles
                .into_iter()
                .filter(|r| prefix(&r.path) && uses(&r.attached, r.permissions_boundary.as_ref()))
                .map(|r| PolicyRole { role_name: Some(r.name), role_id: Some(r.id) })
                .collect(),
        );
    }
    if wanted("User") {
        let users = iam.list_entities::<DomainUser>(&ctx.account).await?;
        out.policy_users = Some(
            users
                .into_iter()
                .filter(|u| prefix(&u.path) && uses(&u.attached, u.permissions_boundary.as_ref()))
                .map(|u| PolicyUser { user_name: Some(u.name), user_id: Some(u.id) })
                .collect(),
        );
    }
    if wanted("Group") {
        let groups = iam.list_entities::<DomainGroup>(&ctx.account).await?;
        out.policy_groups = Some(
            groups
                .into_iter()
                .filter(|g| prefix(&g.path) && uses(&g.attached, None))
                .map(|g| PolicyGroup { group_name: Some(g.name), group_id: Some(g.id) })
                .collect(),
        );
    }
    Ok(out)
}
