//! Pipelines that run: the seed stages on a push through the event rule, the doctor check,
//! manual approvals, and a kill -9 during a build.

use super::*;

/// What the chain tests start from: the repository `demo-repo`, the artifact bucket
/// `demo-artifacts`, and the CodeBuild project `demo-build` (CODEPIPELINE source and artifacts)
/// that runs `buildspec` as `build-role`. Returns the repository.
async fn demo_fixtures(conf: &aws_config::SdkConfig, buildspec: &str) -> aws_sdk_codecommit::types::RepositoryMetadata {
    use aws_sdk_codebuild::types::{ArtifactsType, ProjectArtifacts};
    let cc = aws_sdk_codecommit::Client::new(conf);
    let repo = cc.create_repository().repository_name("demo-repo").send().await.unwrap();
    make_bucket(&s3_client_for(conf), "demo-artifacts").await;
    let iam = aws_sdk_iam::Client::new(conf);
    let role = create_service_role(&iam, "build-role", "codebuild.amazonaws.com", &codebuild_role_policy()).await;
    pipeline_roles(conf).await;
    let artifacts = ProjectArtifacts::builder().r#type(ArtifactsType::Codepipeline).build().unwrap();
    let project = aws_sdk_codebuild::Client::new(conf).create_project().name("demo-build").source(pipeline_source(buildspec)).artifacts(artifacts);
    project.environment(codebuild_environment()).service_role(role).send().await.unwrap();
    repo.repository_metadata().unwrap().clone()
}

/// The roles the suite's pipelines act as: `pipeline-role` (CodePipeline) and `events-role`
/// (the rule starting them), with the permissions they need.
pub(super) async fn pipeline_roles(conf: &aws_config::SdkConfig) {
    let iam = aws_sdk_iam::Client::new(conf);
    create_service_role(&iam, "pipeline-role", "codepipeline.amazonaws.com", &codepipeline_role_policy()).await;
    create_service_role(&iam, "events-role", "events.amazonaws.com", &events_role_policy()).await;
}

/// A CODEPIPELINE source running `buildspec`.
fn pipeline_source(buildspec: &str) -> aws_sdk_codebuild::types::ProjectSource {
    use aws_sdk_codebuild::types::{ProjectSource, SourceType};
    ProjectSource::builder().r#type(SourceType::Codepipeline).buildspec(buildspec).build().unwrap()
}

/// Waits for a new execution (not in `known`) to end; returns it and adds it to `known`.
async fn next_execution(cp: &Client, pipeline: &str, known: &mut Vec<String>) -> PipelineExecutionSummary {
    let e = wait_for(&format!("a new execution of {pipeline} to end"), Duration::from_secs(90), Duration::from_millis(300), || async {
        let list = cp.list_pipeline_executions().pipeline_name(pipeline).send().await.unwrap();
        let fresh = list.pipeline_execution_summaries().iter().find(|e| !known.contains(&e.pipeline_execution_id().unwrap().to_string()));
        fresh.filter(|e| e.status() != Some(&PipelineExecutionStatus::InProgress)).cloned()
    })
    .await;
    known.push(e.pipeline_execution_id().unwrap().to_string());
    e
}

/// The action executions of one pipeline execution.
async fn action_executions(cp: &Client, pipeline: &str, execution: &str) -> Vec<ActionExecutionDetail> {
    let filter = ActionExecutionFilter::builder().pipeline_execution_id(execution).build();
    let acts = cp.list_action_executions().pipeline_name(pipeline).filter(filter).send().await.unwrap();
    acts.action_execution_details().to_vec()
}

/// The CodeBuild build an action execution ran, when it has started one.
fn build_id_of(action: &ActionExecutionDetail) -> Option<&str> {
    action.output()?.execution_result()?.external_execution_id()
}

