//! The IAM API (awsQuery): the generated [`IamApi`] trait implemented over [`crate::iam::Iam`].
//! The wire decodes the form into the typed input and encodes the typed output as XML; this
//! module maps between the model's shapes and the domain's records.

use crate::iam::{self as domain, Iam, ManagedPolicy, NewPolicy, NewRole, Scope, check_policy_arn};
use crate::groups::Group;
use crate::api_shapes::{Page, tags_in, tags_out};
use crate::identities_api as ids;
use crate::policy_document::url_encode;
use crate::users::User;
use crate::query_validation_error;
use codeyard_api::iam::*;
use codeyard_api::{Timestamp, Unit};
use codeyard_core::{AwsError, AwsResult, RequestContext};
use codeyard_wire::shapes::Problem;

pub struct IamService {
    pub iam: Iam,
    /// For SimulatePrincipalPolicy / SimulateCustomPolicy: the same evaluator as enforcement.
    pub authorizer: crate::authorizer::IamAuthorizer,
}

#[codeyard_api::service]
impl IamApi for IamService {
    fn validation_error(&self, _operation: &str, problems: &[Problem]) -> AwsError {
        query_validation_error(problems)
    }

    async fn create_role(&self, ctx: &RequestContext, input: CreateRoleInput) -> AwsResult<CreateRoleOutput> {
        let new = NewRole {
            name: input.role_name,
            path: input.path,
            assume_role_policy: input.assume_role_policy_document,
            description: input.description,
            max_session_duration: input.max_session_duration.map(i64::from),
            permissions_boundary: input.permissions_boundary,
            tags: tags_in(input.tags),
        };
        let role = self.iam.create_role(&ctx.account, new).await?;
        Ok(CreateRoleOutput { role: role_shape(&role, RoleView::Created) })
    }

    async fn get_role(&self, ctx: &RequestContext, input: GetRoleInput) -> AwsResult<GetRoleOutput> {
        let role = self.iam.get_role(&ctx.account, &input.role_name).await?;
        Ok(GetRoleOutput { role: role_shape(&role, RoleView::Full) })
    }

    async fn update_role(&self, ctx: &RequestContext, input: UpdateRoleInput) -> AwsResult<UpdateRoleOutput> {
        let max = input.max_session_duration.map(i64::from);
        self.iam.update_role_settings(&ctx.account, &input.role_name, input.description, max).await?;
        Ok(UpdateRoleOutput {})
    }

    async fn update_role_description(&self, ctx: &RequestContext, input: UpdateRoleDescriptionInput) -> AwsResult<UpdateRoleDescriptionOutput> {
        self.iam.update_role_settings(&ctx.account, &input.role_name, Some(input.description), None).await?;
        let role = self.iam.get_role(&ctx.account, &input.role_name).await?;
        Ok(UpdateRoleDescriptionOutput { role: Some(role_shape(&role, RoleView::Full)) })
    }

    async fn update_assume_role_policy(&self, ctx: &RequestContext, input: UpdateAssumeRolePolicyInput) -> AwsResult<UpdateAssumeRolePolicyOutput> {
        self.iam.update_assume_role_policy(&ctx.account, &input.role_name, input.policy_document).await?;
        Ok(Unit {})
    }

    async fn delete_role(&self, ctx: &RequestContext, input: DeleteRoleInput) -> AwsResult<DeleteRoleOutput> {
        self.iam.delete_role(&ctx.account, &input.role_name).await?;
        Ok(Unit {})
    }

    async fn list_roles(&self, ctx: &RequestContext, input: ListRolesInput) -> AwsResult<ListRolesOutput> {
        let roles = self.iam.list_under::<domain::Role>(&ctx.account, input.path_prefix.as_deref()).await?;
        let page = Page::of(input.marker, input.max_items);
        let (items, marker) = page.by_key(roles, |r| r.name.to_ascii_lowercase());
        Ok(ListRolesOutput {
            roles: items.iter().map(|r| role_shape(r, RoleView::Listed)).collect(),
            is_truncated: Some(marker.is_some()),
            marker,
        })
    }

    async fn tag_role(&self, ctx: &RequestContext, input: TagRoleInput) -> AwsResult<TagRoleOutput> {
        self.iam.tag_role(&ctx.account, &input.role_name, tags_in(Some(input.tags))).await?;
        Ok(Unit {})
    }

