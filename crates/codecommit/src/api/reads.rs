//! Reading content: commits, files, folders, blobs and differences.

use super::{paginate, required_repo};
use crate::CodeCommit;
use crate::error::{CcResult, CodeCommitError};
use crate::content::{self, BlobAt, ChangeKind, CommitData, Person};
use crate::git;
use codeyard_api::Blob;
use codeyard_api::codecommit::*;
use codeyard_core::{RequestContext};

fn user_info(p: &Person) -> UserInfo {
    UserInfo { name: Some(p.name.clone()), email: Some(p.email.clone()), date: Some(p.date()) }
}

/// AWS's Commit of a commit read from git.
fn commit_shape(c: CommitData) -> Commit {
    Commit {
        author: Some(user_info(&c.author)),
        committer: Some(user_info(&c.committer)),
        commit_id: Some(c.id),
        tree_id: Some(c.tree),
        parents: Some(c.parents),
        message: Some(c.message),
        additional_data: Some(String::new()),
    }
}

pub(super) fn file_mode(git_mode: &str) -> FileModeTypeEnum {
    FileModeTypeEnum::from(content::mode_name(git_mode))
}

/// A changed file as CreateCommit reports it.
pub(super) fn file_metadata(b: BlobAt) -> FileMetadata {
    FileMetadata { file_mode: Some(file_mode(&b.mode)), absolute_path: Some(b.path), blob_id: Some(b.oid) }
}

/// A commit or blob id as GetCommit and GetBlob take it: given (else `missing`) and an
/// object id (else `invalid`).
fn object_id(id: &str, missing: CodeCommitError, invalid: fn(String) -> CodeCommitError) -> CcResult<&str> {
    if id.is_empty() {
        return Err(missing);
    }
    if !git::is_oid(id) {
        return Err(invalid(id.to_string()));
    }
    Ok(id)
}

fn blob_metadata(b: BlobAt) -> BlobMetadata {
    BlobMetadata { blob_id: Some(b.oid), path: Some(b.path), mode: Some(b.mode) }
}

pub(super) async fn get_commit(s: &CodeCommit, ctx: &RequestContext, input: GetCommitInput) -> CcResult<GetCommitOutput> {
    let r = s.repos.get(ctx, &required_repo(Some(&input.repository_name))?).await?;
    let id = object_id(&input.commit_id, CodeCommitError::CommitIdRequired, CodeCommitError::InvalidCommitId)?;
    let c = content::read_commit(&s.repos.dir(&r), id)
        .await?
        .ok_or_else(|| CodeCommitError::CommitIdNotFound(id.to_string()))?;
    Ok(GetCommitOutput { commit: commit_shape(c) })
}

pub(super) async fn batch_get_commits(s: &CodeCommit, ctx: &RequestContext, input: BatchGetCommitsInput) -> CcResult<BatchGetCommitsOutput> {
    let r = s.repos.get(ctx, &required_repo(Some(&input.repository_name))?).await?;
    if input.commit_ids.len() > 100 {
        return Err(CodeCommitError::TooManyCommitIds);
    }
    let dir = s.repos.dir(&r);
    let (mut commits, mut errors) = (vec![], vec![]);
    for id in input.commit_ids {
        match content::read_commit(&dir, &id).await? {
            Some(c) => commits.push(commit_shape(c)),
            None => errors.push(BatchGetCommitsError {
                error_code: Some("CommitDoesNotExistException".into()),
                error_message: Some(format!("Could not find commit {id}.")),
                commit_id: Some(id),
            }),
        }
    }
    Ok(BatchGetCommitsOutput { commits: Some(commits), errors: Some(errors) })
}

pub(super) async fn get_file(s: &CodeCommit, ctx: &RequestContext, input: GetFileInput) -> CcResult<GetFileOutput> {
    let r = s.repos.get(ctx, &required_repo(Some(&input.repository_name))?).await?;
    let dir = s.repos.dir(&r);
    let commit = content::resolve_specifier(&dir, input.commit_specifier.as_deref(), r.default_branch.as_deref()).await?;
    let (entry, bytes) = content::get_file(&dir, &commit, &input.file_path).await?;
    Ok(GetFileOutput {
        commit_id: commit,
        blob_id: entry.oid,
        file_path: input.file_path,
        file_mode: file_mode(&entry.mode),
        file_size: bytes.len() as i64,
        file_content: Blob(bytes),
    })
}

