//! S3's domain logic over the state store (metadata) and the [`BlobStore`] (bytes): buckets,
//! versions, delete markers, listings and multipart uploads. Errors are S3's own
//! ([`s3s::S3Error`] carries AWS's code, status and message), so the HTTP adapter and the
//! cross-service [`ObjectStoreApi`](codeyard_core::hub::ObjectStoreApi) report the same ones.
//!
//! Consistency between the two stores: a blob is written (and durable) before the metadata
//! that names it is committed; metadata commits of one key are compare-and-swap on the key's
//! current-version document, so each writer knows exactly which blobs it replaced (and deletes
//! them after its commit). The writers of one key take turns on an in-process lock
//! ([`keylocks`]) so that the compare-and-swap does not lose (and retry) under contention. A crash between the steps leaves at
//! most unreferenced blobs, which start-up garbage collection removes.
//!
//! Modules: this file has the errors, name checks and buckets; [`objects`] versions, delete
//! markers, tags and listings; [`multipart`] uploads and parts.

mod keylocks;
mod multipart;
mod notify;
mod objects;
#[cfg(test)]
mod tests;

use crate::blobs::{BlobRef, BlobStore};
pub use notify::Notice;
use notify::{Happened, notify};
use crate::meta::*;
use codeyard_store::{Batch, Expect, SharedStore, StateStoreExt, StoreError, Update};
use s3s::{S3Error, S3ErrorCode, S3Result};
use std::collections::HashSet;

/// An error with AWS's code and HTTP status.
pub fn s3err(code: &str, status: u16, message: impl Into<String>) -> S3Error {
    let mut e = S3Error::with_message(code.parse::<S3ErrorCode>().unwrap(), message.into());
    e.set_status_code(http::StatusCode::from_u16(status).unwrap());
    e
}

/// S3's 500 for a failure inside codeyard (a store or blob error), with the cause logged:
/// S3 answers through s3s, not the wire's dispatcher that logs every other service's 5xx.
pub fn internal(e: impl std::fmt::Display) -> S3Error {
    tracing::error!(error = %e, "s3: internal error");
    s3err(
        "InternalError",
        500,
        format!("We encountered an internal error: {e}"),
    )
}

/// Every unexpected store error (a conflict is handled where its condition was set).
fn store_err(e: StoreError) -> S3Error {
    internal(e)
}

/// An S3 error where the store's compare-and-swap helpers ([`StateStoreExt::update`],
/// `update_many`) want one they can build from a [`StoreError`]: a race lost every time they
/// retry ends as S3's 500 like any other store failure.
struct Failed(S3Error);

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Self {
        Failed(store_err(e))
    }
}

impl From<S3Error> for Failed {
    fn from(e: S3Error) -> Self {
        Failed(e)
    }
}

pub fn no_such_bucket(name: &str) -> S3Error {
    s3err(
        "NoSuchBucket",
        404,
        format!("The specified bucket does not exist: {name}"),
    )
}

/// Bucket naming rules (general purpose buckets).
pub fn validate_bucket_name(name: &str) -> S3Result<()> {
    let bad = || {
        s3err(
            "InvalidBucketName",
            400,
            format!("The specified bucket is not valid: {name}"),
        )
    };
    if name.len() < 3 || name.len() > 63 {
        return Err(bad());
    }
    let b = name.as_bytes();
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
    {
        return Err(bad());
    }
    if !b[0].is_ascii_alphanumeric()
        || !b[b.len() - 1].is_ascii_alphanumeric()
        || name.contains("..")
    {
        return Err(bad());
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Err(bad());
    }
    Ok(())
}

/// ListObjectsV2's continuation token: the page's last key (or common prefix), base64url. The
/// wire's ListObjectsV2 and the hub's listing (the console) share it, so a token from either
/// resumes in both.
pub fn continuation_token(last: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last)
}

/// The key a [`continuation_token`] resumes after; `None` for a token codeyard did not issue
/// (S3 answers InvalidArgument "The continuation token provided is incorrect").
pub fn continuation_start(token: &str) -> Option<String> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok().and_then(|b| String::from_utf8(b).ok())
}

pub fn validate_key(key: &str) -> S3Result<()> {
    if key.len() > 1024 {
        return Err(s3err("KeyTooLongError", 400, "Your key is too long"));
    }
    if key.is_empty() {
        return Err(s3err(
            "InvalidArgument",
            400,
            "The object key must not be empty",
        ));
    }
    Ok(())
}

/// One entry of a listing.
pub enum Listed {
    Object(ObjectDoc),
    Prefix(String),
}

pub struct Listing {
    pub entries: Vec<Listed>,
    pub truncated: bool,
    /// The last key (or common prefix) returned: the next page starts after it.
    pub last: Option<String>,
}

