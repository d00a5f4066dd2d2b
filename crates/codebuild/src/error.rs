//! CodeBuild's domain errors. Domain code says what went wrong; the AWS error code and
//! message are decided once, here (`From<CodeBuildError> for AwsError`), at the edge.

use codeyard_core::AwsError;

#[derive(Debug)]
pub enum CodeBuildError {
    /// A request CodeBuild refuses (InvalidInputException), with its message.
    Invalid(String),
    /// The project's ARN.
    ProjectNotFound(String),
    /// The project's ARN.
    ProjectExists(String),
    BuildNotFound(String),
    /// The report group's name.
    ReportGroupExists(String),
    /// The report group's ARN as given.
    ReportGroupNotFound(String),
    /// The report's ARN as given.
    ReportNotFound(String),
    /// An account or project limit (AccountLimitExceededException), with its message.
    LimitExceeded(String),
    /// Something codeyard itself got wrong (a stored record that does not parse, ...).
    Internal(String),
}

pub type CodeBuildResult<T> = Result<T, CodeBuildError>;

impl From<CodeBuildError> for AwsError {
    fn from(e: CodeBuildError) -> Self {
        use CodeBuildError::*;
        let client = |code: &str, message: String| AwsError::client(code, message);
        match e {
            Invalid(m) => client("InvalidInputException", m),
            ProjectNotFound(arn) => client("ResourceNotFoundException", format!("Project cannot be found: {arn}")),
            ProjectExists(arn) => client("ResourceAlreadyExistsException", format!("Project already exists: {arn}")),
            BuildNotFound(id) => client("ResourceNotFoundException", format!("Build {id} does not exist")),
            ReportGroupExists(name) => {
                client("ResourceAlreadyExistsException", format!("Report group with name {name} already exists"))
            }
            ReportGroupNotFound(arn) => client("ResourceNotFoundException", format!("Report group {arn} does not exist")),
            ReportNotFound(arn) => client("ResourceNotFoundException", format!("Report {arn} does not exist")),
            LimitExceeded(m) => client("AccountLimitExceededException", m),
            Internal(m) => AwsError::internal(m),
        }
    }
}
