//! Executions: the seed pipeline end to end, failures and retries, execution modes,
//! approvals and transitions, stop, restart, variables.

use super::*;
use crate::model::Status;

#[tokio::test(flavor = "multi_thread")]
async fn seed_pipeline_runs_source_build_and_deploy() {
    let rig = Rig::new(Duration::from_millis(50)).await;
    let head = rig.git.heads.lock().unwrap()["main"].clone();
    let id = rig.create(seed_like("seed", "build")).await;
    let e = rig.wait("seed", &id, |e| e.is_terminal()).await;
    assert_eq!(e.status, Status::Succeeded, "{e:#?}");
    assert_eq!(e.trigger_type, "CreatePipeline");
    assert_eq!(e.source_revisions[0].revision_id, head);
    assert_eq!(
        e.source_revisions[0].revision_summary.as_deref(),
        Some("initial commit")
    );
    // The source zip has the commit's files, under the AWS key layout.
    let src = &e.artifacts["source-artifact"].location;
    assert_eq!(src.bucket, "artifacts");
    let parts: Vec<&str> = src.key.split('/').collect();
    assert_eq!(
        (parts[0], parts[1], parts[2].len()),
        ("seed", "source-art", 7)
    );
    assert!(
        unzip_names(&rig.objects.read("artifacts", &src.key).unwrap())
            .contains(&"src/Main.java".to_string())
    );
    // The deploy unzipped the build's artifact under the prefix.
    assert_eq!(
        rig.objects.keys("deploy"),
        vec!["app-jar/target/app.jar".to_string()]
    );
    let cache = rig.objects.objects.lock().unwrap()
        [&("deploy".to_string(), "app-jar/target/app.jar".to_string())]
        .2
        .cache_control
        .clone();
    assert_eq!(cache.as_deref(), Some("max-age=60"));
    // Variables resolved in the build's configuration.
    let reqs = rig.builds.requests();
    let build = reqs.iter().find(|r| r.project_name == "build").unwrap();
    assert!(build.environment_variables.contains(&(
        "COMMIT".into(),
        head.clone(),
        "PLAINTEXT".into()
    )));
    assert!(
        build
            .environment_variables
            .contains(&("EXEC".into(), id.clone(), "PLAINTEXT".into()))
    );
    assert_eq!(build.source_revision.as_deref(), Some(head.as_str()));
    assert_eq!(build.initiator, "codepipeline/seed");
    // ListActionExecutions: build id as external id, S3 locations, resolved configuration.
    let acts = rig.ok("ListActionExecutions", json!({"pipelineName": "seed", "filter": {"pipelineExecutionId": id}})).await;
    let details = acts["actionExecutionDetails"].as_array().unwrap();
    assert_eq!(details.len(), 4);
    let b = details
        .iter()
        .find(|d| d["actionName"] == "BuildAndTest")
        .unwrap();
    assert!(
        b["output"]["executionResult"]["externalExecutionId"]
            .as_str()
            .unwrap()
            .starts_with("build:")
    );
    assert_eq!(
        b["input"]["inputArtifacts"][0]["s3location"]["key"],
        json!(src.key)
    );
    assert_eq!(b["input"]["resolvedConfiguration"]["ProjectName"], "build");
    let s = details
        .iter()
        .find(|d| d["actionName"] == "Source")
        .unwrap();
    assert_eq!(s["output"]["outputVariables"]["CommitId"], json!(head));
    // State shows every stage succeeded by this execution.
    let state = rig.state("seed").await;
    for st in state["stageStates"].as_array().unwrap() {
        assert_eq!(st["latestExecution"]["status"], "Succeeded");
        assert_eq!(st["latestExecution"]["pipelineExecutionId"], json!(id));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_action_fails_execution_and_retry_resumes() {
    let rig = Rig::new(Duration::from_millis(30)).await;
    let id = rig.create(seed_like("flaky", "flaky")).await;
    let e = rig.wait("flaky", &id, |e| e.is_terminal()).await;
    assert_eq!(e.status, Status::Failed);
    assert!(
        e.status_summary.as_deref().unwrap().contains("mvn test"),
        "{:?}",
        e.status_summary
    );
    assert_eq!(e.stage("BuildAndTest").status, Some(Status::Failed));
    assert!(
        e.stage("Docker").status.is_none(),
        "later stages must not run"
    );
    assert!(rig.objects.keys("deploy").is_empty());
    // A stage that did not fail cannot be retried.
    let err = rig.refused("RetryStageExecution", json!({"pipelineName": "flaky", "stageName": "Source", "pipelineExecutionId": id, "retryMode": "FAILED_ACTIONS"})).await;
    assert_eq!(err.code, "StageNotRetryableException");
    rig.ok("RetryStageExecution", json!({"pipelineName": "flaky", "stageName": "BuildAndTest", "pipelineExecutionId": id, "retryMode": "FAILED_ACTIONS"})).await;
    let e = rig.wait("flaky", &id, |e| e.is_terminal()).await;
    assert_eq!(e.status, Status::Succeeded, "{e:#?}");
    assert_eq!(
        rig.objects.keys("deploy"),
        vec!["app-jar/target/app.jar".to_string()]
    );
    // Both runs of the build are listed.
    let acts = rig.ok("ListActionExecutions", json!({"pipelineName": "flaky"})).await;
    let builds: Vec<&Value> = acts["actionExecutionDetails"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["actionName"] == "BuildAndTest")
        .collect();
    assert_eq!(builds.len(), 2);
    assert_eq!(builds[0]["status"], "Succeeded");
    assert_eq!(builds[1]["status"], "Failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn superseded_mode_drops_older_waiting_executions() {
    let rig = Rig::new(Duration::from_millis(600)).await;
    let first = rig.create(two_stage("sup", "SUPERSEDED")).await;
    rig.wait("sup", &first, |e| e.stage("Build").status.is_some())
        .await;
    let second = rig.start("sup").await;
    rig.wait("sup", &second, |e| {
        e.stage("Source").status == Some(Status::Succeeded)
    })
    .await;
    let third = rig.start("sup").await;
    let all = rig.wait_all_terminal("sup").await;
    let st = |id: &str| all.iter().find(|e| e.id == id).unwrap().status.clone();
    assert_eq!(st(&first), Status::Succeeded);
    assert_eq!(st(&second), Status::Superseded);
    assert_eq!(st(&third), Status::Succeeded);
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_mode_runs_all_in_order_and_parallel_overlaps() {
    let rig = Rig::new(Duration::from_millis(200)).await;
    rig.ok("CreatePipeline", two_stage("q", "QUEUED")).await;
    for _ in 0..2 {
        rig.ok("StartPipelineExecution", json!({"name": "q"})).await;
    }
    let all = rig.wait_all_terminal("q").await;
    assert!(
        all.iter().all(|e| e.status == Status::Succeeded),
        "{:?}",
        all.iter().map(|e| &e.status).collect::<Vec<_>>()
    );
    // One build at a time: build stage entries do not overlap, in start order.
    let mut entries: Vec<_> = all
        .iter()
        .map(|e| (e.seq, e.stage("Build").entered_at.unwrap()))
        .collect();
    entries.sort();
    assert!(
        entries
            .windows(2)
            .all(|w| w[1].1 >= w[0].1 + chrono::Duration::milliseconds(200))
    );

    rig.ok("CreatePipeline", two_stage("par", "PARALLEL")).await;
    for _ in 0..4 {
        rig.ok("StartPipelineExecution", json!({"name": "par"})).await;
    }
    let mut max_running = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        max_running = max_running.max(rig.builds.running());
        let all = rig.executions("par").await;
        if all.iter().all(|e| e.is_terminal()) {
            assert!(all.iter().all(|e| e.status == Status::Succeeded));
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        max_running >= 3,
        "parallel executions overlap, saw at most {max_running} builds at once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn approval_and_disabled_transition_hold_the_execution() {
    let rig = Rig::new(Duration::from_millis(10)).await;
    let p = pipeline(
        "appr",
        "SUPERSEDED",
        vec![
            source_stage(),
            json!({"name": "Approve", "actions": [{"name": "Manual",
                "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
                "configuration": {"CustomData": "ship it?"}}]}),
            json!({"name": "Build", "actions": [build_action("Build", "build", 1, None)]}),
        ],
    );
    let id = rig.create(p).await;
    rig.ok("DisableStageTransition", json!({"pipelineName": "appr", "stageName": "Build", "transitionType": "Inbound", "reason": "freeze"})).await;
    let e = rig
        .wait("appr", &id, |e| {
            e.current_run("Approve", "Manual").is_some()
        })
        .await;
    let token = e
        .current_run("Approve", "Manual")
        .unwrap()
        .token
        .clone()
        .unwrap();
    rig.settled().await;
    assert_eq!(rig.exec("appr", &id).await.status, Status::InProgress);
    let state = rig.state("appr").await;
    assert_eq!(
        state["stageStates"][1]["actionStates"][0]["latestExecution"]["token"],
        json!(token)
    );
    assert_eq!(
        state["stageStates"][2]["inboundTransitionState"]["enabled"],
        json!(false)
    );
    let bad = rig.refused("PutApprovalResult", json!({"pipelineName": "appr", "stageName": "Approve", "actionName": "Manual",
            "result": {"summary": "ok", "status": "Approved"}, "token": "00000000-0000-0000-0000-000000000000"})).await;
    assert_eq!(bad.code, "InvalidApprovalTokenException");
    let ok = rig.ok("PutApprovalResult", json!({"pipelineName": "appr", "stageName": "Approve", "actionName": "Manual",
            "result": {"summary": "ok", "status": "Approved"}, "token": token})).await;
    assert!(ok["approvedAt"].is_number());
    // Approved, but the disabled transition holds it before Build.
    let e = rig
        .wait("appr", &id, |e| {
            e.stage("Approve").status == Some(Status::Succeeded)
        })
        .await;
    rig.settled().await;
    assert!(
        rig.exec("appr", &id).await.stage("Build").status.is_none(),
        "{e:#?}"
    );
    let state = rig.state("appr").await;
    assert_eq!(
        state["stageStates"][2]["inboundExecution"]["pipelineExecutionId"],
        json!(id)
    );
    rig.ok("EnableStageTransition", json!({"pipelineName": "appr", "stageName": "Build", "transitionType": "Inbound"})).await;
    let e = rig.wait("appr", &id, |e| e.is_terminal()).await;
    assert_eq!(e.status, Status::Succeeded);
    let again = rig.refused("PutApprovalResult", json!({"pipelineName": "appr", "stageName": "Approve", "actionName": "Manual",
            "result": {"summary": "ok", "status": "Approved"}, "token": token})).await;
    assert_eq!(again.code, "ApprovalAlreadyCompletedException");
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_with_abandon_stops_the_build_and_the_execution() {
    let rig = Rig::new(Duration::from_secs(30)).await;
    let id = rig
        .create_and_wait_for_build(two_stage("stop", "SUPERSEDED"), "Build", "Build")
        .await;
    rig.ok("StopPipelineExecution", json!({"pipelineName": "stop", "pipelineExecutionId": id, "abandon": true, "reason": "enough"})).await;
    let e = rig.wait("stop", &id, |e| e.is_terminal()).await;
    assert_eq!(e.status, Status::Stopped);
    assert_eq!(
        e.current_run("Build", "Build").unwrap().status,
        Status::Abandoned
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while rig.builds.stopped.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rig.builds.stopped.lock().unwrap().len(), 1);
    let err = rig.refused("StopPipelineExecution", json!({"pipelineName": "stop", "pipelineExecutionId": id})).await;
    assert_eq!(err.code, "PipelineExecutionNotStoppableException");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_build_is_followed_again_after_a_restart() {
    let rig = Rig::new(Duration::from_millis(1500)).await;
    let id = rig
        .create_and_wait_for_build(
            seed_like("restart", "build"),
            "BuildAndTest",
            "BuildAndTest",
        )
        .await;
    let rig = rig.restart().await;
    let e = rig.wait("restart", &id, |e| e.is_terminal()).await;
    assert_eq!(e.status, Status::Succeeded, "{e:#?}");
    // The build was not started twice.
    assert_eq!(
        rig.builds
            .requests()
            .iter()
            .filter(|r| r.project_name == "build")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn variables_namespaces_and_idempotent_start() {
    let rig = Rig::new(Duration::from_millis(10)).await;
    let mut p = pipeline(
        "vars",
        "QUEUED",
        vec![
            source_stage(),
            json!({"name": "Build", "actions": [{
                "name": "Build", "namespace": "BuildVariables",
                "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                "inputArtifacts": [{"name": "source-artifact"}],
                "configuration": {"ProjectName": "build",
                    "EnvironmentVariables": "[{\"name\":\"ENV\",\"value\":\"#{variables.env}\",\"type\":\"PLAINTEXT\"}]"}}]}),
            json!({"name": "Deploy", "actions": [{
                "name": "Deploy",
                "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                "inputArtifacts": [{"name": "source-artifact"}],
                "configuration": {"ProjectName": "deploy-#{BuildVariables.IMAGE_TAG}"}}]}),
        ],
    );
    p["pipeline"]["variables"] = json!([{"name": "env", "defaultValue": "dev"}]);
    let first = rig.create(p).await;
    rig.wait("vars", &first, |e| e.is_terminal()).await;
    let start = json!({"name": "vars", "clientRequestToken": "tok-1", "variables": [{"name": "env", "value": "prod"}]});
    let a = rig.ok("StartPipelineExecution", start.clone()).await;
    let b = rig.ok("StartPipelineExecution", start).await;
    assert_eq!(a, b, "the same clientRequestToken gives the same execution");
    let id = a["pipelineExecutionId"].as_str().unwrap();
    let e = rig.wait("vars", id, |e| e.is_terminal()).await;
    assert_eq!(e.status, Status::Succeeded, "{e:#?}");
    let got = rig.ok("GetPipelineExecution", json!({"pipelineName": "vars", "pipelineExecutionId": id})).await;
    assert_eq!(
        got["pipelineExecution"]["variables"],
        json!([{"name": "env", "resolvedValue": "prod"}])
    );
    assert_eq!(
        got["pipelineExecution"]["trigger"]["triggerType"],
        "StartPipelineExecution"
    );
    let reqs = rig.builds.requests();
    assert!(reqs.iter().any(|r| r.environment_variables.contains(&(
        "ENV".into(),
        "prod".into(),
        "PLAINTEXT".into()
    ))));
    assert!(
        reqs.iter().any(|r| r.project_name == "deploy-v1"),
        "namespace variable resolved"
    );
    let undeclared = rig.refused("StartPipelineExecution", json!({"name": "vars", "variables": [{"name": "nope", "value": "x"}]})).await;
    assert_eq!(undeclared.code, "ValidationException");
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_lets_running_actions_finish_then_retry_all_actions_reruns_the_stage() {
    let rig = Rig::new(Duration::from_millis(400)).await;
    let id = rig.create(seed_like("soft", "build")).await;
    rig.wait("soft", &id, |e| {
        e.current_run("BuildAndTest", "BuildAndTest").is_some()
    })
    .await;
    rig.ok("StopPipelineExecution", json!({"pipelineName": "soft", "pipelineExecutionId": id, "reason": "later"})).await;
    assert_eq!(rig.exec("soft", &id).await.status, Status::Stopping);
    let dup = rig.refused("StopPipelineExecution", json!({"pipelineName": "soft", "pipelineExecutionId": id})).await;
    assert_eq!(dup.code, "DuplicatedStopRequestException");
    let e = rig.wait("soft", &id, |e| e.is_terminal()).await;
    assert_eq!(e.status, Status::Stopped);
    // The running build finished; the deploy after it did not start.
    assert_eq!(
        e.current_run("BuildAndTest", "BuildAndTest")
            .unwrap()
            .status,
        Status::Succeeded
    );
    assert!(e.current_run("BuildAndTest", "UploadJar").is_none());
    let list = rig.ok("ListPipelineExecutions", json!({"pipelineName": "soft"})).await;
    assert_eq!(
        list["pipelineExecutionSummaries"][0]["stopTrigger"]["reason"],
        "later"
    );
    rig.ok("RetryStageExecution", json!({"pipelineName": "soft", "stageName": "BuildAndTest", "pipelineExecutionId": id, "retryMode": "ALL_ACTIONS"})).await;
    let e = rig.wait("soft", &id, |e| e.is_terminal()).await;
    assert_eq!(e.status, Status::Succeeded, "{e:#?}");
    let builds = e.runs.iter().filter(|r| r.action == "BuildAndTest").count();
    assert_eq!(builds, 2, "ALL_ACTIONS runs the succeeded build again");
}