    async fn untag_role(&self, ctx: &RequestContext, input: UntagRoleInput) -> AwsResult<UntagRoleOutput> {
        self.iam.untag_role(&ctx.account, &input.role_name, &input.tag_keys).await?;
        Ok(Unit {})
    }

    async fn list_role_tags(&self, ctx: &RequestContext, input: ListRoleTagsInput) -> AwsResult<ListRoleTagsOutput> {
        let role = self.iam.get_role(&ctx.account, &input.role_name).await?;
        let (items, marker) = Page::of(input.marker, input.max_items).by_key(role.tags, |t| t.key.clone());
        Ok(ListRoleTagsOutput { tags: tags_out(&items), is_truncated: Some(marker.is_some()), marker })
    }

    async fn put_role_policy(&self, ctx: &RequestContext, input: PutRolePolicyInput) -> AwsResult<PutRolePolicyOutput> {
        self.iam.put_role_policy(&ctx.account, &input.role_name, &input.policy_name, input.policy_document).await?;
        Ok(Unit {})
    }

    async fn get_role_policy(&self, ctx: &RequestContext, input: GetRolePolicyInput) -> AwsResult<GetRolePolicyOutput> {
        let (role_name, policy_name, document) = self.iam.get_role_policy(&ctx.account, &input.role_name, &input.policy_name).await?;
        Ok(GetRolePolicyOutput { role_name, policy_name, policy_document: url_encode(&document) })
    }

    async fn delete_role_policy(&self, ctx: &RequestContext, input: DeleteRolePolicyInput) -> AwsResult<DeleteRolePolicyOutput> {
        self.iam.delete_role_policy(&ctx.account, &input.role_name, &input.policy_name).await?;
        Ok(Unit {})
    }

    async fn list_role_policies(&self, ctx: &RequestContext, input: ListRolePoliciesInput) -> AwsResult<ListRolePoliciesOutput> {
        ids::inline_names::<domain::Role>(&self.iam, ctx, &input.role_name, input.marker, input.max_items).await
    }

    async fn create_policy(&self, ctx: &RequestContext, input: CreatePolicyInput) -> AwsResult<CreatePolicyOutput> {
        let new = NewPolicy {
            name: input.policy_name,
            path: input.path,
            document: input.policy_document,
            description: input.description,
            tags: tags_in(input.tags),
        };
        let policy = self.iam.create_policy(&ctx.account, new).await?;
        Ok(CreatePolicyOutput { policy: Some(policy_shape(&policy, true)) })
    }

    async fn get_policy(&self, ctx: &RequestContext, input: GetPolicyInput) -> AwsResult<GetPolicyOutput> {
        check_policy_arn(&input.policy_arn)?;
        let policy = self.iam.get_policy(&ctx.account, &input.policy_arn).await?;
        Ok(GetPolicyOutput { policy: Some(policy_shape(&policy, true)) })
    }

    async fn get_policy_version(&self, ctx: &RequestContext, input: GetPolicyVersionInput) -> AwsResult<GetPolicyVersionOutput> {
        check_policy_arn(&input.policy_arn)?;
        let (policy, version) = self.iam.get_policy_version(&ctx.account, &input.policy_arn, &input.version_id).await?;
        Ok(GetPolicyVersionOutput { policy_version: Some(version_shape(&policy, &version, true)) })
    }

    async fn create_policy_version(&self, ctx: &RequestContext, input: CreatePolicyVersionInput) -> AwsResult<CreatePolicyVersionOutput> {
        check_policy_arn(&input.policy_arn)?;
        let set_default = input.set_as_default.unwrap_or(false);
        let version = self.iam.create_policy_version(&ctx.account, &input.policy_arn, input.policy_document, set_default).await?;
        Ok(CreatePolicyVersionOutput {
            policy_version: Some(PolicyVersion {
                version_id: Some(version.id),
                is_default_version: Some(set_default),
                create_date: Some(Timestamp(version.created)),
                document: None,
            }),
        })
    }

    async fn set_default_policy_version(&self, ctx: &RequestContext, input: SetDefaultPolicyVersionInput) -> AwsResult<SetDefaultPolicyVersionOutput> {
        check_policy_arn(&input.policy_arn)?;
        self.iam.set_default_policy_version(&ctx.account, &input.policy_arn, &input.version_id).await?;
        Ok(Unit {})
    }

