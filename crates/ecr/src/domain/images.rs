//! Images and tags: manifests pushed, resolved, untagged, deleted and expired by lifecycle rules.

use super::errors::{EcrError, PutError, conflict};
use super::records::*;
use super::service::Ecr;
use crate::lifecycle;
use crate::manifest::{self, ParsedManifest};
use bytes::Bytes;
use codeyard_core::hub::BusEvent;
use codeyard_core::time::now;
use codeyard_core::{AwsError, AwsResult};
use codeyard_store::{Batch, Expect, StateStoreExt, StoreError};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};

/// An image with its tags, as ListImages / DescribeImages show it.
#[derive(Clone, Debug)]
pub struct ImageView {
    pub image: ImageRecord,
    pub tags: Vec<String>,
}

impl Ecr {
    // ---------------------------------------------------------------- images

    pub async fn image(&self, r: &RepoRef, digest: &str) -> AwsResult<Option<ImageRecord>> {
        self.doc(&r.images_ns(), digest).await
    }

    pub async fn tag(&self, r: &RepoRef, tag: &str) -> AwsResult<Option<String>> {
        Ok(self.doc::<TagRecord>(&r.tags_ns(), tag).await?.map(|t| t.digest))
    }

    /// Resolves a tag or digest to an image of the repository.
    pub async fn resolve(
        &self,
        r: &RepoRef,
        reference: &Reference,
    ) -> AwsResult<Option<ImageRecord>> {
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(t) => match self.tag(r, t).await? {
                Some(d) => d,
                None => return Ok(None),
            },
        };
        self.image(r, &digest).await
    }

    /// Every image with its tags, newest first.
    pub async fn images(&self, r: &RepoRef) -> AwsResult<Vec<ImageView>> {
        let images: Vec<ImageRecord> = self.store.list_all_as(&r.images_ns()).await?;
        let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for d in self.store_docs(&r.tags_ns()).await? {
            let t: TagRecord = d.1;
            tags.entry(t.digest).or_default().push(d.0);
        }
        let mut out: Vec<ImageView> = images
            .into_iter()
            .map(|i| ImageView {
                tags: tags.remove(&i.digest).unwrap_or_default(),
                image: i,
            })
            .collect();
        out.sort_by(|a, b| {
            b.image
                .pushed_at
                .cmp(&a.image.pushed_at)
                .then_with(|| a.image.digest.cmp(&b.image.digest))
        });
        Ok(out)
    }

    pub async fn tags(&self, r: &RepoRef) -> AwsResult<Vec<String>> {
        self.all_docs(&r.tags_ns()).await
    }

    pub async fn manifest_bytes(&self, digest: &str) -> AwsResult<Bytes> {
        self.blobs
            .read_all(digest)
            .await?
            .ok_or_else(|| AwsError::internal(format!("manifest {digest} is missing from storage")))
    }

    /// Stores a manifest, optionally tagging it: the one path both PutImage and a registry PUT
    /// take. `strict_exists` makes an identical tag+manifest an error (PutImage's
    /// ImageAlreadyExistsException); the registry treats it as success.
    pub async fn put_manifest(
        &self,
        r: &RepoRef,
        bytes: Bytes,
        declared: Option<&str>,
        tag: Option<&str>,
        expected_digest: Option<&str>,
        strict_exists: bool,
    ) -> Result<(ImageRecord, Vec<BusEvent>), PutError> {
        let repo = match self.try_repository(r).await? {
            Some(repo) => repo,
            None => return Err(PutError::RepositoryNotFound),
        };
        let digest = manifest::sha256_digest(&bytes);
        if let Some(e) = expected_digest
            && e != digest
        {
            return Err(PutError::DigestMismatch(digest));
        }
        if let Some(t) = tag
            && !manifest::valid_tag(t)
        {
            return Err(PutError::Invalid(format!("invalid tag '{t}'")));
        }
        let parsed: ParsedManifest =
            manifest::parse(&bytes, declared).map_err(PutError::Invalid)?;
        // Everything referenced must be in the repository already.
        let mut missing = Vec::new();
        for b in &parsed.blobs {
            if self.blob_in_repo(r, b).await?.is_none() {
                missing.push(b.clone());
            }
        }
        if !missing.is_empty() {
            return Err(PutError::BlobsMissing(missing));
        }
        let mut size = parsed.size;
        let mut missing = Vec::new();
        for c in &parsed.children {
            match self.image(r, c).await? {
                Some(child) => size = size.max(child.size),
                None => missing.push(c.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(PutError::ManifestsMissing(missing));
        }

        let existing = self.image(r, &digest).await?;
        let mut batch = Batch::new();
        let record = existing.clone().unwrap_or(ImageRecord {
            digest: digest.clone(),
            media_type: parsed.media_type.clone(),
            artifact_type: parsed.artifact_type.clone(),
            size,
            manifest_size: bytes.len() as u64,
            pushed_at: now(),
            blobs: parsed.blobs.clone(),
            children: parsed.children.clone(),
            subject: parsed.subject.clone(),
            annotations: parsed.annotations.clone(),
        });
        if existing.is_none() {
            batch = batch.put(r.images_ns(), &digest, &record, Expect::Absent);
        }
        let mut events = Vec::new();
        if let Some(t) = tag {
            let current = self
                .store
                .get_as::<TagRecord>(&r.tags_ns(), t)
                .await
                .map_err(AwsError::from)?;
            let same = current
                .as_ref()
                .is_some_and(|(cur, _)| cur.digest == digest);
            if same && strict_exists && existing.is_some() {
                return Err(PutError::AlreadyExists);
            }
            // IMMUTABLE: a tag may be pushed again with the same manifest, never moved.
            if current.is_some() && !same && repo.immutable() {
                return Err(PutError::TagImmutable(t.to_string()));
            }
            let expect = match &current {
                Some((_, v)) => Expect::Version(*v),
                None => Expect::Absent,
            };
            if current.as_ref().is_none_or(|(c, _)| c.digest != digest) {
                batch = batch.put(
                    r.tags_ns(),
                    t,
                    TagRecord {
                        digest: digest.clone(),
                    },
                    expect,
                );
            }
            events.push(image_event(&repo, "PUSH", &digest, Some(t)));
        }
        // Untagged pushes (the children of a multi-arch push, referrers) raise no event.
        if batch.is_empty() {
            return Ok((record, Vec::new()));
        }
        if existing.is_none() {
            // The bytes first: a committed image always has its manifest.
            self.blobs.put_bytes(&digest, bytes.clone()).await?;
        }
        for e in &events {
            batch = batch.publish_event(e.clone());
        }
        match self.store.commit(batch).await {
            Ok(()) => {}
            Err(StoreError::Conflict(..)) => {
                return Err(PutError::Internal(EcrError::Contended("the tag moved during the request; retry").into()));
            }
            Err(e) => return Err(PutError::Internal(e.into())),
        }
        if repo.lifecycle_policy.is_some()
            && let Err(e) = self.apply_lifecycle(r).await
        {
            tracing::warn!(repository = %r.name, error = %e, "lifecycle policy evaluation failed");
        }
        Ok((record, events))
    }

    /// Removes a tag (the image stays).
    pub async fn untag(&self, r: &RepoRef, tag: &str) -> AwsResult<bool> {
        let Some((t, v)) = self.store.get_as::<TagRecord>(&r.tags_ns(), tag).await? else {
            return Ok(false);
        };
        let repo = self.repository(r).await?.0;
        let batch = Batch::new()
            .delete(r.tags_ns(), tag, Expect::Version(v))
            .publish_event(image_event(&repo, "DELETE", &t.digest, Some(tag)));
        self.store.commit(batch).await.map_err(conflict)?;
        Ok(true)
    }

    /// Deletes an image and every tag on it. Err(code, reason) as BatchDeleteImage reports.
    pub async fn delete_image(
        &self,
        r: &RepoRef,
        digest: &str,
    ) -> AwsResult<Result<Vec<String>, (String, String)>> {
        let repo = self.repository(r).await?.0;
        let views = self.images(r).await?;
        let Some(view) = views.iter().find(|v| v.image.digest == digest) else {
            return Ok(Err((
                "ImageNotFound".into(),
                "Requested image not found".into(),
            )));
        };
        if views
            .iter()
            .any(|v| v.image.children.iter().any(|c| c == digest))
        {
            return Ok(Err((
                "ImageReferencedByManifestList".into(),
                "Requested image is referenced by a manifest list".into(),
            )));
        }
        let mut batch = Batch::new().delete(r.images_ns(), digest, Expect::Any);
        for t in &view.tags {
            batch = batch.delete(r.tags_ns(), t, Expect::Any);
        }
        if view.tags.is_empty() {
            batch = batch.publish_event(image_event(&repo, "DELETE", digest, None));
        }
        for t in &view.tags {
            batch = batch.publish_event(image_event(&repo, "DELETE", digest, Some(t)));
        }
        self.store.commit(batch).await.map_err(conflict)?;
        Ok(Ok(view.tags.clone()))
    }

    /// Runs the repository's lifecycle policy now; returns the digests it expired.
    pub async fn apply_lifecycle(&self, r: &RepoRef) -> AwsResult<Vec<String>> {
        let repo = self.repository(r).await?.0;
        let Some(text) = &repo.lifecycle_policy else {
            return Ok(Vec::new());
        };
        let policy = lifecycle::validate(text).map_err(AwsError::validation)?;
        let views = self.images(r).await?;
        // Images inside an index are kept with it; rules look at top-level images only.
        let children: HashSet<&String> =
            views.iter().flat_map(|v| v.image.children.iter()).collect();
        let candidates: Vec<lifecycle::Candidate> = views
            .iter()
            .filter(|v| !children.contains(&v.image.digest))
            .map(|v| lifecycle::Candidate {
                digest: v.image.digest.clone(),
                tags: v.tags.clone(),
                pushed_at: v.image.pushed_at,
            })
            .collect();
        let expired = lifecycle::evaluate(&policy, &candidates, now());
        for d in &expired {
            let _ = self.delete_image(r, d).await?;
        }
        self.update_repository(r, |repo| {
            repo.lifecycle_evaluated_at = Some(now());
            Ok(())
        })
        .await?;
        Ok(expired)
    }

    /// Images of the repository whose subject is `digest` (OCI referrers).
    pub async fn referrers(&self, r: &RepoRef, digest: &str) -> AwsResult<Vec<ImageRecord>> {
        let images: Vec<ImageRecord> = self.store.list_all_as(&r.images_ns()).await?;
        Ok(images
            .into_iter()
            .filter(|i| i.subject.as_deref() == Some(digest))
            .collect())
    }
}

/// "ECR Image Action" as ECR sends it to EventBridge.
pub fn image_event(repo: &Repository, action: &str, digest: &str, tag: Option<&str>) -> BusEvent {
    let mut detail = json!({
        "result": "SUCCESS",
        "repository-name": repo.name,
        "image-digest": digest,
        "action-type": action,
    });
    if let Some(t) = tag {
        detail["image-tag"] = json!(t);
    }
    BusEvent::aws_service_event(
        &repo.account,
        &repo.region,
        "aws.ecr",
        "ECR Image Action",
        vec![repo.arn.clone()],
        detail,
    )
}