pub(super) async fn get_folder(s: &CodeCommit, ctx: &RequestContext, input: GetFolderInput) -> CcResult<GetFolderOutput> {
    let r = s.repos.get(ctx, &required_repo(Some(&input.repository_name))?).await?;
    let dir = s.repos.dir(&r);
    let commit = content::resolve_specifier(&dir, input.commit_specifier.as_deref(), r.default_branch.as_deref()).await?;
    let listing = content::get_folder(&dir, &commit, &input.folder_path).await?;
    let (mut folders, mut files, mut links, mut modules) = (vec![], vec![], vec![], vec![]);
    for (abs, e) in listing.entries {
        let (absolute_path, relative_path) = (Some(abs), Some(e.path));
        match (e.kind.as_str(), e.mode.as_str()) {
            ("tree", _) => folders.push(Folder { tree_id: Some(e.oid), absolute_path, relative_path }),
            ("commit", _) => modules.push(SubModule { commit_id: Some(e.oid), absolute_path, relative_path }),
            (_, mode) => {
                let f = File { blob_id: Some(e.oid), absolute_path, relative_path, file_mode: Some(file_mode(mode)) };
                if mode == "120000" { links.push(f) } else { files.push(f) }
            }
        }
    }
    Ok(GetFolderOutput {
        commit_id: commit,
        folder_path: input.folder_path,
        tree_id: Some(listing.tree),
        sub_folders: Some(folders),
        files: Some(files),
        symbolic_links: Some(links),
        sub_modules: Some(modules),
    })
}

pub(super) async fn get_blob(s: &CodeCommit, ctx: &RequestContext, input: GetBlobInput) -> CcResult<GetBlobOutput> {
    let r = s.repos.get(ctx, &required_repo(Some(&input.repository_name))?).await?;
    let id = object_id(&input.blob_id, CodeCommitError::BlobIdRequired, CodeCommitError::InvalidBlobId)?;
    let dir = s.repos.dir(&r);
    if git::object_type(&dir, id).await?.as_deref() != Some("blob") {
        return Err(CodeCommitError::BlobNotFound(id.to_string()));
    }
    let bytes = git::run_ok(&dir, &["cat-file", "blob", id]).await?.stdout;
    Ok(GetBlobOutput { content: Blob(bytes) })
}

pub(super) async fn get_differences(s: &CodeCommit, ctx: &RequestContext, input: GetDifferencesInput) -> CcResult<GetDifferencesOutput> {
    let r = s.repos.get(ctx, &required_repo(Some(&input.repository_name))?).await?;
    let dir = s.repos.dir(&r);
    if input.after_commit_specifier.is_empty() {
        return Err(CodeCommitError::CommitRequired);
    }
    let after = content::resolve_specifier(&dir, Some(&input.after_commit_specifier), None).await?;
    let before = match input.before_commit_specifier.as_deref().filter(|s| !s.is_empty()) {
        Some(b) => Some(content::resolve_specifier(&dir, Some(b), None).await?),
        None => None,
    };
    let mut paths = Vec::new();
    for (given, commit) in [(&input.before_path, before.as_deref()), (&input.after_path, Some(after.as_str()))] {
        let Some(p) = given.as_deref().filter(|p| !p.trim_matches('/').is_empty()) else {
            continue;
        };
        let norm = content::normalize_path(p)?;
        if let Some(c) = commit
            && content::entry_at(&dir, c, &norm).await?.is_none()
        {
            return Err(CodeCommitError::PathNotFound(p.to_string()));
        }
        if !paths.contains(&norm) {
            paths.push(norm);
        }
    }
    let max = match input.max_results {
        Some(n) if n <= 0 => {
            return Err(CodeCommitError::InvalidMaxResults);
        }
        Some(n) => n as usize,
        None => 100,
    };
    let all = content::differences(&dir, before.as_deref(), &after, &paths).await?;
    let (page, next) = paginate(all, input.next_token, max)?;
    let differences = page
        .into_iter()
        .map(|d| Difference {
            change_type: Some(match d.kind {
                ChangeKind::Added => ChangeTypeEnum::A,
                ChangeKind::Modified => ChangeTypeEnum::M,
                ChangeKind::Deleted => ChangeTypeEnum::D,
            }),
            before_blob: d.before.map(blob_metadata),
            after_blob: d.after.map(blob_metadata),
        })
        .collect();
    Ok(GetDifferencesOutput { differences: Some(differences), next_token: next })
}
