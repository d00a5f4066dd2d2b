//! What goes wrong in Parameter Store's domain; `From<SsmError> for AwsError` gives AWS's codes
//! at the edge, each variant's message stands beside it.

use codeyard_core::AwsError;
use codeyard_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SsmError {
    /// No such parameter (AWS answers ParameterNotFound without a message).
    #[error("")]
    NotFound,
    /// The parameter exists but not that version.
    #[error(
        "Systems Manager could not find version {version} of {name}. Verify the version and try again."
    )]
    VersionNotFound { name: String, version: String },
    #[error(
        "The parameter already exists. To overwrite this value, set the overwrite option in the request to true."
    )]
    AlreadyExists,
    /// A name under `/aws/`: AWS's own public parameters.
    #[error("No access to reserved parameter name: {0}.")]
    ReservedName(String),
    #[error(
        "A hierarchy can have a maximum of 15 levels. For more information, see Requirements and constraints for parameter names in the Amazon Web Services Systems Manager User Guide."
    )]
    HierarchyTooDeep,
    #[error("Parameter value, cannot be validated against allowedPattern: {0}")]
    PatternMismatch(String),
    #[error("The allowed pattern {0} is not a valid regular expression.")]
    InvalidAllowedPattern(String),
    /// The 101st version while the oldest carries a label.
    #[error(
        "You attempted to create a new version of {name} by calling the PutParameter API with the overwrite flag. Version {oldest}, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again."
    )]
    MaxVersions { name: String, oldest: i64 },
    #[error(
        "A parameter version can have maximum 10 labels.Move one or more labels to another version and try again."
    )]
    LabelLimit,
    #[error("The resource ID \"{0}\" is not valid. Verify the ID and try again.")]
    InvalidResourceId(String),
    #[error(
        "The resource type \"{0}\" is not valid: codeyard keeps tags on resource type Parameter only."
    )]
    InvalidResourceType(String),
    #[error("The Tag Limit has been exceeded for this resource (50 tags).")]
    TooManyTags,
    #[error("{0}")]
    InvalidFilterKey(String),
    #[error("{0}")]
    InvalidFilterOption(String),
    #[error("{0}")]
    InvalidFilterValue(String),
    #[error("The specified token is not valid.")]
    InvalidNextToken,
    /// A request Parameter Store refuses (ValidationException), with its message.
    #[error("{0}")]
    Invalid(String),
    /// KMS refused or failed (its own error, passed through).
    #[error("{0:?}")]
    Kms(AwsError),
    /// Another writer changed the parameter between the read and the write, every attempt.
    #[error("There are concurrent updates for a resource that supports one update at a time.")]
    Contended,
    #[error(transparent)]
    Store(StoreError),
}

pub type SsmResult<T> = Result<T, SsmError>;

pub(crate) fn invalid(message: impl Into<String>) -> SsmError {
    SsmError::Invalid(message.into())
}

codeyard_core::wrap_error!(StoreError => SsmError::Store);

impl From<SsmError> for AwsError {
    fn from(e: SsmError) -> Self {
        let code = match e {
            SsmError::Kms(e) => return e,
            SsmError::Store(e) => return e.into(),
            SsmError::Invalid(m) => return AwsError::validation(m),
            SsmError::NotFound => "ParameterNotFound",
            SsmError::VersionNotFound { .. } => "ParameterVersionNotFound",
            SsmError::AlreadyExists => "ParameterAlreadyExists",
            SsmError::ReservedName(_) => "AccessDeniedException",
            SsmError::HierarchyTooDeep => "HierarchyLevelLimitExceededException",
            SsmError::PatternMismatch(_) => "ParameterPatternMismatchException",
            SsmError::InvalidAllowedPattern(_) => "InvalidAllowedPatternException",
            SsmError::MaxVersions { .. } => "ParameterMaxVersionLimitExceeded",
            SsmError::LabelLimit => "ParameterVersionLabelLimitExceeded",
            SsmError::InvalidResourceId(_) => "InvalidResourceId",
            SsmError::InvalidResourceType(_) => "InvalidResourceType",
            SsmError::TooManyTags => "TooManyTagsError",
            SsmError::InvalidFilterKey(_) => "InvalidFilterKey",
            SsmError::InvalidFilterOption(_) => "InvalidFilterOption",
            SsmError::InvalidFilterValue(_) => "InvalidFilterValue",
            SsmError::InvalidNextToken => "InvalidNextToken",
            SsmError::Contended => "TooManyUpdates",
        };
        AwsError::client(code, e.to_string())
    }
}
