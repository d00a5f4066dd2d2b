//! The CodeCommit API (awsJson1.1): a thin adapter from JSON to the domain modules.

use crate::CodeCommit;
use crate::content::{self, Author, Change};
use crate::events::RefUpdate;
use crate::git::{self, ZERO_OID};
use crate::repos::{self, Repository};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use codeyard_core::arn::Arn;
use codeyard_core::{AwsError, AwsResult, RequestContext, time};
use codeyard_wire::shapes::{Problem, ProblemKind};
use codeyard_wire::{AwsService, opt_str, str_of};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct Api(pub Arc<CodeCommit>);

const OPERATIONS: &[&str] = &[
    "CreateRepository",
    "GetRepository",
    "BatchGetRepositories",
    "ListRepositories",
    "DeleteRepository",
    "UpdateRepositoryName",
    "UpdateRepositoryDescription",
    "UpdateDefaultBranch",
    "GetBranch",
    "ListBranches",
    "CreateBranch",
    "DeleteBranch",
    "GetCommit",
    "BatchGetCommits",
    "GetFile",
    "GetFolder",
    "GetBlob",
    "PutFile",
    "DeleteFile",
    "CreateCommit",
    "GetDifferences",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
];

fn err(code: &str, msg: impl Into<String>) -> AwsError {
    AwsError::client(code, msg)
}

