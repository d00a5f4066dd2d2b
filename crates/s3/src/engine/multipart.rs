//! Multipart uploads: the upload document, its parts, completion into one object.

use super::*;

fn no_such_upload() -> S3Error {
    s3err(
        "NoSuchUpload",
        404,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
    )
}

/// A part's document key: its number, zero-padded so that keys sort as numbers.
fn part_key(number: i32) -> String {
    format!("{number:05}")
}

/// Removes an upload's document (its existence checked by `expect`) and its parts' documents.
fn upload_removal(bucket: &str, key: &str, upload_id: &str, parts: &[PartDoc], expect: Expect) -> Batch {
    let batch = Batch::new().delete(uploads_ns(bucket), upload_doc_key(key, upload_id), expect);
    parts.iter().fold(batch, |batch, p| {
        batch.delete(parts_ns(upload_id), part_key(p.number), Expect::Any)
    })
}

impl Engine {
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
            .ok_or_else(no_such_upload)
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
        let doc_key = part_key(part.number);
        let (ns_ref, key_ref, part_ref) = (&ns, &doc_key, &part);
        let replaced = self
            .update_many(|| async move {
                let cur = self.store.get(ns_ref, key_ref).await.map_err(store_err)?;
                let expect = cur
                    .as_ref()
                    .map_or(Expect::Absent, |d| Expect::Version(d.version));
                let batch = BlobStore::stage(
                    Batch::new().put(ns_ref, key_ref, part_ref, expect),
                    std::slice::from_ref(&part_ref.blob),
                );
                Ok((batch, cur))
            })
            .await?;
        if let Some(d) = replaced {
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
            return Err(no_such_upload());
        }
        Ok(())
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
        notice: Option<&Notice>,
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
        let extra = upload_removal(bucket, key, upload_id, &parts, Expect::Present);
        let stored = match self.commit_version(bucket, doc, extra, notice).await {
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
        let batch = upload_removal(bucket, key, upload_id, &parts, Expect::Any);
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
}
