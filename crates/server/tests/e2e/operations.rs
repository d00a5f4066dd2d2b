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

/// Every implemented awsJson/awsQuery operation resolves its IAM resources from an input
/// filled from the model (its required members): no `${...}` left in an ARN, through each
/// registered service's own `access_requests` (generated default or override).
#[tokio::test(flavor = "multi_thread")]
async fn every_implemented_operation_resolves_its_access_requests() {
    let t = TestServer::start().await;
    let server = t.server.as_ref().unwrap();
    let ctx = server.platform.internal_context(ACCOUNT, REGION);
    let mut checked = 0;
    for service in &server.app.registry.aws {
        for op in service.implemented() {
            let input = codeyard_api::access::sample_input(service.model_name(), op);
            let requests = service.access_requests(&ctx, op, &input).await.unwrap();
            // GetCallerIdentity needs no permission; AssumeRole is decided in the call (trust).
            let decided_in_call = service.model_name() == "sts";
            assert!(decided_in_call || !requests.is_empty(), "{}:{op} asks IAM nothing", service.model_name());
            for r in &requests {
                assert!(!r.resource.contains("${"), "{}:{op}: {} on {}", service.model_name(), r.action, r.resource);
                assert!(r.resource == "*" || r.resource.starts_with("arn:aws:"), "{}:{op}: {}", service.model_name(), r.resource);
            }
            checked += 1;
        }
    }
    assert!(checked > 150, "only {checked} operations checked");
    // `codeyard ops --iam` lists each implemented operation once, with its actions.
    let table = codeyard_server::iam_actions_markdown().await.unwrap();
    let rows: Vec<&str> = table.lines().skip(2).collect();
    let implemented: usize = server.app.registry.coverage().iter().filter(|r| r.2).count();
    assert_eq!(rows.len(), implemented);
    assert!(rows.iter().all(|r| r.split('|').nth(3).is_some_and(|a| a.contains(':'))), "{table}");
}
