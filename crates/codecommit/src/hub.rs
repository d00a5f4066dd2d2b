//! CodeCommit as pipelines and builds use it ([`GitRepositories`]). Each call is authorized as
//! the context's caller (the pipeline's or the build's role session), with the actions AWS
//! asks of those callers: a pipeline's source action codecommit:GetBranch, GetCommit and
//! UploadArchive + GetUploadArchiveStatus (the zip), a build's source download
//! codecommit:GitPull (the clone, through [`GitRepositories::repository`]).

use crate::error::CodeCommitError;
use crate::repos::Repository;
use crate::{CodeCommit, content, git};
use async_trait::async_trait;
use codeyard_core::hub::{CommitInfo, GitRepositories, RepositoryInfo};
use codeyard_core::{AwsError, AwsResult, RequestContext};
use std::path::Path;
use std::sync::Arc;

pub struct Git(pub Arc<CodeCommit>);

impl Git {
    /// The repository, once the caller is authorized for each of `actions` on it.
    async fn permitted(&self, ctx: &RequestContext, repo: &str, actions: &[&str]) -> AwsResult<Repository> {
        let resource = codeyard_core::arn::arn("codecommit", &ctx.region, &ctx.account, repo);
        for action in actions {
            let request = codeyard_core::AccessRequest::new(*action, resource.clone());
            self.0
                .platform
                .hub
                .authorize(ctx, &request)
                .await
                .map_err(|d| d.to_error("AccessDeniedException"))?;
        }
        Ok(self.0.repos.get(ctx, repo).await?)
    }
}

#[async_trait]
impl GitRepositories for Git {
    /// For a clone of the repository on disk: codecommit:GitPull.
    async fn repository(&self, ctx: &RequestContext, name: &str) -> AwsResult<RepositoryInfo> {
        let r = self.permitted(ctx, name, &["codecommit:GitPull"]).await?;
        Ok(RepositoryInfo {
            clone_url_http: r.clone_url_http(&ctx.endpoint),
            arn: r.arn(),
            path: self.0.repos.dir(&r),
            name: r.name,
            id: r.id,
            default_branch: r.default_branch,
        })
    }

    async fn resolve_branch(&self, ctx: &RequestContext, repo: &str, branch: &str) -> AwsResult<String> {
        let r = self.permitted(ctx, repo, &["codecommit:GetBranch"]).await?;
        git::ref_value(&self.0.repos.dir(&r), &format!("refs/heads/{branch}"))
            .await?
            .ok_or_else(|| CodeCommitError::BranchNotFound(branch.to_string()).into())
    }

    async fn commit(&self, ctx: &RequestContext, repo: &str, commit_id: &str) -> AwsResult<CommitInfo> {
        let r = self.permitted(ctx, repo, &["codecommit:GetCommit"]).await?;
        let c = content::read_commit(&self.0.repos.dir(&r), commit_id)
            .await?
            .ok_or_else(|| CodeCommitError::CommitIdNotFound(commit_id.to_string()))?;
        let at = |t: i64| chrono::DateTime::from_timestamp(t, 0).unwrap_or_default();
        Ok(CommitInfo {
            commit_id: c.id,
            message: c.message,
            author_name: c.author.name,
            author_date: at(c.author.time),
            committer_date: at(c.committer.time),
        })
    }

    async fn export_zip(
        &self,
        ctx: &RequestContext,
        repo: &str,
        commit_id: &str,
        dest: &Path,
    ) -> AwsResult<()> {
        let actions = ["codecommit:UploadArchive", "codecommit:GetUploadArchiveStatus"];
        let r = self.permitted(ctx, repo, &actions).await?;
        let dir = self.0.repos.dir(&r);
        if content::read_commit(&dir, commit_id).await?.is_none() {
            return Err(CodeCommitError::CommitIdNotFound(commit_id.to_string()).into());
        }
        // Written next to the destination and renamed, so a reader never sees half a zip.
        let tmp = dest.with_extension(format!("tmp-{}", codeyard_core::ids::hex(8)));
        let out = git::run(
            &dir,
            &[
                "archive",
                "--format=zip",
                "-o",
                &tmp.to_string_lossy(),
                commit_id,
            ],
        )
        .await?;
        if !out.ok {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(AwsError::internal(format!("git archive: {}", out.stderr)));
        }
        tokio::fs::rename(&tmp, dest).await?;
        Ok(())
    }
}
