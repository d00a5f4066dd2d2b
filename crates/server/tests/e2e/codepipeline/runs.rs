//! Pipelines that run: the seed stages on a push through the event rule, the doctor check,
//! manual approvals, and a kill -9 during a build.

use super::*;

/// What the chain tests start from: the repository `demo-repo`, the artifact bucket
/// `demo-artifacts`, and the CodeBuild project `demo-build` (CODEPIPELINE source and artifacts)
/// that runs `buildspec` as `build-role`. Returns the repository.
async fn demo_fixtures(conf: &aws_config::SdkConfig, buildspec: &str) -> aws_sdk_codecommit::types::RepositoryMetadata {
    let cc = aws_sdk_codecommit::Client::new(conf);
    let repo = cc.create_repository().repository_name("demo-repo").send().await.unwrap();
    make_bucket(&s3_client_for(conf), "demo-artifacts").await;
    let iam = aws_sdk_iam::Client::new(conf);
    let role = create_service_role(&iam, "build-role", "codebuild.amazonaws.com", &codebuild_role_policy()).await;
    pipeline_roles(conf).await;
    use aws_sdk_codebuild::types::{ArtifactsType, ComputeType, EnvironmentType, ProjectArtifacts, ProjectEnvironment};
    let environment = ProjectEnvironment::builder()
        .r#type(EnvironmentType::LinuxContainer)
        .image("aws/codebuild/standard:7.0")
        .compute_type(ComputeType::BuildGeneral1Small)
        .build()
        .unwrap();
    aws_sdk_codebuild::Client::new(conf)
        .create_project()
        .name("demo-build")
        .source(pipeline_source(buildspec))
        .artifacts(ProjectArtifacts::builder().r#type(ArtifactsType::Codepipeline).build().unwrap())
        .environment(environment)
        .service_role(role)
        .send()
        .await
        .unwrap();
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

/// Waits for a new execution (not in `known`) to end; returns it.
async fn next_execution(cp: &Client, pipeline: &str, known: &[String]) -> PipelineExecutionSummary {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let list = cp
            .list_pipeline_executions()
            .pipeline_name(pipeline)
            .send()
            .await
            .unwrap();
        let fresh = list
            .pipeline_execution_summaries()
            .iter()
            .find(|e| !known.contains(&e.pipeline_execution_id().unwrap().to_string()))
            .cloned();
        if let Some(e) = fresh {
            if e.status() != Some(&PipelineExecutionStatus::InProgress) {
                return e;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no new execution of {pipeline} ended in time: {list:#?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The seed's first two stages on the real chain: a git push raises CodeCommit's event, the
/// rule starts the pipeline, CodeBuild runs the buildspec from the source zip, the S3 deploy
/// unzips the jar to `app-jar/target/app.jar`; a failing commit fails BuildAndTest and the
/// deploy does not run; RetryStageExecution after fixing the build succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn seed_stages_run_on_a_push_through_the_event_rule() {
    let t = TestServer::start().await;
    let conf = t.sdk_config().await;
    let cp = Client::new(&conf);
    let s3 = s3_client_for(&conf);
    let cb = aws_sdk_codebuild::Client::new(&conf);
    let ev = aws_sdk_eventbridge::Client::new(&conf);

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
    let first = next_execution(&cp, "demo", &[]).await;
    assert_eq!(first.status(), Some(&PipelineExecutionStatus::Failed));
    let mut known = vec![first.pipeline_execution_id().unwrap().to_string()];

    let pattern = serde_json::json!({
        "source": ["aws.codecommit"], "detail-type": ["CodeCommit Repository State Change"],
        "resources": [repo.arn().unwrap()],
        "detail": {"event": ["referenceCreated", "referenceUpdated"], "referenceType": ["branch"], "referenceName": ["master"]}
    });
    let rule = ev
        .put_rule()
        .name("on-push")
        .event_pattern(pattern.to_string())
        .send()
        .await
        .unwrap();
    ev.put_targets()
        .rule("on-push")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("CodePipeline")
                .arn(&pipeline_arn)
                .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/events-role"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    // A push runs Source and BuildAndTest green.
    let work = tempfile::tempdir().unwrap();
    let clone = work.path().join("repo");
    git(
        work.path(),
        &[
            "clone",
            "-q",
            repo.clone_url_http().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    std::fs::write(clone.join("README.md"), "the app").unwrap();
    git(&clone, &["checkout", "-q", "-B", "master"]);
    git(&clone, &["add", "-A"]);
    git(&clone, &["commit", "-qm", "CRM demo service"]);
    git(&clone, &["push", "-q", "origin", "master"]);
    let green = next_execution(&cp, "demo", &known).await;
    known.push(green.pipeline_execution_id().unwrap().to_string());
    assert_eq!(
        green.trigger().unwrap().trigger_type(),
        Some(&TriggerType::CloudWatchEvent)
    );
    assert_eq!(green.trigger().unwrap().trigger_detail(), rule.rule_arn());
    assert_eq!(
        green.status(),
        Some(&PipelineExecutionStatus::Succeeded),
        "{green:#?}"
    );
    assert_eq!(
        green.source_revisions()[0].revision_summary(),
        Some("CRM demo service")
    );
    let jar = s3
        .get_object()
        .bucket("demo-artifacts")
        .key("app-jar/target/app.jar")
        .send()
        .await
        .unwrap();
    assert_eq!(
        jar.body.collect().await.unwrap().into_bytes().as_ref(),
        b"the app"
    );
    let acts = cp
        .list_action_executions()
        .pipeline_name("demo")
        .filter(
            ActionExecutionFilter::builder()
                .pipeline_execution_id(green.pipeline_execution_id().unwrap())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let build = acts
        .action_execution_details()
        .iter()
        .find(|a| a.action_name() == Some("BuildAndTest"))
        .unwrap();
    let build_id = build
        .output()
        .unwrap()
        .execution_result()
        .unwrap()
        .external_execution_id()
        .unwrap();
    let got = cb.batch_get_builds().ids(build_id).send().await.unwrap();
    assert_eq!(got.builds()[0].initiator(), Some("codepipeline/demo"));

    // A failing commit fails BuildAndTest; UploadJar does not run.
    std::fs::write(clone.join("FAIL"), "x").unwrap();
    git(&clone, &["add", "-A"]);
    git(&clone, &["commit", "-qm", "a failing unit test"]);
    git(&clone, &["push", "-q", "origin", "master"]);
    let red = next_execution(&cp, "demo", &known).await;
    let red_id = red.pipeline_execution_id().unwrap().to_string();
    known.push(red_id.clone());
    assert_eq!(
        red.status(),
        Some(&PipelineExecutionStatus::Failed),
        "{red:#?}"
    );
    let state = cp.get_pipeline_state().name("demo").send().await.unwrap();
    let stage = &state.stage_states()[1];
    assert_eq!(
        stage.latest_execution().unwrap().status(),
        &StageExecutionStatus::Failed
    );
    let upload = stage
        .action_states()
        .iter()
        .find(|a| a.action_name() == Some("UploadJar"))
        .unwrap();
    assert_ne!(
        upload.latest_execution().unwrap().action_execution_id(),
        None
    );
    let red_acts = cp
        .list_action_executions()
        .pipeline_name("demo")
        .filter(
            ActionExecutionFilter::builder()
                .pipeline_execution_id(&red_id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        red_acts
            .action_execution_details()
            .iter()
            .all(|a| a.action_name() != Some("UploadJar"))
    );

    // Fix the build, retry the failed stage: it succeeds.
    let source = pipeline_source(&buildspec(true));
    cb.update_project()
        .name("demo-build")
        .source(source)
        .send()
        .await
        .unwrap();
    cp.retry_stage_execution()
        .pipeline_name("demo")
        .stage_name("BuildAndTest")
        .pipeline_execution_id(&red_id)
        .retry_mode(StageRetryMode::FailedActions)
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let e = cp
            .get_pipeline_execution()
            .pipeline_name("demo")
            .pipeline_execution_id(&red_id)
            .send()
            .await
            .unwrap();
        let status = e.pipeline_execution().unwrap().status().cloned();
        if status == Some(PipelineExecutionStatus::Succeeded) {
            break;
        }
        assert!(
            status == Some(PipelineExecutionStatus::InProgress) && Instant::now() < deadline,
            "{e:#?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    t.assert_no_model_violations();
}

/// `codeyard doctor` finds a CodeCommit pipeline that nothing starts, and stops finding it
/// once an enabled rule targets it.
#[tokio::test(flavor = "multi_thread")]
async fn doctor_reports_a_pipeline_nothing_starts() {
    let t = TestServer::start().await;
    let conf = t.sdk_config().await;
    pipeline_roles(&conf).await;
    let cp = Client::new(&conf);
    create_seed(&cp, "lonely", "false").await;
    create_seed(&cp, "polling", "true").await;
    let findings = codeyard_codepipeline::doctor_report(&t.endpoint, REGION)
        .await
        .unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].contains("'lonely'") && findings[0].contains("PollForSourceChanges=false"));
    let ev = aws_sdk_eventbridge::Client::new(&conf);
    ev.put_rule()
        .name("on-push")
        .event_pattern(r#"{"source":["aws.codecommit"]}"#)
        .send()
        .await
        .unwrap();
    ev.put_targets()
        .rule("on-push")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("p")
                .arn(format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:lonely"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        codeyard_codepipeline::doctor_report(&t.endpoint, REGION)
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    ev.disable_rule().name("on-push").send().await.unwrap();
    assert_eq!(
        codeyard_codepipeline::doctor_report(&t.endpoint, REGION)
            .await
            .unwrap()
            .len(),
        1
    );
    t.assert_no_model_violations();
}

/// An S3 source, a manual approval that holds the execution until
/// `aws codepipeline put-approval-result`, then an S3 deploy of the source's files.
#[tokio::test(flavor = "multi_thread")]
async fn manual_approval_holds_until_put_approval_result() {
    let t = TestServer::start().await;
    let conf = t.sdk_config().await;
    pipeline_roles(&conf).await;
    let cp = Client::new(&conf);
    let s3 = s3_client_for(&conf);
    for b in ["appr-src", "appr-artifacts", "appr-site"] {
        make_bucket(&s3, b).await;
    }
    s3.put_bucket_versioning()
        .bucket("appr-src")
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let zip = zip_of(&[("index.html", "<h1>hello</h1>"), ("css/site.css", "h1{}")]);
    s3.put_object()
        .bucket("appr-src")
        .key("site.zip")
        .body(zip.into())
        .send()
        .await
        .unwrap();

    let stages = vec![
        StageDeclaration::builder()
            .name("Source")
            .actions(
                ActionDeclaration::builder()
                    .name("Site")
                    .action_type_id(action_type(ActionCategory::Source, "S3"))
                    .output_artifacts(OutputArtifact::builder().name("site").build().unwrap())
                    .configuration("S3Bucket", "appr-src")
                    .configuration("S3ObjectKey", "site.zip")
                    .configuration("PollForSourceChanges", "false")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap(),
        StageDeclaration::builder()
            .name("Release")
            .actions(
                ActionDeclaration::builder()
                    .name("Approve")
                    .action_type_id(action_type(ActionCategory::Approval, "Manual"))
                    .configuration("CustomData", "Publish the site?")
                    .build()
                    .unwrap(),
            )
            .actions(
                ActionDeclaration::builder()
                    .name("Publish")
                    .run_order(2)
                    .action_type_id(action_type(ActionCategory::Deploy, "S3"))
                    .input_artifacts(InputArtifact::builder().name("site").build().unwrap())
                    .configuration("BucketName", "appr-site")
                    .configuration("Extract", "true")
                    .configuration("CacheControl", "max-age=60")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap(),
    ];
    let mut decl = declaration("release", stages);
    decl.artifact_store = Some(
        ArtifactStore::builder()
            .r#type(ArtifactStoreType::S3)
            .location("appr-artifacts")
            .build()
            .unwrap(),
    );
    cp.create_pipeline().pipeline(decl).send().await.unwrap();

    // Wait for the approval to be pending and read its token from the state.
    let deadline = Instant::now() + Duration::from_secs(30);
    let token = loop {
        let state = cp
            .get_pipeline_state()
            .name("release")
            .send()
            .await
            .unwrap();
        let approve = &state.stage_states()[1].action_states()[0];
        if let Some(tok) = approve.latest_execution().and_then(|e| e.token()) {
            break tok.to_string();
        }
        let source = state.stage_states()[0]
            .latest_execution()
            .map(|e| e.status().clone());
        assert_ne!(source, Some(StageExecutionStatus::Failed), "{state:#?}");
        assert!(
            Instant::now() < deadline,
            "approval never pending: {state:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The pending approval is the barrier: the deploy stage after it cannot have run.
    let objects = s3
        .list_objects_v2()
        .bucket("appr-site")
        .send()
        .await
        .unwrap();
    assert_eq!(
        objects.key_count(),
        Some(0),
        "nothing is published before the approval"
    );
    let list = cp
        .list_pipeline_executions()
        .pipeline_name("release")
        .send()
        .await
        .unwrap();
    let id = list.pipeline_execution_summaries()[0]
        .pipeline_execution_id()
        .unwrap()
        .to_string();
    assert_eq!(
        list.pipeline_execution_summaries()[0].status(),
        Some(&PipelineExecutionStatus::InProgress)
    );
    assert!(
        list.pipeline_execution_summaries()[0].source_revisions()[0]
            .revision_id()
            .is_some()
    );

    let (ok, out, err) = aws_cli(
        &t.endpoint,
        &[
            "codepipeline",
            "put-approval-result",
            "--pipeline-name",
            "release",
            "--stage-name",
            "Release",
            "--action-name",
            "Approve",
            "--result",
            "summary=looks good,status=Approved",
            "--token",
            &token,
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("approvedAt"));
    let e = execution_ended(&cp, "release", &id, Duration::from_secs(30)).await;
    assert_eq!(e.status(), Some(&PipelineExecutionStatus::Succeeded), "{e:#?}");
    let page = s3
        .get_object()
        .bucket("appr-site")
        .key("css/site.css")
        .send()
        .await
        .unwrap();
    assert_eq!(page.cache_control(), Some("max-age=60"));
    let index = s3
        .get_object()
        .bucket("appr-site")
        .key("index.html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        index.body.collect().await.unwrap().into_bytes().as_ref(),
        b"<h1>hello</h1>"
    );
    t.assert_no_model_violations();
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
    cc.put_file()
        .repository_name("demo-repo")
        .branch_name("master")
        .file_path("README.md")
        .file_content(aws_sdk_codecommit::primitives::Blob::new("hi"))
        .commit_message("first")
        .send()
        .await
        .unwrap();
    let cp = Client::new(&conf);
    create_seed(&cp, "demo", "false").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        let acts = cp
            .list_action_executions()
            .pipeline_name("demo")
            .send()
            .await
            .unwrap();
        let build = acts
            .action_execution_details()
            .iter()
            .find(|a| a.action_name() == Some("BuildAndTest"))
            .cloned();
        if let Some(b) = build.filter(|b| {
            b.output()
                .and_then(|o| o.execution_result())
                .and_then(|r| r.external_execution_id())
                .is_some()
        }) {
            break b.pipeline_execution_id().unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "the build never started: {acts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    server.kill9();

    let server = ServerProcess::spawn(dir.path(), &[]);
    let cp = Client::new(&sdk(&server.endpoint).await);
    let e = execution_ended(&cp, "demo", &id, Duration::from_secs(60)).await;
    assert_eq!(e.status(), Some(&PipelineExecutionStatus::Failed), "{e:#?}");
    assert!(
        e.status_summary().unwrap().contains("BuildAndTest"),
        "{:?}",
        e.status_summary()
    );
    server.kill9();
}