#[async_trait]
impl AwsService for Api {
    fn model_name(&self) -> &'static str {
        "codecommit"
    }
    fn implemented(&self) -> &'static [&'static str] {
        OPERATIONS
    }

    async fn call(&self, ctx: &RequestContext, op: &str, input: Value) -> AwsResult<Value> {
        let s = &*self.0;
        match op {
            "CreateRepository" => create_repository(s, ctx, &input).await,
            "GetRepository" => {
                let r = s
                    .repos
                    .get(ctx, &required_repo(&input, "repositoryName")?)
                    .await?;
                Ok(json!({"repositoryMetadata": r.metadata(&ctx.endpoint)}))
            }
            "BatchGetRepositories" => batch_get_repositories(s, ctx, &input).await,
            "ListRepositories" => list_repositories(s, ctx, &input).await,
            "DeleteRepository" => {
                let name = required_repo(&input, "repositoryName")?;
                match s.repos.delete(ctx, &name).await? {
                    Some(r) => Ok(json!({"repositoryId": r.id})),
                    None => Ok(json!({})),
                }
            }
            "UpdateRepositoryName" => {
                let old = required_repo(&input, "oldName")?;
                let new = required_repo(&input, "newName")?;
                s.repos.rename(ctx, &old, &new).await?;
                Ok(json!({}))
            }
            "UpdateRepositoryDescription" => {
                let (mut r, v) = s
                    .repos
                    .get_versioned(ctx, &required_repo(&input, "repositoryName")?)
                    .await?;
                r.description = opt_str(&input, "repositoryDescription");
                r.last_modified = time::now();
                s.repos.save(&r, v).await?;
                Ok(json!({}))
            }
            "UpdateDefaultBranch" => update_default_branch(s, ctx, &input).await,
            "GetBranch" => {
                let r = s
                    .repos
                    .get(ctx, &required_repo(&input, "repositoryName")?)
                    .await?;
                let branch = required_branch(&input, "branchName")?;
                let commit = branch_tip(s, &r, &branch)
                    .await?
                    .ok_or_else(|| branch_missing(&branch))?;
                Ok(json!({"branch": {"branchName": branch, "commitId": commit}}))
            }
            "ListBranches" => {
                let r = s
                    .repos
                    .get(ctx, &required_repo(&input, "repositoryName")?)
                    .await?;
                let out = git::run_ok(
                    &s.repos.dir(&r),
                    &["for-each-ref", "--format=%(refname:strip=2)", "refs/heads/"],
                )
                .await?;
                let all: Vec<String> = out.text().lines().map(str::to_string).collect();
                let (page, next) = paginate(all, opt_str(&input, "nextToken"), 100)?;
                let mut o = json!({"branches": page});
                if let Some(n) = next {
                    o["nextToken"] = json!(n);
                }
                Ok(o)
            }
            "CreateBranch" => create_branch(s, ctx, &input).await,
            "DeleteBranch" => delete_branch(s, ctx, &input).await,
            "GetCommit" => {
                let r = s
                    .repos
                    .get(ctx, &required_repo(&input, "repositoryName")?)
                    .await?;
                let id = str_of(&input, "commitId");
                if id.is_empty() {
                    return Err(err("CommitIdRequiredException", "A commit ID is required."));
                }
                if !git::is_oid(id) {
                    return Err(err(
                        "InvalidCommitIdException",
                        format!("The commit ID {id} is not valid."),
                    ));
                }
                let c = content::read_commit(&s.repos.dir(&r), id)
                    .await?
                    .ok_or_else(|| {
                        err(
                            "CommitIdDoesNotExistException",
                            format!("Could not find commit {id}."),
                        )
                    })?;
                Ok(json!({"commit": c.json()}))
            }
            "BatchGetCommits" => batch_get_commits(s, ctx, &input).await,
            "GetFile" => {
                let r = s
                    .repos
                    .get(ctx, &required_repo(&input, "repositoryName")?)
                    .await?;
                let dir = s.repos.dir(&r);
                let commit = content::resolve_specifier(
                    &dir,
                    input.get("commitSpecifier").and_then(Value::as_str),
                    r.default_branch.as_deref(),
                )
                .await?;
                let path = str_of(&input, "filePath");
                let (entry, bytes) = content::get_file(&dir, &commit, path).await?;
                Ok(json!({
                    "commitId": commit,
                    "blobId": entry.oid,
                    "filePath": path,
                    "fileMode": content::mode_name(&entry.mode),
                    "fileSize": bytes.len(),
                    "fileContent": B64.encode(&bytes),
                }))
            }
            "GetFolder" => {
                let r = s
                    .repos
                    .get(ctx, &required_repo(&input, "repositoryName")?)
                    .await?;
                let dir = s.repos.dir(&r);
                let commit = content::resolve_specifier(
                    &dir,
                    input.get("commitSpecifier").and_then(Value::as_str),
                    r.default_branch.as_deref(),
                )
                .await?;
                content::get_folder(&dir, &commit, str_of(&input, "folderPath")).await
            }
            "GetBlob" => {
                let r = s
                    .repos
                    .get(ctx, &required_repo(&input, "repositoryName")?)
                    .await?;
                let id = str_of(&input, "blobId");
                if id.is_empty() {
                    return Err(err("BlobIdRequiredException", "A blob ID is required."));
                }
                if !git::is_oid(id) {
                    return Err(err(
                        "InvalidBlobIdException",
                        format!("The blob ID {id} is not valid."),
                    ));
                }
                let dir = s.repos.dir(&r);
                if git::object_type(&dir, id).await?.as_deref() != Some("blob") {
                    return Err(err(
                        "BlobIdDoesNotExistException",
                        format!("Could not find blob {id}."),
                    ));
                }
                let bytes = git::run_ok(&dir, &["cat-file", "blob", id]).await?.stdout;
                Ok(json!({"content": B64.encode(&bytes)}))
            }
            "PutFile" => put_file(s, ctx, &input).await,
            "DeleteFile" => delete_file(s, ctx, &input).await,
            "CreateCommit" => create_commit(s, ctx, &input).await,
            "GetDifferences" => get_differences(s, ctx, &input).await,
            "TagResource" => {
                let (mut r, v) = repo_by_arn(s, ctx, &input).await?;
                let tags = tags_of(&input)?;
                if tags.is_empty() && input.get("tags").is_none() {
                    return Err(err(
                        "TagsMapRequiredException",
                        "A map of tags is required.",
                    ));
                }
                r.tags.extend(tags);
                if r.tags.len() > 50 {
                    return Err(err(
                        "TooManyTagsException",
                        "The maximum number of tags for a repository is 50.",
                    ));
                }
                s.repos.save(&r, v).await?;
                Ok(json!({}))
            }
            "UntagResource" => {
                let (mut r, v) = repo_by_arn(s, ctx, &input).await?;
                let keys = input
                    .get("tagKeys")
                    .and_then(Value::as_array)
                    .ok_or_else(|| {
                        err(
                            "TagKeysListRequiredException",
                            "A list of tag keys is required.",
                        )
                    })?;
                for k in keys.iter().filter_map(Value::as_str) {
                    if k.starts_with("aws:") {
                        return Err(err(
                            "InvalidSystemTagUsageException",
                            "The tag key contains a prefix reserved for system tags.",
                        ));
                    }
                    r.tags.remove(k);
                }
                s.repos.save(&r, v).await?;
                Ok(json!({}))
            }
            "ListTagsForResource" => {
                let (r, _) = repo_by_arn(s, ctx, &input).await?;
                Ok(json!({"tags": r.tags}))
            }
            other => Err(AwsError::unknown_operation("codecommit", other)),
        }
    }

    /// From the IAM data, as for the services on generated traits (`codeyard_api::access`);
    /// calls that move a branch (CreateBranch, DeleteBranch, PutFile, CreateCommit, DeleteFile)
    /// carry `codecommit:References` (`refs/heads/<branch>`), as a git push does, so a policy
    /// protecting a branch holds for the API too.
    async fn access_requests(
        &self,
        ctx: &RequestContext,
        op: &str,
        input: &Value,
    ) -> AwsResult<Vec<codeyard_core::AccessRequest>> {
        let mut requests = codeyard_api::access::access_requests("codecommit", ctx, op, input);
        let moves_branch = matches!(
            op,
            "CreateBranch" | "DeleteBranch" | "PutFile" | "CreateCommit" | "DeleteFile"
        );
        if let (true, Some(branch)) = (moves_branch, input["branchName"].as_str()) {
            for r in requests.iter_mut() {
                r.context.insert(
                    "codecommit:References".into(),
                    vec![format!("refs/heads/{branch}")],
                );
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
}

fn required_repo(input: &Value, member: &str) -> AwsResult<String> {
    let name = str_of(input, member);
    if name.is_empty() {
        return Err(err(
            "RepositoryNameRequiredException",
            "A repository name is required.",
        ));
    }
    repos::check_name(name)?;
    Ok(name.to_string())
}

async fn required_branch_checked(input: &Value, member: &str) -> AwsResult<String> {
    let b = required_branch(input, member)?;
    if !git::valid_branch_name(&b).await {
        return Err(err(
            "InvalidBranchNameException",
            format!("The branch name {b} is not valid."),
        ));
    }
    Ok(b)
}

fn required_branch(input: &Value, member: &str) -> AwsResult<String> {
    let b = str_of(input, member);
    if b.is_empty() {
        return Err(err(
            "BranchNameRequiredException",
            "A branch name is required.",
        ));
    }
    Ok(b.to_string())
}

fn branch_missing(branch: &str) -> AwsError {
    err(
        "BranchDoesNotExistException",
        format!("Branch {branch} does not exist."),
    )
}

async fn branch_tip(s: &CodeCommit, r: &Repository, branch: &str) -> AwsResult<Option<String>> {
    git::ref_value(&s.repos.dir(r), &format!("refs/heads/{branch}")).await
}

/// Pages a list with the offset as the token.
fn paginate<T>(
    all: Vec<T>,
    token: Option<String>,
    page: usize,
) -> AwsResult<(Vec<T>, Option<String>)> {
    let start = match token {
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= all.len())
            .ok_or_else(|| {
                err(
                    "InvalidContinuationTokenException",
                    "The specified continuation token is not valid.",
                )
            })?,
        None => 0,
    };
    let end = (start + page).min(all.len());
    let next = if end < all.len() {
        Some(end.to_string())
    } else {
        None
    };
    Ok((
        all.into_iter().skip(start).take(end - start).collect(),
        next,
    ))
}

fn tags_of(input: &Value) -> AwsResult<BTreeMap<String, String>> {
    let mut tags = BTreeMap::new();
    if let Some(m) = input.get("tags").and_then(Value::as_object) {
        for (k, v) in m {
            if k.starts_with("aws:") {
                return Err(err(
                    "InvalidSystemTagUsageException",
                    "The tag key contains a prefix reserved for system tags.",
                ));
            }
            tags.insert(k.clone(), v.as_str().unwrap_or("").to_string());
        }
    }
    Ok(tags)
}

async fn create_repository(
    s: &CodeCommit,
    ctx: &RequestContext,
    input: &Value,
) -> AwsResult<Value> {
    let name = required_repo(input, "repositoryName")?;
    let tags = tags_of(input)?;
    if tags.len() > 50 {
        return Err(err(
            "TooManyTagsException",
            "The maximum number of tags for a repository is 50.",
        ));
    }
    let r = s
        .repos
        .create(ctx, &name, opt_str(input, "repositoryDescription"), tags)
        .await?;
    Ok(json!({"repositoryMetadata": r.metadata(&ctx.endpoint)}))
}

async fn batch_get_repositories(
    s: &CodeCommit,
    ctx: &RequestContext,
    input: &Value,
) -> AwsResult<Value> {
    let names: Vec<String> = input
        .get("repositoryNames")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            err(
                "RepositoryNamesRequiredException",
                "At least one repository name is required.",
            )
        })?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    if names.len() > 25 {
        return Err(err(
            "MaximumRepositoryNamesExceededException",
            "The maximum number of allowed repository names was exceeded. Currently, this number is 25.",
        ));
    }
    let (mut found, mut missing) = (vec![], vec![]);
    for n in names {
        repos::check_name(&n)?;
        match s.repos.find(&ctx.account, &ctx.region, &n).await? {
            Some((r, _)) => found.push(r.metadata(&ctx.endpoint)),
            None => missing.push(n),
        }
    }
    Ok(json!({"repositories": found, "repositoriesNotFound": missing}))
}

