//! The whole chain, as a user meets it: `codeyard demo` against a fresh server creates the seed
//! topology through the APIs, pushes the sample service, and the pipeline (started by the
//! EventBridge rule) builds, tests, deploys the jar to S3 and pushes the image to ECR.
//! `--next` goes on: the image push deploys it to ECS and a test stage calls it over HTTP.
//! And the worked example's Terraform applies, plans clean and destroys clean.

use crate::common::*;
use aws_sdk_ecr::types::ImageIdentifier;
use std::time::Duration;

/// `codeyard demo --exit` (with `--next` when `next`) against the test's server; its exit code.
async fn run_demo(t: &TestServer, next: bool) -> i32 {
    codeyard_server::demo::run(codeyard_server::demo::DemoOptions {
        endpoint: Some(t.endpoint.clone()),
        data_dir: None,
        exit: true,
        timeout: Duration::from_secs(600),
        // The test's own server decides where builds run; this only applies to an embedded one.
        executor: codeyard_codebuild::ExecutorChoice::Local,
        next,
    })
    .await
    .expect("demo runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_runs_the_seed_pipeline_green() {
    let t = TestServer::start().await;
    let code = run_demo(&t, false).await;
    assert_eq!(code, 0, "the demo's pipeline did not succeed");

    // The jar the S3 deploy action extracted, and the image stage's tags.
    let s3 = s3_client(&t.endpoint).await;
    let jar = s3.get_object().bucket("codeyard-demo-artifacts").key("app-jar/target/app.jar").send().await.expect("jar in S3");
    assert!(jar.content_length().unwrap_or(0) > 1000);
    let ecr = aws_sdk_ecr::Client::new(&t.sdk_config().await);
    let images = ecr.describe_images().repository_name("codeyard-demo-app").send().await.expect("images");
    let tags: Vec<String> = images.image_details().iter().flat_map(|d| d.image_tags().to_vec()).collect();
    assert!(tags.contains(&"latest".to_string()), "tags: {tags:?}");
    t.assert_no_model_violations();
}

/// `codeyard demo --next`: after the seed run, its image runs as an ECS service and a deploy
/// pipeline (ECR source -> CodeBuild imagedefinitions.json -> ECS deploy -> CodeBuild test over
/// HTTP) is created; a pushed change of the service goes through the seed pipeline, the image
/// push starts the deploy pipeline (by the EventBridge rule), and the service answers with the
/// new version. The server enforces IAM, so the demo's least-privilege roles suffice. The demo
/// deletes the service at the end: no task container is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_next_deploys_the_pushed_image_to_ecs_and_tests_it_over_http() {
    if std::process::Command::new("jlink").arg("--version").output().is_err() {
        eprintln!("SKIPPED: codeyard demo --next needs a JDK with jlink");
        return;
    }
    let t = TestServer::start().await;
    let containers = crate::ecs::TaskContainers(t.data_dir.clone());
    let code = run_demo(&t, true).await;
    assert_eq!(code, 0, "the demo's deploy chain did not pass");

    // Two deploy executions, both green: CreatePipeline's, then the image push's (the rule).
    let conf = t.sdk_config().await;
    let cp = aws_sdk_codepipeline::Client::new(&conf);
    let runs = cp.list_pipeline_executions().pipeline_name("codeyard-demo-deploy").send().await.unwrap();
    let runs = runs.pipeline_execution_summaries();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|r| r.status() == Some(&aws_sdk_codepipeline::types::PipelineExecutionStatus::Succeeded)), "{runs:?}");
    let pushed = &runs[0];
    let trigger = pushed.trigger().expect("trigger");
    assert_eq!(trigger.trigger_type(), Some(&aws_sdk_codepipeline::types::TriggerType::CloudWatchEvent), "{pushed:?}");
    assert!(trigger.trigger_detail().unwrap_or_default().ends_with(":rule/codeyard-demo-on-image-push"), "{pushed:?}");

    // It deployed the image the second seed run pushed, and its Test stage ran a build.
    let ecr = aws_sdk_ecr::Client::new(&conf);
    let latest = ImageIdentifier::builder().image_tag("latest").build();
    let images = ecr.describe_images().repository_name("codeyard-demo-app").image_ids(latest).send().await.unwrap();
    let digest = images.image_details()[0].image_digest().unwrap().to_string();
    assert_eq!(pushed.source_revisions()[0].revision_id(), Some(digest.as_str()), "{pushed:?}");
    let ecs = aws_sdk_ecs::Client::new(&conf);
    let td = ecs.describe_task_definition().task_definition("codeyard-demo-crm").send().await.unwrap();
    let td = td.task_definition().unwrap();
    assert!(td.container_definitions()[0].image().unwrap().ends_with(&format!("@{digest}")), "{td:?}");
    let cb = aws_sdk_codebuild::Client::new(&conf);
    let tests = cb.list_builds_for_project().project_name("codeyard-demo-test-service").send().await.unwrap();
    assert_eq!(tests.ids().len(), 2, "one test build per deploy");
    let builds = cb.batch_get_builds().set_ids(Some(tests.ids().to_vec())).send().await.unwrap();
    assert!(builds.builds().iter().all(|b| b.build_status() == Some(&aws_sdk_codebuild::types::StatusType::Succeeded)));

    // The demo deleted the service; its containers are gone.
    let svc = ecs.describe_services().cluster("codeyard-demo-cluster").services("codeyard-demo-crm").send().await.unwrap();
    assert_ne!(svc.services()[0].status(), Some("ACTIVE"), "{svc:?}");
    containers.wait_all_removed("the service's containers to be removed", Duration::from_secs(60)).await;
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn worked_example_terraform_applies_plans_clean_and_destroys() {
    let t = TestServer::start().await;
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/aws-devops-demo/terraform/main.tf");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&src, dir.path().join("main.tf")).unwrap();
    let (code, out) = terraform(dir.path(), &t.endpoint, &["init"]);
    assert_eq!(code, 0, "init:\n{out}");
    terraform_apply_clean(dir.path(), &t.endpoint, &[]);
    terraform_destroy(dir.path(), &t.endpoint, &[]);
    let cp = aws_sdk_codepipeline::Client::new(&t.sdk_config().await);
    assert!(cp.list_pipelines().send().await.unwrap().pipelines().is_empty());
    let cc = aws_sdk_codecommit::Client::new(&t.sdk_config().await);
    assert!(cc.list_repositories().send().await.unwrap().repositories().is_empty());
    t.assert_no_model_violations();
}

