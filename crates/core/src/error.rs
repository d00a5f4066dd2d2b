//! AWS-shaped errors. Every service answers failures with an [`AwsError`]; the wire crate renders
//! it as `{"__type","message"}` (awsJson), `<ErrorResponse>` (awsQuery) or `<Error>` (rest-xml).

use std::fmt;

/// An error as AWS reports it: a code such as `RepositoryDoesNotExistException`, a message and
/// an HTTP status. `sender_fault` selects `Sender`/`Receiver` in awsQuery error bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsError {
    pub code: String,
    pub message: String,
    pub status: u16,
}

pub type AwsResult<T> = Result<T, AwsError>;

impl AwsError {
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        AwsError { code: code.into(), message: message.into(), status }
    }
    /// 400 with the given code: the usual client error.
    pub fn client(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::client("ValidationException", message)
    }
    pub fn not_found(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::client(code, message)
    }
    /// The answer for an operation codeyard does not implement: a 4xx at once, never a 5xx
    /// (clients retry 5xx for minutes).
    pub fn unknown_operation(service: &str, operation: &str) -> Self {
        Self::client(
            "UnknownOperationException",
            format!("codeyard does not implement {service} operation {operation}"),
        )
    }
    /// A failure inside codeyard itself (a store error, an I/O error). 500.
    pub fn internal(message: impl fmt::Display) -> Self {
        Self::new(500, "InternalFailure", message.to_string())
    }
    pub fn is_sender_fault(&self) -> bool {
        self.status < 500
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for AwsError {}

impl From<std::io::Error> for AwsError {
    fn from(e: std::io::Error) -> Self {
        AwsError::internal(e)
    }
}

impl From<serde_json::Error> for AwsError {
    fn from(e: serde_json::Error) -> Self {
        AwsError::internal(format!("serialization: {e}"))
    }
}

/// `impl From<$source> for $enum`, wrapping the source in the variant named, so `?` turns a
/// lower layer's error (the store's) into a crate's domain error:
/// `codeyard_core::wrap_error!(StoreError => KmsError::Store);`
#[macro_export]
macro_rules! wrap_error {
    ($source:ty => $enum:ident::$variant:ident) => {
        impl From<$source> for $enum {
            fn from(e: $source) -> Self {
                $enum::$variant(e)
            }
        }
    };
}
