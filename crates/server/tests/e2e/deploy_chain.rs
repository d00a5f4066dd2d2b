//! The deploy chain (issue 18): an image pushed to codeyard's ECR raises "ECR Image Action",
//! an EventBridge rule starts the deploy pipeline (ECR source -> CodeBuild writing
//! `imagedefinitions.json` from `imageDetail.json` -> ECS deploy), and the ECS service then
//! answers HTTP from the new image; an image whose container exits at once fails the deploy
//! action with ECS's reason, and the previous deployment serves again.

use crate::common::*;
use crate::ecs::{TaskContainers, ecs_client, free_port, http_body, push_busybox_image, push_web_image, start_web_service};
use serde_json::{Value, json};
use std::time::Duration;

/// The build step between the ECR source and the ECS deploy, as AWS's tutorials write it.
const DEFS_BUILDSPEC: &str = r#"version: 0.2
phases:
  build:
    commands:
      - test -f imageDetail.json
      - |
        uri=$(sed 's/.*"ImageURI":"\([^"]*\)".*/\1/' imageDetail.json)
        printf '[{"name":"web","imageUri":"%s"}]' "$uri" > imagedefinitions.json
artifacts:
  files:
    - imagedefinitions.json
"#;

fn action(name: &str, category: &str, provider: &str, inputs: &[&str], outputs: &[&str], config: Value) -> Value {
    json!({"name": name, "actionTypeId": {"category": category, "owner": "AWS", "provider": provider, "version": "1"},
           "configuration": config,
           "inputArtifacts": inputs.iter().map(|a| json!({"name": a})).collect::<Vec<_>>(),
           "outputArtifacts": outputs.iter().map(|a| json!({"name": a})).collect::<Vec<_>>()})
}

async fn executions_of(c: &codeyard_server::client::AwsClient, pipeline: &str) -> Vec<Value> {
    let list = c.json("codepipeline", "CodePipeline_20150709.ListPipelineExecutions", json!({"pipelineName": pipeline})).await.unwrap();
    list["pipelineExecutionSummaries"].as_array().cloned().unwrap_or_default()
}

async fn executions(c: &codeyard_server::client::AwsClient) -> Vec<Value> {
    executions_of(c, "deploy").await
}

/// Waits until `n` executions of `pipeline` exist and the newest has ended; answers it.
async fn nth_execution_of_done(c: &codeyard_server::client::AwsClient, pipeline: &str, n: usize) -> Value {
    wait_for("the pipeline execution to end", Duration::from_secs(240), Duration::from_millis(500), || async {
        let all = executions_of(c, pipeline).await;
        let newest = all.first()?.clone();
        (all.len() == n && newest["status"] != "InProgress").then_some(newest)
    })
    .await
}

async fn nth_execution_done(c: &codeyard_server::client::AwsClient, n: usize) -> Value {
    nth_execution_of_done(c, "deploy", n).await
}

