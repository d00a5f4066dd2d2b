//! The deploy chain's actions against fake ECR and ECS: the ECR source action's
//! `imageDetail.json` and output variables, the ECS deploy action's `imagedefinitions.json`
//! handling and rollouts, and the revisions events hand to source actions.

use super::*;
use crate::model::Status;

/// A rig with ECR (`web:latest`) and ECS behind the hub.
async fn ecs_rig(deployer: FakeDeployer) -> (Rig, Arc<FakeImages>, Arc<FakeDeployer>) {
    let rig = Rig::new(Duration::from_millis(20)).await;
    let images = Arc::new(FakeImages::default());
    let deployer = Arc::new(deployer);
    rig.platform.hub.set_images(images.clone());
    rig.platform.hub.set_service_deployer(deployer.clone());
    (rig, images, deployer)
}

/// A source stage of one action of `provider` with `config`, output `source-artifact`.
fn source(provider: &str, config: Value) -> Value {
    json!({"name": "Source", "actions": [{
        "name": "Source", "namespace": "SourceVariables",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": provider, "version": "1"},
        "outputArtifacts": [{"name": "source-artifact"}], "configuration": config
    }]})
}

/// Creates `name` (which starts it) and answers its first execution once it ended.
async fn run_once(rig: &Rig, name: &str, stages: Vec<Value>) -> Execution {
    let id = rig.create(pipeline(name, "QUEUED", stages)).await;
    rig.wait(name, &id, |e| e.is_terminal()).await
}

/// The ECR source followed by a build that is handed the image's URI.
async fn ecr_pipeline(rig: &Rig, name: &str, config: Value) -> Execution {
    let mut build = build_action("Build", "build", 1, None);
    build["configuration"]["EnvironmentVariables"] =
        json!(r##"[{"name":"IMAGE","value":"#{SourceVariables.ImageURI}","type":"PLAINTEXT"}]"##);
    let stages = vec![source("ECR", config), json!({"name": "Build", "actions": [build]})];
    run_once(rig, name, stages).await
}

/// An S3 source whose object holds `defs` as `imagedefinitions.json`, then the ECS deploy of
/// service `service`.
async fn deploy_pipeline(rig: &Rig, name: &str, files: &[(&str, &str)], service: &str) -> Execution {
    rig.objects.put_bytes("releases", &format!("{name}.zip"), &zip_bytes(files));
    let deploy = json!({"name": "Deploy", "actions": [{
        "name": "Ecs", "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"},
        "inputArtifacts": [{"name": "source-artifact"}],
        "configuration": {"ClusterName": "apps", "ServiceName": service, "FileName": "imagedefinitions.json"}
    }]});
    let s3 = json!({"S3Bucket": "releases", "S3ObjectKey": format!("{name}.zip"), "PollForSourceChanges": "false"});
    run_once(rig, name, vec![source("S3", s3), deploy]).await
}

