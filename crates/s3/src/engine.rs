//! S3's domain logic over the state store (metadata) and the [`BlobStore`] (bytes): buckets,
//! versions, delete markers, listings and multipart uploads. Errors are S3's own
//! ([`s3s::S3Error`] carries AWS's code, status and message), so the HTTP adapter and the
//! cross-service [`ObjectStoreApi`](codeyard_core::hub::ObjectStoreApi) report the same ones.
//!
//! Consistency between the two stores: a blob is written (and durable) before the metadata
//! that names it is committed; metadata commits of one key are compare-and-swap on the key's
//! current-version document, so concurrent writers serialize and each knows exactly which
//! blobs it replaced (and deletes them after its commit). A crash between the steps leaves at
//! most unreferenced blobs, which start-up garbage collection removes.

use crate::blobs::{BlobRef, BlobStore};
use crate::meta::*;
use codeyard_store::{Batch, Expect, SharedStore, StateStoreExt, StoreError};
use s3s::{S3Error, S3ErrorCode, S3Result};
use std::collections::HashSet;

/// An error with AWS's code and HTTP status.
pub fn s3err(code: &str, status: u16, message: impl Into<String>) -> S3Error {
    let mut e = S3Error::with_message(code.parse::<S3ErrorCode>().unwrap(), message.into());
    e.set_status_code(http::StatusCode::from_u16(status).unwrap());
    e
}

pub fn internal(e: impl std::fmt::Display) -> S3Error {
    s3err(
        "InternalError",
        500,
        format!("We encountered an internal error: {e}"),
    )
}

fn store_err(e: StoreError) -> S3Error {
    internal(e)
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
}

/// The largest key in UTF-8 order that starts with `p`: listing after it skips everything
/// under `p`.
fn after_all_with_prefix(p: &str) -> String {
    format!("{p}\u{10FFFF}")
}