async fn action_details(c: &codeyard_server::client::AwsClient, execution: &str) -> Vec<Value> {
    let a = c
        .json(
            "codepipeline",
            "CodePipeline_20150709.ListActionExecutions",
            json!({"pipelineName": "deploy", "filter": {"pipelineExecutionId": execution}}),
        )
        .await
        .unwrap();
    a["actionExecutionDetails"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_image_push_deploys_the_new_image_to_the_ecs_service() {
    let t = TestServer::start().await;
    let containers = TaskContainers(t.data_dir.clone());
    let conf = t.sdk_config().await;
    let c = codeyard_server::client::AwsClient::new(&t.endpoint, REGION, "test", "test");
    let work = tempfile::tempdir().unwrap();
    let ecs = ecs_client(&conf);

    // The service runs v1.
    let v1 = push_web_image(&t, work.path(), "web", "latest", "hello from v1").await;
    let port = free_port();
    start_web_service(&ecs, &v1, port).await;
    assert_eq!(http_body(port).await.as_deref(), Some("hello from v1"));

    // The deploy pipeline: ECR source -> CodeBuild (imagedefinitions.json) -> ECS deploy.
    let iam = aws_sdk_iam::Client::new(&conf);
    let build_role = create_service_role(&iam, "defs-build", "codebuild.amazonaws.com", &codebuild_role_policy()).await;
    let pipeline_policy = allow_policy(&[
        (&["s3:*"], &["*"]),
        (&["codebuild:StartBuild", "codebuild:BatchGetBuilds", "codebuild:StopBuild"], &["*"]),
        (&["ecr:DescribeImages"], &["*"]),
        (&["ecs:DescribeServices", "ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition", "ecs:UpdateService"], &["*"]),
        (&["iam:PassRole"], &["*"]),
    ]);
    let pipeline_role = create_service_role(&iam, "deploy-pipeline", "codepipeline.amazonaws.com", &pipeline_policy).await;
    let events_role = create_service_role(&iam, "deploy-events", "events.amazonaws.com", &events_role_policy()).await;
    c.s3("PUT", "/deploy-artifacts", Vec::new()).await.unwrap();
    c.json(
        "codebuild",
        "CodeBuild_20161006.CreateProject",
        json!({"name": "defs", "source": {"type": "CODEPIPELINE", "buildspec": DEFS_BUILDSPEC}, "artifacts": {"type": "CODEPIPELINE"},
               "environment": {"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_SMALL"},
               "serviceRole": build_role}),
    )
    .await
    .unwrap();
    c.json(
        "codepipeline",
        "CodePipeline_20150709.CreatePipeline",
        json!({"pipeline": {"name": "deploy", "roleArn": pipeline_role,
            "artifactStore": {"type": "S3", "location": "deploy-artifacts"},
            "stages": [
                {"name": "Source", "actions": [{
                    "namespace": "SourceVariables",
                    "name": "Image", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "ECR", "version": "1"},
                    "configuration": {"RepositoryName": "web", "ImageTag": "latest"},
                    "outputArtifacts": [{"name": "image"}]}]},
                {"name": "Build", "actions": [action("Defs", "Build", "CodeBuild", &["image"], &["defs"], json!({"ProjectName": "defs"}))]},
                {"name": "Deploy", "actions": [action("Ecs", "Deploy", "ECS", &["defs"], &[],
                    json!({"ClusterName": "apps", "ServiceName": "web", "FileName": "imagedefinitions.json"}))]},
            ]}}),
    )
    .await
    .unwrap();
    // CreatePipeline runs it once on the current image.
    let first = nth_execution_done(&c, 1).await;
    assert_eq!(first["status"], "Succeeded", "{first}");
    let details = action_details(&c, first["pipelineExecutionId"].as_str().unwrap()).await;
    let source = details.iter().find(|a| a["actionName"] == "Image").unwrap();
    let vars = &source["output"]["outputVariables"];
    assert_eq!(vars["RepositoryName"], "web");
    assert_eq!(vars["ImageTag"], "latest");
    assert_eq!(vars["RegistryId"], ACCOUNT);
    assert!(vars["ImageDigest"].as_str().unwrap().starts_with("sha256:"), "{vars}");
    assert!(vars["ImageURI"].as_str().unwrap().ends_with(&format!("/web@{}", vars["ImageDigest"].as_str().unwrap())), "{vars}");

    // The console's rule for image pushes of web:latest.
    let pattern = json!({"source": ["aws.ecr"], "detail-type": ["ECR Image Action"],
        "detail": {"action-type": ["PUSH"], "result": ["SUCCESS"], "repository-name": ["web"], "image-tag": ["latest"]}});
    c.json("events", "AWSEvents.PutRule", json!({"Name": "web-pushed", "EventPattern": pattern.to_string()})).await.unwrap();
    c.json(
        "events",
        "AWSEvents.PutTargets",
        json!({"Rule": "web-pushed", "Targets": [{"Id": "deploy", "RoleArn": events_role,
            "Arn": format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:deploy")}]}),
    )
    .await
    .unwrap();

    // Push v2: exactly one execution, triggered by the event, and the service serves v2.
    push_web_image(&t, work.path(), "web", "latest", "hello from v2").await;
    let second = nth_execution_done(&c, 2).await;
    assert_eq!(second["status"], "Succeeded", "{second}");
    assert_eq!(second["trigger"]["triggerType"], "CloudWatchEvent", "{second}");
    let body = wait_for("v2 to answer", Duration::from_secs(30), Duration::from_millis(200), || async {
        http_body(port).await.filter(|b| b == "hello from v2")
    })
    .await;
    assert_eq!(body, "hello from v2");
    let svc = ecs.describe_services().cluster("apps").services("web").send().await.unwrap().services()[0].clone();
    assert_eq!(svc.deployments().len(), 1, "the old deployment is gone");
    assert!(svc.task_definition().unwrap().ends_with(":3"), "{:?}", svc.task_definition());
    let digest = action_details(&c, second["pipelineExecutionId"].as_str().unwrap()).await;
    let image = digest.iter().find(|a| a["actionName"] == "Image").unwrap()["output"]["outputVariables"]["ImageDigest"].clone();
    let td = ecs.describe_task_definition().task_definition("web").send().await.unwrap();
    assert!(td.task_definition().unwrap().container_definitions()[0].image().unwrap().ends_with(image.as_str().unwrap()));
    events_idle(&t.endpoint).await;
    assert_eq!(executions(&c).await.len(), 2, "one execution per push");

    // An image whose container exits at once: the deploy fails with ECS's reason and v2 serves on.
    push_busybox_image(&t, work.path(), "web", "latest", None).await;
    let third = nth_execution_done(&c, 3).await;
    assert_eq!(third["status"], "Failed", "{third}");
    let details = action_details(&c, third["pipelineExecutionId"].as_str().unwrap()).await;
    let deploy = details.iter().find(|a| a["actionName"] == "Ecs").unwrap();
    let message = deploy["output"]["executionResult"]["externalExecutionSummary"].as_str().unwrap_or_default().to_string();
    let state = c.json("codepipeline", "CodePipeline_20150709.GetPipelineState", json!({"name": "deploy"})).await.unwrap();
    let error = state["stageStates"][2]["actionStates"][0]["latestExecution"]["errorDetails"]["message"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("Essential container in task exited"), "error: {error}\nsummary: {message}\n{state}");
    // The failed rollout leaves the previous deployment serving.
    wait_for("v2 to answer again", Duration::from_secs(60), Duration::from_millis(300), || async {
        http_body(port).await.filter(|b| b == "hello from v2")
    })
    .await;
    let svc = ecs.describe_services().cluster("apps").services("web").send().await.unwrap().services()[0].clone();
    assert_eq!(svc.deployments()[0].rollout_state(), Some(&aws_sdk_ecs::types::DeploymentRolloutState::Failed));
    events_idle(&t.endpoint).await;
    assert_eq!(executions(&c).await.len(), 3, "one execution per push: two pushes, two executions");

    ecs.delete_service().cluster("apps").service("web").force(true).send().await.unwrap();
    containers.wait_all_removed("every container to be removed", Duration::from_secs(60)).await;
    t.assert_no_model_violations();
}

/// Puts `body` at `key` of `bucket` with the aws CLI; answers the new object's VersionId.
fn upload(endpoint: &str, dir: &std::path::Path, bucket: &str, key: &str, body: &str) -> String {
    let file = dir.join("bundle.zip");
    std::fs::write(&file, zip_of(&[("index.html", body)])).unwrap();
    let (ok, out, err) = aws_cli(endpoint, &["s3api", "put-object", "--bucket", bucket, "--key", key, "--body", &file.display().to_string()]);
    assert!(ok, "put-object: {err}");
    let put: Value = serde_json::from_str(&out).unwrap();
    put["VersionId"].as_str().expect("a versioned bucket answers a VersionId").to_string()
}

/// Terraform wires an S3-source pipeline to S3's "Object Created" events (bucket notification
/// with `eventbridge = true`, a rule for the bucket and key, the pipeline as its target with a
/// role): each upload starts exactly one execution, whose source revision is the uploaded
/// object's version id, and the deploy stage publishes that version.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_s3_upload_starts_the_s3_source_pipeline_once_per_upload() {
    let t = TestServer::start().await;
    let c = codeyard_server::client::AwsClient::new(&t.endpoint, REGION, "test", "test");
    let work = tempfile::tempdir().unwrap();
    let ws = terraform_workspace("s3_source_pipeline");
    terraform_apply_clean(ws.path(), &t.endpoint, &[]);
    // CreatePipeline ran it once, before anything was uploaded: that one fails.
    let first = nth_execution_of_done(&c, "tf-s3-source", 1).await;
    assert_eq!(first["status"], "Failed", "{first}");

    let s3 = s3_client(&t.endpoint).await;
    let mut versions = Vec::new();
    for (n, body) in [(2, "release one"), (3, "release two")] {
        let version = upload(&t.endpoint, work.path(), "tf-uploads", "app/bundle.zip", body);
        let done = nth_execution_of_done(&c, "tf-s3-source", n).await;
        assert_eq!(done["status"], "Succeeded", "{done}");
        assert_eq!(done["trigger"]["triggerType"], "CloudWatchEvent", "{done}");
        assert!(done["trigger"]["triggerDetail"].as_str().unwrap_or_default().ends_with(":rule/tf-bundle-uploaded"), "{done}");
        let revision = &done["sourceRevisions"][0];
        assert_eq!(revision["actionName"], "Upload", "{done}");
        assert_eq!(revision["revisionId"], version.as_str(), "the execution takes the uploaded version: {done}");
        let published = s3.get_object().bucket("tf-s3src-site").key("index.html").send().await.unwrap();
        assert_eq!(published.body.collect().await.unwrap().into_bytes().as_ref(), body.as_bytes());
        versions.push(version);
    }
    assert_ne!(versions[0], versions[1]);
    // Another key of the bucket matches no rule; nothing more starts.
    upload(&t.endpoint, work.path(), "tf-uploads", "other.zip", "not for the pipeline");
    events_idle(&t.endpoint).await;
    assert_eq!(executions_of(&c, "tf-s3-source").await.len(), 3, "exactly one execution per upload");

    terraform_destroy(ws.path(), &t.endpoint, &[]);
    t.assert_no_model_violations();
}