/// The failed action's error message.
fn error_of(e: &Execution, stage: &str, action: &str) -> String {
    assert_eq!(e.status, Status::Failed, "{e:#?}");
    let run = e.current_run(stage, action).unwrap();
    assert_eq!(run.error_code.as_deref(), Some("JobFailed"), "{run:#?}");
    run.error_message.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn ecr_source_writes_image_detail_and_output_variables_as_aws_does() {
    let (rig, images, _) = ecs_rig(FakeDeployer::default()).await;
    let e = ecr_pipeline(&rig, "img", json!({"RepositoryName": "web", "ImageTag": "latest"})).await;
    assert_eq!(e.status, Status::Succeeded, "{e:#?}");
    let image = &images.image;
    let uri = format!("{}@{}", image.repository_uri, image.image_digest);
    // imageDetail.json: AWS's keys, the size as a string, the push time as `date` prints it.
    let art = &e.artifacts["source-artifact"].location;
    let zip = rig.objects.read(&art.bucket, &art.key).unwrap();
    assert_eq!(unzip_names(&zip), ["imageDetail.json"]);
    let detail: Value = serde_json::from_str(&unzip_file(&zip, "imageDetail.json")).unwrap();
    assert_eq!(
        detail,
        json!({
            "ImageSizeInBytes": "44728918",
            "ImageDigest": image.image_digest,
            "Version": "1.0",
            "ImagePushedAt": "Mon Jan 21 20:04:00 UTC 2019",
            "RegistryId": ACCOUNT,
            "RepositoryName": "web",
            "ImageURI": uri,
            "ImageTags": ["latest", "v7"],
        })
    );
    // The output variables, in the action's namespace, reach the next stage.
    let vars = &e.current_run("Source", "Source").unwrap().output_variables;
    let want: Vec<(&str, &str)> = vec![
        ("ImageDigest", &image.image_digest),
        ("ImageTag", "latest"),
        ("ImageURI", &uri),
        ("RegistryId", ACCOUNT),
        ("RepositoryName", "web"),
    ];
    assert_eq!(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(), want);
    let build = rig.builds.requests().into_iter().find(|r| r.project_name == "build").unwrap();
    assert_eq!(build.environment_variables, [("IMAGE".into(), uri.clone(), "PLAINTEXT".into())]);
    // The source revision is the digest.
    assert_eq!(e.source_revisions[0].revision_id, image.image_digest);
    assert_eq!(e.source_revisions[0].revision_summary.as_deref(), Some(format!("Image web:latest ({})", image.image_digest).as_str()));

    // ImageTag left out follows `latest`.
    let e = ecr_pipeline(&rig, "default-tag", json!({"RepositoryName": "web"})).await;
    assert_eq!(e.status, Status::Succeeded, "{e:#?}");
    assert_eq!(e.current_run("Source", "Source").unwrap().output_variables["ImageTag"], "latest");
}

#[tokio::test(flavor = "multi_thread")]
async fn ecr_source_fails_on_a_missing_tag_or_repository_with_aws_messages() {
    let (rig, _, _) = ecs_rig(FakeDeployer::default()).await;
    let e = ecr_pipeline(&rig, "no-tag", json!({"RepositoryName": "web", "ImageTag": "v9"})).await;
    assert_eq!(error_of(&e, "Source", "Source"), "The image tag 'v9' does not exist in the repository 'web'");
    assert!(e.current_run("Build", "Build").is_none(), "nothing runs after a failed source");
    let e = ecr_pipeline(&rig, "no-repo", json!({"RepositoryName": "api"})).await;
    assert_eq!(
        error_of(&e, "Source", "Source"),
        format!("The repository with name 'api' does not exist in the registry with id '{ACCOUNT}'")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ecs_deploy_hands_the_images_to_ecs_and_waits_for_the_rollout() {
    let (rig, _, deployer) = ecs_rig(FakeDeployer::default()).await;
    let defs = r#"[{"name":"web","imageUri":"000000000000.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:1"},
                   {"name":"sidecar","imageUri":"busybox:latest"}]"#;
    let e = deploy_pipeline(&rig, "ok", &[("imagedefinitions.json", defs)], "web").await;
    assert_eq!(e.status, Status::Succeeded, "{e:#?}");
    let requests = deployer.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    assert_eq!((requests[0].cluster.as_str(), requests[0].service.as_str()), ("apps", "web"));
    assert_eq!(
        requests[0].images,
        [
            ("web".to_string(), "000000000000.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:1".to_string()),
            ("sidecar".to_string(), "busybox:latest".to_string())
        ]
    );
    let run = e.current_run("Deploy", "Ecs").unwrap();
    let deployment = run.external_execution_id.clone().unwrap();
    assert!(deployment.starts_with("ecs-svc/"), "{run:#?}");
    // It looked until the rollout ended: IN_PROGRESS twice, then COMPLETED.
    assert_eq!(deployer.looks.lock().unwrap()[&deployment], 3);
    assert_eq!(
        run.summary.as_deref(),
        Some(format!("Deployment {deployment} of service web in cluster apps completed").as_str())
    );
    assert!(run.external_execution_url.as_deref().unwrap().contains("/ecs/v2/clusters/apps/services/web/deployments"));
}

#[tokio::test(flavor = "multi_thread")]
async fn ecs_deploy_fails_with_ecs_reason_when_the_rollout_fails() {
    let failed = FakeDeployer {
        outcome: Mutex::new(ServiceDeploymentState::Failed("Essential container in task exited".into())),
        ..Default::default()
    };
    let (rig, _, _) = ecs_rig(failed).await;
    let defs = r#"[{"name":"web","imageUri":"web:broken"}]"#;
    let e = deploy_pipeline(&rig, "broken", &[("imagedefinitions.json", defs)], "web").await;
    let message = error_of(&e, "Deploy", "Ecs");
    let deployment = e.current_run("Deploy", "Ecs").unwrap().external_execution_id.clone().unwrap();
    assert_eq!(message, format!("Deployment {deployment} of service web failed. Essential container in task exited"));
}

#[tokio::test(flavor = "multi_thread")]
async fn ecs_deploy_refuses_bad_image_definitions_and_ecs_errors() {
    let (rig, _, deployer) = ecs_rig(FakeDeployer::default()).await;
    let good = r#"[{"name":"web","imageUri":"web:1"}]"#;
    let cases: Vec<(&str, Vec<(&str, &str)>, &str, String)> = vec![
        (
            "missing",
            vec![("other.json", good)],
            "web",
            "Exception while trying to read the image artifact file. Please make sure that the file imagedefinitions.json exists in the artifact source-artifact".into(),
        ),
        (
            "object",
            vec![("imagedefinitions.json", r#"{"name":"web","imageUri":"web:1"}"#)],
            "web",
            "The image definition file imagedefinitions.json contains invalid JSON format".into(),
        ),
        (
            "no-uri",
            vec![("imagedefinitions.json", r#"[{"name":"web"}]"#)],
            "web",
            "The image definition file imagedefinitions.json contains invalid JSON format".into(),
        ),
        (
            "empty",
            vec![("imagedefinitions.json", "[]")],
            "web",
            "Image definitions file imagedefinitions.json does not contain any image definitions".into(),
        ),
        (
            "denied",
            vec![("imagedefinitions.json", good)],
            "denied",
            "The provided role does not have sufficient permissions to access ECS: User: pipeline is not authorized to perform: ecs:UpdateService".into(),
        ),
        ("gone", vec![("imagedefinitions.json", good)], "gone", "Service not found.".into()),
    ];
    for (name, files, service, want) in cases {
        let e = deploy_pipeline(&rig, name, &files, service).await;
        assert_eq!(error_of(&e, "Deploy", "Ecs"), want, "{name}");
    }
    assert!(deployer.requests.lock().unwrap().is_empty(), "no bad definition reached ECS");
}

#[test]
fn events_name_the_revision_of_the_source_action_they_are_about() {
    let decl = |stage: Value| -> crate::model::PipelineDeclaration {
        let p = pipeline("p", "QUEUED", vec![stage, json!({"name": "B", "actions": [build_action("B", "b", 1, None)]})]);
        serde_json::from_value(p["pipeline"].clone()).unwrap()
    };
    let s3 = decl(source("S3", json!({"S3Bucket": "up", "S3ObjectKey": "app.zip"})));
    let created = |bucket: &str, key: &str| {
        json!({"source": "aws.s3", "detail-type": "Object Created",
               "detail": {"bucket": {"name": bucket}, "object": {"key": key, "version-id": "v-1"}}})
    };
    let revisions = crate::target::event_revisions;
    assert_eq!(revisions(&s3, &created("up", "app.zip")), [("Source".to_string(), "v-1".to_string())].into());
    assert!(revisions(&s3, &created("up", "other.zip")).is_empty());
    assert!(revisions(&s3, &created("down", "app.zip")).is_empty());
    let mut deleted = created("up", "app.zip");
    deleted["detail-type"] = json!("Object Deleted");
    assert!(revisions(&s3, &deleted).is_empty());

    let ecr = decl(source("ECR", json!({"RepositoryName": "web"})));
    let pushed = |tag: &str| {
        json!({"source": "aws.ecr", "detail-type": "ECR Image Action",
               "detail": {"action-type": "PUSH", "result": "SUCCESS", "repository-name": "web", "image-tag": tag, "image-digest": "sha256:9"}})
    };
    assert_eq!(revisions(&ecr, &pushed("latest")), [("Source".to_string(), "sha256:9".to_string())].into());
    assert!(revisions(&ecr, &pushed("v2")).is_empty(), "ImageTag left out follows latest only");

    let git = decl(source_stage());
    let push = json!({"detail": {"repositoryName": "repo", "referenceName": "main", "commitId": "c0ffee"}});
    assert_eq!(revisions(&git, &push), [("Source".to_string(), "c0ffee".to_string())].into());
    assert!(revisions(&git, &pushed("latest")).is_empty());
}