async fn list_repositories(
    s: &CodeCommit,
    ctx: &RequestContext,
    input: &Value,
) -> AwsResult<Value> {
    let mut all = s.repos.list(&ctx.account, &ctx.region).await?;
    match input.get("sortBy").and_then(Value::as_str) {
        Some("lastModifiedDate") => all.sort_by(|a, b| {
            a.last_modified
                .cmp(&b.last_modified)
                .then(a.name.cmp(&b.name))
        }),
        _ => all.sort_by(|a, b| a.name.cmp(&b.name)),
    }
    if input.get("order").and_then(Value::as_str) == Some("descending") {
        all.reverse();
    }
    let (page, next) = paginate(all, opt_str(input, "nextToken"), 1000)?;
    let list: Vec<Value> = page
        .iter()
        .map(|r| json!({"repositoryName": r.name, "repositoryId": r.id}))
        .collect();
    let mut o = json!({"repositories": list});
    if let Some(n) = next {
        o["nextToken"] = json!(n);
    }
    Ok(o)
}

async fn update_default_branch(
    s: &CodeCommit,
    ctx: &RequestContext,
    input: &Value,
) -> AwsResult<Value> {
    let (mut r, v) = s
        .repos
        .get_versioned(ctx, &required_repo(input, "repositoryName")?)
        .await?;
    let branch = required_branch(input, "defaultBranchName")?;
    if branch_tip(s, &r, &branch).await?.is_none() {
        return Err(branch_missing(&branch));
    }
    r.default_branch = Some(branch.clone());
    r.last_modified = time::now();
    s.repos.save(&r, v).await?;
    // HEAD is what `git clone` checks out; it follows the default branch.
    git::run_ok(
        &s.repos.dir(&r),
        &["symbolic-ref", "HEAD", &format!("refs/heads/{branch}")],
    )
    .await?;
    Ok(json!({}))
}

