//! CodePipeline end to end: the API through aws-sdk-rust and the aws CLI (validation errors
//! included), Terraform's aws_codepipeline round trip, and the engine driving a real chain
//! (CodeCommit, EventBridge, CodeBuild, S3) when those services are present.

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::*;
use crate::common::*;

mod runs;
use std::time::Duration;

fn action_type(category: ActionCategory, provider: &str) -> ActionTypeId {
    ActionTypeId::builder().category(category).owner(ActionOwner::Aws).provider(provider).version("1").build().unwrap()
}

/// The stage `name` with `actions`.
fn stage(name: &str, actions: Vec<ActionDeclaration>) -> StageDeclaration {
    StageDeclaration::builder().name(name).set_actions(Some(actions)).build().unwrap()
}

/// The action `name` of `category` and `provider`, reading `inputs` and writing `outputs`,
/// with `config`.
fn action(name: &str, category: ActionCategory, provider: &str, inputs: &[&str], outputs: &[&str], config: &[(&str, &str)]) -> ActionDeclaration {
    let mut a = ActionDeclaration::builder().name(name).action_type_id(action_type(category, provider));
    for i in inputs {
        a = a.input_artifacts(InputArtifact::builder().name(*i).build().unwrap());
    }
    for o in outputs {
        a = a.output_artifacts(OutputArtifact::builder().name(*o).build().unwrap());
    }
    for (k, v) in config {
        a = a.configuration(*k, *v);
    }
    a.build().unwrap()
}

fn source_stage(poll: &str) -> StageDeclaration {
    let config = [("RepositoryName", "demo-repo"), ("BranchName", "master"), ("PollForSourceChanges", poll)];
    stage("Source", vec![action("Source", ActionCategory::Source, "CodeCommit", &[], &["source-artifact"], &config)])
}

fn build_stage() -> StageDeclaration {
    let mut build = action("BuildAndTest", ActionCategory::Build, "CodeBuild", &["source-artifact"], &["app-jar-artifact"], &[("ProjectName", "demo-build")]);
    build.run_order = Some(1);
    let upload_config = [("BucketName", "demo-artifacts"), ("Extract", "true"), ("ObjectKey", "app-jar")];
    let mut upload = action("UploadJar", ActionCategory::Deploy, "S3", &["app-jar-artifact"], &[], &upload_config);
    upload.run_order = Some(2);
    stage("BuildAndTest", vec![build, upload])
}

/// Waits until an execution is no longer InProgress; returns it.
async fn execution_ended(cp: &Client, pipeline: &str, id: &str, limit: Duration) -> PipelineExecution {
    wait_for(&format!("execution {id} of {pipeline} to end"), limit, Duration::from_millis(200), || async {
        let out = cp.get_pipeline_execution().pipeline_name(pipeline).pipeline_execution_id(id).send().await.unwrap();
        let e = out.pipeline_execution().unwrap().clone();
        (e.status() != Some(&PipelineExecutionStatus::InProgress)).then_some(e)
    })
    .await
}

/// An S3 artifact store in `bucket`.
fn artifact_store(bucket: &str) -> ArtifactStore {
    ArtifactStore::builder().r#type(ArtifactStoreType::S3).location(bucket).build().unwrap()
}

fn declaration(name: &str, stages: Vec<StageDeclaration>) -> PipelineDeclaration {
    PipelineDeclaration::builder()
        .name(name)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/pipeline-role"))
        .artifact_store(artifact_store("demo-artifacts"))
        .set_stages(Some(stages))
        .pipeline_type(PipelineType::V1)
        .execution_mode(ExecutionMode::Superseded)
        .build()
        .unwrap()
}

