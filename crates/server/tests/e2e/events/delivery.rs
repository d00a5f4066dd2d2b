//! Delivery to targets: exact bodies, input shapes, bus-to-bus forwarding, real git pushes,
//! and what survives a restart or a kill -9 with events pending.

use super::*;

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
    platform.store.commit(Batch::new().enqueue(EVENTS_INGRESS_QUEUE, be)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn codecommit_push_is_delivered_with_its_exact_body() {
    let (t, c) = TestServer::with(Client::new).await;
    let hub = t.server.as_ref().unwrap().platform.hub.clone();
    // "lambda" is not a kind codeyard runs: a test invoker stands in (retried twice first).
    let recorder = Arc::new(RecordingTarget { calls: Mutex::new(Vec::new()), fail_first: 2 });
    hub.register_target("lambda", recorder.clone());

    // EventBridge assumes the target's role, so it exists and trusts events.amazonaws.com.
    let iam = aws_sdk_iam::Client::new(&t.sdk_config().await);
    let role = create_service_role(&iam, "events", "events.amazonaws.com", &events_role_policy()).await;
    let mut shaped = event_target("shaped", &format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"), Some(&role));
    let template = r#"{"sourceVersion": <commit>, "note": "push to <repo> by rule <aws.events.rule-name>"}"#;
    let transformer = InputTransformer::builder().input_paths_map("repo", "$.detail.repositoryName").input_paths_map("commit", "$.detail.commitId");
    shaped.input_transformer = Some(transformer.input_template(template).build().unwrap());
    rule_with_targets(&c, "on-push", PUSH_PATTERN, vec![event_target("whole", &queue_arn("q"), None), shaped]).await;

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
    assert!(whole[0]["detail"].as_str().unwrap().contains("target type not supported by codeyard"), "{d:#?}");
    assert_eq!(whole[0]["input"], ev, "the delivered body is the event, byte for byte");

    // The test target: retried with backoff (1 s, 2 s), then delivered, transformed.
    let d = wait_deliveries(&t.endpoint, "on-push", 30, |d| {
        d.iter()
            .any(|x| x["target_id"] == "shaped" && x["status"] == "delivered")
    })
    .await;
    let shaped: Vec<&Value> = d.iter().filter(|x| x["target_id"] == "shaped").collect();
    assert_eq!(shaped.iter().filter(|x| x["status"] == "retrying").count(), 2, "{shaped:#?}");
    let calls = recorder.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    let last = calls.last().unwrap();
    assert_eq!(last.input, json!({"sourceVersion": "a1b2c3", "note": "push to demo-repo by rule on-push"}));
    assert_eq!(last.rule_arn, format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/on-push"));
    assert_eq!(last.role_arn.as_deref(), Some(role.as_str()));
    // Nothing for the excluded branch.
    assert!(calls.iter().all(|c| c.input["sourceVersion"] == "a1b2c3"));
    assert!(deliveries(&t.endpoint, "on-push").await.iter().all(|x| x["event_id"] == ev["id"]));

    // Disabled rules deliver nothing; PutEvents takes the same path as service events.
    c.disable_rule().name("on-push").send().await.unwrap();
    publish(&t, codecommit_event("master", "second"), "default").await;
    events_idle(&t.endpoint).await;
    assert_eq!(recorder.calls.lock().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn put_events_forwarding_between_buses_and_input_shapes() {
    let (t, c) = TestServer::with(Client::new).await;
    c.create_event_bus().name("audit").send().await.unwrap();
    let audit_arn = format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/audit");
    let big_orders = r#"{"source":["shop"],"detail":{"total":[{"numeric":[">",100]}]}}"#;
    rule_with_targets(&c, "fwd", big_orders, vec![event_target("to-audit", &audit_arn, None)]).await;
    c.put_rule().name("big").event_bus_name("audit").event_pattern(r#"{"source":["shop"]}"#).send().await.unwrap();
    let topic = format!("arn:aws:sns:{REGION}:{ACCOUNT}:t");
    let (mut path, mut constant) = (event_target("path", &topic, None), event_target("const", &topic, None));
    path.input_path = Some("$.detail".into());
    constant.input = Some(r#"{"fixed":true}"#.into());
    c.put_targets().rule("big").event_bus_name("audit").targets(path).targets(constant).send().await.unwrap();
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
    events_idle(&t.endpoint).await;
    assert_eq!(deliveries(&t.endpoint, "big").await.len(), 2, "the small order is not forwarded");
    // What `codeyard events` prints, and the queue backlog endpoint.
    codeyard_events::cli_events(&t.endpoint, Some("big")).await.unwrap();
    let q: Value = reqwest::get(format!("{}/_codeyard/events/queues", t.endpoint)).await.unwrap().json().await.unwrap();
    assert_eq!(q, json!({"ingress": 0, "delivery": 0}));
}

#[tokio::test(flavor = "multi_thread")]
async fn real_git_push_reaches_the_rule_and_an_excluded_branch_does_not() {
    let (t, c) = TestServer::with(Client::new).await;
    let cc = aws_sdk_codecommit::Client::new(&t.sdk_config().await);
    cc.create_repository().repository_name("pushrepo").send().await.unwrap();
    queue_rule(&c, "on-real-push", &PUSH_PATTERN.replace("demo-repo", "pushrepo")).await;

    let work = tempfile::tempdir().unwrap();
    let dir = clone_repo(work.path(), &format!("{}/v1/repos/pushrepo", t.endpoint), "w");
    git(&dir, &["checkout", "-q", "-B", "master"]);
    let first = push_file(&dir, "master", "a.txt", "a\n", "first");
    git(&dir, &["checkout", "-q", "-b", "feature"]);
    push_file(&dir, "feature", "b.txt", "b\n", "feature work");

    let d = wait_deliveries(&t.endpoint, "on-real-push", 20, |d| !d.is_empty()).await;
    events_idle(&t.endpoint).await;
    let d2 = deliveries(&t.endpoint, "on-real-push").await;
    assert_eq!(d2.len(), 1, "only the master push matches: {d2:#?}");
    let body = &d[0]["input"];
    assert_eq!(body["source"], "aws.codecommit");
    assert_eq!(body["detail-type"], "CodeCommit Repository State Change");
    assert_eq!(body["resources"], json!([format!("arn:aws:codecommit:{REGION}:{ACCOUNT}:pushrepo")]));
    assert_eq!(body["detail"]["event"], "referenceCreated");
    assert_eq!(body["detail"]["referenceName"], "master");
    assert_eq!(body["detail"]["referenceFullName"], "refs/heads/master");
    assert_eq!(body["detail"]["commitId"], first);
    assert_eq!(body["detail"]["repositoryName"], "pushrepo");
    assert_eq!(d[0]["event_id"], body["id"]);
}

// ----------------------------------------------------------------------------------- restarts

#[tokio::test(flavor = "multi_thread")]
async fn restart_with_pending_events_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestServer::start_in(dir.path().to_path_buf(), |_| {}).await;
    let c = Client::new(&t.sdk_config().await);
    queue_rule(&c, "r", r#"{"source":["app"]}"#).await;
    t.stop().await;

    // While the server is down: 20 events wait on ingress, as another service's outbox left them.
    {
        let store = codeyard_store::SqliteStore::open(&dir.path().join("state.db")).await.unwrap();
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
    let mut ids: Vec<String> = d.iter().map(|x| x["event_id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 21, "each pending event delivered once: {ids:?}");
    events_idle(&t.endpoint).await;
    assert_eq!(deliveries(&t.endpoint, "r").await.len(), 21, "and only once");
    t.assert_no_model_violations();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_put_events_loses_no_accepted_event() {
    let dir = tempfile::tempdir().unwrap();
    let p = ServerProcess::spawn(dir.path(), &[]);
    let cfg = sdk(&p.endpoint).await;
    let c = Client::new(&cfg);
    queue_rule(&c, "r", r#"{"source":["app"]}"#).await;
    let mut accepted = Vec::new();
    for i in 0..5 {
        let mut req = c.put_events();
        for j in 0..10 {
            req = req.entries(PutEventsRequestEntry::builder().source("app").detail_type("t").detail(format!(r#"{{"n":{}}}"#, i * 10 + j)).build());
        }
        let out = req.send().await.unwrap();
        accepted.extend(out.entries().iter().filter_map(|e| e.event_id().map(str::to_string)));
    }
    p.kill9();
    let p = ServerProcess::spawn(dir.path(), &[]);
    let d = wait_deliveries(&p.endpoint, "r", 60, |d| {
        let got: std::collections::HashSet<&str> = d.iter().filter_map(|x| x["event_id"].as_str()).collect();
        accepted.iter().all(|id| got.contains(id.as_str()))
    })
    .await;
    assert!(d.len() <= DELIVERY_LOG_CAP, "{}", d.len());
    drop(p);
}

/// The delivery log keeps this many records per rule.
const DELIVERY_LOG_CAP: usize = 100;