impl Engine {
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
            doc.configs
                .insert("canned-acl".into(), serde_json::Value::String(acl));
        }
        // Leftovers of an earlier bucket of this name (a delete that crashed half-way) must not
        // reappear in the new one.
        self.purge_bucket_contents(name).await?;
        match self
            .store
            .commit(Batch::new().put(BUCKETS_NS, name, &doc, Expect::Absent))
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(..)) => Err(s3err(
                "BucketAlreadyOwnedByYou",
                409,
                "Your previous request to create the named bucket succeeded and you already own it.",
            )),
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
        match self
            .store
            .commit(Batch::new().delete(BUCKETS_NS, name, Expect::Version(version)))
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(..)) => Err(s3err(
                "OperationAborted",
                409,
                "A conflicting conditional operation is currently in progress against this resource. Please try again.",
            )),
            Err(e) => Err(store_err(e)),
        }
    }

    pub async fn list_buckets(&self, account: &str) -> S3Result<Vec<BucketDoc>> {
        let all: Vec<BucketDoc> = self
            .store
            .list_all_as(BUCKETS_NS)
            .await
            .map_err(store_err)?;
        Ok(all.into_iter().filter(|b| b.account == account).collect())
    }

    /// Changes a bucket document with compare-and-swap (retried on a concurrent change).
    pub async fn update_bucket(
        &self,
        name: &str,
        mut change: impl FnMut(&mut BucketDoc) -> S3Result<()>,
    ) -> S3Result<BucketDoc> {
        loop {
            let (mut doc, version) = self.bucket_versioned(name).await?;
            change(&mut doc)?;
            match self
                .store
                .commit(Batch::new().put(BUCKETS_NS, name, &doc, Expect::Version(version)))
                .await
            {
                Ok(()) => return Ok(doc),
                Err(StoreError::Conflict(..)) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
    }

    pub async fn set_config(
        &self,
        bucket: &str,
        name: &str,
        value: Option<serde_json::Value>,
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
    pub async fn set_versioning(&self, bucket: &str, status: &str) -> S3Result<()> {
        if status != "Enabled" && status != "Suspended" {
            return Err(s3err(
                "MalformedXML",
                400,
                "The XML you provided was not well-formed or did not validate against our published schema",
            ));
        }
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
            b.versioning = Some(status.to_string());
            Ok(())
        })
        .await
        .map(|_| ())
    }

    // ---- objects -------------------------------------------------------------------------

    /// Makes `new` the newest version of its key (a new version in versioned buckets, the
    /// replacement otherwise), together with `extra` in one commit. Returns the stored version.
    pub async fn commit_version(
        &self,
        bucket: &str,
        mut new: ObjectDoc,
        extra: Batch,
    ) -> S3Result<ObjectDoc> {
        let ns = objects_ns(bucket);
        let vns = versions_ns(bucket);
        loop {
            let b = self.bucket(bucket).await?;
            let cur = self.store.get(&ns, &new.key).await.map_err(store_err)?;
            let mut batch = Batch {
                ops: extra.ops.clone(),
            };
            let mut garbage: Vec<BlobRef> = Vec::new();
            new.seq = next_seq();
            let expect = match &cur {
                Some(d) => Expect::Version(d.version),
                None => Expect::Absent,
            };
            match b.versioning.as_deref() {
                None => {
                    new.version_id = "null".into();
                    new.archived = false;
                    if let Some(d) = &cur {
                        let old: ObjectDoc = d.parse().map_err(store_err)?;
                        garbage = old.blobs;
                    }
                }
                Some(status) => {
                    if status == "Enabled" {
                        new.version_id = new_version_id(new.seq);
                    } else {
                        new.version_id = "null".into();
                        if let Some((doc_key, old)) =
                            self.find_null_version(bucket, &new.key).await?
                        {
                            batch = batch.delete(&vns, doc_key, Expect::Any);
                            garbage = old.blobs;
                        }
                    }
                    new.archived = true;
                    batch = batch.put(&vns, version_doc_key(&new.key, new.seq), &new, Expect::Any);
                }
            }
            batch = batch.put(&ns, &new.key, &new, expect);
            match self.store.commit(batch).await {
                Ok(()) => {
                    self.blobs.delete(&garbage).await;
                    return Ok(new);
                }
                Err(StoreError::Conflict(..)) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
    }

    async fn find_null_version(
        &self,
        bucket: &str,
        key: &str,
    ) -> S3Result<Option<(String, ObjectDoc)>> {
        let prefix = format!("{key}{SEP}");
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .list(&versions_ns(bucket), &prefix, after.as_deref(), 500)
                .await
                .map_err(store_err)?;
            for d in &page {
                let o: ObjectDoc = d.parse().map_err(store_err)?;
                if o.version_id == "null" {
                    return Ok(Some((d.key.clone(), o)));
                }
            }
            if page.len() < 500 {
                return Ok(None);
            }
            after = page.last().map(|d| d.key.clone());
        }
    }

    /// The version a GET/HEAD addresses. A delete marker as the current version is NoSuchKey;
    /// asked for by version id it is MethodNotAllowed, as in AWS.
    pub async fn get_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> S3Result<ObjectDoc> {
        let b = self.bucket(bucket).await?;
        let no_key = || s3err("NoSuchKey", 404, "The specified key does not exist.");
        let found = match version_id {
            None => {
                let o = self
                    .store
                    .get_as::<ObjectDoc>(&objects_ns(bucket), key)
                    .await
                    .map_err(store_err)?
                    .map(|x| x.0);
                match o {
                    Some(o) if !o.delete_marker => return Ok(o),
                    Some(marker) => {
                        // As AWS: the 404 says a delete marker is the current version.
                        let mut e = no_key();
                        let mut h = http::HeaderMap::new();
                        h.insert(
                            "x-amz-delete-marker",
                            http::HeaderValue::from_static("true"),
                        );
                        if let Ok(v) = http::HeaderValue::from_str(&marker.version_id) {
                            h.insert("x-amz-version-id", v);
                        }
                        e.set_headers(h);
                        return Err(e);
                    }
                    None => return Err(no_key()),
                }
            }
            Some(v) => self.find_version(&b, key, v).await?,
        };
        match found {
            Some((_, o)) if o.delete_marker => Err(s3err(
                "MethodNotAllowed",
                405,
                "The specified method is not allowed against this resource.",
            )),
            Some((_, o)) => Ok(o),
            None => Err(s3err(
                "NoSuchVersion",
                404,
                "The specified version does not exist.",
            )),
        }
    }

    /// (document key in the versions namespace, or None for an unarchived version; the version).
    async fn find_version(
        &self,
        b: &BucketDoc,
        key: &str,
        version_id: &str,
    ) -> S3Result<Option<(Option<String>, ObjectDoc)>> {
        if version_id == "null" {
            if b.versioning.is_none() {
                let o = self
                    .store
                    .get_as::<ObjectDoc>(&objects_ns(&b.name), key)
                    .await
                    .map_err(store_err)?;
                return Ok(o.map(|(o, _)| (None, o)));
            }
            return Ok(self
                .find_null_version(&b.name, key)
                .await?
                .map(|(k, o)| (Some(k), o)));
        }
        let Some(doc_key) = version_doc_key_for_id(key, version_id) else {
            return Err(s3err(
                "InvalidArgument",
                400,
                "Invalid version id specified",
            ));
        };
        let o = self
            .store
            .get_as::<ObjectDoc>(&versions_ns(&b.name), &doc_key)
            .await
            .map_err(store_err)?;
        Ok(o.filter(|(o, _)| o.version_id == version_id)
            .map(|(o, _)| (Some(doc_key), o)))
    }

    pub async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> S3Result<DeleteOutcome> {
        let b = self.bucket(bucket).await?;
        let ns = objects_ns(bucket);
        match (version_id, b.versioning.as_deref()) {
            (None, None) => loop {
                let Some(d) = self.store.get(&ns, key).await.map_err(store_err)? else {
                    return Ok(DeleteOutcome {
                        delete_marker: false,
                        version_id: None,
                    });
                };
                let old: ObjectDoc = d.parse().map_err(store_err)?;
                match self
                    .store
                    .commit(Batch::new().delete(&ns, key, Expect::Version(d.version)))
                    .await
                {
                    Ok(()) => {
                        self.blobs.delete(&old.blobs).await;
                        return Ok(DeleteOutcome {
                            delete_marker: false,
                            version_id: None,
                        });
                    }
                    Err(StoreError::Conflict(..)) => continue,
                    Err(e) => return Err(store_err(e)),
                }
            },
            (None, Some(_)) => {
                let marker = ObjectDoc {
                    key: key.into(),
                    delete_marker: true,
                    last_modified_ms: now_ms(),
                    ..Default::default()
                };
                let stored = self.commit_version(bucket, marker, Batch::new()).await?;
                Ok(DeleteOutcome {
                    delete_marker: true,
                    version_id: Some(stored.version_id),
                })
            }
            (Some(v), _) => {
                let Some((doc_key, victim)) = self.find_version(&b, key, v).await? else {
                    return Ok(DeleteOutcome {
                        delete_marker: false,
                        version_id: Some(v.to_string()),
                    });
                };
                loop {
                    let cur = self.store.get(&ns, key).await.map_err(store_err)?;
                    let mut batch = Batch::new();
                    if let Some(k) = &doc_key {
                        batch = batch.delete(versions_ns(bucket), k, Expect::Any);
                    }
                    if let Some(d) = &cur {
                        let c: ObjectDoc = d.parse().map_err(store_err)?;
                        if c.seq == victim.seq {
                            // The newest version goes: the one before it becomes current.
                            match self
                                .previous_version(bucket, key, doc_key.as_deref())
                                .await?
                            {
                                Some(p) => {
                                    batch = batch.put(&ns, key, &p, Expect::Version(d.version))
                                }
                                None => batch = batch.delete(&ns, key, Expect::Version(d.version)),
                            }
                        }
                    }
                    match self.store.commit(batch).await {
                        Ok(()) => break,
                        Err(StoreError::Conflict(..)) => continue,
                        Err(e) => return Err(store_err(e)),
                    }
                }
                self.blobs.delete(&victim.blobs).await;
                Ok(DeleteOutcome {
                    delete_marker: victim.delete_marker,
                    version_id: Some(v.to_string()),
                })
            }
        }
    }

    /// The newest version of `key` other than the one at `except`.
    async fn previous_version(
        &self,
        bucket: &str,
        key: &str,
        except: Option<&str>,
    ) -> S3Result<Option<ObjectDoc>> {
        let prefix = format!("{key}{SEP}");
        let page = self
            .store
            .list(&versions_ns(bucket), &prefix, None, 2)
            .await
            .map_err(store_err)?;
        for d in page {
            if Some(d.key.as_str()) != except {
                return Ok(Some(d.parse().map_err(store_err)?));
            }
        }
        Ok(None)
    }

    /// Replaces the tags of a version (the current one when `version_id` is None).
    pub async fn set_tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        tags: Vec<(String, String)>,
    ) -> S3Result<ObjectDoc> {
        loop {
            let target = self.get_version(bucket, key, version_id).await?;
            let mut batch = Batch::new();
            let cur = self
                .store
                .get(&objects_ns(bucket), key)
                .await
                .map_err(store_err)?;
            let mut updated = target.clone();
            updated.tags = tags.clone();
            if let Some(d) = &cur {
                let c: ObjectDoc = d.parse().map_err(store_err)?;
                if c.seq == target.seq {
                    batch = batch.put(
                        objects_ns(bucket),
                        key,
                        &updated,
                        Expect::Version(d.version),
                    );
                }
            }
            if target.archived {
                batch = batch.put(
                    versions_ns(bucket),
                    version_doc_key(key, target.seq),
                    &updated,
                    Expect::Present,
                );
            }
            match self.store.commit(batch).await {
                Ok(()) => return Ok(updated),
                Err(StoreError::Conflict(..)) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
    }

    /// Current objects (no delete markers) under `prefix`, after `start_after`, rolled up at
    /// `delimiter`, at most `max` entries.
    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        start_after: Option<&str>,
        max: usize,
    ) -> S3Result<Listing> {
        self.bucket(bucket).await?;
        self.list_ns(
            &objects_ns(bucket),
            prefix,
            delimiter,
            start_after.map(str::to_string),
            max,
            |k| k.to_string(),
            true,
        )
        .await
    }

    /// Every version and delete marker, newest first per key.
    pub async fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        key_marker: Option<&str>,
        version_marker: Option<&str>,
        max: usize,
    ) -> S3Result<(Listing, bool)> {
        let b = self.bucket(bucket).await?;
        if b.versioning.is_none() {
            let l = self
                .list_ns(
                    &objects_ns(bucket),
                    prefix,
                    delimiter,
                    key_marker.map(str::to_string),
                    max,
                    |k| k.to_string(),
                    false,
                )
                .await?;
            return Ok((l, false));
        }
        let start = match (key_marker, version_marker) {
            (Some(k), Some(v)) if v != "null" => {
                version_doc_key_for_id(k, v).or(Some(after_all_with_prefix(&format!("{k}{SEP}"))))
            }
            (Some(k), _) => Some(after_all_with_prefix(&format!("{k}{SEP}"))),
            _ => None,
        };
        let l = self
            .list_ns(
                &versions_ns(bucket),
                prefix,
                delimiter,
                start,
                max,
                |k| k.split(SEP).next().unwrap_or(k).to_string(),
                false,
            )
            .await?;
        Ok((l, true))
    }

    #[allow(clippy::too_many_arguments)]
    async fn list_ns(
        &self,
        ns: &str,
        prefix: &str,
        delimiter: Option<&str>,
        mut cursor: Option<String>,
        max: usize,
        object_key: impl Fn(&str) -> String,
        skip_markers: bool,
    ) -> S3Result<Listing> {
        let mut entries = Vec::new();
        let mut last: Option<String> = None;
        if max == 0 {
            return Ok(Listing {
                entries,
                truncated: false,
                last,
            });
        }
        let delimiter = delimiter.filter(|d| !d.is_empty());
        // A marker that is itself a common prefix (the NextMarker of a previous page) skips
        // that whole group.
        if let (Some(delim), Some(c)) = (delimiter, cursor.as_deref()) {
            if c.len() > prefix.len()
                && c.starts_with(prefix)
                && c.ends_with(delim)
                && c[prefix.len()..].find(delim) == Some(c.len() - prefix.len() - delim.len())
            {
                cursor = Some(after_all_with_prefix(c));
            }
        }
        'pages: loop {
            let page = self
                .store
                .list(ns, prefix, cursor.as_deref(), 1000)
                .await
                .map_err(store_err)?;
            let full = page.len() == 1000;
            for d in &page {
                cursor = Some(d.key.clone());
                let key = object_key(&d.key);
                if let Some(delim) = delimiter {
                    if let Some(i) = key[prefix.len()..].find(delim) {
                        let cp = key[..prefix.len() + i + delim.len()].to_string();
                        if entries.len() == max {
                            return Ok(Listing {
                                entries,
                                truncated: true,
                                last,
                            });
                        }
                        entries.push(Listed::Prefix(cp.clone()));
                        last = Some(cp.clone());
                        cursor = Some(after_all_with_prefix(&cp));
                        continue 'pages;
                    }
                }
                let o: ObjectDoc = d.parse().map_err(store_err)?;
                if skip_markers && o.delete_marker {
                    continue;
                }
                if entries.len() == max {
                    return Ok(Listing {
                        entries,
                        truncated: true,
                        last,
                    });
                }
                last = Some(key);
                entries.push(Listed::Object(o));
            }
            if !full {
                return Ok(Listing {
                    entries,
                    truncated: false,
                    last,
                });
            }
        }
    }

    // ---- multipart -----------------------------------------------------------------------

    pub async fn create_upload(&self, bucket: &str, upload: &UploadDoc) -> S3Result<()> {
        self.bucket(bucket).await?;
        self.store
            .commit(Batch::new().put(
                uploads_ns(bucket),
                upload_doc_key(&upload.key, &upload.upload_id),
                upload,
                Expect::Absent,
            ))
            .await
            .map_err(store_err)
    }

    pub async fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> S3Result<UploadDoc> {
        self.bucket(bucket).await?;
        self.store
            .get_as::<UploadDoc>(&uploads_ns(bucket), &upload_doc_key(key, upload_id))
            .await
            .map_err(store_err)?
            .map(|x| x.0)
            .ok_or_else(|| {
                s3err(
                    "NoSuchUpload",
                    404,
                    "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
                )
            })
    }

    pub async fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: PartDoc,
    ) -> S3Result<()> {
        self.upload(bucket, key, upload_id).await?;
        let ns = parts_ns(upload_id);
        let doc_key = format!("{:05}", part.number);
        loop {
            let cur = self.store.get(&ns, &doc_key).await.map_err(store_err)?;
            let expect = cur
                .as_ref()
                .map_or(Expect::Absent, |d| Expect::Version(d.version));
            match self
                .store
                .commit(Batch::new().put(&ns, &doc_key, &part, expect))
                .await
            {
                Ok(()) => {
                    if let Some(d) = cur {
                        let old: PartDoc = d.parse().map_err(store_err)?;
                        self.blobs.delete(&[old.blob]).await;
                    }
                    // An abort that raced with this part leaves the part orphaned: clean it up.
                    if self.upload(bucket, key, upload_id).await.is_err() {
                        let _ = self
                            .store
                            .commit(Batch::new().delete(&ns, &doc_key, Expect::Any))
                            .await;
                        self.blobs.delete(&[part.blob]).await;
                        return Err(s3err(
                            "NoSuchUpload",
                            404,
                            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
                        ));
                    }
                    return Ok(());
                }
                Err(StoreError::Conflict(..)) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
    }

    pub async fn parts(&self, upload_id: &str) -> S3Result<Vec<PartDoc>> {
        self.store
            .list_all_as(&parts_ns(upload_id))
            .await
            .map_err(store_err)
    }

    /// Assembles the listed parts into the object (its blobs are the parts' blobs: no copy).
    pub async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        listed: &[(i32, String)],
    ) -> S3Result<ObjectDoc> {
        use md5::Digest;
        let upload = match self.upload(bucket, key, upload_id).await {
            Ok(u) => u,
            Err(e) => {
                // Completing an upload twice succeeds while its object is still current.
                if let Ok(o) = self.get_version(bucket, key, None).await {
                    if o.upload_id.as_deref() == Some(upload_id) {
                        return Ok(o);
                    }
                }
                return Err(e);
            }
        };
        if listed.is_empty() {
            return Err(s3err(
                "MalformedXML",
                400,
                "The XML you provided was not well-formed or did not validate against our published schema",
            ));
        }
        let parts = self.parts(upload_id).await?;
        let mut chosen: Vec<&PartDoc> = Vec::new();
        let mut prev = 0;
        for (n, etag) in listed {
            if *n <= prev {
                return Err(s3err(
                    "InvalidPartOrder",
                    400,
                    "The list of parts was not in ascending order. Parts must be ordered by part number.",
                ));
            }
            prev = *n;
            let p = parts
                .iter()
                .find(|p| p.number == *n && p.etag == etag.trim_matches('"'));
            let Some(p) = p else {
                return Err(s3err(
                    "InvalidPart",
                    400,
                    "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
                ));
            };
            chosen.push(p);
        }
        for p in &chosen[..chosen.len() - 1] {
            if p.blob.size < 5 * 1024 * 1024 {
                return Err(s3err(
                    "EntityTooSmall",
                    400,
                    "Your proposed upload is smaller than the minimum allowed object size.",
                ));
            }
        }
        let mut md5s = md5::Md5::new();
        for p in &chosen {
            md5s.update(hex::decode(&p.etag).unwrap_or_default());
        }
        let etag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
        let doc = ObjectDoc {
            key: key.into(),
            blobs: chosen.iter().map(|p| p.blob.clone()).collect(),
            size: chosen.iter().map(|p| p.blob.size).sum(),
            etag,
            last_modified_ms: now_ms(),
            headers: upload.headers.clone(),
            metadata: upload.metadata.clone(),
            tags: upload.tags.clone(),
            parts_count: Some(chosen.len() as i32),
            upload_id: Some(upload_id.to_string()),
            ..Default::default()
        };
        let mut extra = Batch::new().delete(
            uploads_ns(bucket),
            upload_doc_key(key, upload_id),
            Expect::Present,
        );
        for p in &parts {
            extra = extra.delete(parts_ns(upload_id), format!("{:05}", p.number), Expect::Any);
        }
        let stored = match self.commit_version(bucket, doc, extra).await {
            Err(e)
                if e.code().as_str() == "InternalError"
                    && e.message().is_some_and(|m| m.contains("conflict")) =>
            {
                return Err(self.upload(bucket, key, upload_id).await.err().unwrap_or(e));
            }
            r => r?,
        };
        let used: HashSet<&str> = chosen.iter().map(|p| p.blob.name.as_str()).collect();
        let unused: Vec<BlobRef> = parts
            .iter()
            .filter(|p| !used.contains(p.blob.name.as_str()))
            .map(|p| p.blob.clone())
            .collect();
        self.blobs.delete(&unused).await;
        Ok(stored)
    }

    pub async fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> S3Result<()> {
        self.upload(bucket, key, upload_id).await?;
        let parts = self.parts(upload_id).await?;
        let mut batch = Batch::new().delete(
            uploads_ns(bucket),
            upload_doc_key(key, upload_id),
            Expect::Any,
        );
        for p in &parts {
            batch = batch.delete(parts_ns(upload_id), format!("{:05}", p.number), Expect::Any);
        }
        self.store.commit(batch).await.map_err(store_err)?;
        let blobs: Vec<BlobRef> = parts.into_iter().map(|p| p.blob).collect();
        self.blobs.delete(&blobs).await;
        Ok(())
    }

    pub async fn list_uploads(&self, bucket: &str, prefix: &str) -> S3Result<Vec<UploadDoc>> {
        self.bucket(bucket).await?;
        let docs = self
            .store
            .list(&uploads_ns(bucket), prefix, None, 10_000)
            .await
            .map_err(store_err)?;
        docs.iter().map(|d| d.parse().map_err(store_err)).collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    async fn engine(dir: &std::path::Path) -> Engine {
        let store = codeyard_store::SqliteStore::open(&dir.join("state.db"))
            .await
            .unwrap();
        Engine {
            store: std::sync::Arc::new(store),
            blobs: BlobStore::open(dir).unwrap(),
        }
    }

    async fn put(e: &Engine, bucket: &str, key: &str, body: &'static [u8]) -> ObjectDoc {
        let body = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(body))]);
        let w = e.blobs.write(body, Default::default()).await.unwrap();
        let doc = ObjectDoc {
            key: key.into(),
            size: w.blob.size,
            blobs: vec![w.blob],
            etag: hex::encode(w.md5),
            ..Default::default()
        };
        e.commit_version(bucket, doc, Batch::new()).await.unwrap()
    }

    fn blob_files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir.join("s3/blobs")).unwrap().count()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_puts_of_one_key_leave_one_whole_object_and_one_blob() {
        let dir = tempfile::tempdir().unwrap();
        let e = std::sync::Arc::new(engine(dir.path()).await);
        e.create_bucket("race", "000000000000", "eu-west-1", None)
            .await
            .unwrap();
        const BODIES: [&[u8]; 8] = [
            b"aaaa",
            b"bbbbbbbb",
            b"cc",
            b"dddddd",
            b"e",
            b"ffff",
            b"ggggggg",
            b"hhh",
        ];
        let tasks: Vec<_> = BODIES
            .iter()
            .map(|b| {
                let e = e.clone();
                tokio::spawn(async move { put(&e, "race", "k", b).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let o = e.get_version("race", "k", None).await.unwrap();
        let chunks: Vec<Bytes> =
            futures::TryStreamExt::try_collect(e.blobs.read(&o.blobs, 0..o.size))
                .await
                .unwrap();
        let bytes = chunks.concat();
        assert!(
            BODIES.contains(&bytes.as_slice()),
            "a mix of writes: {bytes:?}"
        );
        assert_eq!(
            blob_files(dir.path()),
            1,
            "replaced blobs were not all removed"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn listing_rolls_up_prefixes_and_pages() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path()).await;
        e.create_bucket("list", "000000000000", "eu-west-1", None)
            .await
            .unwrap();
        for k in ["a/1", "a/2", "a/b/1", "b", "c/1", "c/2", "d"] {
            put(&e, "list", k, b"x").await;
        }
        let names = |l: &Listing| {
            l.entries
                .iter()
                .map(|x| match x {
                    Listed::Object(o) => o.key.clone(),
                    Listed::Prefix(p) => p.clone(),
                })
                .collect::<Vec<_>>()
        };
        let l = e
            .list_objects("list", "", Some("/"), None, 1000)
            .await
            .unwrap();
        assert_eq!(names(&l), vec!["a/", "b", "c/", "d"]);
        let l = e
            .list_objects("list", "", Some("/"), None, 2)
            .await
            .unwrap();
        assert!(l.truncated);
        assert_eq!(names(&l), vec!["a/", "b"]);
        let l2 = e
            .list_objects("list", "", Some("/"), l.last.as_deref(), 2)
            .await
            .unwrap();
        assert_eq!(names(&l2), vec!["c/", "d"]);
        assert!(!l2.truncated);
        let l = e
            .list_objects("list", "a/", Some("/"), None, 1000)
            .await
            .unwrap();
        assert_eq!(names(&l), vec!["a/1", "a/2", "a/b/"]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn garbage_collection_removes_only_unreferenced_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path()).await;
        e.create_bucket("gc-bucket", "000000000000", "eu-west-1", None)
            .await
            .unwrap();
        put(&e, "gc-bucket", "kept", b"kept").await;
        std::fs::write(
            dir.path().join("s3/blobs/deadbeef#1"),
            b"staging file of a killed upload",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("s3/blobs/0123abcd"),
            b"blob written, metadata never committed",
        )
        .unwrap();
        assert_eq!(e.collect_garbage().await.unwrap(), 2);
        assert_eq!(blob_files(dir.path()), 1);
        assert_eq!(
            e.get_version("gc-bucket", "kept", None).await.unwrap().size,
            4
        );
    }
}
