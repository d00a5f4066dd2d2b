//! ECS's domain errors, mapped to AWS's codes and messages at the edge.

use codeyard_core::AwsError;
use codeyard_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EcsError {
    #[error("Cluster not found.")]
    ClusterNotFound,
    #[error("Service not found.")]
    ServiceNotFound,
    #[error("Service was not ACTIVE.")]
    ServiceNotActive,
    #[error("Unable to describe task definition.")]
    TaskDefinitionNotFound,
    #[error("The specified task definition does not exist.")]
    TaskDefinitionMissing,
    #[error("TaskDefinition is inactive")]
    TaskDefinitionInactive,
    #[error("The Cluster cannot be deleted while Services are active.")]
    ClusterContainsServices,
    #[error("The Cluster cannot be deleted while Tasks are active.")]
    ClusterContainsTasks,
    #[error("The referenced task was not found.")]
    TaskNotFound,
    #[error("The specified resource is not found.")]
    ResourceNotFound,
    /// InvalidParameterException with AWS's message.
    #[error("{0}")]
    Invalid(String),
    /// ClientException with AWS's message.
    #[error("{0}")]
    Client(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<EcsError> for AwsError {
    fn from(e: EcsError) -> AwsError {
        let code = match &e {
            EcsError::ClusterNotFound => "ClusterNotFoundException",
            EcsError::ServiceNotFound => "ServiceNotFoundException",
            EcsError::ServiceNotActive => "ServiceNotActiveException",
            EcsError::ClusterContainsServices => "ClusterContainsServicesException",
            EcsError::ClusterContainsTasks => "ClusterContainsTasksException",
            EcsError::ResourceNotFound => "ResourceNotFoundException",
            EcsError::TaskDefinitionNotFound
            | EcsError::TaskDefinitionMissing
            | EcsError::TaskDefinitionInactive
            | EcsError::Client(_) => "ClientException",
            EcsError::TaskNotFound | EcsError::Invalid(_) => "InvalidParameterException",
            EcsError::Store(s) => return AwsError::internal(s),
        };
        AwsError::client(code, e.to_string())
    }
}

pub type EcsResult<T> = Result<T, EcsError>;
