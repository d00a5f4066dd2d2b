//! The operations table: what services implement comes from their generated `codeyard_api`
//! trait impls, and every implemented operation has an IAM action to authorize it with.

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn every_implemented_operation_has_an_iam_action() {
    let missing = codeyard_server::implemented_operations_without_iam_action().await.unwrap();
    assert!(missing.is_empty(), "implemented operations without an IAM action in crates/codegen/data: {missing:?}");
}

/// An operation of the model the service's trait impl does not define answers
/// UnknownOperationException (400), from the trait's default method.
#[tokio::test(flavor = "multi_thread")]
async fn an_operation_the_trait_impl_leaves_out_is_unknown() {
    let t = TestServer::start().await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&t.sdk_config().await);
    let err = logs.start_query().log_group_name("g").start_time(0).end_time(1).query_string("fields @message").send().await.unwrap_err();
    let service_err = err.into_service_error();
    assert_eq!(aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata::code(&service_err), Some("UnknownOperationException"));
    t.assert_no_model_violations();
}
