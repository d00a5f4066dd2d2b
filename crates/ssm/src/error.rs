//! What goes wrong in Parameter Store's domain; `From<SsmError> for AwsError` gives AWS's codes
//! and messages at the edge.

use codeyard_core::AwsError;
use codeyard_store::StoreError;

#[derive(Debug)]
pub enum SsmError {
    /// No such parameter (AWS answers ParameterNotFound without a message).
    NotFound,
    /// The parameter exists but not that version.
    VersionNotFound {
        name: String,
        version: String,
    },
    AlreadyExists,
    /// A name under `/aws/`: AWS's own public parameters.
    ReservedName(String),
    HierarchyTooDeep,
    PatternMismatch(String),
    InvalidAllowedPattern(String),
    /// The 101st version while the oldest carries a label.
    MaxVersions {
        name: String,
        oldest: i64,
    },
    LabelLimit,
    InvalidResourceId(String),
    InvalidResourceType(String),
    TooManyTags,
    InvalidFilterKey(String),
    InvalidFilterOption(String),
    InvalidFilterValue(String),
    InvalidNextToken,
    /// A request Parameter Store refuses (ValidationException), with its message.
    Invalid(String),
    /// KMS refused or failed (its own error, passed through).
    Kms(AwsError),
    /// Another writer changed the parameter between the read and the write, every attempt.
    Contended,
    Store(StoreError),
}

pub type SsmResult<T> = Result<T, SsmError>;

pub(crate) fn invalid(message: impl Into<String>) -> SsmError {
    SsmError::Invalid(message.into())
}

codeyard_core::wrap_error!(StoreError => SsmError::Store);

impl From<SsmError> for AwsError {
    fn from(e: SsmError) -> Self {
        fn c(code: &str, message: impl Into<String>) -> AwsError {
            AwsError::client(code, message)
        }
        match e {
            SsmError::NotFound => c("ParameterNotFound", ""),
            SsmError::VersionNotFound { name, version } => c(
                "ParameterVersionNotFound",
                format!(
                    "Systems Manager could not find version {version} of {name}. Verify the version and try again."
                ),
            ),
            SsmError::AlreadyExists => c(
                "ParameterAlreadyExists",
                "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
            ),
            SsmError::ReservedName(name) => c(
                "AccessDeniedException",
                format!("No access to reserved parameter name: {name}."),
            ),
            SsmError::HierarchyTooDeep => c(
                "HierarchyLevelLimitExceededException",
                "A hierarchy can have a maximum of 15 levels. For more information, see Requirements and constraints for parameter names in the Amazon Web Services Systems Manager User Guide.",
            ),
            SsmError::PatternMismatch(p) => c(
                "ParameterPatternMismatchException",
                format!("Parameter value, cannot be validated against allowedPattern: {p}"),
            ),
            SsmError::InvalidAllowedPattern(p) => c(
                "InvalidAllowedPatternException",
                format!("The allowed pattern {p} is not a valid regular expression."),
            ),
            SsmError::MaxVersions { name, oldest } => c(
                "ParameterMaxVersionLimitExceeded",
                format!(
                    "You attempted to create a new version of {name} by calling the PutParameter API with the overwrite flag. Version {oldest}, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again."
                ),
            ),
            SsmError::LabelLimit => c(
                "ParameterVersionLabelLimitExceeded",
                "A parameter version can have maximum 10 labels.Move one or more labels to another version and try again.",
            ),
            SsmError::InvalidResourceId(id) => c(
                "InvalidResourceId",
                format!("The resource ID \"{id}\" is not valid. Verify the ID and try again."),
            ),
            SsmError::InvalidResourceType(t) => c(
                "InvalidResourceType",
                format!(
                    "The resource type \"{t}\" is not valid: codeyard keeps tags on resource type Parameter only."
                ),
            ),
            SsmError::TooManyTags => c(
                "TooManyTagsError",
                "The Tag Limit has been exceeded for this resource (50 tags).",
            ),
            SsmError::InvalidFilterKey(m) => c("InvalidFilterKey", m),
            SsmError::InvalidFilterOption(m) => c("InvalidFilterOption", m),
            SsmError::InvalidFilterValue(m) => c("InvalidFilterValue", m),
            SsmError::InvalidNextToken => {
                c("InvalidNextToken", "The specified token is not valid.")
            }
            SsmError::Invalid(m) => AwsError::validation(m),
            SsmError::Kms(e) => e,
            SsmError::Contended => c(
                "TooManyUpdates",
                "There are concurrent updates for a resource that supports one update at a time.",
            ),
            SsmError::Store(e) => e.into(),
        }
    }
}
