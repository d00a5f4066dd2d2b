//! The CodeCommit API (awsJson1.1): the generated [`CodeCommitApi`] trait over [`CodeCommit`].
//! Inputs arrive decoded into the model's types (the wire validated them first); every
//! operation not defined here answers UnknownOperationException. The trait impl only
//! delegates: the operations live by concern in [`repositories`], [`branches`], [`reads`]
//! (commits, files, folders, blobs, differences) and [`changes`] (PutFile, DeleteFile,
//! CreateCommit), which turn the domain records of [`crate::repos`] and [`crate::content`]
//! into the model's shapes.

mod branches;
mod changes;
mod reads;
mod repositories;

use crate::CodeCommit;
use crate::error::{CcResult, CodeCommitError};
use crate::repos;
use codeyard_api::codecommit::*;
use codeyard_core::{AwsError, AwsResult, RequestContext};
use codeyard_wire::shapes::{Problem, ProblemKind};
use serde_json::Value;
use std::sync::Arc;

pub struct CodeCommitService(pub Arc<CodeCommit>);

fn err(code: &str, msg: impl Into<String>) -> AwsError {
    AwsError::client(code, msg)
}

#[codeyard_api::service]
impl CodeCommitApi for CodeCommitService {
    /// From the IAM data, as for every service (`codeyard_api::access`); calls that move a
    /// branch (CreateBranch, DeleteBranch, PutFile, CreateCommit, DeleteFile) carry
    /// `codecommit:References` (`refs/heads/<branch>`), as a git push does, so a policy
    /// protecting a branch holds for the API too.
    async fn access_requests(&self, ctx: &RequestContext, op: &str, input: &Value) -> AwsResult<Vec<codeyard_core::AccessRequest>> {
        let mut requests = codeyard_api::access::access_requests("codecommit", ctx, op, input);
        let moves_branch = matches!(op, "CreateBranch" | "DeleteBranch" | "PutFile" | "CreateCommit" | "DeleteFile");
        if let (true, Some(branch)) = (moves_branch, input["branchName"].as_str()) {
            for r in requests.iter_mut() {
                r.context.insert("codecommit:References".into(), vec![format!("refs/heads/{branch}")]);
            }
        }
        Ok(requests)
    }

    /// CodeCommit answers model violations with its own exceptions, named after the member.
    fn validation_error(&self, _operation: &str, problems: &[Problem]) -> AwsError {
        let Some(p) = problems.first() else {
            return AwsError::validation("invalid input");
        };
        let required = p.kind == ProblemKind::Required;
        let pick = |req: &str, invalid: &str| {
            if required {
                req.to_string()
            } else {
                invalid.to_string()
            }
        };
        let code = match p.member.as_str() {
            "repositoryName" | "oldName" | "newName" => pick(
                "RepositoryNameRequiredException",
                "InvalidRepositoryNameException",
            ),
            "repositoryNames" => pick(
                "RepositoryNamesRequiredException",
                "InvalidRepositoryNameException",
            ),
            "branchName" | "defaultBranchName" => {
                pick("BranchNameRequiredException", "InvalidBranchNameException")
            }
            "commitId" => pick("CommitIdRequiredException", "InvalidCommitIdException"),
            "commitIds" => pick(
                "CommitIdsListRequiredException",
                "CommitIdsLimitExceededException",
            ),
            "filePath" | "folderPath" | "beforePath" | "afterPath" => {
                pick("PathRequiredException", "InvalidPathException")
            }
            "fileContent" => pick(
                "FileContentRequiredException",
                "FileContentSizeLimitExceededException",
            ),
            "blobId" => pick("BlobIdRequiredException", "InvalidBlobIdException"),
            "repositoryDescription" => "InvalidRepositoryDescriptionException".into(),
            "resourceArn" => pick(
                "ResourceArnRequiredException",
                "InvalidResourceArnException",
            ),
            "tags" => pick("TagsMapRequiredException", "InvalidTagsMapException"),
            "tagKeys" => pick(
                "TagKeysListRequiredException",
                "InvalidTagKeysListException",
            ),
            "parentCommitId" => "InvalidParentCommitIdException".into(),
            "afterCommitSpecifier" => pick("CommitRequiredException", "InvalidCommitException"),
            "beforeCommitSpecifier" | "commitSpecifier" => "InvalidCommitException".into(),
            "sortBy" => "InvalidSortByException".into(),
            "order" => "InvalidOrderException".into(),
            "fileMode" => pick("FileModeRequiredException", "InvalidFileModeException"),
            "commitMessage" => "CommitMessageLengthExceededException".into(),
            "name" | "authorName" => "NameLengthExceededException".into(),
            "email" => "InvalidEmailException".into(),
            "MaxResults" => "InvalidMaxResultsException".into(),
            "nextToken" | "NextToken" => "InvalidContinuationTokenException".into(),
            _ => return AwsError::validation(codeyard_wire::shapes::validation_message(problems)),
        };
        err(&code, p.message.clone())
    }

    async fn create_repository(&self, ctx: &RequestContext, input: CreateRepositoryInput) -> AwsResult<CreateRepositoryOutput> {
        Ok(repositories::create_repository(&self.0, ctx, input).await?)
    }

    async fn get_repository(&self, ctx: &RequestContext, input: GetRepositoryInput) -> AwsResult<GetRepositoryOutput> {
        Ok(repositories::get_repository(&self.0, ctx, input).await?)
    }

    async fn batch_get_repositories(&self, ctx: &RequestContext, input: BatchGetRepositoriesInput) -> AwsResult<BatchGetRepositoriesOutput> {
        Ok(repositories::batch_get_repositories(&self.0, ctx, input).await?)
    }