/// The seed's first two stages on the real chain: a git push raises CodeCommit's event, the
/// rule starts the pipeline, CodeBuild runs the buildspec from the source zip, the S3 deploy
/// unzips the jar to `app-jar/target/app.jar`; a failing commit fails BuildAndTest and the
/// deploy does not run; RetryStageExecution after fixing the build succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn seed_stages_run_on_a_push_through_the_event_rule() {
    let (t, cp) = TestServer::with(Client::new).await;
    let conf = t.sdk_config().await;
    let (s3, cb, ev) = (s3_client_for(&conf), aws_sdk_codebuild::Client::new(&conf), aws_sdk_eventbridge::Client::new(&conf));

    // Fails when the commit carries FAIL, unless the project says failures are fixed.
    let buildspec = |fixed: bool| {
        format!(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p target && cp README.md target/app.jar\n      - if [ -f FAIL ] && [ {fixed} != true ]; then echo unit test failed; exit 1; fi\nartifacts:\n  files:\n    - target/app.jar\n"
        )
    };
    let repo = demo_fixtures(&conf, &buildspec(false)).await;

    let created = create_seed(&cp, "demo", "false").await;
    assert_eq!(created.pipeline().unwrap().version(), Some(1));
    let pipeline_arn = format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:demo");
    // The CreatePipeline execution fails: the repository has no master branch yet.
    let mut known = Vec::new();
    let first = next_execution(&cp, "demo", &mut known).await;
    assert_eq!(first.status(), Some(&PipelineExecutionStatus::Failed));

    let pattern = serde_json::json!({
        "source": ["aws.codecommit"], "detail-type": ["CodeCommit Repository State Change"],
        "resources": [repo.arn().unwrap()],
        "detail": {"event": ["referenceCreated", "referenceUpdated"], "referenceType": ["branch"], "referenceName": ["master"]}
    });
    let events_role = format!("arn:aws:iam::{ACCOUNT}:role/events-role");
    let target = event_target("CodePipeline", &pipeline_arn, Some(&events_role));
    let rule_arn = rule_with_targets(&ev, "on-push", &pattern.to_string(), vec![target]).await;

    // A push runs Source and BuildAndTest green.
    let work = tempfile::tempdir().unwrap();
    let clone = clone_repo(work.path(), repo.clone_url_http().unwrap(), "repo");
    git(&clone, &["checkout", "-q", "-B", "master"]);
    push_file(&clone, "master", "README.md", "the app", "CRM demo service");
    let green = next_execution(&cp, "demo", &mut known).await;
    assert_eq!(green.trigger().unwrap().trigger_type(), Some(&TriggerType::CloudWatchEvent));
    assert_eq!(green.trigger().unwrap().trigger_detail(), Some(rule_arn.as_str()));
    assert_eq!(green.status(), Some(&PipelineExecutionStatus::Succeeded), "{green:#?}");
    assert_eq!(green.source_revisions()[0].revision_summary(), Some("CRM demo service"));
    let jar = s3.get_object().bucket("demo-artifacts").key("app-jar/target/app.jar").send().await.unwrap();
    assert_eq!(jar.body.collect().await.unwrap().into_bytes().as_ref(), b"the app");
    let acts = action_executions(&cp, "demo", green.pipeline_execution_id().unwrap()).await;
    let build = acts.iter().find(|a| a.action_name() == Some("BuildAndTest")).unwrap();
    let got = cb.batch_get_builds().ids(build_id_of(build).unwrap()).send().await.unwrap();
    assert_eq!(got.builds()[0].initiator(), Some("codepipeline/demo"));

    // A failing commit fails BuildAndTest; UploadJar does not run.
    push_file(&clone, "master", "FAIL", "x", "a failing unit test");
    let red = next_execution(&cp, "demo", &mut known).await;
    let red_id = red.pipeline_execution_id().unwrap().to_string();
    assert_eq!(red.status(), Some(&PipelineExecutionStatus::Failed), "{red:#?}");
    let state = cp.get_pipeline_state().name("demo").send().await.unwrap();
    let stage = &state.stage_states()[1];
    assert_eq!(stage.latest_execution().unwrap().status(), &StageExecutionStatus::Failed);
    let upload = stage.action_states().iter().find(|a| a.action_name() == Some("UploadJar")).unwrap();
    assert_ne!(upload.latest_execution().unwrap().action_execution_id(), None);
    let red_acts = action_executions(&cp, "demo", &red_id).await;
    assert!(red_acts.iter().all(|a| a.action_name() != Some("UploadJar")));

    // Fix the build, retry the failed stage: the same execution goes on to succeed.
    cb.update_project().name("demo-build").source(pipeline_source(&buildspec(true))).send().await.unwrap();
    let retry = cp.retry_stage_execution().pipeline_name("demo").stage_name("BuildAndTest").pipeline_execution_id(&red_id);
    retry.retry_mode(StageRetryMode::FailedActions).send().await.unwrap();
    let retried = execution_ended(&cp, "demo", &red_id, Duration::from_secs(90)).await;
    assert_eq!(retried.status(), Some(&PipelineExecutionStatus::Succeeded), "{retried:#?}");
}

