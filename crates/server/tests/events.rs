//! EventBridge end to end: the API through aws-sdk-rust and the aws CLI, the AWS-validated
//! pattern conformance cases through TestEventPattern, delivery with exact bodies, retries,
//! restarts (graceful and kill -9), scheduled rules, and Terraform.

mod common;
use common::*;

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::types::{InputTransformer, PutEventsRequestEntry, RuleState, Tag, Target};
use codeyard_core::hub::{BusEvent, EVENTS_INGRESS_QUEUE, TargetInvocation, TargetInvoker};
use codeyard_core::{AwsError, AwsResult};
use codeyard_store::{Batch, StateStore};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn client(t: &TestServer) -> Client {
    Client::new(&t.sdk_config().await)
}

fn code<E: ProvideErrorMetadata>(e: &E) -> (String, String) {
    (
        e.code().unwrap_or("").to_string(),
        e.message().unwrap_or("").to_string(),
    )
}

/// Recent deliveries for a rule from the observability endpoint.
async fn deliveries(endpoint: &str, rule: &str) -> Vec<Value> {
    let body: Value = reqwest::get(format!(
        "{endpoint}/_codeyard/events/deliveries?rule={rule}"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    body["deliveries"].as_array().cloned().unwrap_or_default()
}

/// Waits until `pred` holds for the rule's deliveries (or fails after `secs`).
async fn wait_deliveries(
    endpoint: &str,
    rule: &str,
    secs: u64,
    pred: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let d = deliveries(endpoint, rule).await;
        if pred(&d) {
            return d;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deliveries for {rule} never satisfied the condition: {d:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn codecommit_event(branch: &str, commit: &str) -> Value {
    json!({
        "version": "0",
        "id": format!("11111111-2222-3333-4444-{:012}", commit.len() + branch.len()),
        "detail-type": "CodeCommit Repository State Change",
        "source": "aws.codecommit",
        "account": ACCOUNT,
        "time": "2026-01-02T03:04:05Z",
        "region": REGION,
        "resources": [format!("arn:aws:codecommit:{REGION}:{ACCOUNT}:demo-repo")],
        "detail": {
            "callerUserArn": format!("arn:aws:iam::{ACCOUNT}:root"),
            "commitId": commit,
            "event": "referenceUpdated",
            "oldCommitId": "0000000000000000000000000000000000000001",
            "referenceFullName": format!("refs/heads/{branch}"),
            "referenceName": branch,
            "referenceType": "branch",
            "repositoryId": "a7c4fd0c-0000-4000-8000-000000000000",
            "repositoryName": "demo-repo"
        }
    })
}

const PUSH_PATTERN: &str = r#"{"source":["aws.codecommit"],"detail-type":["CodeCommit Repository State Change"],"resources":["arn:aws:codecommit:eu-west-1:000000000000:demo-repo"],"detail":{"event":["referenceCreated","referenceUpdated"],"referenceType":["branch"],"referenceName":["master"]}}"#;

// ------------------------------------------------------------------------------ conformance

fn conformance_dir() -> std::path::PathBuf {
    let manifest = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .flat_map(|b| {
            [
                b.join("shared/conformance/event-patterns"),
                b.join("../shared/conformance/event-patterns"),
            ]
        })
        .find(|p| p.is_dir())
        .expect("shared/conformance/event-patterns")
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_cases_through_test_event_pattern() {
    let t = TestServer::start().await;
    let c = client(&t).await;
    let dir = conformance_dir();
    let snapshot: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("aws-recorded-results.snapshot.json")).unwrap(),
    )
    .unwrap();
    let mut cases: Vec<(String, String, String)> = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if let Some(case) = name.strip_suffix(".json5") {
            let doc: Value = json5::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            cases.push((
                case.to_string(),
                doc["Event"].to_string(),
                doc["EventPattern"].to_string(),
            ));
        }
    }
    // Read as raw text: a JSON5 loader would collapse its duplicate key.
    cases.push((
        "complex_multi_key".into(),
        std::fs::read_to_string(dir.join("complex_multi_key_event.json")).unwrap(),
        std::fs::read_to_string(dir.join("complex_multi_key_event_pattern.json")).unwrap(),
    ));
    assert!(cases.len() >= 150, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (case, event, pattern) in &cases {
        let r = c
            .test_event_pattern()
            .event(event)
            .event_pattern(pattern)
            .send()
            .await;
        match (case.ends_with("_EXC"), r) {
            (true, Ok(_)) => {
                failures.push(format!("{case}: expected InvalidEventPatternException"))
            }
            (true, Err(e)) => {
                let (code, msg) = code(&e);
                if code != "InvalidEventPatternException" {
                    failures.push(format!("{case}: {code} {msg}"));
                }
                let key = format!(
                    "tests/aws/services/events/test_events_patterns.py::TestEventPattern::test_event_pattern[{case}]"
                );
                if let Some(want) =
                    snapshot[&key]["recorded-content"][case.as_str()]["exception_message"]["Error"]
                        ["Message"]
                        .as_str()
                {
                    if msg != want {
                        failures.push(format!("{case}: message {msg:?}, AWS: {want:?}"));
                    }
                }
            }
            (false, Ok(out)) => {
                let want = !case.ends_with("_NEG");
                if out.result() != want {
                    failures.push(format!("{case}: Result {} expected {want}", out.result()));
                }
            }
            (false, Err(e)) => failures.push(format!("{case}: {:?}", code(&e))),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from AWS:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // The event must be a JSON object.
    let e = c
        .test_event_pattern()
        .event("[1]")
        .event_pattern(r#"{"a":["b"]}"#)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&e),
        (
            "ValidationException".into(),
            "Parameter Event is not valid.".into()
        )
    );
    t.assert_no_model_violations();
}

// --------------------------------------------------------------------------------------- API

#[tokio::test(flavor = "multi_thread")]
async fn rules_targets_buses_tags_and_errors() {
    let t = TestServer::start().await;
    let c = client(&t).await;

    // PutRule / DescribeRule.
    let arn = c
        .put_rule()
        .name("on-push")
        .event_pattern(PUSH_PATTERN)
        .description("starts the pipeline")
        .tags(Tag::builder().key("team").value("ci").build().unwrap())
        .send()
        .await
        .unwrap()
        .rule_arn
        .unwrap();
    assert_eq!(
        arn,
        format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/on-push")
    );
    let d = c.describe_rule().name("on-push").send().await.unwrap();
    assert_eq!(d.event_pattern(), Some(PUSH_PATTERN));
    assert_eq!(d.state(), Some(&RuleState::Enabled));
    assert_eq!(d.event_bus_name(), Some("default"));
    assert_eq!(d.description(), Some("starts the pipeline"));
    let e = c.describe_rule().name("nope").send().await.unwrap_err();
    assert_eq!(
        code(&e),
        (
            "ResourceNotFoundException".into(),
            "Rule nope does not exist on EventBus default.".into()
        )
    );

    // Bad input changes nothing.
    let e = c
        .put_rule()
        .name("bad")
        .event_pattern(r#"{"source":"aws.s3"}"#)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&e),
        (
            "InvalidEventPatternException".into(),
            "Event pattern is not valid. Reason: \"source\" must be an object or an array".into()
        )
    );
    let e = c
        .put_rule()
        .name("bad")
        .schedule_expression("rate(1 minutes)")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&e),
        (
            "ValidationException".into(),
            "Parameter ScheduleExpression is not valid.".into()
        )
    );
    let e = c.put_rule().name("bad").send().await.unwrap_err();
    assert_eq!(code(&e).0, "ValidationException");
    assert!(c.describe_rule().name("bad").send().await.is_err());

    // Disable / enable.
    c.disable_rule().name("on-push").send().await.unwrap();
    assert_eq!(
        c.describe_rule()
            .name("on-push")
            .send()
            .await
            .unwrap()
            .state(),
        Some(&RuleState::Disabled)
    );
    c.enable_rule().name("on-push").send().await.unwrap();
    assert_eq!(
        c.describe_rule()
            .name("on-push")
            .send()
            .await
            .unwrap()
            .state(),
        Some(&RuleState::Enabled)
    );
    assert_eq!(
        code(&c.enable_rule().name("nope").send().await.unwrap_err()).0,
        "ResourceNotFoundException"
    );

    // Targets, with per-entry failures.
    let pipeline = format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:demo");
    let out = c
        .put_targets()
        .rule("on-push")
        .targets(
            Target::builder()
                .id("pipe")
                .arn(&pipeline)
                .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/events"))
                .build()
                .unwrap(),
        )
        .targets(
            Target::builder()
                .id("broken")
                .arn("not-an-arn")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_entry_count(), 1);
    assert_eq!(out.failed_entries()[0].target_id(), Some("broken"));
    let targets = c
        .list_targets_by_rule()
        .rule("on-push")
        .send()
        .await
        .unwrap();
    assert_eq!(targets.targets().len(), 1);
    assert_eq!(targets.targets()[0].arn(), pipeline);
    assert_eq!(
        targets.targets()[0].role_arn(),
        Some(format!("arn:aws:iam::{ACCOUNT}:role/events").as_str())
    );
    let names = c
        .list_rule_names_by_target()
        .target_arn(&pipeline)
        .send()
        .await
        .unwrap();
    assert_eq!(names.rule_names(), ["on-push"]);
    let e = c
        .put_targets()
        .rule("nope")
        .targets(Target::builder().id("a").arn(&pipeline).build().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).0, "ResourceNotFoundException");

    // DeleteRule is refused while targets remain.
    let e = c.delete_rule().name("on-push").send().await.unwrap_err();
    assert_eq!(
        code(&e),
        (
            "ValidationException".into(),
            "Rule can't be deleted since it has targets.".into()
        )
    );

    // Tags.
    c.tag_resource()
        .resource_arn(&arn)
        .tags(Tag::builder().key("env").value("dev").build().unwrap())
        .send()
        .await
        .unwrap();
    c.untag_resource()
        .resource_arn(&arn)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let tags = c
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags.tags()
            .iter()
            .map(|t| (t.key(), t.value()))
            .collect::<Vec<_>>(),
        vec![("env", "dev")]
    );
    let e = c
        .list_tags_for_resource()
        .resource_arn(format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/ghost"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).0, "ResourceNotFoundException");

    // Paging through ListRules.
    for i in 0..5 {
        c.put_rule()
            .name(format!("page-{i}"))
            .schedule_expression("rate(5 minutes)")
            .send()
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = c
            .list_rules()
            .name_prefix("page-")
            .limit(2)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        seen.extend(page.rules().iter().map(|r| r.name().unwrap().to_string()));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(
        seen,
        (0..5).map(|i| format!("page-{i}")).collect::<Vec<_>>()
    );

    // Remove targets, then delete.
    c.remove_targets()
        .rule("on-push")
        .ids("pipe")
        .send()
        .await
        .unwrap();
    c.delete_rule().name("on-push").send().await.unwrap();
    c.delete_rule().name("on-push").send().await.unwrap(); // deleting again is fine, as on AWS
    assert!(c.describe_rule().name("on-push").send().await.is_err());

    // Buses.
    let bus_arn = c
        .create_event_bus()
        .name("orders")
        .send()
        .await
        .unwrap()
        .event_bus_arn
        .unwrap();
    assert_eq!(
        bus_arn,
        format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/orders")
    );
    assert_eq!(
        code(
            &c.create_event_bus()
                .name("orders")
                .send()
                .await
                .unwrap_err()
        )
        .0,
        "ResourceAlreadyExistsException"
    );
    let d = c.describe_event_bus().name("orders").send().await.unwrap();
    assert_eq!(d.arn(), Some(bus_arn.as_str()));
    assert!(d.creation_time().is_some());
    assert_eq!(
        c.describe_event_bus().send().await.unwrap().name(),
        Some("default")
    );
    let buses = c.list_event_buses().send().await.unwrap();
    assert_eq!(
        buses
            .event_buses()
            .iter()
            .map(|b| b.name().unwrap())
            .collect::<Vec<_>>(),
        vec!["default", "orders"]
    );
    let rule_on_bus = c
        .put_rule()
        .name("big")
        .event_bus_name("orders")
        .event_pattern(r#"{"source":["shop"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        rule_on_bus.rule_arn(),
        Some(format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/orders/big").as_str())
    );
    let e = c
        .put_rule()
        .name("sched")
        .event_bus_name("orders")
        .schedule_expression("rate(5 minutes)")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).0, "ValidationException");
    let e = c
        .put_rule()
        .name("x")
        .event_bus_name("ghost")
        .event_pattern(r#"{"source":["a"]}"#)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&e),
        (
            "ResourceNotFoundException".into(),
            "Event bus ghost does not exist.".into()
        )
    );
    assert_eq!(
        code(
            &c.delete_event_bus()
                .name("default")
                .send()
                .await
                .unwrap_err()
        )
        .0,
        "ValidationException"
    );
    c.delete_event_bus().name("orders").send().await.unwrap();
    assert_eq!(
        code(
            &c.describe_event_bus()
                .name("orders")
                .send()
                .await
                .unwrap_err()
        )
        .0,
        "ResourceNotFoundException"
    );

    // PutEvents: per-entry results.
    let out = c
        .put_events()
        .entries(
            PutEventsRequestEntry::builder()
                .source("app")
                .detail_type("t")
                .detail(r#"{"a":1}"#)
                .build(),
        )
        .entries(
            PutEventsRequestEntry::builder()
                .source("app")
                .detail_type("t")
                .detail("not json")
                .build(),
        )
        .entries(
            PutEventsRequestEntry::builder()
                .detail_type("t")
                .detail("{}")
                .build(),
        )
        .entries(
            PutEventsRequestEntry::builder()
                .source("app")
                .detail_type("t")
                .detail("{}")
                .event_bus_name("ghost")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_entry_count(), 3);
    assert!(out.entries()[0].event_id().is_some());
    assert_eq!(out.entries()[1].error_code(), Some("MalformedDetail"));
    assert_eq!(out.entries()[2].error_code(), Some("InvalidArgument"));
    assert_eq!(
        out.entries()[3].error_code(),
        Some("ResourceNotFoundException")
    );

    // An operation not implemented is a 4xx naming it.
    let e = c.list_archives().send().await.unwrap_err();
    assert_eq!(code(&e).0, "UnknownOperationException");

    // The aws CLI sees the same.
    let (ok, out, err) = aws_cli(
        &t.endpoint,
        &[
            "events",
            "test-event-pattern",
            "--event-pattern",
            r#"{"source":["a"]}"#,
            "--event",
            r#"{"id":"1","source":"a","detail-type":"t","account":"1","region":"r","time":"2020-01-01T00:00:00Z"}"#,
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["Result"], true);
    let (ok, _, err) = aws_cli(&t.endpoint, &["events", "describe-rule", "--name", "ghost"]);
    assert!(!ok && err.contains("ResourceNotFoundException"), "{err}");
    t.assert_no_model_violations();
}

// ---------------------------------------------------------------------------------- delivery

/// A test target kind: records what it was given; fails the first `fail_first` calls.
struct RecordingTarget {
    calls: Mutex<Vec<TargetInvocation>>,
    fail_first: usize,
}

impl TargetInvoker for RecordingTarget {
    // The async_trait signature, written out (this crate does not depend on async-trait).
    fn invoke<'a, 'b, 'f>(
        &'a self,
        inv: &'b TargetInvocation,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = AwsResult<String>> + Send + 'f>>
    where
        'a: 'f,
        'b: 'f,
    {
        Box::pin(async move {
            let mut calls = self.calls.lock().unwrap();
            calls.push(inv.clone());
            if calls.len() <= self.fail_first {
                return Err(AwsError::internal("temporarily unavailable"));
            }
            Ok(format!("started execution {}", calls.len()))
        })
    }
}

async fn publish(t: &TestServer, ev: Value, bus: &str) {
    let platform = &t.server.as_ref().unwrap().platform;
    let be = BusEvent {
        account: ACCOUNT.into(),
        region: REGION.into(),
        bus: bus.into(),
        event: ev,
    };
    platform
        .store
        .commit(Batch::new().enqueue(EVENTS_INGRESS_QUEUE, be))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn codecommit_push_is_delivered_with_its_exact_body() {
    let t = TestServer::start().await;
    let c = client(&t).await;
    let hub = t.server.as_ref().unwrap().platform.hub.clone();
    // "lambda" is not a kind codeyard runs: a test invoker stands in (retried twice first).
    let recorder = Arc::new(RecordingTarget {
        calls: Mutex::new(Vec::new()),
        fail_first: 2,
    });
    hub.register_target("lambda", recorder.clone());

    c.put_rule()
        .name("on-push")
        .event_pattern(PUSH_PATTERN)
        .send()
        .await
        .unwrap();
    let role = format!("arn:aws:iam::{ACCOUNT}:role/events");
    c.put_targets()
        .rule("on-push")
        .targets(Target::builder().id("whole").arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:q")).build().unwrap())
        .targets(
            Target::builder()
                .id("shaped")
                .arn(format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"))
                .role_arn(&role)
                .input_transformer(
                    InputTransformer::builder()
                        .input_paths_map("repo", "$.detail.repositoryName")
                        .input_paths_map("commit", "$.detail.commitId")
                        .input_template(r#"{"sourceVersion": <commit>, "note": "push to <repo> by rule <aws.events.rule-name>"}"#)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let ev = codecommit_event("master", "a1b2c3");
    publish(&t, ev.clone(), "default").await;
    publish(&t, codecommit_event("feature-x", "ffff"), "default").await; // excluded branch

    // The SQS target is recorded as not supported, with the exact event as its body.
    let d = wait_deliveries(&t.endpoint, "on-push", 20, |d| {
        d.iter()
            .any(|x| x["targetId"] == "whole" || x["target_id"] == "whole")
    })
    .await;
    let whole: Vec<&Value> = d.iter().filter(|x| x["target_id"] == "whole").collect();
    assert_eq!(whole.len(), 1, "{d:#?}");
    assert_eq!(whole[0]["status"], "failed");
    assert!(
        whole[0]["detail"]
            .as_str()
            .unwrap()
            .contains("target type not supported by codeyard"),
        "{d:#?}"
    );
    assert_eq!(
        whole[0]["input"], ev,
        "the delivered body is the event, byte for byte"
    );

    // The test target: retried with backoff (1 s, 2 s), then delivered, transformed.
    let d = wait_deliveries(&t.endpoint, "on-push", 30, |d| {
        d.iter()
            .any(|x| x["target_id"] == "shaped" && x["status"] == "delivered")
    })
    .await;
    let shaped: Vec<&Value> = d.iter().filter(|x| x["target_id"] == "shaped").collect();
    assert_eq!(
        shaped.iter().filter(|x| x["status"] == "retrying").count(),
        2,
        "{shaped:#?}"
    );
    let calls = recorder.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    let last = calls.last().unwrap();
    assert_eq!(
        last.input,
        json!({"sourceVersion": "a1b2c3", "note": "push to demo-repo by rule on-push"})
    );
    assert_eq!(
        last.rule_arn,
        format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/on-push")
    );
    assert_eq!(last.role_arn.as_deref(), Some(role.as_str()));
    // Nothing for the excluded branch.
    assert!(calls.iter().all(|c| c.input["sourceVersion"] == "a1b2c3"));
    assert!(
        deliveries(&t.endpoint, "on-push")
            .await
            .iter()
            .all(|x| x["event_id"] == ev["id"])
    );

    // Disabled rules deliver nothing; PutEvents takes the same path as service events.
    c.disable_rule().name("on-push").send().await.unwrap();
    publish(&t, codecommit_event("master", "second"), "default").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(recorder.calls.lock().unwrap().len(), 3);
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn put_events_forwarding_between_buses_and_input_shapes() {
    let t = TestServer::start().await;
    let c = client(&t).await;
    c.create_event_bus().name("audit").send().await.unwrap();
    let audit_arn = format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/audit");
    c.put_rule()
        .name("fwd")
        .event_pattern(r#"{"source":["shop"],"detail":{"total":[{"numeric":[">",100]}]}}"#)
        .send()
        .await
        .unwrap();
    c.put_targets()
        .rule("fwd")
        .targets(
            Target::builder()
                .id("to-audit")
                .arn(&audit_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    c.put_rule()
        .name("big")
        .event_bus_name("audit")
        .event_pattern(r#"{"source":["shop"]}"#)
        .send()
        .await
        .unwrap();
    c.put_targets()
        .rule("big")
        .event_bus_name("audit")
        .targets(
            Target::builder()
                .id("path")
                .arn(format!("arn:aws:sns:{REGION}:{ACCOUNT}:t"))
                .input_path("$.detail")
                .build()
                .unwrap(),
        )
        .targets(
            Target::builder()
                .id("const")
                .arn(format!("arn:aws:sns:{REGION}:{ACCOUNT}:t"))
                .input(r#"{"fixed":true}"#)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let out = c
        .put_events()
        .entries(
            PutEventsRequestEntry::builder()
                .source("shop")
                .detail_type("order")
                .detail(r#"{"total": 250, "id": "o-1"}"#)
                .build(),
        )
        .entries(
            PutEventsRequestEntry::builder()
                .source("shop")
                .detail_type("order")
                .detail(r#"{"total": 5, "id": "o-2"}"#)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_entry_count(), 0);
    let d = wait_deliveries(&t.endpoint, "big", 20, |d| d.len() >= 2).await;
    let by_id = |id: &str| d.iter().find(|x| x["target_id"] == id).unwrap().clone();
    assert_eq!(by_id("path")["input"], json!({"total": 250, "id": "o-1"}));
    assert_eq!(by_id("const")["input"], json!({"fixed": true}));
    assert_eq!(by_id("path")["bus"], "audit");
    let fwd = deliveries(&t.endpoint, "fwd").await;
    assert_eq!(fwd.len(), 1, "{fwd:#?}");
    assert_eq!(fwd[0]["status"], "delivered");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        deliveries(&t.endpoint, "big").await.len(),
        2,
        "the small order is not forwarded"
    );
    // What `codeyard events` prints, and the queue backlog endpoint.
    codeyard_events::cli_events(&t.endpoint, Some("big")).await.unwrap();
    let q: Value = reqwest::get(format!("{}/_codeyard/events/queues", t.endpoint))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(q, json!({"ingress": 0, "delivery": 0}));
    t.assert_no_model_violations();
}

/// `git` against codeyard's CodeCommit, with the aws credential helper and no user config.
fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "credential.helper=",
            "-c",
            "credential.helper=!aws codecommit credential-helper --ignore-host-check $@",
        ])
        .args([
            "-c",
            "credential.UseHttpPath=true",
            "-c",
            "user.name=Dev",
            "-c",
            "user.email=dev@example.com",
            "-c",
            "init.defaultBranch=master",
        ])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", REGION)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn real_git_push_reaches_the_rule_and_an_excluded_branch_does_not() {
    let t = TestServer::start().await;
    let c = client(&t).await;
    let cc = aws_sdk_codecommit::Client::new(&t.sdk_config().await);
    cc.create_repository()
        .repository_name("pushrepo")
        .send()
        .await
        .unwrap();
    let pattern = PUSH_PATTERN.replace("demo-repo", "pushrepo");
    c.put_rule()
        .name("on-real-push")
        .event_pattern(&pattern)
        .send()
        .await
        .unwrap();
    c.put_targets()
        .rule("on-real-push")
        .targets(
            Target::builder()
                .id("q")
                .arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:q"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let work = tempfile::tempdir().unwrap();
    let url = format!("{}/v1/repos/pushrepo", t.endpoint);
    git(work.path(), &["clone", "-q", &url, "w"]);
    let dir = work.path().join("w");
    git(&dir, &["checkout", "-q", "-B", "master"]);
    std::fs::write(dir.join("a.txt"), "a\n").unwrap();
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "first"]);
    let first = git(&dir, &["rev-parse", "HEAD"]);
    git(&dir, &["push", "-q", "origin", "master"]);
    git(&dir, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(dir.join("b.txt"), "b\n").unwrap();
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "feature work"]);
    git(&dir, &["push", "-q", "origin", "feature"]);

    let d = wait_deliveries(&t.endpoint, "on-real-push", 20, |d| !d.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let d2 = deliveries(&t.endpoint, "on-real-push").await;
    assert_eq!(d2.len(), 1, "only the master push matches: {d2:#?}");
    let body = &d[0]["input"];
    assert_eq!(body["source"], "aws.codecommit");
    assert_eq!(body["detail-type"], "CodeCommit Repository State Change");
    assert_eq!(
        body["resources"],
        json!([format!("arn:aws:codecommit:{REGION}:{ACCOUNT}:pushrepo")])
    );
    assert_eq!(body["detail"]["event"], "referenceCreated");
    assert_eq!(body["detail"]["referenceName"], "master");
    assert_eq!(body["detail"]["referenceFullName"], "refs/heads/master");
    assert_eq!(body["detail"]["commitId"], first);
    assert_eq!(body["detail"]["repositoryName"], "pushrepo");
    assert_eq!(d[0]["event_id"], body["id"]);
    t.assert_no_model_violations();
}

// ----------------------------------------------------------------------------------- restarts

#[tokio::test(flavor = "multi_thread")]
async fn restart_with_pending_events_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestServer::start_in(dir.path().to_path_buf(), |_| {}).await;
    let c = client(&t).await;
    c.put_rule()
        .name("r")
        .event_pattern(r#"{"source":["app"]}"#)
        .send()
        .await
        .unwrap();
    c.put_targets()
        .rule("r")
        .targets(
            Target::builder()
                .id("q")
                .arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:q"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    t.stop().await;

    // While the server is down: 20 events wait on ingress, as another service's outbox left them.
    {
        let store = codeyard_store::SqliteStore::open(&dir.path().join("state.db"))
            .await
            .unwrap();
        let mut batch = Batch::new();
        for i in 0..20 {
            let ev = json!({"version":"0","id":format!("ev-{i}"),"detail-type":"t","source":"app","account":ACCOUNT,"time":"2026-01-01T00:00:00Z","region":REGION,"resources":[],"detail":{"i":i}});
            batch = batch.enqueue(
                EVENTS_INGRESS_QUEUE,
                BusEvent {
                    account: ACCOUNT.into(),
                    region: REGION.into(),
                    bus: "default".into(),
                    event: ev,
                },
            );
        }
        // ... and one delivery was already fanned out but not yet made.
        let ev = json!({"version":"0","id":"ev-pending-delivery","detail-type":"t","source":"app","account":ACCOUNT,"time":"2026-01-01T00:00:00Z","region":REGION,"resources":[],"detail":{}});
        let item = json!({
            "account": ACCOUNT, "region": REGION, "bus": "default", "rule": "r",
            "rule_arn": format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/r"),
            "target": {"Id": "q", "Arn": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:q")},
            "event": ev, "ingestion_time": "2026-01-01T00:00:00Z"
        });
        batch = batch.enqueue("events.delivery", item);
        store.commit(batch).await.unwrap();
    }
    let t = TestServer::start_in(dir.path().to_path_buf(), |_| {}).await;
    let d = wait_deliveries(&t.endpoint, "r", 30, |d| d.len() >= 21).await;
    let mut ids: Vec<String> = d
        .iter()
        .map(|x| x["event_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 21, "each pending event delivered once: {ids:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        deliveries(&t.endpoint, "r").await.len(),
        21,
        "and only once"
    );
    t.assert_no_model_violations();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_put_events_loses_no_accepted_event() {
    let dir = tempfile::tempdir().unwrap();
    let p = ServerProcess::spawn(dir.path(), &[]);
    let cfg = {
        let creds = aws_credential_types::Credentials::new("test", "test", None, None, "t");
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(&p.endpoint)
            .credentials_provider(creds)
            .load()
            .await
    };
    let c = Client::new(&cfg);
    c.put_rule()
        .name("r")
        .event_pattern(r#"{"source":["app"]}"#)
        .send()
        .await
        .unwrap();
    c.put_targets()
        .rule("r")
        .targets(
            Target::builder()
                .id("q")
                .arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:q"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let mut accepted = Vec::new();
    for i in 0..5 {
        let mut req = c.put_events();
        for j in 0..10 {
            req = req.entries(
                PutEventsRequestEntry::builder()
                    .source("app")
                    .detail_type("t")
                    .detail(format!(r#"{{"n":{}}}"#, i * 10 + j))
                    .build(),
            );
        }
        let out = req.send().await.unwrap();
        accepted.extend(
            out.entries()
                .iter()
                .filter_map(|e| e.event_id().map(str::to_string)),
        );
    }
    p.kill9();
    let p = ServerProcess::spawn(dir.path(), &[]);
    let d = wait_deliveries(&p.endpoint, "r", 60, |d| {
        let got: std::collections::HashSet<&str> =
            d.iter().filter_map(|x| x["event_id"].as_str()).collect();
        accepted.iter().all(|id| got.contains(id.as_str()))
    })
    .await;
    assert!(d.len() <= DELIVERY_LOG_CAP, "{}", d.len());
    drop(p);
}

/// The delivery log keeps this many records per rule.
const DELIVERY_LOG_CAP: usize = 100;

// ---------------------------------------------------------------------------------- schedules

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_rule_fires_on_time() {
    let t = TestServer::start().await;
    let c = client(&t).await;
    let arn = c
        .put_rule()
        .name("tick")
        .schedule_expression("rate(1 minute)")
        .send()
        .await
        .unwrap()
        .rule_arn
        .unwrap();
    c.put_targets()
        .rule("tick")
        .targets(
            Target::builder()
                .id("q")
                .arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:q"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let d = wait_deliveries(&t.endpoint, "tick", 80, |d| !d.is_empty()).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(55),
        "fired after {elapsed:?}, before the minute was up"
    );
    let ev = &d[0]["input"];
    assert_eq!(ev["detail-type"], "Scheduled Event");
    assert_eq!(ev["source"], "aws.events");
    assert_eq!(ev["resources"], json!([arn]));
    assert_eq!(ev["detail"], json!({}));
    t.assert_no_model_violations();
}

// ---------------------------------------------------------------------------------- terraform

#[tokio::test(flavor = "multi_thread")]
async fn terraform_rules_and_targets_apply_plan_destroy() {
    let t = TestServer::start().await;
    let ws = terraform_workspace("events");
    let (code, out) = terraform(ws.path(), &t.endpoint, &["apply", "-auto-approve"]);
    assert_eq!(code, 0, "apply:\n{out}");
    let (code, out) = terraform(ws.path(), &t.endpoint, &["plan", "-detailed-exitcode"]);
    assert_eq!(code, 0, "plan after apply is not empty:\n{out}");

    let c = client(&t).await;
    let r = c.describe_rule().name("tf-on-push").send().await.unwrap();
    assert!(r.event_pattern().unwrap().contains("aws.codecommit"));
    let targets = c
        .list_targets_by_rule()
        .rule("tf-on-push")
        .send()
        .await
        .unwrap();
    assert_eq!(targets.targets().len(), 1);
    assert!(targets.targets()[0].input_transformer().is_some());
    assert_eq!(
        c.describe_rule()
            .name("tf-nightly")
            .send()
            .await
            .unwrap()
            .schedule_expression(),
        Some("cron(0 3 * * ? *)")
    );
    let tags = c
        .list_tags_for_resource()
        .resource_arn(r.arn().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == "team" && t.value() == "ci")
    );

    let (code, out) = terraform(ws.path(), &t.endpoint, &["destroy", "-auto-approve"]);
    assert_eq!(code, 0, "destroy:\n{out}");
    assert!(c.list_rules().send().await.unwrap().rules().is_empty());
    assert_eq!(
        c.list_event_buses()
            .send()
            .await
            .unwrap()
            .event_buses()
            .len(),
        1
    );
    t.assert_no_model_violations();
}