/// Moves a branch by compare-and-swap and publishes the event; false when the branch was
/// not at `old` any more.
async fn move_branch(
    s: &CodeCommit,
    ctx: &RequestContext,
    r: &Repository,
    branch: &str,
    new: &str,
    old: &str,
) -> AwsResult<bool> {
    let full = format!("refs/heads/{branch}");
    let flight = s.events.begin(r);
    let moved = git::update_ref(&s.repos.dir(r), &full, new, old).await;
    let updates = match moved {
        Ok(true) => vec![RefUpdate {
            name: full,
            old: old.to_string(),
            new: new.to_string(),
        }],
        _ => vec![],
    };
    s.events
        .finish(r, flight, updates, Some(&ctx.caller_arn))
        .await?;
    moved
}

async fn create_branch(s: &CodeCommit, ctx: &RequestContext, input: &Value) -> AwsResult<Value> {
    let r = s
        .repos
        .get(ctx, &required_repo(input, "repositoryName")?)
        .await?;
    let branch = required_branch_checked(input, "branchName").await?;
    let commit = str_of(input, "commitId");
    if commit.is_empty() {
        return Err(err("CommitIdRequiredException", "A commit ID is required."));
    }
    let dir = s.repos.dir(&r);
    let resolved = git::resolve_commit(&dir, commit).await?.ok_or_else(|| {
        err(
            "CommitDoesNotExistException",
            format!("The specified commit {commit} does not exist."),
        )
    })?;
    if branch_tip(s, &r, &branch).await?.is_some() {
        return Err(err(
            "BranchNameExistsException",
            format!("Branch {branch} already exists."),
        ));
    }
    if !move_branch(s, ctx, &r, &branch, &resolved, ZERO_OID).await? {
        return Err(err(
            "BranchNameExistsException",
            format!("Branch {branch} already exists."),
        ));
    }
    Ok(json!({}))
}

