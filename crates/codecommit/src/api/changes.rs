//! Changing content through the API: PutFile, DeleteFile and CreateCommit build a commit on a
//! branch from file changes and move the branch to it.

use super::branches::{branch_missing, branch_tip, move_branch, required_branch_checked};
use super::reads::file_metadata;
use super::{required_repo};
use crate::CodeCommit;
use crate::error::{CcResult, CodeCommitError};
use crate::content::{self, Author, Change, ChangeReport};
use crate::git::{self, ZERO_OID};
use crate::repos::Repository;
use codeyard_api::codecommit::*;
use codeyard_core::{RequestContext};
use std::path::Path;

/// The git mode of a model file mode (NORMAL when absent).
fn git_mode(mode: Option<&FileModeTypeEnum>) -> CcResult<&'static str> {
    content::git_mode(mode.map(FileModeTypeEnum::as_str).unwrap_or("NORMAL"))
}

fn file_missing(path: &str) -> CodeCommitError {
    CodeCommitError::FileNotFound(path.to_string())
}

fn duplicate_path(path: &str) -> CodeCommitError {
    CodeCommitError::DuplicatePath(path.to_string())
}

/// The blob at `path` in `base` (a file, not a folder).
async fn existing_blob(dir: &Path, base: Option<&str>, path: &str) -> CcResult<String> {
    let Some(b) = base else {
        return Err(file_missing(path));
    };
    content::entry_at(dir, b, path)
        .await?
        .filter(|e| e.kind == "blob")
        .map(|e| e.oid)
        .ok_or_else(|| file_missing(path))
}

/// The commit's author: the given name, or the caller's name from its ARN.
fn author(ctx: &RequestContext, name: Option<String>, email: Option<String>) -> Author {
    let default_name = ctx.caller_arn.rsplit(['/', ':']).next().unwrap_or("codeyard").to_string();
    Author { name: name.filter(|n| !n.is_empty()).unwrap_or(default_name), email: email.unwrap_or_default() }
}

/// A commit to make on a branch through the API.
struct NewCommit<'a> {
    branch: &'a str,
    /// The commit the change applies to (None in an empty repository).
    base: Option<String>,
    /// The branch value the update expects (ZERO_OID: the branch is created).
    old: String,
    message: String,
    who: Author,
}

/// Builds a commit from `changes` on the branch and moves the branch to it.
async fn commit_changes(
    s: &CodeCommit,
    ctx: &RequestContext,
    r: &Repository,
    c: NewCommit<'_>,
    changes: &[Change],
) -> CcResult<(String, String, ChangeReport)> {
    let dir = s.repos.dir(r);
    let (tree, report) = content::apply_changes(&dir, c.base.as_deref(), changes).await?;
    if let Some(b) = &c.base {
        let base_tree = git::run_ok(&dir, &["rev-parse", &format!("{b}^{{tree}}")]).await?.line();
        if base_tree == tree {
            return Err(CodeCommitError::NoChange);
        }
    }
    let commit = content::commit_tree(&dir, &tree, c.base.as_deref(), &c.message, &c.who).await?;
    if !move_branch(s, ctx, r, c.branch, &commit, &c.old).await? {
        return Err(CodeCommitError::BranchMovedMeanwhile(c.branch.to_string()));
    }
    Ok((commit, tree, report))
}

/// The commit a change applies to: the branch tip (when the branch exists, `parentCommitId`
/// must name it), or for a new branch the given parent, or nothing in an empty repository.
async fn change_base(s: &CodeCommit, r: &Repository, branch: &str, parent: Option<&str>) -> CcResult<(Option<String>, String)> {
    let dir = s.repos.dir(r);
    let tip = branch_tip(s, r, branch).await?;
    if let Some(p) = parent {
        if !git::is_oid(p) {
            return Err(CodeCommitError::InvalidParentCommitId(p.to_string()));
        }
        if git::object_type(&dir, p).await?.as_deref() != Some("commit") {
            return Err(CodeCommitError::ParentCommitNotFound(p.to_string()));
        }
    }
    match (tip, parent) {
        (Some(t), Some(p)) if t == p => Ok((Some(t.clone()), t)),
        (Some(_), Some(p)) => Err(CodeCommitError::ParentOutdated { parent: p.to_string(), branch: branch.to_string() }),
        (Some(_), None) => Err(CodeCommitError::ParentRequiredForBranch),
        (None, Some(p)) => Ok((Some(p.to_string()), ZERO_OID.to_string())),
        (None, None) => {
            if git::refs(&dir).await?.iter().any(|(n, _)| n.starts_with("refs/heads/")) {
                Err(CodeCommitError::ParentRequiredNotEmpty)
            } else {
                Ok((None, ZERO_OID.to_string()))
            }
        }
    }
}

