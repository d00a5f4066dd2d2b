//! CodePipeline end to end: the API through aws-sdk-rust and the aws CLI (validation errors
//! included), Terraform's aws_codepipeline round trip, and the engine driving a real chain
//! (CodeCommit, EventBridge, CodeBuild, S3) when those services are present.

mod common;
use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::*;
use common::*;
use std::time::{Duration, Instant};

fn action_type(category: ActionCategory, provider: &str) -> ActionTypeId {
    ActionTypeId::builder()
        .category(category)
        .owner(ActionOwner::Aws)
        .provider(provider)
        .version("1")
        .build()
        .unwrap()
}

fn source_stage(poll: &str) -> StageDeclaration {
    StageDeclaration::builder()
        .name("Source")
        .actions(
            ActionDeclaration::builder()
                .name("Source")
                .action_type_id(action_type(ActionCategory::Source, "CodeCommit"))
                .output_artifacts(
                    OutputArtifact::builder()
                        .name("source-artifact")
                        .build()
                        .unwrap(),
                )
                .configuration("RepositoryName", "demo-repo")
                .configuration("BranchName", "master")
                .configuration("PollForSourceChanges", poll)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn build_stage() -> StageDeclaration {
    StageDeclaration::builder()
        .name("BuildAndTest")
        .actions(
            ActionDeclaration::builder()
                .name("BuildAndTest")
                .action_type_id(action_type(ActionCategory::Build, "CodeBuild"))
                .run_order(1)
                .input_artifacts(
                    InputArtifact::builder()
                        .name("source-artifact")
                        .build()
                        .unwrap(),
                )
                .output_artifacts(
                    OutputArtifact::builder()
                        .name("app-jar-artifact")
                        .build()
                        .unwrap(),
                )
                .configuration("ProjectName", "demo-build")
                .build()
                .unwrap(),
        )
        .actions(
            ActionDeclaration::builder()
                .name("UploadJar")
                .action_type_id(action_type(ActionCategory::Deploy, "S3"))
                .run_order(2)
                .input_artifacts(
                    InputArtifact::builder()
                        .name("app-jar-artifact")
                        .build()
                        .unwrap(),
                )
                .configuration("BucketName", "demo-artifacts")
                .configuration("Extract", "true")
                .configuration("ObjectKey", "app-jar")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn declaration(name: &str, stages: Vec<StageDeclaration>) -> PipelineDeclaration {
    PipelineDeclaration::builder()
        .name(name)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/pipeline-role"))
        .artifact_store(
            ArtifactStore::builder()
                .r#type(ArtifactStoreType::S3)
                .location("demo-artifacts")
                .build()
                .unwrap(),
        )
        .set_stages(Some(stages))
        .pipeline_type(PipelineType::V1)
        .execution_mode(ExecutionMode::Superseded)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn pipeline_api_round_trip_and_validation() {
    let t = TestServer::start().await;
    let cp = Client::new(&t.sdk_config().await);
    let decl = declaration("demo", vec![source_stage("false"), build_stage()]);
    let created = cp
        .create_pipeline()
        .pipeline(decl.clone())
        .tags(Tag::builder().key("team").value("a").build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(created.pipeline().unwrap().version(), Some(1));
    assert_eq!(created.tags().len(), 1);

    let again = cp
        .create_pipeline()
        .pipeline(decl.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some("PipelineNameInUseException"));

    let got = cp.get_pipeline().name("demo").send().await.unwrap();
    let p = got.pipeline().unwrap();
    assert_eq!(p.stages().len(), 2);
    assert_eq!(p.stages()[1].actions()[1].run_order(), Some(2));
    assert_eq!(
        p.stages()[0].actions()[0].configuration().unwrap()["PollForSourceChanges"],
        "false"
    );
    assert_eq!(p.execution_mode(), Some(&ExecutionMode::Superseded));
    let meta = got.metadata().unwrap();
    assert_eq!(
        meta.pipeline_arn(),
        Some(format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:demo").as_str())
    );
    assert!(meta.created().is_some() && meta.updated().is_some());

    // CreatePipeline started an execution (it fails: the repository does not exist).
    let execs = cp
        .list_pipeline_executions()
        .pipeline_name("demo")
        .send()
        .await
        .unwrap();
    let first = &execs.pipeline_execution_summaries()[0];
    assert_eq!(
        first.trigger().unwrap().trigger_type(),
        Some(&TriggerType::CreatePipeline)
    );
    let first_id = first.pipeline_execution_id().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let failed = loop {
        let e = cp
            .get_pipeline_execution()
            .pipeline_name("demo")
            .pipeline_execution_id(&first_id)
            .send()
            .await
            .unwrap();
        let e = e.pipeline_execution().unwrap().clone();
        if e.status() != Some(&PipelineExecutionStatus::InProgress) {
            break e;
        }
        assert!(Instant::now() < deadline, "execution still in progress");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(failed.status(), Some(&PipelineExecutionStatus::Failed));
    assert!(
        failed.status_summary().unwrap().contains("Source"),
        "{:?}",
        failed.status_summary()
    );
    let state = cp.get_pipeline_state().name("demo").send().await.unwrap();
    let source = &state.stage_states()[0];
    assert_eq!(
        source.latest_execution().unwrap().status(),
        &StageExecutionStatus::Failed
    );
    assert_eq!(
        source.action_states()[0]
            .latest_execution()
            .unwrap()
            .status(),
        Some(&ActionExecutionStatus::Failed)
    );
    assert!(
        state.stage_states()[1]
            .inbound_transition_state()
            .unwrap()
            .enabled()
    );
    let acts = cp
        .list_action_executions()
        .pipeline_name("demo")
        .send()
        .await
        .unwrap();
    assert_eq!(
        acts.action_execution_details()[0].action_name(),
        Some("Source")
    );

    // Update: version + 1; a started execution is listed newest first.
    let mut stages = vec![source_stage("false"), build_stage()];
    stages[1] = StageDeclaration::builder()
        .name("Build")
        .set_actions(Some(build_stage().actions().to_vec()))
        .build()
        .unwrap();
    let updated = cp
        .update_pipeline()
        .pipeline(declaration("demo", stages))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.pipeline().unwrap().version(), Some(2));
    assert_eq!(
        cp.get_pipeline()
            .name("demo")
            .version(1)
            .send()
            .await
            .unwrap()
            .pipeline()
            .unwrap()
            .stages()[1]
            .name(),
        "BuildAndTest"
    );
    let missing_version = cp
        .get_pipeline()
        .name("demo")
        .version(7)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        missing_version.code(),
        Some("PipelineVersionNotFoundException")
    );
    let started = cp
        .start_pipeline_execution()
        .name("demo")
        .client_request_token("abc-1")
        .send()
        .await
        .unwrap();
    let same = cp
        .start_pipeline_execution()
        .name("demo")
        .client_request_token("abc-1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        started.pipeline_execution_id(),
        same.pipeline_execution_id()
    );
    let execs = cp
        .list_pipeline_executions()
        .pipeline_name("demo")
        .send()
        .await
        .unwrap();
    assert_eq!(execs.pipeline_execution_summaries().len(), 2);
    assert_eq!(
        execs.pipeline_execution_summaries()[0].pipeline_execution_id(),
        started.pipeline_execution_id()
    );
    assert_eq!(
        execs.pipeline_execution_summaries()[0]
            .trigger()
            .unwrap()
            .trigger_type(),
        Some(&TriggerType::StartPipelineExecution)
    );

    // Transitions.
    cp.disable_stage_transition()
        .pipeline_name("demo")
        .stage_name("Build")
        .transition_type(StageTransitionType::Inbound)
        .reason("release freeze")
        .send()
        .await
        .unwrap();
    let state = cp.get_pipeline_state().name("demo").send().await.unwrap();
    let tr = state.stage_states()[1].inbound_transition_state().unwrap();
    assert!(!tr.enabled());
    assert_eq!(tr.disabled_reason(), Some("release freeze"));
    let no_stage = cp
        .enable_stage_transition()
        .pipeline_name("demo")
        .stage_name("Nope")
        .transition_type(StageTransitionType::Inbound)
        .send()
        .await
        .unwrap_err();
    assert_eq!(no_stage.code(), Some("StageNotFoundException"));

    // Tags by ARN.
    let arn = meta.pipeline_arn().unwrap();
    cp.tag_resource()
        .resource_arn(arn)
        .tags(Tag::builder().key("env").value("dev").build().unwrap())
        .send()
        .await
        .unwrap();
    cp.untag_resource()
        .resource_arn(arn)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let tags = cp
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags.tags().iter().map(|t| t.key()).collect::<Vec<_>>(),
        vec!["env"]
    );
    let bad_arn = cp
        .list_tags_for_resource()
        .resource_arn("not-an-arn")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        bad_arn.code(),
        Some("ValidationException"),
        "the model's ARN pattern refuses it"
    );
    let gone = cp
        .list_tags_for_resource()
        .resource_arn(format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:nope"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Some("ResourceNotFoundException"));

    // Validation: each refused, nothing created.
    let one_stage = cp
        .create_pipeline()
        .pipeline(declaration("bad", vec![source_stage("false")]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        one_stage.code(),
        Some("InvalidStructureException"),
        "{one_stage:?}"
    );
    let no_input = cp
        .create_pipeline()
        .pipeline(declaration(
            "bad",
            vec![source_stage("false"), {
                let mut s = build_stage().actions().to_vec();
                s.remove(0);
                StageDeclaration::builder()
                    .name("Deploy")
                    .set_actions(Some(s))
                    .build()
                    .unwrap()
            }],
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(no_input.code(), Some("InvalidStructureException"));
    let bogus = ActionDeclaration::builder()
        .name("Build")
        .action_type_id(action_type(ActionCategory::Build, "Jenkins"))
        .input_artifacts(
            InputArtifact::builder()
                .name("source-artifact")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let unknown = cp
        .create_pipeline()
        .pipeline(declaration(
            "bad",
            vec![
                source_stage("false"),
                StageDeclaration::builder()
                    .name("B")
                    .actions(bogus)
                    .build()
                    .unwrap(),
            ],
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Some("InvalidStructureException"));
    assert!(unknown.message().unwrap().contains("Jenkins"));
    let missing_key = ActionDeclaration::builder()
        .name("Build")
        .action_type_id(action_type(ActionCategory::Build, "CodeBuild"))
        .input_artifacts(
            InputArtifact::builder()
                .name("source-artifact")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let missing = cp
        .create_pipeline()
        .pipeline(declaration(
            "bad",
            vec![
                source_stage("false"),
                StageDeclaration::builder()
                    .name("B")
                    .actions(missing_key)
                    .build()
                    .unwrap(),
            ],
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("InvalidActionDeclarationException"));
    assert!(missing.message().unwrap().contains("ProjectName"));
    let bad_name = cp
        .create_pipeline()
        .pipeline(declaration(
            "bad name!",
            vec![source_stage("false"), build_stage()],
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(bad_name.code(), Some("ValidationException"));
    let not_found = cp.get_pipeline().name("bad").send().await.unwrap_err();
    assert_eq!(not_found.code(), Some("PipelineNotFoundException"));
    let no_exec = cp
        .get_pipeline_execution()
        .pipeline_name("demo")
        .pipeline_execution_id("00000000-0000-0000-0000-000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(no_exec.code(), Some("PipelineExecutionNotFoundException"));

    // Action types.
    let types = cp
        .list_action_types()
        .action_owner_filter(ActionOwner::Aws)
        .send()
        .await
        .unwrap();
    assert!(
        types
            .action_types()
            .iter()
            .any(|a| a.id().unwrap().provider() == "CodeBuild")
    );
    let at = cp
        .get_action_type()
        .category(ActionCategory::Deploy)
        .owner("AWS")
        .provider("S3")
        .version("1")
        .send()
        .await
        .unwrap();
    assert!(
        at.action_type()
            .unwrap()
            .properties()
            .iter()
            .any(|p| p.name() == "Extract")
    );

    // The aws CLI sees the same.
    let (ok, out, err) = aws_cli(&t.endpoint, &["codepipeline", "list-pipelines"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["pipelines"][0]["name"], "demo");
    assert_eq!(v["pipelines"][0]["version"], 2);

    cp.delete_pipeline().name("demo").send().await.unwrap();
    assert!(
        cp.list_pipelines()
            .send()
            .await
            .unwrap()
            .pipelines()
            .is_empty()
    );
    let gone = cp
        .list_pipeline_executions()
        .pipeline_name("demo")
        .send()
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Some("PipelineNotFoundException"));
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_codepipeline_apply_plan_destroy() {
    let t = TestServer::start().await;
    let dir = terraform_workspace("codepipeline");
    let (code, out) = terraform(dir.path(), &t.endpoint, &["apply", "-auto-approve"]);
    assert_eq!(code, 0, "apply failed:\n{out}");
    let (code, out) = terraform(dir.path(), &t.endpoint, &["plan", "-detailed-exitcode"]);
    assert_eq!(code, 0, "plan after apply is not empty:\n{out}");

    let cp = Client::new(&t.sdk_config().await);
    let v2 = cp
        .get_pipeline()
        .name("tf-v2-pipeline")
        .send()
        .await
        .unwrap();
    let p = v2.pipeline().unwrap();
    assert_eq!(p.pipeline_type(), Some(&PipelineType::V2));
    assert_eq!(p.execution_mode(), Some(&ExecutionMode::Queued));
    assert_eq!(p.variables()[0].name(), "env");
    assert_eq!(
        p.stages()[1].actions()[0].namespace(),
        Some("BuildVariables")
    );

    // An update (tags and a configuration value): TagResource + UpdatePipeline.
    let (code, out) = terraform(
        dir.path(),
        &t.endpoint,
        &["apply", "-auto-approve", "-var=build_project=other-build"],
    );
    assert_eq!(code, 0, "update failed:\n{out}");
    let got = cp
        .get_pipeline()
        .name("tf-seed-pipeline")
        .send()
        .await
        .unwrap();
    assert_eq!(got.pipeline().unwrap().version(), Some(2));
    // (No second plan: each terraform run costs ~20 s on a loaded machine; the update's own
    // read-back already compares what GetPipeline returns.)
    let tags = cp
        .list_tags_for_resource()
        .resource_arn(got.metadata().unwrap().pipeline_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == "build" && t.value() == "other-build")
    );

    let (code, out) = terraform(
        dir.path(),
        &t.endpoint,
        &["destroy", "-auto-approve", "-var=build_project=other-build"],
    );
    assert_eq!(code, 0, "destroy failed:\n{out}");
    assert!(
        cp.list_pipelines()
            .send()
            .await
            .unwrap()
            .pipelines()
            .is_empty()
    );
    t.assert_no_model_violations();
}

/// Runs git with the aws CLI's CodeCommit credential helper against the test server.
fn git(t: &TestServer, dir: &std::path::Path, args: &[&str]) {
    let helper = "!aws codecommit credential-helper --ignore-host-check $@";
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "credential.helper=",
            "-c",
            &format!("credential.helper={helper}"),
            "-c",
            "credential.UseHttpPath=true",
        ])
        .args(["-c", "user.name=Dev", "-c", "user.email=dev@example.com"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_ENDPOINT_URL", &t.endpoint)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    let cc = aws_sdk_codecommit::Client::new(&conf);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build(),
    );
    let cb = aws_sdk_codebuild::Client::new(&conf);
    let ev = aws_sdk_eventbridge::Client::new(&conf);
    let iam = aws_sdk_iam::Client::new(&conf);

    let repo = cc
        .create_repository()
        .repository_name("demo-repo")
        .send()
        .await
        .unwrap();
    let repo = repo.repository_metadata().unwrap().clone();
    s3.create_bucket()
        .bucket("demo-artifacts")
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = iam
        .create_role()
        .role_name("build-role")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    let role_arn = role.role().unwrap().arn().to_string();
    // Fails when the commit carries FAIL, unless the project says failures are fixed.
    let buildspec = |fixed: bool| {
        format!(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p target && cp README.md target/app.jar\n      - if [ -f FAIL ] && [ {fixed} != true ]; then echo unit test failed; exit 1; fi\nartifacts:\n  files:\n    - target/app.jar\n"
        )
    };
    let project = |spec: String| {
        (
            aws_sdk_codebuild::types::ProjectSource::builder()
                .r#type(aws_sdk_codebuild::types::SourceType::Codepipeline)
                .buildspec(spec)
                .build()
                .unwrap(),
            aws_sdk_codebuild::types::ProjectArtifacts::builder()
                .r#type(aws_sdk_codebuild::types::ArtifactsType::Codepipeline)
                .build()
                .unwrap(),
        )
    };
    let env = aws_sdk_codebuild::types::ProjectEnvironment::builder()
        .r#type(aws_sdk_codebuild::types::EnvironmentType::LinuxContainer)
        .image("aws/codebuild/standard:7.0")
        .compute_type(aws_sdk_codebuild::types::ComputeType::BuildGeneral1Small)
        .build()
        .unwrap();
    let (source, artifacts) = project(buildspec(false));
    cb.create_project()
        .name("demo-build")
        .source(source)
        .artifacts(artifacts)
        .environment(env.clone())
        .service_role(&role_arn)
        .send()
        .await
        .unwrap();

    let created = cp
        .create_pipeline()
        .pipeline(declaration(
            "demo",
            vec![source_stage("false"), build_stage()],
        ))
        .send()
        .await
        .unwrap();
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
        &t,
        work.path(),
        &[
            "clone",
            "-q",
            repo.clone_url_http().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    std::fs::write(clone.join("README.md"), "the app").unwrap();
    git(&t, &clone, &["checkout", "-q", "-B", "master"]);
    git(&t, &clone, &["add", "-A"]);
    git(&t, &clone, &["commit", "-qm", "CRM demo service"]);
    git(&t, &clone, &["push", "-q", "origin", "master"]);
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
    git(&t, &clone, &["add", "-A"]);
    git(&t, &clone, &["commit", "-qm", "a failing unit test"]);
    git(&t, &clone, &["push", "-q", "origin", "master"]);
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
    let (source, _) = project(buildspec(true));
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
    let cp = Client::new(&conf);
    cp.create_pipeline()
        .pipeline(declaration(
            "lonely",
            vec![source_stage("false"), build_stage()],
        ))
        .send()
        .await
        .unwrap();
    cp.create_pipeline()
        .pipeline(declaration(
            "polling",
            vec![source_stage("true"), build_stage()],
        ))
        .send()
        .await
        .unwrap();
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

/// A zip of `files`, made with Python's zipfile (no zip crate among the server's dev-dependencies).
fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for (name, content) in files {
        let path = src.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let zip = dir.path().join("out.zip");
    let script = "import sys, zipfile, os\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n    for root, _, names in os.walk(sys.argv[2]):\n        for n in names:\n            p = os.path.join(root, n)\n            z.write(p, os.path.relpath(p, sys.argv[2]))\n";
    let ok = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&zip)
        .arg(&src)
        .status()
        .unwrap()
        .success();
    assert!(ok, "python3 zipfile");
    std::fs::read(zip).unwrap()
}

/// An S3 source, a manual approval that holds the execution until
/// `aws codepipeline put-approval-result`, then an S3 deploy of the source's files.
#[tokio::test(flavor = "multi_thread")]
async fn manual_approval_holds_until_put_approval_result() {
    let t = TestServer::start().await;
    let conf = t.sdk_config().await;
    let cp = Client::new(&conf);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build(),
    );
    for b in ["appr-src", "appr-artifacts", "appr-site"] {
        s3.create_bucket()
            .bucket(b)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await
            .unwrap();
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
    tokio::time::sleep(Duration::from_millis(500)).await;
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
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let e = cp
            .get_pipeline_execution()
            .pipeline_name("release")
            .pipeline_execution_id(&id)
            .send()
            .await
            .unwrap();
        match e.pipeline_execution().unwrap().status() {
            Some(PipelineExecutionStatus::Succeeded) => break,
            Some(PipelineExecutionStatus::InProgress) if Instant::now() < deadline => {}
            other => panic!("execution ended {other:?}: {e:#?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
    let conf_for = |endpoint: &str| {
        let creds =
            aws_credential_types::Credentials::new("test", "test", None, None, "codeyard-tests");
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(endpoint)
            .credentials_provider(creds)
            .load()
    };
    let conf = conf_for(&server.endpoint).await;
    let cc = aws_sdk_codecommit::Client::new(&conf);
    let cb = aws_sdk_codebuild::Client::new(&conf);
    let iam = aws_sdk_iam::Client::new(&conf);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build(),
    );
    cc.create_repository()
        .repository_name("demo-repo")
        .send()
        .await
        .unwrap();
    cc.put_file()
        .repository_name("demo-repo")
        .branch_name("master")
        .file_path("README.md")
        .file_content(aws_sdk_codecommit::primitives::Blob::new("hi"))
        .commit_message("first")
        .send()
        .await
        .unwrap();
    s3.create_bucket()
        .bucket("demo-artifacts")
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = iam
        .create_role()
        .role_name("build-role")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    cb.create_project()
        .name("demo-build")
        .source(
            aws_sdk_codebuild::types::ProjectSource::builder()
                .r#type(aws_sdk_codebuild::types::SourceType::Codepipeline)
                .buildspec("version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 60\n")
                .build()
                .unwrap(),
        )
        .artifacts(
            aws_sdk_codebuild::types::ProjectArtifacts::builder()
                .r#type(aws_sdk_codebuild::types::ArtifactsType::Codepipeline)
                .build()
                .unwrap(),
        )
        .environment(
            aws_sdk_codebuild::types::ProjectEnvironment::builder()
                .r#type(aws_sdk_codebuild::types::EnvironmentType::LinuxContainer)
                .image("aws/codebuild/standard:7.0")
                .compute_type(aws_sdk_codebuild::types::ComputeType::BuildGeneral1Small)
                .build()
                .unwrap(),
        )
        .service_role(role.role().unwrap().arn())
        .send()
        .await
        .unwrap();
    let cp = Client::new(&conf);
    cp.create_pipeline()
        .pipeline(declaration(
            "demo",
            vec![source_stage("false"), build_stage()],
        ))
        .send()
        .await
        .unwrap();
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
    let cp = Client::new(&conf_for(&server.endpoint).await);
    let deadline = Instant::now() + Duration::from_secs(60);
    let e = loop {
        let e = cp
            .get_pipeline_execution()
            .pipeline_name("demo")
            .pipeline_execution_id(&id)
            .send()
            .await
            .unwrap();
        let e = e.pipeline_execution().unwrap().clone();
        if e.status() != Some(&PipelineExecutionStatus::InProgress) {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "still InProgress after the restart: {e:#?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(e.status(), Some(&PipelineExecutionStatus::Failed), "{e:#?}");
    assert!(
        e.status_summary().unwrap().contains("BuildAndTest"),
        "{:?}",
        e.status_summary()
    );
    server.kill9();
}