async fn delete_branch(s: &CodeCommit, ctx: &RequestContext, input: &Value) -> AwsResult<Value> {
    let r = s
        .repos
        .get(ctx, &required_repo(input, "repositoryName")?)
        .await?;
    let branch = required_branch(input, "branchName")?;
    if r.default_branch.as_deref() == Some(branch.as_str()) {
        return Err(err(
            "DefaultBranchCannotBeDeletedException",
            format!("The default branch {branch} cannot be deleted."),
        ));
    }
    let Some(tip) = branch_tip(s, &r, &branch).await? else {
        return Ok(json!({}));
    };
    if !move_branch(s, ctx, &r, &branch, ZERO_OID, &tip).await? {
        return Err(err(
            "ConcurrentReferenceUpdateException",
            format!("The branch {branch} was changed while it was being deleted."),
        ));
    }
    Ok(json!({"deletedBranch": {"branchName": branch, "commitId": tip}}))
}

async fn batch_get_commits(
    s: &CodeCommit,
    ctx: &RequestContext,
    input: &Value,
) -> AwsResult<Value> {
    let r = s
        .repos
        .get(ctx, &required_repo(input, "repositoryName")?)
        .await?;
    let ids: Vec<String> = input
        .get("commitIds")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            err(
                "CommitIdsListRequiredException",
                "A list of commit IDs is required.",
            )
        })?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    if ids.len() > 100 {
        return Err(err(
            "CommitIdsLimitExceededException",
            "The maximum number of allowed commit IDs in a batch request is 100.",
        ));
    }
    let dir = s.repos.dir(&r);
    let (mut commits, mut errors) = (vec![], vec![]);
    for id in ids {
        match content::read_commit(&dir, &id).await? {
            Some(c) => commits.push(c.json()),
            None => errors.push(json!({
                "commitId": id,
                "errorCode": "CommitDoesNotExistException",
                "errorMessage": format!("Could not find commit {id}."),
            })),
        }
    }
    Ok(json!({"commits": commits, "errors": errors}))
}

/// The commit a change applies to: the branch tip (when the branch exists, `parentCommitId`
/// must name it), or for a new branch the given parent, or nothing in an empty repository.
async fn change_base(
    s: &CodeCommit,
    r: &Repository,
    branch: &str,
    parent: Option<&str>,
) -> AwsResult<(Option<String>, String)> {
    let dir = s.repos.dir(r);
    let tip = branch_tip(s, r, branch).await?;
    if let Some(p) = parent {
        if !git::is_oid(p) {
            return Err(err(
                "InvalidParentCommitIdException",
                format!("The parent commit ID {p} is not valid."),
            ));
        }
        if git::object_type(&dir, p).await?.as_deref() != Some("commit") {
            return Err(err(
                "ParentCommitDoesNotExistException",
                format!("The parent commit ID {p} does not exist."),
            ));
        }
    }
    match (tip, parent) {
        (Some(t), Some(p)) if t == p => Ok((Some(t.clone()), t)),
        (Some(_), Some(p)) => Err(err(
            "ParentCommitIdOutdatedException",
            format!("The parent commit ID {p} is not the most recent commit of branch {branch}."),
        )),
        (Some(_), None) => Err(err(
            "ParentCommitIdRequiredException",
            "A parent commit ID is required to commit to an existing branch.",
        )),
        (None, Some(p)) => Ok((Some(p.to_string()), ZERO_OID.to_string())),
        (None, None) => {
            if git::refs(&dir)
                .await?
                .iter()
                .any(|(n, _)| n.starts_with("refs/heads/"))
            {
                Err(err(
                    "ParentCommitIdRequiredException",
                    "A parent commit ID is required when the repository is not empty.",
                ))
            } else {
                Ok((None, ZERO_OID.to_string()))
            }
        }
    }
}

