//! CodePipeline's AWS errors, in one leaf module every other module may use (the API, the
//! EventBridge target and the engine answer the same ones).
//!
//! Store errors: a failed condition of a batch ([`StoreError::Conflict`]) means something
//! only to the operation that set the condition, so each maps it to its own AWS error with
//! [`on_conflict`]; every other store error is unexpected and becomes the one 500
//! `InternalFailure` of `From<StoreError> for AwsError` (the dispatcher logs every 5xx with
//! its cause).

use codeyard_core::AwsError;
use codeyard_store::StoreError;

pub fn pipeline_not_found(account: &str, name: &str) -> AwsError {
    AwsError::client(
        "PipelineNotFoundException",
        format!("Account '{account}' does not have a pipeline with name '{name}'"),
    )
}

pub fn pipeline_name_in_use(account: &str, name: &str) -> AwsError {
    AwsError::client(
        "PipelineNameInUseException",
        format!("A pipeline with the name '{name}' already exists in account '{account}'"),
    )
}

pub fn execution_not_found(pipeline: &str, id: &str) -> AwsError {
    AwsError::client(
        "PipelineExecutionNotFoundException",
        format!("Pipeline execution ID {id} does not exist in pipeline {pipeline}"),
    )
}

pub fn stage_not_found(pipeline: &str, stage: &str) -> AwsError {
    AwsError::client("StageNotFoundException", format!("Stage {stage} does not exist in pipeline {pipeline}"))
}

/// A store commit's result: a conflict becomes `conflict()`, anything else the 500.
pub fn on_conflict<T>(
    result: Result<T, StoreError>,
    conflict: impl FnOnce() -> AwsError,
) -> Result<T, AwsError> {
    result.map_err(|e| match e {
        StoreError::Conflict(..) => conflict(),
        other => AwsError::from(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_conflict_takes_the_operations_error() {
        let conflict = || pipeline_name_in_use("1", "p");
        let e = on_conflict::<()>(Err(StoreError::Conflict("ns".into(), "k".into())), conflict);
        assert_eq!(e.unwrap_err().code, "PipelineNameInUseException");
        let e = on_conflict::<()>(Err(StoreError::Backend("disk full".into())), conflict);
        let e = e.unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (500, "InternalFailure"));
        assert!(e.message.contains("disk full"), "{}", e.message);
    }
}
