//! Repository metadata in the store, and the bare repositories on disk.
//!
//! Metadata lives in `codecommit/<account>/<region>/repositories`, keyed by name; the git data
//! in `<data_dir>/codecommit/<account>/<region>/<repository id>.git`, keyed by id, so a rename
//! touches one store batch and no files.

use crate::git;
use chrono::{DateTime, Utc};
use crate::error::{CcResult, CodeCommitError};
use codeyard_core::{RequestContext, arn, ids, time};
use codeyard_store::{Batch, Expect, SharedStore, StateStoreExt, StoreError, Update};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Repository {
    pub name: String,
    pub id: String,
    pub account: String,
    pub region: String,
    pub description: Option<String>,
    pub default_branch: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub created: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
}

impl Repository {
    pub fn arn(&self) -> String {
        arn::arn("codecommit", &self.region, &self.account, &self.name)
    }
    pub fn clone_url_http(&self, endpoint: &str) -> String {
        format!("{}/v1/repos/{}", endpoint.trim_end_matches('/'), self.name)
    }
}

/// The namespace of the [`RefState`] documents of an account and region.
pub fn refstate_namespace(account: &str, region: &str) -> String {
    format!("codecommit/{account}/{region}/refstate")
}

/// Branch and tag values as last published, by full ref name: the document the events
/// publisher ([`crate::events`]) keeps beside each repository, created and deleted with it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RefState {
    pub refs: BTreeMap<String, String>,
}

pub fn namespace(account: &str, region: &str) -> String {
    format!("codecommit/{account}/{region}/repositories")
}

/// Where a repository's bare git directory is.
pub fn repo_dir(data_dir: &Path, account: &str, region: &str, id: &str) -> PathBuf {
    data_dir
        .join("codecommit")
        .join(account)
        .join(region)
        .join(format!("{id}.git"))
}

pub fn not_found(name: &str) -> CodeCommitError {
    CodeCommitError::RepositoryNotFound(name.to_string())
}

/// Checks a name as CodeCommit does (the model checks length and characters; `.git` endings
/// and the dot-only names are refused by the service itself).
pub fn check_name(name: &str) -> CcResult<()> {
    if name.is_empty() {
        return Err(CodeCommitError::RepositoryNameRequired);
    }
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
    if !chars_ok || name.len() > 100 || name.ends_with(".git") || name == "." || name == ".." {
        return Err(CodeCommitError::InvalidRepositoryName);
    }
    Ok(())
}

/// The metadata store and the repository directories of one server.
#[derive(Clone)]
pub struct Repos {
    pub store: SharedStore,
    pub data_dir: PathBuf,
}

impl Repos {
    pub fn dir(&self, r: &Repository) -> PathBuf {
        repo_dir(&self.data_dir, &r.account, &r.region, &r.id)
    }