pub struct DeleteOutcome {
    pub delete_marker: bool,
    pub version_id: Option<String>,
}

pub struct Engine {
    pub store: SharedStore,
    pub blobs: BlobStore,
    /// Serializes the writers of one object key (see [`keylocks`]).
    pub key_locks: keylocks::KeyLocks,
}

/// The largest key in UTF-8 order that starts with `p`: listing after it skips everything
/// under `p`.
fn after_all_with_prefix(p: &str) -> String {
    format!("{p}\u{10FFFF}")
}

impl Engine {
    /// The engine over the server's state store, its bodies under `data_dir` (or the
    /// `CODEYARD_S3_BACKEND` bucket, see [`BlobStore::open`]).
    pub fn open(data_dir: &std::path::Path, store: SharedStore) -> anyhow::Result<Engine> {
        Ok(Engine {
            blobs: BlobStore::open(data_dir, store.clone())?,
            store,
            key_locks: Default::default(),
        })
    }

    // ---- buckets -------------------------------------------------------------------------

    pub async fn bucket(&self, name: &str) -> S3Result<BucketDoc> {
        Ok(self.bucket_versioned(name).await?.0)
    }

    async fn bucket_versioned(&self, name: &str) -> S3Result<(BucketDoc, i64)> {
        self.store
            .get_as::<BucketDoc>(BUCKETS_NS, name)
            .await
            .map_err(store_err)?
            .ok_or_else(|| no_such_bucket(name))
    }

    pub async fn create_bucket(
        &self,
        name: &str,
        account: &str,
        region: &str,
        acl: Option<String>,
    ) -> S3Result<()> {
        validate_bucket_name(name)?;
        if let Some((existing, _)) = self
            .store
            .get_as::<BucketDoc>(BUCKETS_NS, name)
            .await
            .map_err(store_err)?
        {
            if existing.account == account
                && region == "us-east-1"
                && existing.region == "us-east-1"
            {
                // us-east-1 answers a repeated CreateBucket by the owner with success.
                return Ok(());
            }
            if existing.account == account {
                return Err(s3err(
                    "BucketAlreadyOwnedByYou",
                    409,
                    "Your previous request to create the named bucket succeeded and you already own it.",
                ));
            }
            return Err(s3err(
                "BucketAlreadyExists",
                409,
                "The requested bucket name is not available.",
            ));
        }
        let mut doc = BucketDoc {
            name: name.into(),
            account: account.into(),
            region: region.into(),
            created_ms: now_ms(),
            ..Default::default()
        };
        if let Some(acl) = acl {
            doc.configs.insert("canned-acl".into(), acl);
        }
        // Leftovers of an earlier bucket of this name (a delete that crashed half-way) must not
        // reappear in the new one.
        self.purge_bucket_contents(name).await?;
        let batch = Batch::new().put(BUCKETS_NS, name, &doc, Expect::Absent);
        self.commit_or(batch, || {
            s3err(
                "BucketAlreadyOwnedByYou",
                409,
                "Your previous request to create the named bucket succeeded and you already own it.",
            )
        })
        .await
    }