    async fn delete_policy_version(&self, ctx: &RequestContext, input: DeletePolicyVersionInput) -> AwsResult<DeletePolicyVersionOutput> {
        check_policy_arn(&input.policy_arn)?;
        self.iam.delete_policy_version(&ctx.account, &input.policy_arn, &input.version_id).await?;
        Ok(Unit {})
    }

    async fn list_policy_versions(&self, ctx: &RequestContext, input: ListPolicyVersionsInput) -> AwsResult<ListPolicyVersionsOutput> {
        check_policy_arn(&input.policy_arn)?;
        let policy = self.iam.get_policy(&ctx.account, &input.policy_arn).await?;
        // Newest first, as IAM lists them.
        let mut versions = policy.versions.clone();
        versions.reverse();
        let (items, marker) = Page::of(input.marker, input.max_items).in_order(versions, |v| v.id.clone())?;
        Ok(ListPolicyVersionsOutput {
            versions: Some(items.iter().map(|v| version_shape(&policy, v, false)).collect()),
            is_truncated: Some(marker.is_some()),
            marker,
        })
    }

    async fn delete_policy(&self, ctx: &RequestContext, input: DeletePolicyInput) -> AwsResult<DeletePolicyOutput> {
        check_policy_arn(&input.policy_arn)?;
        self.iam.delete_policy(&ctx.account, &input.policy_arn).await?;
        Ok(Unit {})
    }

    async fn list_policies(&self, ctx: &RequestContext, input: ListPoliciesInput) -> AwsResult<ListPoliciesOutput> {
        let scope = match input.scope {
            Some(PolicyScopeType::Aws) => Scope::Aws,
            Some(PolicyScopeType::Local) => Scope::Local,
            _ => Scope::All,
        };
        let only_attached = input.only_attached.unwrap_or(false);
        let policies = self.iam.list_policies(&ctx.account, scope, only_attached, input.path_prefix.as_deref()).await?;
        let (items, marker) = Page::of(input.marker, input.max_items).by_key(policies, |p| p.name.to_ascii_lowercase());
        Ok(ListPoliciesOutput {
            policies: Some(items.iter().map(|p| policy_shape(p, false)).collect()),
            is_truncated: Some(marker.is_some()),
            marker,
        })
    }

    async fn attach_role_policy(&self, ctx: &RequestContext, input: AttachRolePolicyInput) -> AwsResult<AttachRolePolicyOutput> {
        check_policy_arn(&input.policy_arn)?;
        self.iam.attach_role_policy(&ctx.account, &input.role_name, &input.policy_arn).await?;
        Ok(Unit {})
    }

    async fn detach_role_policy(&self, ctx: &RequestContext, input: DetachRolePolicyInput) -> AwsResult<DetachRolePolicyOutput> {
        check_policy_arn(&input.policy_arn)?;
        self.iam.detach_role_policy(&ctx.account, &input.role_name, &input.policy_arn).await?;
        Ok(Unit {})
    }

    async fn list_attached_role_policies(&self, ctx: &RequestContext, input: ListAttachedRolePoliciesInput) -> AwsResult<ListAttachedRolePoliciesOutput> {
        ids::attached_policies::<domain::Role>(&self.iam, ctx, &input.role_name, input.path_prefix.as_deref(), input.marker, input.max_items).await
    }

    // ------------------------------------------------------------------ users, groups, keys

    async fn create_user(&self, ctx: &RequestContext, input: CreateUserInput) -> AwsResult<CreateUserOutput> {
        ids::create_user(&self.iam, ctx, input).await
    }

    async fn get_user(&self, ctx: &RequestContext, input: GetUserInput) -> AwsResult<GetUserOutput> {
        ids::get_user(&self.iam, ctx, input).await
    }

    async fn update_user(&self, ctx: &RequestContext, input: UpdateUserInput) -> AwsResult<UpdateUserOutput> {
        ids::update_user(&self.iam, ctx, input).await
    }

    async fn delete_user(&self, ctx: &RequestContext, input: DeleteUserInput) -> AwsResult<DeleteUserOutput> {
        ids::delete_user(&self.iam, ctx, input).await
    }

    async fn list_users(&self, ctx: &RequestContext, input: ListUsersInput) -> AwsResult<ListUsersOutput> {
        ids::list_users(&self.iam, ctx, input).await
    }

