//! Repositories: create, read, list, rename, describe, delete, and their tags.

use super::{paginate, required_repo};
use crate::CodeCommit;
use crate::error::{CcResult, CodeCommitError};
use crate::repos::{self, Repository};
use codeyard_api::codecommit::*;
use codeyard_core::arn::Arn;
use codeyard_core::tags::{self, MAX_TAGS};
use codeyard_core::{RequestContext, time};
use std::collections::BTreeMap;

/// AWS's RepositoryMetadata of a repository.
pub(super) fn metadata(r: &Repository, endpoint: &str) -> RepositoryMetadata {
    RepositoryMetadata {
        account_id: Some(r.account.clone()),
        repository_id: Some(r.id.clone()),
        repository_name: Some(r.name.clone()),
        repository_description: r.description.clone(),
        default_branch: r.default_branch.clone(),
        last_modified_date: Some(r.last_modified.into()),
        creation_date: Some(r.created.into()),
        clone_url_http: Some(r.clone_url_http(endpoint)),
        clone_url_ssh: Some(format!("ssh://git-codecommit.{}.amazonaws.com/v1/repos/{}", r.region, r.name)),
        arn: Some(r.arn()),
        kms_key_id: None,
    }
}

/// Refuses the `aws:` prefix AWS reserves for system tags.
fn check_tag_key(k: &str) -> CcResult<()> {
    if k.starts_with("aws:") {
        return Err(CodeCommitError::SystemTagKey);
    }
    Ok(())
}

pub(super) async fn create_repository(s: &CodeCommit, ctx: &RequestContext, input: CreateRepositoryInput) -> CcResult<CreateRepositoryOutput> {
    let name = required_repo(Some(&input.repository_name))?;
    let tags: BTreeMap<String, String> = input.tags.unwrap_or_default();
    tags.keys().try_for_each(|k| check_tag_key(k))?;
    if tags.len() > MAX_TAGS {
        return Err(CodeCommitError::TooManyTags);
    }
    let r = s.repos.create(ctx, &name, input.repository_description, tags).await?;
    Ok(CreateRepositoryOutput { repository_metadata: Some(metadata(&r, &ctx.endpoint)) })
}

pub(super) async fn get_repository(s: &CodeCommit, ctx: &RequestContext, input: GetRepositoryInput) -> CcResult<GetRepositoryOutput> {
    let r = s.repos.get(ctx, &required_repo(Some(&input.repository_name))?).await?;
    Ok(GetRepositoryOutput { repository_metadata: Some(metadata(&r, &ctx.endpoint)) })
}

pub(super) async fn batch_get_repositories(
    s: &CodeCommit,
    ctx: &RequestContext,
    input: BatchGetRepositoriesInput,
) -> CcResult<BatchGetRepositoriesOutput> {
    if input.repository_names.len() > 25 {
        return Err(CodeCommitError::TooManyRepositoryNames);
    }
    let (mut found, mut missing) = (vec![], vec![]);
    for n in input.repository_names {
        repos::check_name(&n)?;
        match s.repos.find(&ctx.account, &ctx.region, &n).await? {
            Some((r, _)) => found.push(metadata(&r, &ctx.endpoint)),
            None => missing.push(n),
        }
    }
    Ok(BatchGetRepositoriesOutput { repositories: Some(found), repositories_not_found: Some(missing), errors: None })
}

pub(super) async fn list_repositories(s: &CodeCommit, ctx: &RequestContext, input: ListRepositoriesInput) -> CcResult<ListRepositoriesOutput> {
    let mut all = s.repos.list(&ctx.account, &ctx.region).await?;
    match input.sort_by {
        Some(SortByEnum::LastModifiedDate) => all.sort_by(|a, b| a.last_modified.cmp(&b.last_modified).then(a.name.cmp(&b.name))),
        _ => all.sort_by(|a, b| a.name.cmp(&b.name)),
    }
    if input.order == Some(OrderEnum::Descending) {
        all.reverse();
    }
    let (page, next) = paginate(all, input.next_token, 1000)?;
    let repositories = page
        .into_iter()
        .map(|r| RepositoryNameIdPair { repository_name: Some(r.name), repository_id: Some(r.id) })
        .collect();
    Ok(ListRepositoriesOutput { repositories: Some(repositories), next_token: next })
}