fn author(ctx: &RequestContext, input: &Value, name_member: &str) -> Author {
    let default_name = ctx
        .caller_arn
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("codeyard")
        .to_string();
    Author {
        name: opt_str(input, name_member)
            .filter(|n| !n.is_empty())
            .unwrap_or(default_name),
        email: opt_str(input, "email").unwrap_or_default(),
    }
}

fn decode_content(v: &Value) -> AwsResult<Vec<u8>> {
    let s = v.as_str().unwrap_or("");
    B64.decode(s).map_err(|_| {
        err(
            "InvalidFileContentException",
            "The file content is not valid base64.",
        )
    })
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
) -> AwsResult<(String, String, content::ChangeReport)> {
    let dir = s.repos.dir(r);
    let (tree, report) = content::apply_changes(&dir, c.base.as_deref(), changes).await?;
    if let Some(b) = &c.base {
        let base_tree = git::run_ok(&dir, &["rev-parse", &format!("{b}^{{tree}}")])
            .await?
            .line();
        if base_tree == tree {
            return Err(err(
                "NoChangeException",
                "The commit cannot be created because no changes will be made to the repository as a result of this commit.",
            ));
        }
    }
    let commit = content::commit_tree(&dir, &tree, c.base.as_deref(), &c.message, &c.who).await?;
    if !move_branch(s, ctx, r, c.branch, &commit, &c.old).await? {
        return Err(err(
            "ParentCommitIdOutdatedException",
            format!(
                "The branch {} was updated by another commit. Get the latest commit ID and try again.",
                c.branch
            ),
        ));
    }
    Ok((commit, tree, report))
}

async fn put_file(s: &CodeCommit, ctx: &RequestContext, input: &Value) -> AwsResult<Value> {
    let r = s
        .repos
        .get(ctx, &required_repo(input, "repositoryName")?)
        .await?;
    let branch = required_branch_checked(input, "branchName").await?;
    let content_v = input.get("fileContent").ok_or_else(|| {
        err(
            "FileContentRequiredException",
            "The file content is required.",
        )
    })?;
    let bytes = decode_content(content_v)?;
    let path = content::normalize_path(str_of(input, "filePath"))?;
    let mode = content::git_mode(
        input
            .get("fileMode")
            .and_then(Value::as_str)
            .unwrap_or("NORMAL"),
    )?;
    let (base, old) = change_base(
        s,
        &r,
        &branch,
        input.get("parentCommitId").and_then(Value::as_str),
    )
    .await?;
    let dir = s.repos.dir(&r);
    let blob = content::write_blob(&dir, &bytes).await?;
    if let Some(b) = &base
        && let Some(e) = content::entry_at(&dir, b, &path).await?
        && e.oid == blob
        && e.mode == mode
    {
        return Err(err(
            "SameFileContentException",
            "The file could not be added because the provided file content is exactly the same as the current file content.",
        ));
    }
    let message = opt_str(input, "commitMessage").unwrap_or_default();
    let who = author(ctx, input, "name");
    let changes = [Change::Put {
        path,
        blob: blob.clone(),
        mode: mode.to_string(),
    }];
    let (commit, tree, _) = commit_changes(
        s,
        ctx,
        &r,
        NewCommit {
            branch: &branch,
            base,
            old,
            message,
            who,
        },
        &changes,
    )
    .await?;
    Ok(json!({"commitId": commit, "blobId": blob, "treeId": tree}))
}

