//! The whole chain, as a user meets it: `codeyard demo` against a fresh server creates the seed
//! topology through the APIs, pushes the sample service, and the pipeline (started by the
//! EventBridge rule) builds, tests, deploys the jar to S3 and pushes the image to ECR.
//! And the worked example's Terraform applies, plans clean and destroys clean.

mod common;
use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_runs_the_seed_pipeline_green() {
    let t = TestServer::start().await;
    let code = codeyard_server::demo::run(codeyard_server::demo::DemoOptions {
        endpoint: Some(t.endpoint.clone()),
        data_dir: None,
        exit: true,
        timeout: Duration::from_secs(600),
    })
    .await
    .expect("demo runs");
    assert_eq!(code, 0, "the demo's pipeline did not succeed");

    // The jar the S3 deploy action extracted, and the image stage's tags.
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&t.sdk_config().await).force_path_style(true).build());
    let jar = s3.get_object().bucket("codeyard-demo-artifacts").key("app-jar/target/app.jar").send().await.expect("jar in S3");
    assert!(jar.content_length().unwrap_or(0) > 1000);
    let ecr = aws_sdk_ecr::Client::new(&t.sdk_config().await);
    let images = ecr.describe_images().repository_name("codeyard-demo-app").send().await.expect("images");
    let tags: Vec<String> = images.image_details().iter().flat_map(|d| d.image_tags().to_vec()).collect();
    assert!(tags.contains(&"latest".to_string()), "tags: {tags:?}");
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
    let (code, out) = terraform(dir.path(), &t.endpoint, &["apply", "-auto-approve"]);
    assert_eq!(code, 0, "apply:\n{out}");
    let (code, out) = terraform(dir.path(), &t.endpoint, &["plan", "-detailed-exitcode"]);
    assert_eq!(code, 0, "plan after apply is not empty:\n{out}");
    let (code, out) = terraform(dir.path(), &t.endpoint, &["destroy", "-auto-approve"]);
    assert_eq!(code, 0, "destroy:\n{out}");
    let cp = aws_sdk_codepipeline::Client::new(&t.sdk_config().await);
    assert!(cp.list_pipelines().send().await.unwrap().pipelines().is_empty());
    let cc = aws_sdk_codecommit::Client::new(&t.sdk_config().await);
    assert!(cc.list_repositories().send().await.unwrap().repositories().is_empty());
    t.assert_no_model_violations();
}