    /// Commits `batch`; when one of its conditions fails (another writer got there first) the
    /// answer is `lost_race`.
    async fn commit_or(&self, batch: Batch, lost_race: impl FnOnce() -> S3Error) -> S3Result<()> {
        match self.store.commit(batch).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(..)) => Err(lost_race()),
            Err(e) => Err(store_err(e)),
        }
    }

    async fn purge_bucket_contents(&self, name: &str) -> S3Result<()> {
        for ns in [objects_ns(name), versions_ns(name), uploads_ns(name)] {
            loop {
                let page = self
                    .store
                    .list(&ns, "", None, 500)
                    .await
                    .map_err(store_err)?;
                if page.is_empty() {
                    break;
                }
                let mut batch = Batch::new();
                for d in &page {
                    batch = batch.delete(&ns, &d.key, Expect::Any);
                }
                self.store.commit(batch).await.map_err(store_err)?;
            }
        }
        Ok(())
    }

    pub async fn delete_bucket(&self, name: &str) -> S3Result<()> {
        let (_, version) = self.bucket_versioned(name).await?;
        let not_empty = || {
            s3err(
                "BucketNotEmpty",
                409,
                "The bucket you tried to delete is not empty",
            )
        };
        if !self
            .store
            .list(&objects_ns(name), "", None, 1)
            .await
            .map_err(store_err)?
            .is_empty()
            || !self
                .store
                .list(&versions_ns(name), "", None, 1)
                .await
                .map_err(store_err)?
                .is_empty()
        {
            return Err(not_empty());
        }
        // Uploads in progress are aborted with the bucket.
        for d in self
            .store
            .list(&uploads_ns(name), "", None, 10_000)
            .await
            .map_err(store_err)?
        {
            if let Ok(u) = d.parse::<UploadDoc>() {
                let _ = self.abort_upload(name, &u.key, &u.upload_id).await;
            }
        }
        let batch = Batch::new().delete(BUCKETS_NS, name, Expect::Version(version));
        self.commit_or(batch, || {
            s3err(
                "OperationAborted",
                409,
                "A conflicting conditional operation is currently in progress against this resource. Please try again.",
            )
        })
        .await
    }

    pub async fn list_buckets(&self, account: &str) -> S3Result<Vec<BucketDoc>> {
        let all: Vec<BucketDoc> = self
            .store
            .list_all_as(BUCKETS_NS)
            .await
            .map_err(store_err)?;
        Ok(all.into_iter().filter(|b| b.account == account).collect())
    }

    /// Changes a bucket document with compare-and-swap (the store's [`StateStoreExt::update`],
    /// retried on a concurrent change).
    pub async fn update_bucket(
        &self,
        name: &str,
        mut change: impl FnMut(&mut BucketDoc) -> S3Result<()> + Send,
    ) -> S3Result<BucketDoc> {
        let updated = self.store.update(BUCKETS_NS, name, |doc: Option<BucketDoc>| {
            let mut doc = doc.ok_or_else(|| no_such_bucket(name))?;
            change(&mut doc)?;
            Ok::<_, Failed>(Update::put(doc))
        });
        updated.await.map_err(|Failed(e)| e)?.ok_or_else(|| no_such_bucket(name))
    }

    /// Compare-and-swap over several documents (the store's `update_many`) with S3's errors:
    /// `attempt` reads what it needs and answers the batch to commit, its writes conditioned on
    /// what it read, and the answer; a lost race runs it again on fresh reads.
    async fn update_many<R, F, Fut>(&self, mut attempt: F) -> S3Result<R>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = S3Result<(Batch, R)>>,
    {
        let attempts = self.store.update_many(|| {
            let attempt = attempt();
            async move { attempt.await.map_err(Failed) }
        });
        attempts.await.map_err(|Failed(e)| e)
    }

    pub async fn set_config(
        &self,
        bucket: &str,
        name: &str,
        value: Option<String>,
    ) -> S3Result<()> {
        self.update_bucket(bucket, |b| {
            match &value {
                Some(v) => b.configs.insert(name.to_string(), v.clone()),
                None => b.configs.remove(name),
            };
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// Turns versioning on or suspends it. The first time it is turned on, the existing objects
    /// become "null" versions in the version history (so every version of a versioned bucket
    /// is in one place).
    pub async fn set_versioning(&self, bucket: &str, status: Versioning) -> S3Result<()> {
        let before = self.bucket(bucket).await?;
        if before.versioning.is_none() {
            let ns = objects_ns(bucket);
            let vns = versions_ns(bucket);
            let mut after: Option<String> = None;
            loop {
                let page = self
                    .store
                    .list(&ns, "", after.as_deref(), 500)
                    .await
                    .map_err(store_err)?;
                let mut batch = Batch::new();
                for d in &page {
                    let mut o: ObjectDoc = d.parse().map_err(store_err)?;
                    if o.archived {
                        continue;
                    }
                    o.archived = true;
                    batch = batch
                        .put(&vns, version_doc_key(&o.key, o.seq), &o, Expect::Any)
                        .put(&ns, &d.key, &o, Expect::Version(d.version));
                }
                if !batch.is_empty() {
                    self.store.commit(batch).await.map_err(store_err)?;
                }
                if page.len() < 500 {
                    break;
                }
                after = page.last().map(|d| d.key.clone());
            }
        }
        self.update_bucket(bucket, |b| {
            b.versioning = Some(status);
            Ok(())
        })
        .await
        .map(|_| ())
    }

    // ---- start-up ------------------------------------------------------------------------

    /// Removes blobs that no metadata names: the leftovers of writes interrupted by a crash.
    pub async fn collect_garbage(&self) -> anyhow::Result<usize> {
        let mut referenced: HashSet<String> = HashSet::new();
        for ns in self.store.namespaces("s3/").await? {
            if ns.starts_with("s3/objects/") || ns.starts_with("s3/versions/") {
                let docs: Vec<ObjectDoc> = self.store.list_all_as(&ns).await?;
                referenced.extend(
                    docs.into_iter()
                        .flat_map(|d| d.blobs.into_iter().map(|b| b.name)),
                );
            } else if ns.starts_with("s3/parts/") {
                let docs: Vec<PartDoc> = self.store.list_all_as(&ns).await?;
                referenced.extend(docs.into_iter().map(|p| p.blob.name));
            }
        }
        self.blobs.collect_garbage(&referenced).await
    }
}
