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

/// `the repository with name 'app' in the registry with id '123456789012'`, as most of ECR's
/// messages name a repository.
fn the_repository(r: &RepoRef) -> String {
    format!("the repository with name '{}' in the registry with id '{}'", r.name, r.account)
}

impl From<EcrError> for AwsError {
    fn from(e: EcrError) -> Self {
        let (code, message) = match e {
            EcrError::RepositoryNotFound(r) => (
                "RepositoryNotFoundException",
                format!("The repository with name '{}' does not exist in the registry with id '{}'", r.name, r.account),
            ),
            EcrError::RepositoryExists(r) => (
                "RepositoryAlreadyExistsException",
                format!("The repository with name '{}' already exists in the registry with id '{}'", r.name, r.account),
            ),
            EcrError::RepositoryNotEmpty(r) => (
                "RepositoryNotEmptyException",
                format!(
                    "The repository with name '{}' in registry with id '{}' cannot be deleted because it still contains images",
                    r.name, r.account
                ),
            ),
            EcrError::Contended(message) => ("ConcurrentModification", message.into()),
            EcrError::ImageNotFound { repo, id } => (
                "ImageNotFoundException",
                format!("The image with imageId {id} does not exist within {}", the_repository(&repo)),
            ),
            EcrError::ImageExists { repo, digest, tag } => (
                "ImageAlreadyExistsException",
                format!(
                    "Image with digest '{digest}'{} already exists in the repository with name '{}' in registry with id '{}'",
                    tag.map(|t| format!(" and tag '{t}'")).unwrap_or_default(),
                    repo.name,
                    repo.account
                ),
            ),
            EcrError::LayerNotFound { repo, digest } => (
                "LayersNotFoundException",
                format!("The image layer '{digest}' does not exist in {}", the_repository(&repo)),
            ),
            EcrError::LayerExists { repo, digest } => (
                "LayerAlreadyExistsException",
                format!("The image layer '{digest}' already exists in {}", the_repository(&repo)),
            ),
            EcrError::LayerDigestMismatch { actual, given } => {
                ("InvalidLayerException", format!("Calculated digest {actual} does not match the digest {given} given"))
            }
            EcrError::UploadNotFound { repo, id } => (
                "UploadNotFoundException",
                format!("Upload with id '{id}' does not exist in {}", the_repository(&repo)),
            ),
            EcrError::EmptyUpload(id) => ("EmptyUploadException", format!("The upload with id '{id}' contains no layer parts")),
            EcrError::PartOutOfOrder { first, last, have } => (
                "InvalidLayerPartException",
                format!("The part's first byte {first} and last byte {last} do not follow the {have} bytes received so far"),
            ),
            EcrError::LifecyclePolicyNotFound(r) => {
                ("LifecyclePolicyNotFoundException", format!("Lifecycle policy does not exist for {}", the_repository(&r)))
            }
            EcrError::RepositoryPolicyNotFound(r) => {
                ("RepositoryPolicyNotFoundException", format!("Repository policy does not exist for {}", the_repository(&r)))
            }
            EcrError::TooManyTags => ("TooManyTagsException", "A repository can have at most 50 tags".into()),
            EcrError::Invalid(m) => ("InvalidParameterException", m),
        };
        AwsError::client(code, message)
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