    async fn tag_user(&self, ctx: &RequestContext, input: TagUserInput) -> AwsResult<TagUserOutput> {
        self.iam.tag_user(&ctx.account, &input.user_name, tags_in(Some(input.tags))).await?;
        Ok(Unit {})
    }

    async fn untag_user(&self, ctx: &RequestContext, input: UntagUserInput) -> AwsResult<UntagUserOutput> {
        self.iam.untag_user(&ctx.account, &input.user_name, &input.tag_keys).await?;
        Ok(Unit {})
    }

    async fn list_user_tags(&self, ctx: &RequestContext, input: ListUserTagsInput) -> AwsResult<ListUserTagsOutput> {
        ids::list_user_tags(&self.iam, ctx, input).await
    }

    async fn create_group(&self, ctx: &RequestContext, input: CreateGroupInput) -> AwsResult<CreateGroupOutput> {
        ids::create_group(&self.iam, ctx, input).await
    }

    async fn get_group(&self, ctx: &RequestContext, input: GetGroupInput) -> AwsResult<GetGroupOutput> {
        ids::get_group(&self.iam, ctx, input).await
    }

    async fn update_group(&self, ctx: &RequestContext, input: UpdateGroupInput) -> AwsResult<UpdateGroupOutput> {
        ids::update_group(&self.iam, ctx, input).await
    }

    async fn delete_group(&self, ctx: &RequestContext, input: DeleteGroupInput) -> AwsResult<DeleteGroupOutput> {
        ids::delete_group(&self.iam, ctx, input).await
    }

    async fn list_groups(&self, ctx: &RequestContext, input: ListGroupsInput) -> AwsResult<ListGroupsOutput> {
        ids::list_groups(&self.iam, ctx, input).await
    }

    async fn add_user_to_group(&self, ctx: &RequestContext, input: AddUserToGroupInput) -> AwsResult<AddUserToGroupOutput> {
        self.iam.add_user_to_group(&ctx.account, &input.group_name, &input.user_name).await?;
        Ok(Unit {})
    }

    async fn remove_user_from_group(&self, ctx: &RequestContext, input: RemoveUserFromGroupInput) -> AwsResult<RemoveUserFromGroupOutput> {
        self.iam.remove_user_from_group(&ctx.account, &input.group_name, &input.user_name).await?;
        Ok(Unit {})
    }

    async fn list_groups_for_user(&self, ctx: &RequestContext, input: ListGroupsForUserInput) -> AwsResult<ListGroupsForUserOutput> {
        ids::list_groups_for_user(&self.iam, ctx, input).await
    }

    async fn create_access_key(&self, ctx: &RequestContext, input: CreateAccessKeyInput) -> AwsResult<CreateAccessKeyOutput> {
        ids::create_access_key(&self.iam, ctx, input).await
    }

    async fn list_access_keys(&self, ctx: &RequestContext, input: ListAccessKeysInput) -> AwsResult<ListAccessKeysOutput> {
        ids::list_access_keys(&self.iam, ctx, input).await
    }

    async fn update_access_key(&self, ctx: &RequestContext, input: UpdateAccessKeyInput) -> AwsResult<UpdateAccessKeyOutput> {
        ids::update_access_key(&self.iam, ctx, input).await
    }

    async fn delete_access_key(&self, ctx: &RequestContext, input: DeleteAccessKeyInput) -> AwsResult<DeleteAccessKeyOutput> {
        ids::delete_access_key(&self.iam, ctx, input).await
    }

    async fn get_access_key_last_used(&self, ctx: &RequestContext, input: GetAccessKeyLastUsedInput) -> AwsResult<GetAccessKeyLastUsedOutput> {
        ids::get_access_key_last_used(&self.iam, ctx, input).await
    }

    async fn put_user_policy(&self, ctx: &RequestContext, input: PutUserPolicyInput) -> AwsResult<PutUserPolicyOutput> {
        self.iam.put_inline::<User>(&ctx.account, &input.user_name, &input.policy_name, input.policy_document).await?;
        Ok(Unit {})
    }

    async fn get_user_policy(&self, ctx: &RequestContext, input: GetUserPolicyInput) -> AwsResult<GetUserPolicyOutput> {
        let (user_name, policy_name, policy_document) = ids::inline_policy::<User>(&self.iam, ctx, &input.user_name, &input.policy_name).await?;
        Ok(GetUserPolicyOutput { user_name, policy_name, policy_document })
    }