/// Creates `name` with the seed's two stages: the CodeCommit source (`PollForSourceChanges` =
/// `poll`) and the CodeBuild build.
async fn create_seed(cp: &Client, name: &str, poll: &str) -> aws_sdk_codepipeline::operation::create_pipeline::CreatePipelineOutput {
    cp.create_pipeline().pipeline(declaration(name, vec![source_stage(poll), build_stage()])).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn pipeline_api_round_trip_and_validation() {
    let (t, cp) = TestServer::with(Client::new).await;
    runs::pipeline_roles(&t.sdk_config().await).await;
    let decl = declaration("demo", vec![source_stage("false"), build_stage()]);
    let team = Tag::builder().key("team").value("a").build().unwrap();
    let created = cp.create_pipeline().pipeline(decl.clone()).tags(team).send().await.unwrap();
    assert_eq!(created.pipeline().unwrap().version(), Some(1));
    assert_eq!(created.tags().len(), 1);
    let again = cp.create_pipeline().pipeline(decl.clone()).send().await.unwrap_err();
    assert_eq!(again.code(), Some("PipelineNameInUseException"));

    let got = cp.get_pipeline().name("demo").send().await.unwrap();
    let p = got.pipeline().unwrap();
    assert_eq!(p.stages().len(), 2);
    assert_eq!(p.stages()[1].actions()[1].run_order(), Some(2));
    assert_eq!(p.stages()[0].actions()[0].configuration().unwrap()["PollForSourceChanges"], "false");
    assert_eq!(p.execution_mode(), Some(&ExecutionMode::Superseded));
    let meta = got.metadata().unwrap();
    assert_eq!(meta.pipeline_arn(), Some(format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:demo").as_str()));
    assert!(meta.created().is_some() && meta.updated().is_some());

    // CreatePipeline started an execution (it fails: the repository does not exist).
    let execs = cp.list_pipeline_executions().pipeline_name("demo").send().await.unwrap();
    let first = &execs.pipeline_execution_summaries()[0];
    assert_eq!(first.trigger().unwrap().trigger_type(), Some(&TriggerType::CreatePipeline));
    let first_id = first.pipeline_execution_id().unwrap().to_string();
    let failed = execution_ended(&cp, "demo", &first_id, Duration::from_secs(20)).await;
    assert_eq!(failed.status(), Some(&PipelineExecutionStatus::Failed));
    assert!(failed.status_summary().unwrap().contains("Source"), "{:?}", failed.status_summary());
    let state = cp.get_pipeline_state().name("demo").send().await.unwrap();
    let source = &state.stage_states()[0];
    assert_eq!(source.latest_execution().unwrap().status(), &StageExecutionStatus::Failed);
    assert_eq!(source.action_states()[0].latest_execution().unwrap().status(), Some(&ActionExecutionStatus::Failed));
    assert!(state.stage_states()[1].inbound_transition_state().unwrap().enabled());
    let acts = cp.list_action_executions().pipeline_name("demo").send().await.unwrap();
    assert_eq!(acts.action_execution_details()[0].action_name(), Some("Source"));

    // Update: version + 1; a started execution is listed newest first.
    let stages = vec![source_stage("false"), stage("Build", build_stage().actions().to_vec())];
    let updated = cp.update_pipeline().pipeline(declaration("demo", stages)).send().await.unwrap();
    assert_eq!(updated.pipeline().unwrap().version(), Some(2));
    let v1 = cp.get_pipeline().name("demo").version(1).send().await.unwrap();
    assert_eq!(v1.pipeline().unwrap().stages()[1].name(), "BuildAndTest");
    let missing_version = cp.get_pipeline().name("demo").version(7).send().await.unwrap_err();
    assert_eq!(missing_version.code(), Some("PipelineVersionNotFoundException"));
    let start = || cp.start_pipeline_execution().name("demo").client_request_token("abc-1").send();
    let (started, same) = (start().await.unwrap(), start().await.unwrap());
    assert_eq!(started.pipeline_execution_id(), same.pipeline_execution_id());
    let execs = cp.list_pipeline_executions().pipeline_name("demo").send().await.unwrap();
    let newest = &execs.pipeline_execution_summaries()[0];
    assert_eq!(execs.pipeline_execution_summaries().len(), 2);
    assert_eq!(newest.pipeline_execution_id(), started.pipeline_execution_id());
    assert_eq!(newest.trigger().unwrap().trigger_type(), Some(&TriggerType::StartPipelineExecution));

    // Transitions.
    let inbound = StageTransitionType::Inbound;
    cp.disable_stage_transition().pipeline_name("demo").stage_name("Build").transition_type(inbound.clone()).reason("release freeze").send().await.unwrap();
    let state = cp.get_pipeline_state().name("demo").send().await.unwrap();
    let tr = state.stage_states()[1].inbound_transition_state().unwrap();
    assert!(!tr.enabled());
    assert_eq!(tr.disabled_reason(), Some("release freeze"));
    let no_stage = cp.enable_stage_transition().pipeline_name("demo").stage_name("Nope").transition_type(inbound).send().await.unwrap_err();
    assert_eq!(no_stage.code(), Some("StageNotFoundException"));

    // Tags by ARN.
    let arn = meta.pipeline_arn().unwrap();
    cp.tag_resource().resource_arn(arn).tags(Tag::builder().key("env").value("dev").build().unwrap()).send().await.unwrap();
    cp.untag_resource().resource_arn(arn).tag_keys("team").send().await.unwrap();
    let tags = cp.list_tags_for_resource().resource_arn(arn).send().await.unwrap();
    assert_eq!(tags.tags().iter().map(|t| t.key()).collect::<Vec<_>>(), vec!["env"]);
    let bad_arn = cp.list_tags_for_resource().resource_arn("not-an-arn").send().await.unwrap_err();
    assert_eq!(bad_arn.code(), Some("ValidationException"), "the model's ARN pattern refuses it");
    let gone = cp.list_tags_for_resource().resource_arn(format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:nope")).send().await.unwrap_err();
    assert_eq!(gone.code(), Some("ResourceNotFoundException"));

    // Validation: each refused, nothing created.
    let refused = |name: &str, stages: Vec<StageDeclaration>| cp.create_pipeline().pipeline(declaration(name, stages)).send();
    let one_stage = refused("bad", vec![source_stage("false")]).await.unwrap_err();
    assert_eq!(one_stage.code(), Some("InvalidStructureException"), "{one_stage:?}");
    let mut deploy_only = build_stage().actions().to_vec();
    deploy_only.remove(0);
    let no_input = refused("bad", vec![source_stage("false"), stage("Deploy", deploy_only)]).await.unwrap_err();
    assert_eq!(no_input.code(), Some("InvalidStructureException"));
    // A build action reading the source artifact, of `provider`, without configuration.
    let build_action = |provider: &str| action("Build", ActionCategory::Build, provider, &["source-artifact"], &[], &[]);
    let unknown = refused("bad", vec![source_stage("false"), stage("B", vec![build_action("Jenkins")])]).await.unwrap_err();
    assert_eq!(unknown.code(), Some("InvalidStructureException"));
    assert!(unknown.message().unwrap().contains("Jenkins"));
    let missing = refused("bad", vec![source_stage("false"), stage("B", vec![build_action("CodeBuild")])]).await.unwrap_err();
    assert_eq!(missing.code(), Some("InvalidActionDeclarationException"));
    assert!(missing.message().unwrap().contains("ProjectName"));
    let bad_name = refused("bad name!", vec![source_stage("false"), build_stage()]).await.unwrap_err();
    assert_eq!(bad_name.code(), Some("ValidationException"));
    let not_found = cp.get_pipeline().name("bad").send().await.unwrap_err();
    assert_eq!(not_found.code(), Some("PipelineNotFoundException"));
    let no_exec = cp.get_pipeline_execution().pipeline_name("demo").pipeline_execution_id("00000000-0000-0000-0000-000000000000").send().await;
    assert_eq!(no_exec.unwrap_err().code(), Some("PipelineExecutionNotFoundException"));

    // Action types.
    let types = cp.list_action_types().action_owner_filter(ActionOwner::Aws).send().await.unwrap();
    assert!(types.action_types().iter().any(|a| a.id().unwrap().provider() == "CodeBuild"));
    let at = cp.get_action_type().category(ActionCategory::Deploy).owner("AWS").provider("S3").version("1").send().await.unwrap();
    assert!(at.action_type().unwrap().properties().iter().any(|p| p.name() == "Extract"));

    // The aws CLI sees the same.
    let v = aws_cli_json(&t.endpoint, &["codepipeline", "list-pipelines"]);
    assert_eq!(v["pipelines"][0]["name"], "demo");
    assert_eq!(v["pipelines"][0]["version"], 2);

    cp.delete_pipeline().name("demo").send().await.unwrap();
    assert!(cp.list_pipelines().send().await.unwrap().pipelines().is_empty());
    let gone = cp.list_pipeline_executions().pipeline_name("demo").send().await.unwrap_err();
    assert_eq!(gone.code(), Some("PipelineNotFoundException"));
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_codepipeline_apply_plan_destroy() {
    let (t, dir, cp) = terraform_applied("codepipeline", Client::new).await;
    let v2 = cp.get_pipeline().name("tf-v2-pipeline").send().await.unwrap();
    let p = v2.pipeline().unwrap();
    assert_eq!(p.pipeline_type(), Some(&PipelineType::V2));
    assert_eq!(p.execution_mode(), Some(&ExecutionMode::Queued));
    assert_eq!(p.variables()[0].name(), "env");
    assert_eq!(p.stages()[1].actions()[0].namespace(), Some("BuildVariables"));

    // An update (tags and a configuration value): TagResource + UpdatePipeline.
    terraform_apply(dir.path(), &t.endpoint, &["-var=build_project=other-build"]);
    let got = cp.get_pipeline().name("tf-seed-pipeline").send().await.unwrap();
    assert_eq!(got.pipeline().unwrap().version(), Some(2));
    // (No second plan: each terraform run costs ~20 s on a loaded machine; the update's own
    // read-back already compares what GetPipeline returns.)
    let tags = cp.list_tags_for_resource().resource_arn(got.metadata().unwrap().pipeline_arn().unwrap()).send().await.unwrap();
    assert!(tags.tags().iter().any(|t| t.key() == "build" && t.value() == "other-build"));

    terraform_destroy(dir.path(), &t.endpoint, &["-var=build_project=other-build"]);
    assert!(cp.list_pipelines().send().await.unwrap().pipelines().is_empty());
}