/// `codeyard doctor` finds a CodeCommit pipeline that nothing starts, and stops finding it
/// once an enabled rule targets it.
#[tokio::test(flavor = "multi_thread")]
async fn doctor_reports_a_pipeline_nothing_starts() {
    let (t, conf, cp) = pipeline_server().await;
    create_seed(&cp, "lonely", "false").await;
    create_seed(&cp, "polling", "true").await;
    let doctor = || codeyard_codepipeline::doctor_report(&t.endpoint, REGION);
    let findings = doctor().await.unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].contains("'lonely'") && findings[0].contains("PollForSourceChanges=false"));
    let ev = aws_sdk_eventbridge::Client::new(&conf);
    let lonely = format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:lonely");
    rule_with_targets(&ev, "on-push", r#"{"source":["aws.codecommit"]}"#, vec![event_target("p", &lonely, None)]).await;
    assert_eq!(doctor().await.unwrap(), Vec::<String>::new());
    ev.disable_rule().name("on-push").send().await.unwrap();
    assert_eq!(doctor().await.unwrap().len(), 1);
}

/// A server with the suite's pipeline roles ([`pipeline_roles`]): the server, its SDK
/// configuration and a CodePipeline client.
async fn pipeline_server() -> (TestServer, aws_config::SdkConfig, Client) {
    let (t, cp) = TestServer::with(Client::new).await;
    let conf = t.sdk_config().await;
    pipeline_roles(&conf).await;
    (t, conf, cp)
}

