//! What starts executions (events, polling) and what is checked or published around them
//! (structure validation, state-change events, the trap check), and the engine benchmark.

use super::*;
use crate::model::Status;

#[tokio::test(flavor = "multi_thread")]
async fn an_event_for_the_branch_starts_the_pushed_commit() {
    let rig = Rig::new(Duration::from_millis(10)).await;
    let first = rig.create(two_stage("ev", "SUPERSEDED")).await;
    rig.wait("ev", &first, |e| e.is_terminal()).await;
    let pushed = rig.git.push("main", "second");
    rig.git.push("main", "third, pushed right after");
    rig.platform.hub.register_target(
        "codepipeline",
        Arc::new(crate::target::PipelineTarget {
            engine: rig.engine.clone(),
        }),
    );
    let invoker = rig.platform.hub.target("codepipeline").unwrap();
    let rule = format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/on-push");
    invoker
        .invoke(&TargetInvocation {
            account: ACCOUNT.into(),
            region: REGION.into(),
            target_arn: format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:ev"),
            role_arn: None,
            rule_arn: rule.clone(),
            input: json!({"detail": {"repositoryName": "repo", "referenceName": "main", "commitId": pushed, "event": "referenceUpdated"}}),
            endpoint: "http://localhost:4566".into(),
        })
        .await
        .unwrap();
    let list = rig.ok("ListPipelineExecutions", json!({"pipelineName": "ev"})).await;
    let newest = &list["pipelineExecutionSummaries"][0];
    assert_eq!(
        newest["trigger"],
        json!({"triggerType": "CloudWatchEvent", "triggerDetail": rule})
    );
    let e = rig
        .wait("ev", newest["pipelineExecutionId"].as_str().unwrap(), |e| {
            e.is_terminal()
        })
        .await;
    assert_eq!(e.source_revisions[0].revision_id, pushed);
    let list = rig.ok("ListPipelineExecutions", json!({"pipelineName": "ev"})).await;
    assert_eq!(
        list["pipelineExecutionSummaries"][0]["sourceRevisions"][0]["revisionSummary"],
        "second"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_starts_an_execution_on_a_new_commit() {
    let rig = Rig::new(Duration::from_millis(10)).await;
    let mut p = two_stage("poll", "SUPERSEDED");
    p["pipeline"]["stages"][0]["actions"][0]["configuration"]
        .as_object_mut()
        .unwrap()
        .remove("PollForSourceChanges");
    rig.ok("CreatePipeline", p).await;
    rig.wait_all_terminal("poll").await;
    crate::poller::poll_all(&rig.engine).await.unwrap();
    assert_eq!(
        rig.executions("poll").await.len(),
        1,
        "the first look only records the head"
    );
    rig.git.push("main", "new work");
    crate::poller::poll_all(&rig.engine).await.unwrap();
    let all = rig.wait_all_terminal("poll").await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].trigger_type, "PollForSourceChanges");
    assert_eq!(
        all[1].source_revisions[0].revision_summary.as_deref(),
        Some("new work")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn structure_is_validated_as_aws_does() {
    let rig = Rig::new(Duration::from_millis(10)).await;
    let one_stage = pipeline("bad", "SUPERSEDED", vec![source_stage()]);
    assert_eq!(rig.refused("CreatePipeline", one_stage).await.code, "InvalidStructureException");
    let source_late = pipeline(
        "bad",
        "SUPERSEDED",
        vec![source_stage(), source_stage_named("Again")],
    );
    assert_eq!(rig.refused("CreatePipeline", source_late).await.code, "InvalidStructureException");
    let build_first = pipeline(
        "bad",
        "SUPERSEDED",
        vec![
            json!({"name": "B", "actions": [build_action("B", "p", 1, None)]}),
            source_stage(),
        ],
    );
    assert_eq!(rig.refused("CreatePipeline", build_first).await.code, "InvalidStructureException");
    let mut dup = seed_like("bad", "p");
    dup["pipeline"]["stages"][1]["actions"][0]["outputArtifacts"] =
        json!([{"name": "source-artifact"}]);
    assert_eq!(rig.refused("CreatePipeline", dup).await.code, "InvalidStructureException");
    let mut missing_input = seed_like("bad", "p");
    missing_input["pipeline"]["stages"][1]["actions"][1]["runOrder"] = json!(1);
    assert_eq!(rig.refused("CreatePipeline", missing_input).await.code, "InvalidStructureException");
    let mut unknown = seed_like("bad", "p");
    unknown["pipeline"]["stages"][1]["actions"][0]["actionTypeId"]["provider"] = json!("Jenkins");
    assert_eq!(rig.refused("CreatePipeline", unknown).await.code, "InvalidStructureException");
    let mut no_project = seed_like("bad", "p");
    no_project["pipeline"]["stages"][1]["actions"][0]["configuration"] = json!({});
    let e = rig.refused("CreatePipeline", no_project).await;
    assert_eq!(e.code, "InvalidActionDeclarationException");
    assert!(e.message.contains("ProjectName"));
    let mut v1_queued = seed_like("bad", "p");
    v1_queued["pipeline"]["executionMode"] = json!("QUEUED");
    assert_eq!(rig.refused("CreatePipeline", v1_queued).await.code, "InvalidStructureException");
    let mut bad_ref = seed_like("bad", "p");
    bad_ref["pipeline"]["stages"][1]["actions"][0]["configuration"]["ProjectName"] =
        json!("#{Nope.X}");
    assert_eq!(rig.refused("CreatePipeline", bad_ref).await.code, "InvalidActionDeclarationException");
    assert!(rig.executions("bad").await.is_empty());
    assert_eq!(rig.refused("GetPipeline", json!({"name": "bad"})).await.code, "PipelineNotFoundException");
}

/// The engine's own cost (bench/codepipeline runs this with `--ignored --nocapture` in release
/// mode): a 3-stage, 4-action pipeline whose builds finish at once, and 100 executions at once
/// in PARALLEL mode. Providers are the in-memory fakes, so the figures are the engine's
/// scheduling, store commits and artifact handling only.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn bench_engine_overhead() {
    let rig = Rig::new(Duration::ZERO).await;
    let stages = |mode: &str, name: &str| {
        pipeline(
            name,
            mode,
            vec![
                source_stage(),
                json!({"name": "Build", "actions": [build_action("Build", "build", 1, Some("built"))]}),
                json!({"name": "Ship", "actions": [
                    build_action("Test", "test", 1, None),
                    {"name": "Deploy", "runOrder": 1,
                     "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
                     "inputArtifacts": [{"name": "built"}],
                     "configuration": {"BucketName": "deploy", "Extract": "true", "ObjectKey": "site"}}
                ]}),
            ],
        )
    };
    rig.ok("CreatePipeline", stages("SUPERSEDED", "bench")).await;
    rig.wait_all_terminal("bench").await;
    let mut walls = Vec::new();
    for _ in 0..10 {
        let t0 = Instant::now();
        let id = rig.start("bench").await;
        let e = rig.wait("bench", &id, |e| e.is_terminal()).await;
        assert_eq!(e.status, Status::Succeeded);
        walls.push(t0.elapsed());
    }
    walls.sort();
    println!(
        "BENCH single execution (3 stages, 4 actions, builds take 0 s): median {:?}, min {:?}, max {:?}",
        walls[5], walls[0], walls[9]
    );

    rig.ok("CreatePipeline", stages("PARALLEL", "bench-par")).await;
    rig.wait_all_terminal("bench-par").await;
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..100 {
        let svc = CodePipelineService {
            engine: rig.engine.clone(),
        };
        let ctx = rig.ctx();
        handles.push(tokio::spawn(async move {
            svc.call(&ctx, "StartPipelineExecution", json!({"name": "bench-par"}))
                .await
                .unwrap()
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let started = t0.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let all = rig.executions("bench-par").await;
        if all.iter().all(|e| e.is_terminal()) {
            assert!(all.iter().all(|e| e.status == Status::Succeeded));
            assert_eq!(all.len(), 101);
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "BENCH 100 executions at once (PARALLEL): all started in {started:?}, all succeeded after {:?}",
        t0.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn state_changes_are_published_on_the_default_bus() {
    let rig = Rig::new(Duration::from_millis(10)).await;
    rig.ok("CreatePipeline", two_stage("evts", "SUPERSEDED")).await;
    rig.wait_all_terminal("evts").await;
    let items = rig
        .platform
        .store
        .lease(
            codeyard_core::hub::EVENTS_INGRESS_QUEUE,
            1000,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let events: Vec<BusEvent> = items
        .iter()
        .map(|i| serde_json::from_value(i.payload.clone()).unwrap())
        .collect();
    let states = |dt: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.event["detail-type"] == dt)
            .map(|e| {
                let d = &e.event["detail"];
                format!(
                    "{}{}{}",
                    d["stage"].as_str().unwrap_or(""),
                    d["action"]
                        .as_str()
                        .map(|a| format!("/{a}"))
                        .unwrap_or_default(),
                    format_args!(":{}", d["state"].as_str().unwrap())
                )
            })
            .collect()
    };
    assert_eq!(
        states("CodePipeline Pipeline Execution State Change"),
        vec![":STARTED", ":SUCCEEDED"]
    );
    assert_eq!(
        states("CodePipeline Stage Execution State Change"),
        vec![
            "Source:STARTED",
            "Source:SUCCEEDED",
            "Build:STARTED",
            "Build:SUCCEEDED"
        ]
    );
    assert_eq!(
        states("CodePipeline Action Execution State Change"),
        vec![
            "Source/Source:STARTED",
            "Source/Source:SUCCEEDED",
            "Build/Build:STARTED",
            "Build/Build:SUCCEEDED"
        ]
    );
    let e = &events[0];
    assert_eq!(
        (e.bus.as_str(), e.event["source"].as_str().unwrap()),
        ("default", "aws.codepipeline")
    );
    assert_eq!(
        e.event["resources"][0],
        format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:evts")
    );
    assert_eq!(
        e.event["detail"]["execution-trigger"]["trigger-type"],
        "CreatePipeline"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_trap_check_reads_enabled_rules_targeting_the_pipeline() {
    let rig = Rig::new(Duration::from_millis(10)).await;
    rig.ok("CreatePipeline", two_stage("trap", "SUPERSEDED")).await;
    let arn = format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:trap");
    let decl = rig
        .engine
        .pipeline(ACCOUNT, REGION, "trap")
        .await
        .unwrap()
        .unwrap()
        .0
        .declaration;
    assert_eq!(
        crate::doctor::silent_sources(&decl),
        vec!["Source".to_string()]
    );
    assert!(!crate::doctor::rule_targets(&rig.engine, ACCOUNT, REGION, &arn).await);
    let rules = format!("events/{ACCOUNT}/{REGION}/rules");
    let rule = |state: &str| json!({"name": "on-push", "state": state, "targets": [{"Id": "p", "Arn": arn}]});
    use codeyard_store::StateStoreExt;
    rig.platform
        .store
        .put_as(&rules, "default/on-push", &rule("DISABLED"))
        .await
        .unwrap();
    assert!(!crate::doctor::rule_targets(&rig.engine, ACCOUNT, REGION, &arn).await);
    rig.platform
        .store
        .put_as(&rules, "default/on-push", &rule("ENABLED"))
        .await
        .unwrap();
    assert!(crate::doctor::rule_targets(&rig.engine, ACCOUNT, REGION, &arn).await);
}