    async fn delete_user_policy(&self, ctx: &RequestContext, input: DeleteUserPolicyInput) -> AwsResult<DeleteUserPolicyOutput> {
        self.iam.delete_inline::<User>(&ctx.account, &input.user_name, &input.policy_name).await?;
        Ok(Unit {})
    }

    async fn list_user_policies(&self, ctx: &RequestContext, input: ListUserPoliciesInput) -> AwsResult<ListUserPoliciesOutput> {
        ids::inline_names::<User>(&self.iam, ctx, &input.user_name, input.marker, input.max_items).await
    }

    async fn attach_user_policy(&self, ctx: &RequestContext, input: AttachUserPolicyInput) -> AwsResult<AttachUserPolicyOutput> {
        ids::attach::<User>(&self.iam, ctx, &input.user_name, &input.policy_arn).await
    }

    async fn detach_user_policy(&self, ctx: &RequestContext, input: DetachUserPolicyInput) -> AwsResult<DetachUserPolicyOutput> {
        ids::detach::<User>(&self.iam, ctx, &input.user_name, &input.policy_arn).await
    }

    async fn list_attached_user_policies(&self, ctx: &RequestContext, input: ListAttachedUserPoliciesInput) -> AwsResult<ListAttachedUserPoliciesOutput> {
        ids::attached_policies::<User>(&self.iam, ctx, &input.user_name, input.path_prefix.as_deref(), input.marker, input.max_items).await
    }

    async fn put_group_policy(&self, ctx: &RequestContext, input: PutGroupPolicyInput) -> AwsResult<PutGroupPolicyOutput> {
        self.iam.put_inline::<Group>(&ctx.account, &input.group_name, &input.policy_name, input.policy_document).await?;
        Ok(Unit {})
    }

    async fn get_group_policy(&self, ctx: &RequestContext, input: GetGroupPolicyInput) -> AwsResult<GetGroupPolicyOutput> {
        let (group_name, policy_name, policy_document) = ids::inline_policy::<Group>(&self.iam, ctx, &input.group_name, &input.policy_name).await?;
        Ok(GetGroupPolicyOutput { group_name, policy_name, policy_document })
    }

    async fn delete_group_policy(&self, ctx: &RequestContext, input: DeleteGroupPolicyInput) -> AwsResult<DeleteGroupPolicyOutput> {
        self.iam.delete_inline::<Group>(&ctx.account, &input.group_name, &input.policy_name).await?;
        Ok(Unit {})
    }

    async fn list_group_policies(&self, ctx: &RequestContext, input: ListGroupPoliciesInput) -> AwsResult<ListGroupPoliciesOutput> {
        ids::inline_names::<Group>(&self.iam, ctx, &input.group_name, input.marker, input.max_items).await
    }

    async fn attach_group_policy(&self, ctx: &RequestContext, input: AttachGroupPolicyInput) -> AwsResult<AttachGroupPolicyOutput> {
        ids::attach::<Group>(&self.iam, ctx, &input.group_name, &input.policy_arn).await
    }

    async fn detach_group_policy(&self, ctx: &RequestContext, input: DetachGroupPolicyInput) -> AwsResult<DetachGroupPolicyOutput> {
        ids::detach::<Group>(&self.iam, ctx, &input.group_name, &input.policy_arn).await
    }

    async fn list_attached_group_policies(&self, ctx: &RequestContext, input: ListAttachedGroupPoliciesInput) -> AwsResult<ListAttachedGroupPoliciesOutput> {
        ids::attached_policies::<Group>(&self.iam, ctx, &input.group_name, input.path_prefix.as_deref(), input.marker, input.max_items).await
    }

    async fn put_user_permissions_boundary(&self, ctx: &RequestContext, input: PutUserPermissionsBoundaryInput) -> AwsResult<PutUserPermissionsBoundaryOutput> {
        check_policy_arn(&input.permissions_boundary)?;
        self.iam.set_user_boundary(&ctx.account, &input.user_name, Some(input.permissions_boundary)).await?;
        Ok(Unit {})
    }

    async fn delete_user_permissions_boundary(&self, ctx: &RequestContext, input: DeleteUserPermissionsBoundaryInput) -> AwsResult<DeleteUserPermissionsBoundaryOutput> {
        self.iam.set_user_boundary(&ctx.account, &input.user_name, None).await?;
        Ok(Unit {})
    }