/// An S3 source, a manual approval that holds the execution until
/// `aws codepipeline put-approval-result`, then an S3 deploy of the source's files.
#[tokio::test(flavor = "multi_thread")]
async fn manual_approval_holds_until_put_approval_result() {
    let (t, conf, cp) = pipeline_server().await;
    let s3 = s3_client_for(&conf);
    for b in ["appr-src", "appr-artifacts", "appr-site"] {
        make_bucket(&s3, b).await;
    }
    let enabled = aws_sdk_s3::types::VersioningConfiguration::builder().status(aws_sdk_s3::types::BucketVersioningStatus::Enabled).build();
    s3.put_bucket_versioning().bucket("appr-src").versioning_configuration(enabled).send().await.unwrap();
    let zip = zip_of(&[("index.html", "<h1>hello</h1>"), ("css/site.css", "h1{}")]);
    s3.put_object().bucket("appr-src").key("site.zip").body(zip.into()).send().await.unwrap();

    let source_config = [("S3Bucket", "appr-src"), ("S3ObjectKey", "site.zip"), ("PollForSourceChanges", "false")];
    let approve = action("Approve", ActionCategory::Approval, "Manual", &[], &[], &[("CustomData", "Publish the site?")]);
    let publish_config = [("BucketName", "appr-site"), ("Extract", "true"), ("CacheControl", "max-age=60")];
    let mut publish = action("Publish", ActionCategory::Deploy, "S3", &["site"], &[], &publish_config);
    publish.run_order = Some(2);
    let stages = vec![stage("Source", vec![action("Site", ActionCategory::Source, "S3", &[], &["site"], &source_config)]), stage("Release", vec![approve, publish])];
    let mut decl = declaration("release", stages);
    decl.artifact_store = Some(artifact_store("appr-artifacts"));
    cp.create_pipeline().pipeline(decl).send().await.unwrap();

    // Wait for the approval to be pending and read its token from the state.
    let token = wait_for("the approval to be pending", Duration::from_secs(30), Duration::from_millis(200), || async {
        let state = cp.get_pipeline_state().name("release").send().await.unwrap();
        let source = state.stage_states()[0].latest_execution().map(|e| e.status().clone());
        assert_ne!(source, Some(StageExecutionStatus::Failed), "{state:#?}");
        let approve = &state.stage_states()[1].action_states()[0];
        approve.latest_execution().and_then(|e| e.token()).map(str::to_string)
    })
    .await;
    // The pending approval is the barrier: the deploy stage after it cannot have run.
    let objects = s3.list_objects_v2().bucket("appr-site").send().await.unwrap();
    assert_eq!(objects.key_count(), Some(0), "nothing is published before the approval");
    let list = cp.list_pipeline_executions().pipeline_name("release").send().await.unwrap();
    let pending = &list.pipeline_execution_summaries()[0];
    let id = pending.pipeline_execution_id().unwrap().to_string();
    assert_eq!(pending.status(), Some(&PipelineExecutionStatus::InProgress));
    assert!(pending.source_revisions()[0].revision_id().is_some());

    let result = ["--result", "summary=looks good,status=Approved", "--token", token.as_str()];
    let approval = ["codepipeline", "put-approval-result", "--pipeline-name", "release", "--stage-name", "Release", "--action-name", "Approve"];
    let (ok, out, err) = aws_cli(&t.endpoint, &[&approval[..], &result[..]].concat());
    assert!(ok, "{err}");
    assert!(out.contains("approvedAt"));
    let e = execution_ended(&cp, "release", &id, Duration::from_secs(30)).await;
    assert_eq!(e.status(), Some(&PipelineExecutionStatus::Succeeded), "{e:#?}");
    let page = s3.get_object().bucket("appr-site").key("css/site.css").send().await.unwrap();
    assert_eq!(page.cache_control(), Some("max-age=60"));
    let index = s3.get_object().bucket("appr-site").key("index.html").send().await.unwrap();
    assert_eq!(index.body.collect().await.unwrap().into_bytes().as_ref(), b"<h1>hello</h1>");
}

/// kill -9 while a build runs: after the restart the action is looked up again and ends (the
/// build is reported as interrupted by CodeBuild), never InProgress for ever.
#[tokio::test(flavor = "multi_thread")]
async fn kill9_during_a_build_ends_the_execution_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn(dir.path(), &[]);
    let conf = sdk(&server.endpoint).await;
    let cc = aws_sdk_codecommit::Client::new(&conf);
    demo_fixtures(&conf, "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 60\n").await;
    let readme = cc.put_file().repository_name("demo-repo").branch_name("master").file_path("README.md");
    readme.file_content(aws_sdk_codecommit::primitives::Blob::new("hi")).commit_message("first").send().await.unwrap();
    let cp = Client::new(&conf);
    create_seed(&cp, "demo", "false").await;
    let id = wait_for("the pipeline's build to start", Duration::from_secs(60), Duration::from_millis(200), || async {
        let acts = cp.list_action_executions().pipeline_name("demo").send().await.unwrap();
        let build = acts.action_execution_details().iter().find(|a| a.action_name() == Some("BuildAndTest"))?;
        build_id_of(build).and(build.pipeline_execution_id()).map(str::to_string)
    })
    .await;
    server.kill9();

    let server = ServerProcess::spawn(dir.path(), &[]);
    let cp = Client::new(&sdk(&server.endpoint).await);
    let e = execution_ended(&cp, "demo", &id, Duration::from_secs(60)).await;
    assert_eq!(e.status(), Some(&PipelineExecutionStatus::Failed), "{e:#?}");
    assert!(e.status_summary().unwrap().contains("BuildAndTest"), "{:?}", e.status_summary());
    server.kill9();
}