/// A CodeCommit source with OutputArtifactFormat CODEBUILD_CLONE_REF hands the build a pointer,
/// and the CodeBuild action clones that very commit with its git metadata (`.git` present).
#[tokio::test(flavor = "multi_thread")]
async fn clone_ref_source_builds_from_a_full_clone() {
    use serde_json::json;
    let t = TestServer::start().await;
    let c = codeyard_server::client::AwsClient::new(&t.endpoint, REGION, "test", "test");
    let repo = c.json("codecommit", "CodeCommit_20150413.CreateRepository", json!({"repositoryName": "cr"})).await.unwrap();
    let clone_url = repo["repositoryMetadata"]["cloneUrlHttp"].as_str().unwrap().to_string();
    c.s3("PUT", "/cr-artifacts", Vec::new()).await.unwrap();
    let iam = aws_sdk_iam::Client::new(&t.sdk_config().await);
    let build_role = create_service_role(&iam, "cr-build", "codebuild.amazonaws.com", &codebuild_role_policy()).await;
    let pipeline_role = create_service_role(&iam, "cr-pipeline", "codepipeline.amazonaws.com", &codepipeline_role_policy()).await;
    // The build proves it has the commit's git metadata, then publishes what it saw.
    let buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - test -d .git\n      - git rev-parse HEAD > head.txt\nartifacts:\n  files:\n    - head.txt\n";
    let work = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| git(work.path(), args);
    git(&["init", "-q", "-b", "master"]);
    let commit = commit_file(work.path(), "buildspec.yml", buildspec, "first");
    git(&["push", "-q", &clone_url.replacen("://", "://u:p@", 1), "master"]);
    c.json(
        "codebuild",
        "CodeBuild_20161006.CreateProject",
        json!({"name": "cr-build", "source": {"type": "CODEPIPELINE"}, "artifacts": {"type": "CODEPIPELINE"},
               "environment": {"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_SMALL"},
               "serviceRole": build_role}),
    )
    .await
    .unwrap();
    let source_config = json!({"RepositoryName": "cr", "BranchName": "master", "PollForSourceChanges": "false", "OutputArtifactFormat": "CODEBUILD_CLONE_REF"});
    let stages = json!([
        {"name": "Source", "actions": [action_json("Source", "Source", "CodeCommit", &[], &["src"], source_config)]},
        {"name": "Build", "actions": [action_json("Build", "Build", "CodeBuild", &["src"], &["out"], json!({"ProjectName": "cr-build"}))]},
    ]);
    c.json("codepipeline", "CodePipeline_20150709.CreatePipeline", pipeline_json("cr", &pipeline_role, "cr-artifacts", stages)).await.unwrap();
    // CreatePipeline starts an execution on the pushed commit.
    let execution = wait_for("the pipeline's first execution to end", Duration::from_secs(120), Duration::from_millis(300), || async {
        let list = c.json("codepipeline", "CodePipeline_20150709.ListPipelineExecutions", json!({"pipelineName": "cr"})).await.unwrap();
        let first = list["pipelineExecutionSummaries"][0].clone();
        first["status"].as_str().is_some_and(|s| s != "InProgress").then_some(first)
    })
    .await;
    assert_eq!(execution["status"], "Succeeded", "{execution}");
    let actions = c.json("codepipeline", "CodePipeline_20150709.ListActionExecutions", json!({"pipelineName": "cr"})).await.unwrap();
    let build = actions["actionExecutionDetails"].as_array().unwrap().iter().find(|a| a["actionName"] == "Build").unwrap().clone();
    let out = &build["output"]["outputArtifacts"][0]["s3location"];
    let (_, zip) = c.s3("GET", &format!("/{}/{}", out["bucket"].as_str().unwrap(), out["key"].as_str().unwrap()), Vec::new()).await.unwrap();
    assert!(!zip.is_empty());
    let builds = c.json("codebuild", "CodeBuild_20161006.BatchGetBuilds", json!({"ids": [build["output"]["executionResult"]["externalExecutionId"]]})).await.unwrap();
    assert_eq!(builds["builds"][0]["resolvedSourceVersion"], commit.as_str(), "{builds}");
    t.assert_no_model_violations();
}