    async fn list_repositories(&self, ctx: &RequestContext, input: ListRepositoriesInput) -> AwsResult<ListRepositoriesOutput> {
        Ok(repositories::list_repositories(&self.0, ctx, input).await?)
    }

    async fn delete_repository(&self, ctx: &RequestContext, input: DeleteRepositoryInput) -> AwsResult<DeleteRepositoryOutput> {
        Ok(repositories::delete_repository(&self.0, ctx, input).await?)
    }

    async fn update_repository_name(&self, ctx: &RequestContext, input: UpdateRepositoryNameInput) -> AwsResult<UpdateRepositoryNameOutput> {
        Ok(repositories::update_repository_name(&self.0, ctx, input).await?)
    }

    async fn update_repository_description(&self, ctx: &RequestContext, input: UpdateRepositoryDescriptionInput) -> AwsResult<UpdateRepositoryDescriptionOutput> {
        Ok(repositories::update_repository_description(&self.0, ctx, input).await?)
    }

    async fn update_default_branch(&self, ctx: &RequestContext, input: UpdateDefaultBranchInput) -> AwsResult<UpdateDefaultBranchOutput> {
        Ok(branches::update_default_branch(&self.0, ctx, input).await?)
    }

    async fn tag_resource(&self, ctx: &RequestContext, input: TagResourceInput) -> AwsResult<TagResourceOutput> {
        Ok(repositories::tag_resource(&self.0, ctx, input).await?)
    }

    async fn untag_resource(&self, ctx: &RequestContext, input: UntagResourceInput) -> AwsResult<UntagResourceOutput> {
        Ok(repositories::untag_resource(&self.0, ctx, input).await?)
    }

    async fn list_tags_for_resource(&self, ctx: &RequestContext, input: ListTagsForResourceInput) -> AwsResult<ListTagsForResourceOutput> {
        Ok(repositories::list_tags_for_resource(&self.0, ctx, input).await?)
    }

    async fn get_branch(&self, ctx: &RequestContext, input: GetBranchInput) -> AwsResult<GetBranchOutput> {
        Ok(branches::get_branch(&self.0, ctx, input).await?)
    }

    async fn list_branches(&self, ctx: &RequestContext, input: ListBranchesInput) -> AwsResult<ListBranchesOutput> {
        Ok(branches::list_branches(&self.0, ctx, input).await?)
    }

    async fn create_branch(&self, ctx: &RequestContext, input: CreateBranchInput) -> AwsResult<CreateBranchOutput> {
        Ok(branches::create_branch(&self.0, ctx, input).await?)
    }

    async fn delete_branch(&self, ctx: &RequestContext, input: DeleteBranchInput) -> AwsResult<DeleteBranchOutput> {
        Ok(branches::delete_branch(&self.0, ctx, input).await?)
    }

    async fn get_commit(&self, ctx: &RequestContext, input: GetCommitInput) -> AwsResult<GetCommitOutput> {
        Ok(reads::get_commit(&self.0, ctx, input).await?)
    }

    async fn batch_get_commits(&self, ctx: &RequestContext, input: BatchGetCommitsInput) -> AwsResult<BatchGetCommitsOutput> {
        Ok(reads::batch_get_commits(&self.0, ctx, input).await?)
    }

    async fn get_file(&self, ctx: &RequestContext, input: GetFileInput) -> AwsResult<GetFileOutput> {
        Ok(reads::get_file(&self.0, ctx, input).await?)
    }

    async fn get_folder(&self, ctx: &RequestContext, input: GetFolderInput) -> AwsResult<GetFolderOutput> {
        Ok(reads::get_folder(&self.0, ctx, input).await?)
    }

    async fn get_blob(&self, ctx: &RequestContext, input: GetBlobInput) -> AwsResult<GetBlobOutput> {
        Ok(reads::get_blob(&self.0, ctx, input).await?)
    }

    async fn get_differences(&self, ctx: &RequestContext, input: GetDifferencesInput) -> AwsResult<GetDifferencesOutput> {
        Ok(reads::get_differences(&self.0, ctx, input).await?)
    }

    async fn put_file(&self, ctx: &RequestContext, input: PutFileInput) -> AwsResult<PutFileOutput> {
        Ok(changes::put_file(&self.0, ctx, input).await?)
    }

    async fn delete_file(&self, ctx: &RequestContext, input: DeleteFileInput) -> AwsResult<DeleteFileOutput> {
        Ok(changes::delete_file(&self.0, ctx, input).await?)
    }

    async fn create_commit(&self, ctx: &RequestContext, input: CreateCommitInput) -> AwsResult<CreateCommitOutput> {
        Ok(changes::create_commit(&self.0, ctx, input).await?)
    }
}

/// A repository name member: present, and a name CodeCommit accepts.
fn required_repo(name: Option<&str>) -> CcResult<String> {
    let name = name.unwrap_or_default();
    if name.is_empty() {
        return Err(CodeCommitError::RepositoryNameRequired);
    }
    repos::check_name(name)?;
    Ok(name.to_string())
}

/// Pages a list with the offset as the token.
fn paginate<T>(all: Vec<T>, token: Option<String>, page: usize) -> CcResult<(Vec<T>, Option<String>)> {
    let start = match token {
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= all.len())
            .ok_or(CodeCommitError::InvalidContinuationToken)?,
        None => 0,
    };
    let end = (start + page).min(all.len());
    let next = (end < all.len()).then(|| end.to_string());
    Ok((all.into_iter().skip(start).take(end - start).collect(), next))
}