async fn delete_file(s: &CodeCommit, ctx: &RequestContext, input: &Value) -> AwsResult<Value> {
    let r = s
        .repos
        .get(ctx, &required_repo(input, "repositoryName")?)
        .await?;
    let branch = required_branch_checked(input, "branchName").await?;
    let raw_path = str_of(input, "filePath");
    let path = content::normalize_path(raw_path)?;
    let parent = input.get("parentCommitId").and_then(Value::as_str);
    if parent.is_none() {
        return Err(err(
            "ParentCommitIdRequiredException",
            "A parent commit ID is required.",
        ));
    }
    if branch_tip(s, &r, &branch).await?.is_none() {
        return Err(branch_missing(&branch));
    }
    let (base, old) = change_base(s, &r, &branch, parent).await?;
    let message = opt_str(input, "commitMessage").unwrap_or_default();
    let who = author(ctx, input, "name");
    let changes = [Change::Delete { path: path.clone() }];
    let (commit, tree, report) = commit_changes(
        s,
        ctx,
        &r,
        NewCommit {
            branch: &branch,
            base,
            old,
            message,
            who,
        },
        &changes,
    )
    .await?;
    let blob = report
        .deleted
        .first()
        .and_then(|d| d["blobId"].as_str())
        .unwrap_or("")
        .to_string();
    Ok(json!({"commitId": commit, "blobId": blob, "treeId": tree, "filePath": raw_path}))
}

async fn create_commit(s: &CodeCommit, ctx: &RequestContext, input: &Value) -> AwsResult<Value> {
    let r = s
        .repos
        .get(ctx, &required_repo(input, "repositoryName")?)
        .await?;
    let branch = required_branch_checked(input, "branchName").await?;
    let (base, old) = change_base(
        s,
        &r,
        &branch,
        input.get("parentCommitId").and_then(Value::as_str),
    )
    .await?;
    let dir = s.repos.dir(&r);
    let empty = vec![];
    let puts = input
        .get("putFiles")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let deletes = input
        .get("deleteFiles")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let modes = input
        .get("setFileModes")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    if puts.is_empty() && deletes.is_empty() && modes.is_empty() {
        return Err(err(
            "FileEntryRequiredException",
            "The commit cannot be created because no files have been specified as added, updated, or changed (PutFile or DeleteFile) for the commit.",
        ));
    }
    if puts.len() + deletes.len() + modes.len() > 100 {
        return Err(err(
            "MaximumFileEntriesExceededException",
            "The number of specified files to change as part of this commit exceeds the maximum number of files that can be changed in a single commit.",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut changes = Vec::new();
    for p in puts {
        let path = content::normalize_path(str_of(p, "filePath"))?;
        if !seen.insert(path.clone()) {
            return Err(err(
                "PutFileEntryConflictException",
                format!("The file {path} is specified more than once."),
            ));
        }
        let mode = content::git_mode(
            p.get("fileMode")
                .and_then(Value::as_str)
                .unwrap_or("NORMAL"),
        )?;
        let blob = match (p.get("fileContent"), p.get("sourceFile")) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "FileContentAndSourceFileSpecifiedException",
                    "The commit cannot be created because both a source file and file content have been specified for the same file.",
                ));
            }
            (Some(c), None) => content::write_blob(&dir, &decode_content(c)?).await?,
            (None, Some(src)) => {
                let src_path = content::normalize_path(str_of(src, "filePath"))?;
                if src_path == path {
                    return Err(err(
                        "SamePathRequestException",
                        "The source file and the destination are the same.",
                    ));
                }
                let Some(b) = &base else {
                    return Err(err(
                        "FileDoesNotExistException",
                        format!("The file {src_path} does not exist."),
                    ));
                };
                let e = content::entry_at(&dir, b, &src_path)
                    .await?
                    .filter(|e| e.kind == "blob")
                    .ok_or_else(|| {
                        err(
                            "FileDoesNotExistException",
                            format!("The file {src_path} does not exist."),
                        )
                    })?;
                if src.get("isMove").and_then(Value::as_bool) == Some(true) {
                    changes.push(Change::Delete { path: src_path });
                }
                e.oid
            }
            (None, None) => {
                return Err(err(
                    "SourceFileOrContentRequiredException",
                    "The commit cannot be created because no source files or file content have been specified for the commit.",
                ));
            }
        };
        changes.push(Change::Put {
            path,
            blob,
            mode: mode.to_string(),
        });
    }
    for d in deletes {
        let path = content::normalize_path(str_of(d, "filePath"))?;
        if !seen.insert(path.clone()) {
            return Err(err(
                "PutFileEntryConflictException",
                format!("The file {path} is specified more than once."),
            ));
        }
        changes.push(Change::Delete { path });
    }
    for m in modes {
        let path = content::normalize_path(str_of(m, "filePath"))?;
        let mode = content::git_mode(str_of(m, "fileMode"))?;
        let Some(b) = &base else {
            return Err(err(
                "FileDoesNotExistException",
                format!("The file {path} does not exist."),
            ));
        };
        let e = content::entry_at(&dir, b, &path)
            .await?
            .filter(|e| e.kind == "blob")
            .ok_or_else(|| {
                err(
                    "FileDoesNotExistException",
                    format!("The file {path} does not exist."),
                )
            })?;
        changes.push(Change::Put {
            path,
            blob: e.oid,
            mode: mode.to_string(),
        });
    }
    let message = opt_str(input, "commitMessage").unwrap_or_default();
    let who = author(ctx, input, "authorName");
    let (commit, tree, report) = commit_changes(
        s,
        ctx,
        &r,
        NewCommit {
            branch: &branch,
            base,
            old,
            message,
            who,
        },
        &changes,
    )
    .await?;
    Ok(json!({
        "commitId": commit,
        "treeId": tree,
        "filesAdded": report.added,
        "filesUpdated": report.updated,
        "filesDeleted": report.deleted,
    }))
}

