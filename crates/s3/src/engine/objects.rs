//! Object versions, delete markers, tags and listings.

use super::*;

impl Engine {
    /// Makes `new` the newest version of its key (a new version in versioned buckets, the
    /// replacement otherwise), together with `extra` in one commit. Returns the stored version.
    ///
    /// In the key's turn ([`keylocks`](super::keylocks)), so the conditional commit holds
    /// unless a writer that does not take the turn (versioning being turned on) got in between;
    /// then it reads again. In an unversioned bucket the turn ends once the commit is submitted
    /// (pipelined: the next writer builds on what this commit leaves); in a versioned one it
    /// lasts until the commit is answered (the next writer reads the version history). The
    /// replaced blobs are removed after the commit.
    pub async fn commit_version(
        &self,
        bucket: &str,
        mut new: ObjectDoc,
        extra: Batch,
        notice: Option<&Notice>,
    ) -> S3Result<ObjectDoc> {
        // Read before the turn, to keep the turn short: whether the bucket is versioned was
        // never under the key's condition anyway (turning versioning on makes the commit retry).
        let mut b = self.bucket(bucket).await?;
        let ns = objects_ns(bucket);
        let mut turn = self.key_locks.lock_pipelined(bucket, &new.key).await;
        let mut first = true;
        loop {
            let pipelined = b.versioning.is_none();
            if !std::mem::take(&mut first) {
                turn.relock().await;
                b = self.bucket(bucket).await?;
            } else if !pipelined {
                // The key's pipelined commits in flight first: the version history is read.
                turn.relock().await;
            }
            let left = if pipelined { turn.take_last() } else { None };
            let cur = match left {
                Some(last) => Some((last.version, last.doc)),
                None => match self.store.get(&ns, &new.key).await.map_err(store_err)? {
                    Some(d) => Some((d.version, d.parse::<ObjectDoc>().map_err(store_err)?)),
                    None => None,
                },
            };
            let version = cur.as_ref().map_or(1, |(v, _)| v + 1);
            let (batch, garbage) = self.version_batch(&b, &mut new, cur, &extra, notice).await?;
            let answer = self.store.submit(batch);
            if pipelined {
                let mut left = new.clone();
                left.blobs.iter_mut().for_each(|blob| blob.pending = None);
                turn.submitted(version, left);
            }
            let answer = answer.await;
            turn.answered();
            match answer {
                Ok(()) => {
                    drop(turn);
                    self.blobs.delete(&garbage).await;
                    return Ok(new);
                }
                Err(StoreError::Conflict(..)) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
    }

    /// The commit that makes `new` the newest version of its key over `cur` (the key's current
    /// version and its store version, if any), and the blobs it replaces that are files
    /// (inline ones are removed in the commit).
    async fn version_batch(
        &self,
        b: &BucketDoc,
        new: &mut ObjectDoc,
        cur: Option<(i64, ObjectDoc)>,
        extra: &Batch,
        notice: Option<&Notice>,
    ) -> S3Result<(Batch, Vec<BlobRef>)> {
        let bucket = b.name.as_str();
        let vns = versions_ns(bucket);
        let mut batch = Batch {
            ops: extra.ops.clone(),
        };
        let mut garbage: Vec<BlobRef> = Vec::new();
        new.seq = next_seq();
        let expect = match &cur {
            Some((version, _)) => Expect::Version(*version),
            None => Expect::Absent,
        };
        match b.versioning {
            None => {
                new.version_id = "null".into();
                new.archived = false;
                if let Some((_, old)) = cur {
                    garbage = old.blobs;
                }
            }
            Some(status) => {
                if status == Versioning::Enabled {
                    new.version_id = new_version_id(new.seq);
                } else {
                    new.version_id = "null".into();
                    if let Some((doc_key, old)) = self.find_null_version(bucket, &new.key).await? {
                        batch = batch.delete(&vns, doc_key, Expect::Any);
                        garbage = old.blobs;
                    }
                }
                new.archived = true;
                batch = batch.put(&vns, version_doc_key(&new.key, new.seq), &*new, Expect::Any);
            }
        }
        batch = batch.put(objects_ns(bucket), &new.key, &*new, expect);
        let happened = if new.delete_marker {
            Happened::Deleted("Delete Marker Created")
        } else {
            Happened::Created
        };
        batch = notify(batch, b, notice, new, happened);
        // The new body (when inline) and the replaced one's removal share this commit.
        let batch = BlobStore::stage(batch, &new.blobs);
        Ok(BlobStore::drop_in(batch, garbage))
    }

    pub(super) async fn find_null_version(
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
    pub(super) async fn find_version(
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
        notice: Option<&Notice>,
    ) -> S3Result<DeleteOutcome> {
        let b = self.bucket(bucket).await?;
        let ns = objects_ns(bucket);
        match (version_id, b.versioning) {
            (None, None) => loop {
                let turn = self.key_locks.lock(bucket, key).await;
                let Some(d) = self.store.get(&ns, key).await.map_err(store_err)? else {
                    return Ok(DeleteOutcome {
                        delete_marker: false,
                        version_id: None,
                    });
                };
                let old: ObjectDoc = d.parse().map_err(store_err)?;
                let gone = ObjectDoc {
                    seq: next_seq(),
                    ..old.clone()
                };
                let batch = Batch::new().delete(&ns, key, Expect::Version(d.version));
                let batch = notify(batch, &b, notice, &gone, Happened::Deleted("Permanently Deleted"));
                let (batch, files) = BlobStore::drop_in(batch, old.blobs);
                match self.store.commit(batch).await
                {
                    Ok(()) => {
                        drop(turn);
                        self.blobs.delete(&files).await;
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
                let stored = self
                    .commit_version(bucket, marker, Batch::new(), notice)
                    .await?;
                Ok(DeleteOutcome {
                    delete_marker: true,
                    version_id: Some(stored.version_id),
                })
            }
            (Some(v), _) => {
                let turn = self.key_locks.lock(bucket, key).await;
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
                    let gone = ObjectDoc {
                        seq: next_seq(),
                        ..victim.clone()
                    };
                    let batch =
                        notify(batch, &b, notice, &gone, Happened::Deleted("Permanently Deleted"));
                    match self.store.commit(batch).await {
                        Ok(()) => break,
                        Err(StoreError::Conflict(..)) => continue,
                        Err(e) => return Err(store_err(e)),
                    }
                }
                drop(turn);
                self.blobs.delete(&victim.blobs).await;
                Ok(DeleteOutcome {
                    delete_marker: victim.delete_marker,
                    version_id: Some(v.to_string()),
                })
            }
        }
    }

    /// The newest version of `key` other than the one at `except`.
    pub(super) async fn previous_version(
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
        let _turn = self.key_locks.lock(bucket, key).await;
        let tags = &tags;
        self.update_many(|| async move {
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
            Ok((batch, updated))
        })
        .await
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
        self.list_current(bucket, prefix, delimiter, start_after, max, true)
            .await
    }

    /// The current version of each key (with delete markers unless `skip_markers`), as
    /// [`list_objects`](Self::list_objects) and an unversioned bucket's version listing see them.
    async fn list_current(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&str>,
        max: usize,
        skip_markers: bool,
    ) -> S3Result<Listing> {
        let ns = objects_ns(bucket);
        let after = after.map(str::to_string);
        self.list_ns(&ns, prefix, delimiter, after, max, |k| k.to_string(), skip_markers)
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
                .list_current(bucket, prefix, delimiter, key_marker, max, false)
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
    pub(super) async fn list_ns(
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
}