    async fn put_role_permissions_boundary(&self, ctx: &RequestContext, input: PutRolePermissionsBoundaryInput) -> AwsResult<PutRolePermissionsBoundaryOutput> {
        check_policy_arn(&input.permissions_boundary)?;
        self.iam.set_role_boundary(&ctx.account, &input.role_name, Some(input.permissions_boundary)).await?;
        Ok(Unit {})
    }

    async fn delete_role_permissions_boundary(&self, ctx: &RequestContext, input: DeleteRolePermissionsBoundaryInput) -> AwsResult<DeleteRolePermissionsBoundaryOutput> {
        self.iam.set_role_boundary(&ctx.account, &input.role_name, None).await?;
        Ok(Unit {})
    }

    async fn list_entities_for_policy(&self, ctx: &RequestContext, input: ListEntitiesForPolicyInput) -> AwsResult<ListEntitiesForPolicyOutput> {
        ids::list_entities_for_policy(&self.iam, ctx, input).await
    }

    async fn simulate_principal_policy(&self, ctx: &RequestContext, input: SimulatePrincipalPolicyInput) -> AwsResult<SimulatePrincipalPolicyOutput> {
        crate::simulate::principal_policy(&self.authorizer, ctx, input).await
    }

    async fn simulate_custom_policy(&self, ctx: &RequestContext, input: SimulateCustomPolicyInput) -> AwsResult<SimulateCustomPolicyOutput> {
        crate::simulate::custom_policy(ctx, input).await
    }

    async fn list_instance_profiles_for_role(&self, ctx: &RequestContext, input: ListInstanceProfilesForRoleInput) -> AwsResult<ListInstanceProfilesForRoleOutput> {
        // codeyard has no instance profiles: the role must exist, the list is empty.
        self.iam.get_role(&ctx.account, &input.role_name).await?;
        Ok(ListInstanceProfilesForRoleOutput { instance_profiles: Vec::new(), is_truncated: Some(false), marker: None })
    }
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

fn role_shape(r: &domain::Role, view: RoleView) -> Role {
    let listed = view == RoleView::Listed;
    // IAM answers `Policy` here, not the model's `PermissionsBoundaryPolicy`.
    let permissions_boundary = r.permissions_boundary.as_ref().filter(|_| !listed).map(|arn| AttachedPermissionsBoundary {
        permissions_boundary_type: Some(PermissionsBoundaryAttachmentType::Unknown("Policy".into())),
        permissions_boundary_arn: Some(arn.clone()),
    });
    let role_last_used = (view == RoleView::Full).then(|| match &r.last_used {
        Some((at, region)) => {
            RoleLastUsed { last_used_date: Some(Timestamp(*at)), region: (!region.is_empty()).then(|| region.clone()) }
        }
        None => RoleLastUsed::default(),
    });
    Role {
        path: r.path.clone(),
        role_name: r.name.clone(),
        role_id: r.id.clone(),
        arn: r.arn.clone(),
        create_date: Timestamp(r.created),
        assume_role_policy_document: Some(url_encode(&r.assume_role_policy)),
        description: r.description.clone(),
        max_session_duration: Some(r.max_session_duration as i32),
        permissions_boundary,
        tags: (!listed && !r.tags.is_empty()).then(|| tags_out(&r.tags)),
        role_last_used,
    }
}

fn policy_shape(p: &ManagedPolicy, full: bool) -> Policy {
    Policy {
        policy_name: Some(p.name.clone()),
        policy_id: Some(p.id.clone()),
        arn: Some(p.arn.clone()),
        path: Some(p.path.clone()),
        default_version_id: Some(p.default_version.clone()),
        attachment_count: Some(p.attachment_count as i32),
        permissions_boundary_usage_count: Some(0),
        is_attachable: Some(true),
        description: p.description.clone().filter(|_| full),
        create_date: Some(Timestamp(p.created)),
        update_date: Some(Timestamp(p.updated)),
        tags: (full && !p.tags.is_empty()).then(|| tags_out(&p.tags)),
    }
}

fn version_shape(p: &ManagedPolicy, v: &domain::PolicyVersion, with_document: bool) -> PolicyVersion {
    PolicyVersion {
        document: with_document.then(|| url_encode(&v.document)),
        version_id: Some(v.id.clone()),
        is_default_version: Some(p.default_version == v.id),
        create_date: Some(Timestamp(v.created)),
    }
}
