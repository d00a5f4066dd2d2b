//! [`Ecr`], the registry's state, and its repositories.

use super::errors::{EcrError, conflict, repository_not_found};
use super::records::{RepoRef, Repository, repos_ns};
use crate::blobs::BlobStore;
use codeyard_core::{AwsError, AwsResult};
use codeyard_store::{Batch, Expect, SharedStore, StateStoreExt, StoreError, Update};
use std::sync::Arc;

pub struct Ecr {
    pub store: SharedStore,
    pub blobs: Arc<BlobStore>,
}

impl Ecr {
    // ---------------------------------------------------------------- repositories

    pub async fn repository(&self, r: &RepoRef) -> AwsResult<(Repository, i64)> {
        self.store
            .get_as::<Repository>(&r.repos_ns(), &r.name)
            .await?
            .ok_or_else(|| repository_not_found(r))
    }

    pub async fn try_repository(&self, r: &RepoRef) -> AwsResult<Option<Repository>> {
        self.doc(&r.repos_ns(), &r.name).await
    }

    /// A record of the registry, without its version.
    pub(crate) async fn doc<T: serde::de::DeserializeOwned + Send>(&self, ns: &str, key: &str) -> AwsResult<Option<T>> {
        Ok(self.store.get_as::<T>(ns, key).await?.map(|(doc, _)| doc))
    }

    pub async fn list_repositories(
        &self,
        account: &str,
        region: &str,
    ) -> AwsResult<Vec<Repository>> {
        Ok(self.store.list_all_as(&repos_ns(account, region)).await?)
    }

    /// The regions of an account that have a repository of this name (the registry's URLs
    /// carry no region).
    pub async fn regions_with(&self, account: &str, name: &str) -> AwsResult<Vec<String>> {
        let mut out = Vec::new();
        for ns in self.store.namespaces(&format!("ecr/{account}/")).await? {
            let parts: Vec<&str> = ns.splitn(4, '/').collect();
            if parts.len() == 4
                && parts[3] == "repositories"
                && self.store.get(&ns, name).await?.is_some()
            {
                out.push(parts[2].to_string());
            }
        }
        Ok(out)
    }

    pub async fn create_repository(&self, repo: Repository) -> AwsResult<Repository> {
        let ns = repos_ns(&repo.account, &repo.region);
        match self
            .store
            .commit(Batch::new().put(&ns, &repo.name, &repo, Expect::Absent))
            .await
        {
            Ok(()) => Ok(repo),
            Err(StoreError::Conflict(..)) => Err(EcrError::RepositoryExists(RepoRef::new(&repo.account, &repo.region, &repo.name)).into()),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies `change` to a repository with compare-and-swap (the store's one retry policy).
    pub async fn update_repository<F>(&self, r: &RepoRef, mut change: F) -> AwsResult<Repository>
    where
        F: FnMut(&mut Repository) -> AwsResult<()> + Send,
    {
        let updated = self
            .store
            .update(&r.repos_ns(), &r.name, |current: Option<Repository>| {
                let mut repo = current.ok_or_else(|| repository_not_found(r))?;
                change(&mut repo)?;
                Ok::<_, AwsError>(Update::put(repo))
            })
            .await?;
        updated.ok_or_else(|| repository_not_found(r))
    }

    pub async fn delete_repository(&self, r: &RepoRef, force: bool) -> AwsResult<Repository> {
        let (repo, version) = self.repository(r).await?;
        let images = self.store.list(&r.images_ns(), "", None, 1).await?;
        if !images.is_empty() && !force {
            return Err(EcrError::RepositoryNotEmpty(r.clone()).into());
        }
        let mut batch = Batch::new().delete(r.repos_ns(), &r.name, Expect::Version(version));
        for ns in [r.images_ns(), r.tags_ns(), r.layers_ns()] {
            for d in self.all_docs(&ns).await? {
                batch = batch.delete(&ns, d, Expect::Any);
            }
        }
        self.store.commit(batch).await.map_err(conflict)?;
        Ok(repo)
    }

    /// The keys of every document in `ns`.
    pub(super) async fn all_docs(&self, ns: &str) -> AwsResult<Vec<String>> {
        Ok(self.store.scan(ns, "").collect().await?.into_iter().map(|d| d.key).collect())
    }

    /// Every document in `ns` with its key.
    pub(super) async fn store_docs<T: serde::de::DeserializeOwned>(&self, ns: &str) -> AwsResult<Vec<(String, T)>> {
        let docs = self.store.scan(ns, "").collect().await?;
        Ok(docs.iter().map(|d| Ok((d.key.clone(), d.parse()?))).collect::<Result<_, StoreError>>()?)
    }
}
