//! Layers, uploads, registry tokens and garbage collection.

use super::records::*;
use super::service::Ecr;
use codeyard_core::time::{Timestamp, now};
use codeyard_core::{AwsResult, ids};
use codeyard_store::{Batch, Expect, StateStoreExt};
use std::collections::HashSet;

impl Ecr {
    // ---------------------------------------------------------------- layers

    pub async fn layer(&self, r: &RepoRef, digest: &str) -> AwsResult<Option<LayerRecord>> {
        self.doc(&r.layers_ns(), digest).await
    }

    /// A blob's size if the repository may use it: uploaded or mounted into it, or referenced
    /// by one of its images.
    pub async fn blob_in_repo(&self, r: &RepoRef, digest: &str) -> AwsResult<Option<u64>> {
        if self.layer(r, digest).await?.is_some()
            || self.store.get(&r.images_ns(), digest).await?.is_some()
        {
            return self.blobs.size(digest).await;
        }
        Ok(None)
    }

    pub async fn add_layer(&self, r: &RepoRef, digest: &str, size: u64) -> AwsResult<()> {
        let rec = LayerRecord {
            size,
            added_at: now(),
        };
        self.store
            .commit(Batch::new().put(r.layers_ns(), digest, &rec, Expect::Any))
            .await?;
        Ok(())
    }

    // ---------------------------------------------------------------- uploads

    pub async fn start_upload(&self, r: &RepoRef) -> AwsResult<String> {
        let id = ids::uuid();
        self.blobs.start_upload(&id).await?;
        let rec = UploadRecord {
            account: r.account.clone(),
            region: r.region.clone(),
            repository: r.name.clone(),
            created_at: now(),
        };
        self.store
            .commit(Batch::new().put(UPLOADS_NS, &id, &rec, Expect::Absent))
            .await?;
        Ok(id)
    }

    pub async fn upload(&self, r: &RepoRef, id: &str) -> AwsResult<Option<UploadRecord>> {
        let rec = self.doc::<UploadRecord>(UPLOADS_NS, id).await?;
        Ok(
            rec.filter(|u| {
                u.account == r.account && u.region == r.region && u.repository == r.name
            }),
        )
    }

    /// Finishes an upload: Ok(size) or Err(actual digest) when the bytes do not match.
    pub async fn finish_upload(
        &self,
        r: &RepoRef,
        id: &str,
        digest: &str,
    ) -> AwsResult<Result<u64, String>> {
        let result = self.blobs.finish_upload(id, digest).await?;
        let mut batch = Batch::new().delete(UPLOADS_NS, id, Expect::Any);
        if let Ok(size) = result {
            batch = batch.put(
                r.layers_ns(),
                digest,
                LayerRecord {
                    size,
                    added_at: now(),
                },
                Expect::Any,
            );
        }
        self.store.commit(batch).await?;
        Ok(result)
    }

    pub async fn cancel_upload(&self, id: &str) -> AwsResult<()> {
        self.blobs.discard_upload(id).await?;
        self.store
            .commit(Batch::new().delete(UPLOADS_NS, id, Expect::Any))
            .await?;
        Ok(())
    }

    // ---------------------------------------------------------------- tokens

    /// A registry token for `account`'s registry, acting as `caller_arn`.
    pub async fn issue_token(&self, account: &str, region: &str, caller_arn: &str) -> AwsResult<(String, Timestamp)> {
        let token = ids::alnum(96);
        let expires_at = now() + chrono::Duration::hours(TOKEN_HOURS);
        let rec = TokenRecord {
            account: account.into(),
            region: region.into(),
            expires_at,
            caller_arn: Some(caller_arn.into()),
        };
        self.store
            .commit(Batch::new().put(TOKENS_NS, &token, &rec, Expect::Absent))
            .await?;
        Ok((token, expires_at))
    }

    pub async fn check_token(&self, token: &str) -> AwsResult<Option<TokenRecord>> {
        if token.is_empty() || token.len() > 512 {
            return Ok(None);
        }
        Ok(self.doc::<TokenRecord>(TOKENS_NS, token).await?.filter(|t| t.expires_at > now()))
    }

    // ---------------------------------------------------------------- garbage collection

    /// Removes what nothing references: layer records of a repository older than `grace` that
    /// none of its images use, blobs no image or layer record references (older than `grace`),
    /// uploads abandoned for a day, expired tokens. Returns the number of blobs deleted.
    pub async fn collect_garbage(&self, grace: chrono::Duration) -> AwsResult<usize> {
        let cutoff = now() - grace;
        let mut referenced: HashSet<String> = HashSet::new();
        for ns in self.store.namespaces("ecr/").await? {
            let parts: Vec<&str> = ns.splitn(5, '/').collect();
            if parts.len() != 5 || parts[3] != "images" {
                continue;
            }
            let images: Vec<ImageRecord> = self.store.list_all_as(&ns).await?;
            let mut in_repo: HashSet<String> = HashSet::new();
            for i in &images {
                in_repo.insert(i.digest.clone());
                in_repo.extend(i.blobs.iter().cloned());
            }
            referenced.extend(in_repo);
        }
        for ns in self.store.namespaces("ecr/").await? {
            let parts: Vec<&str> = ns.splitn(5, '/').collect();
            if parts.len() != 5 || parts[3] != "layers" {
                continue;
            }
            let images_ns = format!("ecr/{}/{}/images/{}", parts[1], parts[2], parts[4]);
            let images: Vec<ImageRecord> = self.store.list_all_as(&images_ns).await?;
            let used: HashSet<&String> = images.iter().flat_map(|i| i.blobs.iter()).collect();
            let mut batch = Batch::new();
            for (digest, layer) in self.store_docs::<LayerRecord>(&ns).await? {
                if used.contains(&digest) {
                    continue;
                }
                if layer.added_at < cutoff {
                    batch = batch.delete(&ns, &digest, Expect::Any);
                } else {
                    referenced.insert(digest);
                }
            }
            if !batch.is_empty() {
                self.store.commit(batch).await?;
            }
        }
        let mut deleted = 0;
        for (digest, _, modified) in self.blobs.list().await? {
            if !referenced.contains(&digest) && modified < cutoff {
                self.blobs.delete(&digest).await?;
                deleted += 1;
            }
        }
        let day_ago = now() - chrono::Duration::days(1);
        for (id, u) in self.store_docs::<UploadRecord>(UPLOADS_NS).await? {
            if u.created_at < day_ago {
                self.cancel_upload(&id).await?;
            }
        }
        let mut batch = Batch::new();
        for (t, rec) in self.store_docs::<TokenRecord>(TOKENS_NS).await? {
            if rec.expires_at < now() {
                batch = batch.delete(TOKENS_NS, t, Expect::Any);
            }
        }
        if !batch.is_empty() {
            self.store.commit(batch).await?;
        }
        Ok(deleted)
    }
}