pub(super) async fn put_file(s: &CodeCommit, ctx: &RequestContext, input: PutFileInput) -> CcResult<PutFileOutput> {
    let r = s.repos.get(ctx, &required_repo(Some(&input.repository_name))?).await?;
    let branch = required_branch_checked(&input.branch_name).await?;
    let path = content::normalize_path(&input.file_path)?;
    let mode = git_mode(input.file_mode.as_ref())?;
    let (base, old) = change_base(s, &r, &branch, input.parent_commit_id.as_deref()).await?;
    let dir = s.repos.dir(&r);
    let blob = content::write_blob(&dir, &input.file_content.0).await?;
    if let Some(b) = &base
        && let Some(e) = content::entry_at(&dir, b, &path).await?
        && e.oid == blob
        && e.mode == mode
    {
        return Err(CodeCommitError::SameFileContent);
    }
    let who = author(ctx, input.name, input.email);
    let message = input.commit_message.unwrap_or_default();
    let changes = [Change::Put { path, blob: blob.clone(), mode: mode.to_string() }];
    let c = NewCommit { branch: &branch, base, old, message, who };
    let (commit, tree, _) = commit_changes(s, ctx, &r, c, &changes).await?;
    Ok(PutFileOutput { commit_id: commit, blob_id: blob, tree_id: tree })
}

pub(super) async fn delete_file(s: &CodeCommit, ctx: &RequestContext, input: DeleteFileInput) -> CcResult<DeleteFileOutput> {
    let r = s.repos.get(ctx, &required_repo(Some(&input.repository_name))?).await?;
    let branch = required_branch_checked(&input.branch_name).await?;
    let path = content::normalize_path(&input.file_path)?;
    if branch_tip(s, &r, &branch).await?.is_none() {
        return Err(branch_missing(&branch));
    }
    let (base, old) = change_base(s, &r, &branch, Some(&input.parent_commit_id)).await?;
    let who = author(ctx, input.name, input.email);
    let message = input.commit_message.unwrap_or_default();
    let changes = [Change::Delete { path }];
    let c = NewCommit { branch: &branch, base, old, message, who };
    let (commit, tree, report) = commit_changes(s, ctx, &r, c, &changes).await?;
    let blob = report.deleted.into_iter().next().map(|d| d.oid).unwrap_or_default();
    Ok(DeleteFileOutput { commit_id: commit, blob_id: blob, tree_id: tree, file_path: input.file_path })
}

pub(super) async fn create_commit(s: &CodeCommit, ctx: &RequestContext, input: CreateCommitInput) -> CcResult<CreateCommitOutput> {
    let r = s.repos.get(ctx, &required_repo(Some(&input.repository_name))?).await?;
    let branch = required_branch_checked(&input.branch_name).await?;
    let (base, old) = change_base(s, &r, &branch, input.parent_commit_id.as_deref()).await?;
    let dir = s.repos.dir(&r);
    let puts = input.put_files.unwrap_or_default();
    let deletes = input.delete_files.unwrap_or_default();
    let modes = input.set_file_modes.unwrap_or_default();
    if puts.is_empty() && deletes.is_empty() && modes.is_empty() {
        return Err(CodeCommitError::FileEntryRequired);
    }
    if puts.len() + deletes.len() + modes.len() > 100 {
        return Err(CodeCommitError::TooManyFileEntries);
    }
    let mut seen = std::collections::HashSet::new();
    let mut changes = Vec::new();
    for p in puts {
        let path = content::normalize_path(&p.file_path)?;
        if !seen.insert(path.clone()) {
            return Err(duplicate_path(&path));
        }
        let mode = git_mode(p.file_mode.as_ref())?;
        let blob = match (p.file_content, p.source_file) {
            (Some(_), Some(_)) => {
                return Err(CodeCommitError::ContentAndSourceFile);
            }
            (Some(c), None) => content::write_blob(&dir, &c.0).await?,
            (None, Some(src)) => {
                let src_path = content::normalize_path(&src.file_path)?;
                if src_path == path {
                    return Err(CodeCommitError::SamePath);
                }
                let oid = existing_blob(&dir, base.as_deref(), &src_path).await?;
                if src.is_move == Some(true) {
                    changes.push(Change::Delete { path: src_path });
                }
                oid
            }
            (None, None) => {
                return Err(CodeCommitError::SourceFileOrContentRequired);
            }
        };
        changes.push(Change::Put { path, blob, mode: mode.to_string() });
    }
    for d in deletes {
        let path = content::normalize_path(&d.file_path)?;
        if !seen.insert(path.clone()) {
            return Err(duplicate_path(&path));
        }
        changes.push(Change::Delete { path });
    }
    for m in modes {
        let path = content::normalize_path(&m.file_path)?;
        let mode = git_mode(Some(&m.file_mode))?;
        let blob = existing_blob(&dir, base.as_deref(), &path).await?;
        changes.push(Change::Put { path, blob, mode: mode.to_string() });
    }
    let who = author(ctx, input.author_name, input.email);
    let message = input.commit_message.unwrap_or_default();
    let c = NewCommit { branch: &branch, base, old, message, who };
    let (commit, tree, report) = commit_changes(s, ctx, &r, c, &changes).await?;
    let files = |v: Vec<content::BlobAt>| Some(v.into_iter().map(file_metadata).collect());
    Ok(CreateCommitOutput {
        commit_id: Some(commit),
        tree_id: Some(tree),
        files_added: files(report.added),
        files_updated: files(report.updated),
        files_deleted: files(report.deleted),
    })
}