async fn get_differences(s: &CodeCommit, ctx: &RequestContext, input: &Value) -> AwsResult<Value> {
    let r = s
        .repos
        .get(ctx, &required_repo(input, "repositoryName")?)
        .await?;
    let dir = s.repos.dir(&r);
    let after_spec = str_of(input, "afterCommitSpecifier");
    if after_spec.is_empty() {
        return Err(err(
            "CommitRequiredException",
            "A commit specifier is required.",
        ));
    }
    let after = content::resolve_specifier(&dir, Some(after_spec), None).await?;
    let before = match input
        .get("beforeCommitSpecifier")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        Some(b) => Some(content::resolve_specifier(&dir, Some(b), None).await?),
        None => None,
    };
    let mut paths = Vec::new();
    for member in ["beforePath", "afterPath"] {
        if let Some(p) = input
            .get(member)
            .and_then(Value::as_str)
            .filter(|p| !p.trim_matches('/').is_empty())
        {
            let norm = content::normalize_path(p)?;
            let commit = if member == "beforePath" {
                before.as_deref()
            } else {
                Some(after.as_str())
            };
            if let Some(c) = commit
                && content::entry_at(&dir, c, &norm).await?.is_none()
            {
                return Err(err(
                    "PathDoesNotExistException",
                    format!("The specified path {p} does not exist."),
                ));
            }
            if !paths.contains(&norm) {
                paths.push(norm);
            }
        }
    }
    let max = match input.get("MaxResults").and_then(Value::as_i64) {
        Some(n) if n <= 0 => {
            return Err(err(
                "InvalidMaxResultsException",
                "The specified number of maximum results is not valid.",
            ));
        }
        Some(n) => n as usize,
        None => 100,
    };
    let all = content::differences(&dir, before.as_deref(), &after, &paths).await?;
    let (page, next) = paginate(all, opt_str(input, "NextToken"), max)?;
    let mut o = json!({"differences": page});
    if let Some(n) = next {
        o["NextToken"] = json!(n);
    }
    Ok(o)
}

async fn repo_by_arn(
    s: &CodeCommit,
    ctx: &RequestContext,
    input: &Value,
) -> AwsResult<(Repository, i64)> {
    let arn = str_of(input, "resourceArn");
    if arn.is_empty() {
        return Err(err(
            "ResourceArnRequiredException",
            "A valid Amazon Resource Name (ARN) for an AWS CodeCommit resource is required.",
        ));
    }
    let invalid = || {
        err(
            "InvalidResourceArnException",
            format!("The value for the resource ARN is not valid: {arn}"),
        )
    };
    let parsed = Arn::parse(arn).ok_or_else(invalid)?;
    if parsed.service != "codecommit"
        || parsed.resource.is_empty()
        || parsed.resource.contains([':', '/'])
    {
        return Err(invalid());
    }
    let mut scoped = ctx.clone();
    if !parsed.region.is_empty() {
        scoped.region = parsed.region.clone();
    }
    if !parsed.account.is_empty() {
        scoped.account = parsed.account.clone();
    }
    s.repos.get_versioned(&scoped, &parsed.resource).await
}
