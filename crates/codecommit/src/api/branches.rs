//! Branches: read, list, create, delete, the default branch, and moving a branch (the one
//! compare-and-swap every API change goes through, with its event).

use super::{paginate, required_repo};
use crate::CodeCommit;
use crate::error::{CcResult, CodeCommitError};
use crate::events::RefUpdate;
use crate::git::{self, ZERO_OID};
use crate::repos::Repository;
use codeyard_api::codecommit::*;
use codeyard_core::{RequestContext, time};

/// A branch name member: present and a name git accepts.
pub(super) async fn required_branch_checked(b: &str) -> CcResult<String> {
    let b = required_branch(Some(b))?;
    if !git::valid_branch_name(&b).await {
        return Err(CodeCommitError::InvalidBranchName(b.to_string()));
    }
    Ok(b)
}

fn required_branch(b: Option<&str>) -> CcResult<String> {
    match b {
        Some(b) if !b.is_empty() => Ok(b.to_string()),
        _ => Err(CodeCommitError::BranchNameRequired),
    }
}

pub(super) fn branch_missing(branch: &str) -> CodeCommitError {
    CodeCommitError::BranchNotFound(branch.to_string())
}

pub(super) async fn branch_tip(s: &CodeCommit, r: &Repository, branch: &str) -> CcResult<Option<String>> {
    Ok(git::ref_value(&s.repos.dir(r), &format!("refs/heads/{branch}")).await?)
}

/// Moves a branch by compare-and-swap and publishes the event; false when the branch was
/// not at `old` any more.
pub(super) async fn move_branch(s: &CodeCommit, ctx: &RequestContext, r: &Repository, branch: &str, new: &str, old: &str) -> CcResult<bool> {
    let full = format!("refs/heads/{branch}");
    let flight = s.events.begin(r);
    let moved = git::update_ref(&s.repos.dir(r), &full, new, old).await;
    let updates = match moved {
        Ok(true) => vec![RefUpdate { name: full, old: old.to_string(), new: new.to_string() }],
        _ => vec![],
    };
    s.events.finish(r, flight, updates, Some(&ctx.caller_arn)).await?;
    Ok(moved?)
}

pub(super) async fn update_default_branch(s: &CodeCommit, ctx: &RequestContext, input: UpdateDefaultBranchInput) -> CcResult<UpdateDefaultBranchOutput> {
    let name = required_repo(Some(&input.repository_name))?;
    let r = s.repos.get(ctx, &name).await?;
    let branch = required_branch(Some(&input.default_branch_name))?;
    if branch_tip(s, &r, &branch).await?.is_none() {
        return Err(branch_missing(&branch));
    }
    let r = s
        .repos
        .modify(ctx, &name, |r| {
            r.default_branch = Some(branch.clone());
            r.last_modified = time::now();
            Ok(())
        })
        .await?;
    // HEAD is what `git clone` checks out; it follows the default branch.
    git::run_ok(&s.repos.dir(&r), &["symbolic-ref", "HEAD", &format!("refs/heads/{branch}")]).await?;
    Ok(Default::default())
}

pub(super) async fn get_branch(s: &CodeCommit, ctx: &RequestContext, input: GetBranchInput) -> CcResult<GetBranchOutput> {
    let r = s.repos.get(ctx, &required_repo(input.repository_name.as_deref())?).await?;
    let branch = required_branch(input.branch_name.as_deref())?;
    let commit = branch_tip(s, &r, &branch).await?.ok_or_else(|| branch_missing(&branch))?;
    Ok(GetBranchOutput { branch: Some(BranchInfo { branch_name: Some(branch), commit_id: Some(commit) }) })
}

pub(super) async fn list_branches(s: &CodeCommit, ctx: &RequestContext, input: ListBranchesInput) -> CcResult<ListBranchesOutput> {
    let r = s.repos.get(ctx, &required_repo(Some(&input.repository_name))?).await?;
    let out = git::run_ok(&s.repos.dir(&r), &["for-each-ref", "--format=%(refname:strip=2)", "refs/heads/"]).await?;
    let all: Vec<String> = out.text().lines().map(str::to_string).collect();
    let (page, next) = paginate(all, input.next_token, 100)?;
    Ok(ListBranchesOutput { branches: Some(page), next_token: next })
}

pub(super) async fn create_branch(s: &CodeCommit, ctx: &RequestContext, input: CreateBranchInput) -> CcResult<CreateBranchOutput> {
    let r = s.repos.get(ctx, &required_repo(Some(&input.repository_name))?).await?;
    let branch = required_branch_checked(&input.branch_name).await?;
    let commit = input.commit_id.as_str();
    if commit.is_empty() {
        return Err(CodeCommitError::CommitIdRequired);
    }
    let resolved = git::resolve_commit(&s.repos.dir(&r), commit)
        .await?
        .ok_or_else(|| CodeCommitError::CommitNotFound(commit.to_string()))?;
    let exists = || CodeCommitError::BranchExists(branch.to_string());
    if branch_tip(s, &r, &branch).await?.is_some() || !move_branch(s, ctx, &r, &branch, &resolved, ZERO_OID).await? {
        return Err(exists());
    }
    Ok(Default::default())
}

pub(super) async fn delete_branch(s: &CodeCommit, ctx: &RequestContext, input: DeleteBranchInput) -> CcResult<DeleteBranchOutput> {
    let r = s.repos.get(ctx, &required_repo(Some(&input.repository_name))?).await?;
    let branch = required_branch(Some(&input.branch_name))?;
    if r.default_branch.as_deref() == Some(branch.as_str()) {
        return Err(CodeCommitError::DefaultBranchCannotBeDeleted(branch.to_string()));
    }
    let Some(tip) = branch_tip(s, &r, &branch).await? else {
        return Ok(Default::default());
    };
    if !move_branch(s, ctx, &r, &branch, ZERO_OID, &tip).await? {
        return Err(CodeCommitError::BranchChangedWhileDeleting(branch.to_string()));
    }
    Ok(DeleteBranchOutput { deleted_branch: Some(BranchInfo { branch_name: Some(branch), commit_id: Some(tip) }) })
}
