//! ECR's failures, named without wire codes; the ECR API edge gives each its AWS code once.

use super::records::RepoRef;
use codeyard_core::AwsError;
use codeyard_store::StoreError;

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

/// A single conditional write that lost a race (a retry loop answers `Contended` instead).
pub(super) fn conflict(e: StoreError) -> AwsError {
    match e {
        StoreError::Conflict(..) => EcrError::Contended("the repository changed during the request; retry").into(),
        other => other.into(),
    }
}
