//! The registry's state: repositories, images, tags, layers, uploads and tokens, shared by the
//! ECR API and the OCI Distribution API (they are two doors to one store).
//!
//! Documents (namespaces by the store's convention):
//! * `ecr/<acct>/<region>/repositories` → [`Repository`], keyed by name;
//! * `ecr/<acct>/<region>/images/<repo>` → [`ImageRecord`], keyed by manifest digest;
//! * `ecr/<acct>/<region>/tags/<repo>` → [`TagRecord`], keyed by tag (the only place a tag
//!   lives, so moving a tag is one conditional write);
//! * `ecr/<acct>/<region>/layers/<repo>` → [`LayerRecord`], keyed by digest: the blobs uploaded
//!   to (or mounted into) a repository, which its manifests may reference;
//! * `ecr/uploads` → [`UploadRecord`]; `ecr/tokens` → [`TokenRecord`].
//!
//! Bytes live in [`BlobStore`], content-addressed and shared; [`Ecr::collect_garbage`] removes
//! what no image and no recent upload references.

use crate::blobs::BlobStore;
use crate::lifecycle;
use crate::manifest::{self, ParsedManifest};
use bytes::Bytes;
use codeyard_core::hub::BusEvent;
use codeyard_core::time::{Timestamp, now};
use codeyard_core::{AwsError, AwsResult, arn::arn, ids};
use codeyard_store::{Batch, Expect, SharedStore, StateStoreExt, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

pub const UPLOADS_NS: &str = "ecr/uploads";
pub const TOKENS_NS: &str = "ecr/tokens";
/// How long an authorization token from GetAuthorizationToken is valid (as in AWS).
pub const TOKEN_HOURS: i64 = 12;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Repository {
    pub name: String,
    pub account: String,
    pub region: String,
    pub arn: String,
    pub created_at: Timestamp,
    /// MUTABLE or IMMUTABLE (the `_WITH_EXCLUSION` variants behave like their base here).
    pub tag_mutability: String,
    #[serde(default)]
    pub mutability_exclusions: Option<Value>,
    pub scan_on_push: bool,
    pub encryption: Value,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub lifecycle_policy: Option<String>,
    #[serde(default)]
    pub lifecycle_evaluated_at: Option<Timestamp>,
}

impl Repository {
    pub fn immutable(&self) -> bool {
        self.tag_mutability.starts_with("IMMUTABLE")
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageRecord {
    pub digest: String,
    pub media_type: String,
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// ECR's imageSizeInBytes: layers and config; for an index the largest child.
    pub size: u64,
    pub manifest_size: u64,
    pub pushed_at: Timestamp,
    pub blobs: Vec<String>,
    pub children: Vec<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub annotations: Option<Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TagRecord {
    pub digest: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerRecord {
    pub size: u64,
    pub added_at: Timestamp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UploadRecord {
    pub account: String,
    pub region: String,
    pub repository: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRecord {
    pub account: String,
    pub region: String,
    pub expires_at: Timestamp,
    /// Who asked GetAuthorizationToken: registry requests with the token act as this principal.
    /// `None` for tokens issued before principals were recorded (the registry's root).
    #[serde(default)]
    pub caller_arn: Option<String>,
}

/// One repository in one account and region.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RepoRef {
    pub account: String,
    pub region: String,
    pub name: String,
}

impl RepoRef {
    pub fn new(account: &str, region: &str, name: &str) -> Self {
        RepoRef {
            account: account.into(),
            region: region.into(),
            name: name.into(),
        }
    }
    fn ns(&self, kind: &str) -> String {
        format!("ecr/{}/{}/{kind}/{}", self.account, self.region, self.name)
    }
    pub fn images_ns(&self) -> String {
        self.ns("images")
    }
    pub fn tags_ns(&self) -> String {
        self.ns("tags")
    }
    pub fn layers_ns(&self) -> String {
        self.ns("layers")
    }
    pub fn repos_ns(&self) -> String {
        repos_ns(&self.account, &self.region)
    }
}

pub fn repos_ns(account: &str, region: &str) -> String {
    format!("ecr/{account}/{region}/repositories")
}

/// A reference in a manifest URL or an ECR image id.
#[derive(Clone, Debug, PartialEq)]
pub enum Reference {
    Tag(String),
    Digest(String),
}

impl Reference {
    pub fn parse(s: &str) -> Reference {
        if s.contains(':') {
            Reference::Digest(s.to_string())
        } else {
            Reference::Tag(s.to_string())
        }
    }
}

/// Why a manifest was refused, in terms both doors can translate.
#[derive(Debug)]
pub enum PutError {
    RepositoryNotFound,
    Invalid(String),
    DigestMismatch(String),
    BlobsMissing(Vec<String>),
    ManifestsMissing(Vec<String>),
    TagImmutable(String),
    /// PutImage of a manifest and tag that are already there.
    AlreadyExists,
    Internal(AwsError),
}

impl From<AwsError> for PutError {
    fn from(e: AwsError) -> Self {
        PutError::Internal(e)
    }
}

/// What goes wrong in ECR, named without wire codes. The ECR API edge gives each AWS's code
/// and message once (`From<EcrError> for AwsError`); the registry door (distribution.rs)
/// answers in OCI terms instead.
#[derive(Debug)]
pub enum EcrError {
    RepositoryNotFound(RepoRef),
    RepositoryExists(RepoRef),
    /// Deleting a repository that still holds images, without `force`.
    RepositoryNotEmpty(RepoRef),
    /// A concurrent change won a compare-and-swap; the message says what changed.
    Contended(&'static str),
    /// `id` as ECR prints an ImageIdentifier: `{imageDigest:'..', imageTag:'..'}`.
    ImageNotFound { repo: RepoRef, id: String },
    /// PutImage of a manifest (with this tag, if any) the repository already has.
    ImageExists { repo: RepoRef, digest: String, tag: Option<String> },
    LayerNotFound { repo: RepoRef, digest: String },
    LayerExists { repo: RepoRef, digest: String },
    /// The uploaded bytes hash to `actual`, not the digest the client gave.
    LayerDigestMismatch { actual: String, given: String },
    UploadNotFound { repo: RepoRef, id: String },
    EmptyUpload(String),
    /// An UploadLayerPart that does not continue the upload where it stands.
    PartOutOfOrder { first: u64, last: u64, have: u64 },
    LifecyclePolicyNotFound(RepoRef),
    RepositoryPolicyNotFound(RepoRef),
    TooManyTags,
    /// A parameter ECR refuses (InvalidParameterException), with its message.
    Invalid(String),
}

impl From<EcrError> for AwsError {
    fn from(e: EcrError) -> Self {
        let client = |code: &str, message: String| AwsError::client(code, message);
        match e {
            EcrError::RepositoryNotFound(r) => client(
                "RepositoryNotFoundException",
                format!("The repository with name '{}' does not exist in the registry with id '{}'", r.name, r.account),
            ),
            EcrError::RepositoryExists(r) => client(
                "RepositoryAlreadyExistsException",
                format!("The repository with name '{}' already exists in the registry with id '{}'", r.name, r.account),
            ),
            EcrError::RepositoryNotEmpty(r) => client(
                "RepositoryNotEmptyException",
                format!(
                    "The repository with name '{}' in registry with id '{}' cannot be deleted because it still contains images",
                    r.name, r.account
                ),
            ),
            EcrError::Contended(message) => client("ConcurrentModification", message.into()),
            EcrError::ImageNotFound { repo, id } => client(
                "ImageNotFoundException",
                format!(
                    "The image with imageId {id} does not exist within the repository with name '{}' in the registry with id '{}'",
                    repo.name, repo.account
                ),
            ),
            EcrError::ImageExists { repo, digest, tag: None } => client(
                "ImageAlreadyExistsException",
                format!(
                    "Image with digest '{digest}' already exists in the repository with name '{}' in registry with id '{}'",
                    repo.name, repo.account
                ),
            ),
            EcrError::ImageExists { repo, digest, tag: Some(tag) } => client(
                "ImageAlreadyExistsException",
                format!(
                    "Image with digest '{digest}' and tag '{tag}' already exists in the repository with name '{}' in registry with id '{}'",
                    repo.name, repo.account
                ),
            ),
            EcrError::LayerNotFound { repo, digest } => client(
                "LayersNotFoundException",
                format!(
                    "The image layer '{digest}' does not exist in the repository with name '{}' in the registry with id '{}'",
                    repo.name, repo.account
                ),
            ),
            EcrError::LayerExists { repo, digest } => client(
                "LayerAlreadyExistsException",
                format!(
                    "The image layer '{digest}' already exists in the repository with name '{}' in the registry with id '{}'",
                    repo.name, repo.account
                ),
            ),
            EcrError::LayerDigestMismatch { actual, given } => {
                client("InvalidLayerException", format!("Calculated digest {actual} does not match the digest {given} given"))
            }
            EcrError::UploadNotFound { repo, id } => client(
                "UploadNotFoundException",
                format!(
                    "Upload with id '{id}' does not exist in the repository with name '{}' in the registry with id '{}'",
                    repo.name, repo.account
                ),
            ),
            EcrError::EmptyUpload(id) => client("EmptyUploadException", format!("The upload with id '{id}' contains no layer parts")),
            EcrError::PartOutOfOrder { first, last, have } => client(
                "InvalidLayerPartException",
                format!("The part's first byte {first} and last byte {last} do not follow the {have} bytes received so far"),
            ),
            EcrError::LifecyclePolicyNotFound(r) => client(
                "LifecyclePolicyNotFoundException",
                format!("Lifecycle policy does not exist for the repository with name '{}' in the registry with id '{}'", r.name, r.account),
            ),
            EcrError::RepositoryPolicyNotFound(r) => client(
                "RepositoryPolicyNotFoundException",
                format!("Repository policy does not exist for the repository with name '{}' in the registry with id '{}'", r.name, r.account),
            ),
            EcrError::TooManyTags => client("TooManyTagsException", "A repository can have at most 50 tags".into()),
            EcrError::Invalid(m) => client("InvalidParameterException", m),
        }
    }
}

pub fn repository_not_found(r: &RepoRef) -> AwsError {
    EcrError::RepositoryNotFound(r.clone()).into()
}

/// An image with its tags, as ListImages / DescribeImages show it.
#[derive(Clone, Debug)]
pub struct ImageView {
    pub image: ImageRecord,
    pub tags: Vec<String>,
}

pub struct Ecr {
    pub store: SharedStore,
    pub blobs: Arc<BlobStore>,
}

fn conflict(e: StoreError) -> AwsError {
    match e {
        StoreError::Conflict(..) => EcrError::Contended("the repository changed during the request; retry").into(),
        other => other.into(),
    }
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
        Ok(self
            .store
            .get_as::<Repository>(&r.repos_ns(), &r.name)
            .await?
            .map(|(r, _)| r))
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

    /// Applies `change` to a repository with compare-and-swap (retried on a race).
    pub async fn update_repository<F>(&self, r: &RepoRef, mut change: F) -> AwsResult<Repository>
    where
        F: FnMut(&mut Repository) -> AwsResult<()> + Send,
    {
        for _ in 0..5 {
            let (mut repo, version) = self.repository(r).await?;
            change(&mut repo)?;
            match self
                .store
                .commit(Batch::new().put(r.repos_ns(), &r.name, &repo, Expect::Version(version)))
                .await
            {
                Ok(()) => return Ok(repo),
                Err(StoreError::Conflict(..)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AwsError::internal("repository kept changing; giving up"))
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

    async fn all_docs(&self, ns: &str) -> AwsResult<Vec<String>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list(ns, "", after.as_deref(), 1000).await?;
            let done = page.len() < 1000;
            out.extend(page.iter().map(|d| d.key.clone()));
            after = page.last().map(|d| d.key.clone());
            if done {
                return Ok(out);
            }
        }
    }

    // ---------------------------------------------------------------- layers

    pub async fn layer(&self, r: &RepoRef, digest: &str) -> AwsResult<Option<LayerRecord>> {
        Ok(self
            .store
            .get_as::<LayerRecord>(&r.layers_ns(), digest)
            .await?
            .map(|(l, _)| l))
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
        let rec = self
            .store
            .get_as::<UploadRecord>(UPLOADS_NS, id)
            .await?
            .map(|(u, _)| u);
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

    // ---------------------------------------------------------------- images

    pub async fn image(&self, r: &RepoRef, digest: &str) -> AwsResult<Option<ImageRecord>> {
        Ok(self
            .store
            .get_as::<ImageRecord>(&r.images_ns(), digest)
            .await?
            .map(|(i, _)| i))
    }

    pub async fn tag(&self, r: &RepoRef, tag: &str) -> AwsResult<Option<String>> {
        Ok(self
            .store
            .get_as::<TagRecord>(&r.tags_ns(), tag)
            .await?
            .map(|(t, _)| t.digest))
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

    async fn store_docs<T: serde::de::DeserializeOwned>(
        &self,
        ns: &str,
    ) -> AwsResult<Vec<(String, T)>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list(ns, "", after.as_deref(), 1000).await?;
            let done = page.len() < 1000;
            for d in &page {
                out.push((d.key.clone(), d.parse()?));
            }
            after = page.last().map(|d| d.key.clone());
            if done {
                return Ok(out);
            }
        }
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
        Ok(self
            .store
            .get_as::<TokenRecord>(TOKENS_NS, token)
            .await?
            .map(|(t, _)| t)
            .filter(|t| t.expires_at > now()))
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

pub fn repository_arn(account: &str, region: &str, name: &str) -> String {
    arn("ecr", region, account, &format!("repository/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use codeyard_store::SqliteStore;

    async fn setup(dir: &std::path::Path, mutability: &str) -> (Ecr, RepoRef) {
        let store: SharedStore = Arc::new(SqliteStore::open(&dir.join("state.db")).await.unwrap());
        let blobs = Arc::new(BlobStore::open(dir.join("registry")).unwrap());
        let ecr = Ecr { store, blobs };
        let r = RepoRef::new("000000000000", "eu-west-1", "team/app");
        ecr.create_repository(Repository {
            name: r.name.clone(),
            account: r.account.clone(),
            region: r.region.clone(),
            arn: repository_arn(&r.account, &r.region, &r.name),
            created_at: now(),
            tag_mutability: mutability.into(),
            mutability_exclusions: None,
            scan_on_push: false,
            encryption: json!({"encryptionType": "AES256"}),
            tags: vec![],
            policy: None,
            lifecycle_policy: None,
            lifecycle_evaluated_at: None,
        })
        .await
        .unwrap();
        (ecr, r)
    }

    async fn blob(ecr: &Ecr, r: &RepoRef, bytes: &'static [u8]) -> String {
        let id = ecr.start_upload(r).await.unwrap();
        ecr.blobs
            .append(
                &id,
                futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(bytes))]),
            )
            .await
            .unwrap();
        let d = manifest::sha256_digest(bytes);
        ecr.finish_upload(r, &id, &d).await.unwrap().unwrap();
        d
    }

    fn manifest_for(config: &str, layer: &str, extra: &str) -> Bytes {
        Bytes::from(format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":5}}]{extra}}}"#,
            manifest::OCI_MANIFEST
        ))
    }

    #[tokio::test]
    async fn pushes_raise_events_and_immutable_tags_stay() {
        let dir = tempfile::tempdir().unwrap();
        let (ecr, r) = setup(dir.path(), "IMMUTABLE").await;
        let c = blob(&ecr, &r, b"{}").await;
        let l = blob(&ecr, &r, b"layer").await;
        let (img, events) = ecr
            .put_manifest(&r, manifest_for(&c, &l, ""), None, Some("v1"), None, false)
            .await
            .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event["detail"]["action-type"], "PUSH");
        assert_eq!(events[0].event["detail"]["image-tag"], "v1");
        assert_eq!(events[0].event["detail-type"], "ECR Image Action");
        let queued = ecr
            .store
            .lease(
                codeyard_core::hub::EVENTS_INGRESS_QUEUE,
                10,
                std::time::Duration::from_secs(30),
            )
            .await
            .unwrap();
        assert_eq!(queued.len(), 1, "the event is committed with the image");
        // The same push again is fine; another manifest under the tag is not.
        ecr.put_manifest(&r, manifest_for(&c, &l, ""), None, Some("v1"), None, false)
            .await
            .unwrap();
        let moved = ecr
            .put_manifest(
                &r,
                manifest_for(&c, &l, r#","annotations":{"x":"y"}"#),
                None,
                Some("v1"),
                None,
                false,
            )
            .await;
        assert!(matches!(moved, Err(PutError::TagImmutable(_))));
        assert_eq!(ecr.tag(&r, "v1").await.unwrap(), Some(img.digest.clone()));
        // Missing blobs are refused.
        let missing = ecr
            .put_manifest(
                &r,
                manifest_for(&c, &manifest::sha256_digest(b"nope"), ""),
                None,
                Some("v2"),
                None,
                false,
            )
            .await;
        assert!(matches!(missing, Err(PutError::BlobsMissing(_))));
        // Delete raises DELETE; the blobs then go with garbage collection.
        ecr.delete_image(&r, &img.digest).await.unwrap().unwrap();
        let queued = ecr
            .store
            .lease(
                codeyard_core::hub::EVENTS_INGRESS_QUEUE,
                10,
                std::time::Duration::from_secs(30),
            )
            .await
            .unwrap();
        assert!(
            queued
                .iter()
                .any(|q| q.payload["event"]["detail"]["action-type"] == "DELETE")
        );
        assert_eq!(
            ecr.collect_garbage(chrono::Duration::hours(1))
                .await
                .unwrap(),
            0,
            "recent uploads are kept"
        );
        assert_eq!(
            ecr.collect_garbage(chrono::Duration::zero()).await.unwrap(),
            3
        );
    }
}