pub(super) async fn delete_repository(s: &CodeCommit, ctx: &RequestContext, input: DeleteRepositoryInput) -> CcResult<DeleteRepositoryOutput> {
    let name = required_repo(Some(&input.repository_name))?;
    let deleted = s.repos.delete(ctx, &name).await?;
    Ok(DeleteRepositoryOutput { repository_id: deleted.map(|r| r.id) })
}

pub(super) async fn update_repository_name(s: &CodeCommit, ctx: &RequestContext, input: UpdateRepositoryNameInput) -> CcResult<UpdateRepositoryNameOutput> {
    let old = required_repo(Some(&input.old_name))?;
    let new = required_repo(Some(&input.new_name))?;
    s.repos.rename(ctx, &old, &new).await?;
    Ok(Default::default())
}

pub(super) async fn update_repository_description(s: &CodeCommit, ctx: &RequestContext, input: UpdateRepositoryDescriptionInput) -> CcResult<UpdateRepositoryDescriptionOutput> {
    let name = required_repo(Some(&input.repository_name))?;
    let description = input.repository_description;
    s.repos
        .modify(ctx, &name, |r| {
            r.description = description.clone();
            r.last_modified = time::now();
            Ok(())
        })
        .await?;
    Ok(Default::default())
}

/// TagResource and UntagResource: the repository an ARN names, the tag keys given checked,
/// then its tags changed.
async fn change_tags<'k, K, F>(s: &CodeCommit, ctx: &RequestContext, arn: &str, keys: K, mut change: F) -> CcResult<()>
where
    K: IntoIterator<Item = &'k String>,
    F: FnMut(&mut BTreeMap<String, String>) -> CcResult<()> + Send,
{
    let (scoped, name) = repo_by_arn(ctx, arn)?;
    keys.into_iter().try_for_each(|k| check_tag_key(k))?;
    s.repos.modify(&scoped, &name, |r| change(&mut r.tags)).await?;
    Ok(())
}

pub(super) async fn tag_resource(s: &CodeCommit, ctx: &RequestContext, input: TagResourceInput) -> CcResult<TagResourceOutput> {
    let add = |t: &mut BTreeMap<String, String>| tags::add(t, input.tags.clone(), MAX_TAGS).map_err(|_| CodeCommitError::TooManyTags);
    change_tags(s, ctx, &input.resource_arn, input.tags.keys(), add).await?;
    Ok(Default::default())
}

pub(super) async fn untag_resource(s: &CodeCommit, ctx: &RequestContext, input: UntagResourceInput) -> CcResult<UntagResourceOutput> {
    let remove = |t: &mut BTreeMap<String, String>| {
        tags::remove(t, &input.tag_keys);
        Ok(())
    };
    change_tags(s, ctx, &input.resource_arn, &input.tag_keys, remove).await?;
    Ok(Default::default())
}

pub(super) async fn list_tags_for_resource(
    s: &CodeCommit,
    ctx: &RequestContext,
    input: ListTagsForResourceInput,
) -> CcResult<ListTagsForResourceOutput> {
    let (scoped, name) = repo_by_arn(ctx, &input.resource_arn)?;
    let r = s.repos.get(&scoped, &name).await?;
    Ok(ListTagsForResourceOutput { tags: Some(r.tags), next_token: None })
}

/// The context (the ARN's account and region) and name of the repository a resource ARN names.
fn repo_by_arn(ctx: &RequestContext, arn: &str) -> CcResult<(RequestContext, String)> {
    if arn.is_empty() {
        return Err(CodeCommitError::ResourceArnRequired);
    }
    let invalid = || CodeCommitError::InvalidResourceArn(arn.to_string());
    let parsed = Arn::parse(arn).ok_or_else(invalid)?;
    if parsed.service != "codecommit" || parsed.resource.is_empty() || parsed.resource.contains([':', '/']) {
        return Err(invalid());
    }
    let mut scoped = ctx.clone();
    if !parsed.region.is_empty() {
        scoped.region = parsed.region.clone();
    }
    if !parsed.account.is_empty() {
        scoped.account = parsed.account.clone();
    }
    Ok((scoped, parsed.resource))
}
