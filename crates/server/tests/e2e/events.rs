//! EventBridge end to end: the API through aws-sdk-rust and the aws CLI, the AWS-validated
//! pattern conformance cases through TestEventPattern, delivery with exact bodies, retries,
//! restarts (graceful and kill -9), scheduled rules, and Terraform.

use crate::common::*;

mod delivery;

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::types::{InputTransformer, PutEventsRequestEntry, RuleState, Tag, Target};
use codeyard_core::hub::{BusEvent, EVENTS_INGRESS_QUEUE, TargetInvocation, TargetInvoker};
use codeyard_core::{AwsError, AwsResult};
use codeyard_store::{Batch, StateStore};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A rule with `pattern` whose one target is the queue `q` (deliveries are recorded, see
/// [`deliveries`]).
async fn queue_rule(c: &Client, rule: &str, pattern: &str) {
    rule_with_targets(c, rule, pattern, vec![event_target("q", &queue_arn("q"), None)]).await;
}

fn code<E: ProvideErrorMetadata>(e: &E) -> (String, String) {
    (e.code().unwrap_or("").to_string(), e.message().unwrap_or("").to_string())
}

/// Recent deliveries for a rule from the observability endpoint.
async fn deliveries(endpoint: &str, rule: &str) -> Vec<Value> {
    let body: Value = reqwest::get(format!("{endpoint}/_codeyard/events/deliveries?rule={rule}")).await.unwrap().json().await.unwrap();
    body["deliveries"].as_array().cloned().unwrap_or_default()
}

/// Waits until `pred` holds for the rule's deliveries (or fails after `secs`).
async fn wait_deliveries(endpoint: &str, rule: &str, secs: u64, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    wait_for(&format!("deliveries for {rule} to satisfy the condition"), Duration::from_secs(secs), Duration::from_millis(100), || async {
        Some(deliveries(endpoint, rule).await).filter(|d| pred(d))
    })
    .await
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
    let (_t, c) = TestServer::with(Client::new).await;
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
            cases.push((case.to_string(), doc["Event"].to_string(), doc["EventPattern"].to_string()));
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
        let r = c.test_event_pattern().event(event).event_pattern(pattern).send().await;
        match (case.ends_with("_EXC"), r) {
            (true, Ok(_)) => {
                failures.push(format!("{case}: expected InvalidEventPatternException"))
            }
            (true, Err(e)) => {
                let (code, msg) = code(&e);
                if code != "InvalidEventPatternException" {
                    failures.push(format!("{case}: {code} {msg}"));
                }
                let key = format!("tests/aws/services/events/test_events_patterns.py::TestEventPattern::test_event_pattern[{case}]");
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
    assert!(failures.is_empty(), "{} of {} cases differ from AWS:\n{}", failures.len(), cases.len(), failures.join("\n"));

    // The event must be a JSON object.
    let e = c.test_event_pattern().event("[1]").event_pattern(r#"{"a":["b"]}"#).send().await.unwrap_err();
    assert_eq!(code(&e), ("ValidationException".into(), "Parameter Event is not valid.".into()));
}

// --------------------------------------------------------------------------------------- API

#[tokio::test(flavor = "multi_thread")]
async fn rules_targets_buses_tags_and_errors() {
    let (t, c) = TestServer::with(Client::new).await;

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
    assert_eq!(arn, format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/on-push"));
    let d = c.describe_rule().name("on-push").send().await.unwrap();
    assert_eq!(d.event_pattern(), Some(PUSH_PATTERN));
    assert_eq!(d.state(), Some(&RuleState::Enabled));
    assert_eq!(d.event_bus_name(), Some("default"));
    assert_eq!(d.description(), Some("starts the pipeline"));
    let e = c.describe_rule().name("nope").send().await.unwrap_err();
    assert_eq!(code(&e), ("ResourceNotFoundException".into(), "Rule nope does not exist on EventBus default.".into()));

    // Bad input changes nothing.
    let e = c.put_rule().name("bad").event_pattern(r#"{"source":"aws.s3"}"#).send().await.unwrap_err();
    assert_eq!(code(&e), ("InvalidEventPatternException".into(), "Event pattern is not valid. Reason: \"source\" must be an object or an array".into()));
    let e = c.put_rule().name("bad").schedule_expression("rate(1 minutes)").send().await.unwrap_err();
    assert_eq!(code(&e), ("ValidationException".into(), "Parameter ScheduleExpression is not valid.".into()));
    let e = c.put_rule().name("bad").send().await.unwrap_err();
    assert_eq!(code(&e).0, "ValidationException");
    assert!(c.describe_rule().name("bad").send().await.is_err());

    // Disable / enable.
    let state = |name: &'static str| {
        let c = c.clone();
        async move { c.describe_rule().name(name).send().await.unwrap().state().cloned() }
    };
    c.disable_rule().name("on-push").send().await.unwrap();
    assert_eq!(state("on-push").await, Some(RuleState::Disabled));
    c.enable_rule().name("on-push").send().await.unwrap();
    assert_eq!(state("on-push").await, Some(RuleState::Enabled));
    assert_eq!(code(&c.enable_rule().name("nope").send().await.unwrap_err()).0, "ResourceNotFoundException");

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
    let targets = c.list_targets_by_rule().rule("on-push").send().await.unwrap();
    assert_eq!(targets.targets().len(), 1);
    assert_eq!(targets.targets()[0].arn(), pipeline);
    assert_eq!(targets.targets()[0].role_arn(), Some(format!("arn:aws:iam::{ACCOUNT}:role/events").as_str()));
    let names = c.list_rule_names_by_target().target_arn(&pipeline).send().await.unwrap();
    assert_eq!(names.rule_names(), ["on-push"]);
    let e = c.put_targets().rule("nope").targets(Target::builder().id("a").arn(&pipeline).build().unwrap()).send().await.unwrap_err();
    assert_eq!(code(&e).0, "ResourceNotFoundException");

    // DeleteRule is refused while targets remain.
    let e = c.delete_rule().name("on-push").send().await.unwrap_err();
    assert_eq!(code(&e), ("ValidationException".into(), "Rule can't be deleted since it has targets.".into()));

    // Tags.
    c.tag_resource().resource_arn(&arn).tags(Tag::builder().key("env").value("dev").build().unwrap()).send().await.unwrap();
    c.untag_resource().resource_arn(&arn).tag_keys("team").send().await.unwrap();
    let tags = c.list_tags_for_resource().resource_arn(&arn).send().await.unwrap();
    assert_eq!(tags.tags().iter().map(|t| (t.key(), t.value())).collect::<Vec<_>>(), vec![("env", "dev")]);
    let e = c.list_tags_for_resource().resource_arn(format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/ghost")).send().await.unwrap_err();
    assert_eq!(code(&e).0, "ResourceNotFoundException");

    // Paging through ListRules.
    for i in 0..5 {
        c.put_rule().name(format!("page-{i}")).schedule_expression("rate(5 minutes)").send().await.unwrap();
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = c.list_rules().name_prefix("page-").limit(2).set_next_token(token.clone()).send().await.unwrap();
        seen.extend(page.rules().iter().map(|r| r.name().unwrap().to_string()));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, (0..5).map(|i| format!("page-{i}")).collect::<Vec<_>>());

    // Remove targets, then delete.
    c.remove_targets().rule("on-push").ids("pipe").send().await.unwrap();
    c.delete_rule().name("on-push").send().await.unwrap();
    c.delete_rule().name("on-push").send().await.unwrap(); // deleting again is fine, as on AWS
    assert!(c.describe_rule().name("on-push").send().await.is_err());

    // Buses.
    let bus_arn = c.create_event_bus().name("orders").send().await.unwrap().event_bus_arn.unwrap();
    assert_eq!(bus_arn, format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/orders"));
    assert_eq!(code(&c.create_event_bus().name("orders").send().await.unwrap_err()).0, "ResourceAlreadyExistsException");
    let d = c.describe_event_bus().name("orders").send().await.unwrap();
    assert_eq!(d.arn(), Some(bus_arn.as_str()));
    assert!(d.creation_time().is_some());
    assert_eq!(c.describe_event_bus().send().await.unwrap().name(), Some("default"));
    let buses = c.list_event_buses().send().await.unwrap();
    assert_eq!(buses.event_buses().iter().map(|b| b.name().unwrap()).collect::<Vec<_>>(), vec!["default", "orders"]);
    let rule_on_bus = c.put_rule().name("big").event_bus_name("orders").event_pattern(r#"{"source":["shop"]}"#).send().await.unwrap();
    assert_eq!(rule_on_bus.rule_arn(), Some(format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/orders/big").as_str()));
    let e = c.put_rule().name("sched").event_bus_name("orders").schedule_expression("rate(5 minutes)").send().await.unwrap_err();
    assert_eq!(code(&e).0, "ValidationException");
    let e = c.put_rule().name("x").event_bus_name("ghost").event_pattern(r#"{"source":["a"]}"#).send().await.unwrap_err();
    assert_eq!(code(&e), ("ResourceNotFoundException".into(), "Event bus ghost does not exist.".into()));
    assert_eq!(code(&c.delete_event_bus().name("default").send().await.unwrap_err()).0, "ValidationException");
    c.delete_event_bus().name("orders").send().await.unwrap();
    assert_eq!(code(&c.describe_event_bus().name("orders").send().await.unwrap_err()).0, "ResourceNotFoundException");

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
    assert_eq!(out.entries()[3].error_code(), Some("ResourceNotFoundException"));

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
}

// ---------------------------------------------------------------------------------- schedules

/// The server's scheduler reads a test clock: the minute of `rate(1 minute)` passes when the
/// test moves the clock, not in real time.
#[tokio::test(flavor = "multi_thread")]
async fn scheduled_rule_fires_on_time() {
    let clock = codeyard_core::TestClock::new();
    let t = TestServer::start_with({
        let clock = clock.clone();
        move |o| o.clock = clock
    })
    .await;
    let c = Client::new(&t.sdk_config().await);
    let created = chrono::Utc::now();
    let arn = c.put_rule().name("tick").schedule_expression("rate(1 minute)").send().await.unwrap().rule_arn.unwrap();
    add_targets(&c, "tick", vec![event_target("q", &queue_arn("q"), None)]).await;
    // Half a minute later nothing is due (asked of the scheduler directly, no waiting).
    clock.advance(Duration::from_secs(30));
    let platform = &t.server.as_ref().unwrap().platform;
    let events = codeyard_events::rules::Events::new(platform.store.clone());
    let fired = codeyard_events::delivery::fire_due(&events, platform).await.unwrap();
    assert_eq!(fired, 0, "fired before the minute was up");
    assert!(deliveries(&t.endpoint, "tick").await.is_empty());
    // Past the minute the server's own scheduler fires it.
    clock.advance(Duration::from_secs(31));
    let d = wait_deliveries(&t.endpoint, "tick", 10, |d| !d.is_empty()).await;
    let ev = &d[0]["input"];
    // The event carries its scheduled time: a minute after the rule was created.
    let fired_at = chrono::DateTime::parse_from_rfc3339(ev["time"].as_str().unwrap()).unwrap();
    let after = fired_at.signed_duration_since(created);
    assert!(after >= chrono::Duration::seconds(59) && after <= chrono::Duration::seconds(62), "scheduled {after} after creation");
    assert_eq!(ev["detail-type"], "Scheduled Event");
    assert_eq!(ev["source"], "aws.events");
    assert_eq!(ev["resources"], json!([arn]));
    assert_eq!(ev["detail"], json!({}));
    t.assert_no_model_violations();
}

// ---------------------------------------------------------------------------------- terraform

#[tokio::test(flavor = "multi_thread")]
async fn terraform_rules_and_targets_apply_plan_destroy() {
    let (t, ws, c) = terraform_applied("events", Client::new).await;
    let r = c.describe_rule().name("tf-on-push").send().await.unwrap();
    assert!(r.event_pattern().unwrap().contains("aws.codecommit"));
    let targets = c.list_targets_by_rule().rule("tf-on-push").send().await.unwrap();
    assert_eq!(targets.targets().len(), 1);
    assert!(targets.targets()[0].input_transformer().is_some());
    assert_eq!(c.describe_rule().name("tf-nightly").send().await.unwrap().schedule_expression(), Some("cron(0 3 * * ? *)"));
    let tags = c.list_tags_for_resource().resource_arn(r.arn().unwrap()).send().await.unwrap();
    assert!(tags.tags().iter().any(|t| t.key() == "team" && t.value() == "ci"));

    terraform_destroy(ws.path(), &t.endpoint, &[]);
    assert!(c.list_rules().send().await.unwrap().rules().is_empty());
    assert_eq!(c.list_event_buses().send().await.unwrap().event_buses().len(), 1);
}