    pub async fn find(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> CcResult<Option<(Repository, i64)>> {
        Ok(self
            .store
            .get_as::<Repository>(&namespace(account, region), name)
            .await?)
    }

    pub async fn get(&self, ctx: &RequestContext, name: &str) -> CcResult<Repository> {
        check_name(name)?;
        self.find(&ctx.account, &ctx.region, name)
            .await?
            .map(|(r, _)| r)
            .ok_or_else(|| not_found(name))
    }

    pub async fn get_versioned(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> CcResult<(Repository, i64)> {
        check_name(name)?;
        self.find(&ctx.account, &ctx.region, name)
            .await?
            .ok_or_else(|| not_found(name))
    }

    pub async fn list(&self, account: &str, region: &str) -> CcResult<Vec<Repository>> {
        Ok(self
            .store
            .list_all_as::<Repository>(&namespace(account, region))
            .await?)
    }

    /// Regions of `account` that have a repository called `name` (git requests carry no region).
    pub async fn regions_with(&self, account: &str, name: &str) -> CcResult<Vec<Repository>> {
        let prefix = format!("codecommit/{account}/");
        let mut found = Vec::new();
        for ns in self.store.namespaces(&prefix).await? {
            if !ns.ends_with("/repositories") {
                continue;
            }
            if let Some((r, _)) = self.store.get_as::<Repository>(&ns, name).await? {
                found.push(r);
            }
        }
        Ok(found)
    }

    /// Creates the bare repository (in a temporary directory renamed into place) and then its
    /// metadata; a name taken meanwhile removes the directory again.
    pub async fn create(
        &self,
        ctx: &RequestContext,
        name: &str,
        description: Option<String>,
        tags: BTreeMap<String, String>,
    ) -> CcResult<Repository> {
        check_name(name)?;
        if self.find(&ctx.account, &ctx.region, name).await?.is_some() {
            return Err(name_exists(name));
        }
        let now = time::now();
        let repo = Repository {
            name: name.to_string(),
            id: ids::uuid(),
            account: ctx.account.clone(),
            region: ctx.region.clone(),
            description,
            default_branch: None,
            tags,
            created: now,
            last_modified: now,
        };
        let dir = self.dir(&repo);
        let parent = dir.parent().expect("repo dir has a parent").to_path_buf();
        tokio::fs::create_dir_all(&parent).await?;
        let tmp = parent.join(format!(".tmp-{}", repo.id));
        git::init_bare(&tmp).await?;
        tokio::fs::rename(&tmp, &dir).await?;
        let batch = Batch::new()
            .put(
                namespace(&repo.account, &repo.region),
                &repo.name,
                &repo,
                Expect::Absent,
            )
            .put(
                refstate_namespace(&repo.account, &repo.region),
                &repo.id,
                RefState::default(),
                Expect::Absent,
            );
        match self.store.commit(batch).await {
            Ok(()) => Ok(repo),
            Err(e) => {
                let _ = tokio::fs::remove_dir_all(&dir).await;
                Err(match e {
                    StoreError::Conflict(..) => name_exists(name),
                    e => e.into(),
                })
            }
        }
    }

    /// Changes the metadata of the repository `name` by compare-and-swap: `change` sees the
    /// current record and is asked again if another request changed it meanwhile
    /// ([`StateStoreExt::update`]). Answers the record as stored.
    pub async fn modify<F>(&self, ctx: &RequestContext, name: &str, mut change: F) -> CcResult<Repository>
    where
        F: FnMut(&mut Repository) -> CcResult<()> + Send,
    {
        check_name(name)?;
        let ns = namespace(&ctx.account, &ctx.region);
        self.store
            .update::<Repository, CodeCommitError, _>(&ns, name, |current| {
                let mut r = current.ok_or_else(|| not_found(name))?;
                change(&mut r)?;
                Ok(Update::put(r))
            })
            .await?
            .ok_or_else(|| not_found(name))
    }

    pub async fn commit_metadata(&self, batch: Batch) -> CcResult<()> {
        self.store.commit(batch).await.map_err(|e| match e {
            StoreError::Conflict(..) => CodeCommitError::ConcurrentModification,
            e => e.into(),
        })
    }

    /// Renames: the new key is created and the old one removed in one batch.
    pub async fn rename(&self, ctx: &RequestContext, old: &str, new: &str) -> CcResult<()> {
        check_name(new)?;
        let (mut repo, version) = self.get_versioned(ctx, old).await?;
        if old == new {
            return Ok(());
        }
        if self.find(&ctx.account, &ctx.region, new).await?.is_some() {
            return Err(name_exists(new));
        }
        repo.name = new.to_string();
        repo.last_modified = time::now();
        let ns = namespace(&ctx.account, &ctx.region);
        let batch = Batch::new().delete(&ns, old, Expect::Version(version)).put(
            &ns,
            new,
            &repo,
            Expect::Absent,
        );
        match self.store.commit(batch).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(_, key)) if key == new => Err(name_exists(new)),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the metadata first (the name is free at once), then the git data. A crash in
    /// between leaves an orphan directory that start-up removes.
    pub async fn delete(&self, ctx: &RequestContext, name: &str) -> CcResult<Option<Repository>> {
        check_name(name)?;
        let Some((repo, version)) = self.find(&ctx.account, &ctx.region, name).await? else {
            return Ok(None);
        };
        let batch = Batch::new()
            .delete(
                namespace(&repo.account, &repo.region),
                &repo.name,
                Expect::Version(version),
            )
            .delete(
                refstate_namespace(&repo.account, &repo.region),
                &repo.id,
                Expect::Any,
            );
        self.commit_metadata(batch).await?;
        remove_repo_dir(&self.dir(&repo)).await;
        Ok(Some(repo))
    }

    /// Removes repository directories no metadata refers to (a crash during create or delete)
    /// and leftover temporary directories.
    pub async fn remove_orphans(&self) -> CcResult<()> {
        let root = self.data_dir.join("codecommit");
        let Ok(mut accounts) = tokio::fs::read_dir(&root).await else {
            return Ok(());
        };
        while let Some(acct) = accounts.next_entry().await? {
            let Ok(mut regions) = tokio::fs::read_dir(acct.path()).await else {
                continue;
            };
            while let Some(region) = regions.next_entry().await? {
                let account = acct.file_name().to_string_lossy().into_owned();
                let region_name = region.file_name().to_string_lossy().into_owned();
                let known: std::collections::HashSet<String> = self
                    .list(&account, &region_name)
                    .await?
                    .into_iter()
                    .map(|r| format!("{}.git", r.id))
                    .collect();
                let Ok(mut dirs) = tokio::fs::read_dir(region.path()).await else {
                    continue;
                };
                while let Some(d) = dirs.next_entry().await? {
                    let n = d.file_name().to_string_lossy().into_owned();
                    if !known.contains(&n) {
                        tracing::info!(dir = %d.path().display(), "removing orphan repository directory");
                        remove_repo_dir(&d.path()).await;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Renames the directory aside first so a half-removed repository is never seen under its id.
async fn remove_repo_dir(dir: &Path) {
    let trash = dir.with_extension(format!("deleted-{}", ids::hex(8)));
    let target = if tokio::fs::rename(dir, &trash).await.is_ok() {
        trash
    } else {
        dir.to_path_buf()
    };
    if let Err(e) = tokio::fs::remove_dir_all(&target).await {
        tracing::warn!(dir = %target.display(), "cannot remove repository data: {e}");
    }
}

fn name_exists(name: &str) -> CodeCommitError {
    CodeCommitError::RepositoryNameExists(name.to_string())
}
