//! `codeyard demo --next`: what the seed's story says comes next, through the AWS APIs. The
//! image the seed pipeline pushed to ECR runs as an ECS service (its port 5055 published on a
//! free port of 127.0.0.1); a deploy pipeline (ECR source -> CodeBuild writing
//! `imagedefinitions.json` from `imageDetail.json` -> ECS deploy -> a CodeBuild test calling the
//! service over HTTP) is started by an EventBridge rule on the image push. Then a change of the
//! service is pushed with git: the seed pipeline builds the new image, its push deploys it, and
//! the service answers with the new version.
//!
//! Every role gets only what its job needs (the server may run with `--iam enforce`).

use super::{
    ACCOUNT, Names, Project, REGION, action, aws_err, build_environment, commit_and_push, create_role, follow, ignore_exists, pipeline_arn,
    rule_starting_pipeline, step,
};
use crate::client::AwsClient;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const DEFS_BUILDSPEC: &str = include_str!("../../../../examples/aws-devops-demo/app/codebuild/buildspec_imagedefinitions.yml");
const TEST_BUILDSPEC: &str = include_str!("../../../../examples/aws-devops-demo/app/codebuild/buildspec_test_service.yml");

/// The port the sample service listens on in its container.
const SERVICE_PORT: u16 = 5055;
/// The task definition's container (what `imagedefinitions.json` names).
const CONTAINER: &str = "crm";
/// The change pushed: `/info` says which version answers.
const INFO_BEFORE: &str = "Try /customer/<number>";
const INFO_AFTER: &str = "Try /customer/<number> (version 2, deployed by the image push)";
const ECS: &str = "AmazonEC2ContainerServiceV20141113";

/// What the story needs from the seed run.
pub(super) struct Story<'a> {
    pub client: &'a AwsClient,
    pub names: &'a Names,
    /// The working copy the sample service was pushed from.
    pub repo: &'a Path,
    pub clone_url: &'a str,
    pub timeout: Duration,
}

/// The ECS service the story started (removed when the demo ends).
pub(super) struct Deployed {
    cluster: String,
    service: String,
}

/// Names of the deploy chain's resources, after the seed's.
struct NextNames {
    cluster: String,
    service: String,
    family: String,
    service_logs: String,
    defs_project: String,
    test_project: String,
    pipeline: String,
    rule: String,
    execution_role: String,
    build_role: String,
    pipeline_role: String,
    events_role: String,
}

impl NextNames {
    fn new(prefix: &str) -> NextNames {
        let n = |name: &str| format!("{prefix}-{name}");
        NextNames {
            cluster: n("cluster"),
            service: n("crm"),
            family: n("crm"),
            service_logs: format!("/ecs/{prefix}-crm"),
            defs_project: n("imagedefinitions"),
            test_project: n("test-service"),
            pipeline: n("deploy"),
            rule: n("on-image-push"),
            execution_role: n("ecs-task-execution-role"),
            build_role: n("deploy-codebuild-role"),
            pipeline_role: n("deploy-pipeline-role"),
            events_role: n("deploy-events-role"),
        }
    }
}

/// A policy document of `statements` (each `{"Effect": "Allow", ...}` without the effect).
fn policy(statements: &[Value]) -> String {
    let statements: Vec<Value> = statements
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s["Effect"] = json!("Allow");
            s
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

fn arn(service: &str, resource: &str) -> String {
    format!("arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}")
}

/// Runs the story; answers whether every step passed. `deployed` is set as soon as the ECS
/// service exists, so the caller removes it whatever happens after.
pub(super) async fn run(story: &Story<'_>, deployed: &mut Option<Deployed>) -> anyhow::Result<bool> {
    let (client, n) = (story.client, story.names);
    let x = NextNames::new(&n.prefix);
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    println!("\nWhat happens next: the image push deploys the service to ECS and tests it over HTTP.");
    println!("\nSetting up:");
    create_roles(client, n, &x).await?;
    step(&format!("IAM roles {}, {}, {} and {}", x.execution_role, x.build_role, x.pipeline_role, x.events_role));

    // The service runs the image the seed pipeline pushed.
    ignore_exists(client.json("logs", "Logs_20140328.CreateLogGroup", json!({"logGroupName": x.service_logs})).await)
        .map_err(aws_err("creating the service's log group"))?;
    ignore_exists(client.json("ecs", &format!("{ECS}.CreateCluster"), json!({"clusterName": x.cluster})).await).map_err(aws_err("creating the ECS cluster"))?;
    let image = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{}:latest", n.ecr);
    let task_definition = json!({
        "family": x.family,
        "networkMode": "bridge",
        "requiresCompatibilities": ["EC2"],
        "executionRoleArn": Names::role_arn(&x.execution_role),
        "containerDefinitions": [{
            "name": CONTAINER, "image": image, "essential": true, "memory": 512,
            "portMappings": [{"containerPort": SERVICE_PORT, "hostPort": port, "protocol": "tcp"}],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": x.service_logs, "awslogs-region": REGION, "awslogs-stream-prefix": "ecs"}},
        }],
    });
    client.json("ecs", &format!("{ECS}.RegisterTaskDefinition"), task_definition).await.map_err(aws_err("registering the task definition"))?;
    // One host, a fixed host port: the old task stops before the new one starts.
    let service = json!({
        "cluster": x.cluster, "serviceName": x.service, "taskDefinition": x.family, "desiredCount": 1, "launchType": "EC2",
        "deploymentConfiguration": {"maximumPercent": 100, "minimumHealthyPercent": 0},
    });
    client.json("ecs", &format!("{ECS}.CreateService"), service).await.map_err(aws_err("creating the ECS service"))?;
    *deployed = Some(Deployed { cluster: x.cluster.clone(), service: x.service.clone() });
    let health = wait_serving(client, &x, &url, "/health", "Health ok", story.timeout).await?;
    step(&format!("ECS service {} in cluster {}: {image} on {url} (GET /health: {health})", x.service, x.cluster));

    create_projects(client, n, &x, &url).await?;
    step(&format!("CodeBuild projects {} and {}", x.defs_project, x.test_project));
    create_pipeline(client, n, &x).await?;
    step(&format!("CodePipeline {} (Source: ECR {}:latest -> Build -> Deploy: ECS -> Test)", x.pipeline, n.ecr));
    let pattern = json!({
        "source": ["aws.ecr"],
        "detail-type": ["ECR Image Action"],
        "detail": {"action-type": ["PUSH"], "result": ["SUCCESS"], "repository-name": [n.ecr], "image-tag": ["latest"]},
    });
    rule_starting_pipeline(client, &x.rule, pattern, &x.pipeline, &x.events_role).await?;
    step(&format!("EventBridge rule {}: a push of {}:latest starts the deploy pipeline", x.rule, n.ecr));

    // Creating a pipeline runs it once, as on AWS: it deploys the image ECS already runs.
    let digest = latest_digest(client, &n.ecr).await?;
    println!("\nPipeline {} (started by CreatePipeline, on {}):", x.pipeline, short(&digest));
    if follow(client, &x.pipeline, &digest, story.timeout).await? != "Succeeded" {
        return Ok(false);
    }

    // A developer changes the service; the seed pipeline builds and pushes the new image.
    let file = story.repo.join("src/main/java/demo/CrmServer.java");
    let source = std::fs::read_to_string(&file)?;
    anyhow::ensure!(source.contains(INFO_BEFORE), "{} has no {INFO_BEFORE:?} to change", file.display());
    std::fs::write(&file, source.replace(INFO_BEFORE, INFO_AFTER))?;
    let commit = commit_and_push(story.clone_url, story.repo, "Say which version answers /info")?;
    println!();
    step(&format!("pushed a change of /info to master: commit {}", &commit[..12]));
    println!("\nPipeline {} (started by the push through the EventBridge rule):", n.pipeline);
    if follow(client, &n.pipeline, &commit, story.timeout).await? != "Succeeded" {
        return Ok(false);
    }
    let digest = latest_digest(client, &n.ecr).await?;
    println!("\nPipeline {} (started by the push of {}:latest, {}, through the EventBridge rule):", x.pipeline, n.ecr, short(&digest));
    if follow(client, &x.pipeline, &digest, story.timeout).await? != "Succeeded" {
        return Ok(false);
    }
    let info = wait_serving(client, &x, &url, "/info", INFO_AFTER, Duration::from_secs(60)).await?;
    println!("\nDeployed and tested.");
    println!("  service:  ECS service {} in cluster {} runs {}:latest ({})", x.service, x.cluster, n.ecr, short(&digest));
    println!("  GET {url}/info");
    println!("            {info}");
    println!("  logs:     aws --endpoint-url {} logs tail {} (awslogs of the task)", client.endpoint, x.service_logs);
    Ok(true)
}

/// Deletes the ECS service and waits until its tasks have stopped (their containers removed).
pub(super) async fn remove(client: &AwsClient, d: &Deployed) {
    let tasks = client.json("ecs", &format!("{ECS}.ListTasks"), json!({"cluster": d.cluster, "serviceName": d.service})).await;
    let arns = tasks.map(|t| t["taskArns"].clone()).unwrap_or_else(|_| json!([]));
    let deleted = client.json("ecs", &format!("{ECS}.DeleteService"), json!({"cluster": d.cluster, "service": d.service, "force": true})).await;
    if let Err(e) = deleted {
        println!("  could not delete the ECS service {}: {e}", d.service);
        return;
    }
    let started = Instant::now();
    while arns.as_array().is_some_and(|a| !a.is_empty()) && started.elapsed() < Duration::from_secs(60) {
        let described = client.json("ecs", &format!("{ECS}.DescribeTasks"), json!({"cluster": d.cluster, "tasks": arns})).await;
        let stopped = described.is_ok_and(|t| t["tasks"].as_array().into_iter().flatten().all(|t| t["lastStatus"] == "STOPPED"));
        if stopped {
            println!("  removed the ECS service {} (its task stopped)", d.service);
            return;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    println!("  deleted the ECS service {}", d.service);
}

/// The first 12 hex digits of a digest.
fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// A port of 127.0.0.1 nothing listens on now.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The digest `repository:latest` names now.
async fn latest_digest(client: &AwsClient, repository: &str) -> anyhow::Result<String> {
    let images = client
        .json(
            "ecr",
            "AmazonEC2ContainerRegistry_V20150921.DescribeImages",
            json!({"repositoryName": repository, "imageIds": [{"imageTag": "latest"}]}),
        )
        .await
        .map_err(aws_err("reading the latest image"))?;
    images["imageDetails"][0]["imageDigest"].as_str().map(str::to_string).ok_or_else(|| anyhow::anyhow!("{repository}:latest has no digest"))
}

/// Waits until the service is steady and `GET <url><path>` answers 200 with `expect` in its
/// body; answers the body. Fails with the reason its last task stopped.
async fn wait_serving(client: &AwsClient, x: &NextNames, url: &str, path: &str, expect: &str, limit: Duration) -> anyhow::Result<String> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let started = Instant::now();
    let mut last = String::from("no answer yet");
    while started.elapsed() < limit {
        match http.get(format!("{url}{path}")).send().await {
            Ok(r) if r.status().is_success() => {
                let body = r.text().await.unwrap_or_default();
                if body.contains(expect) {
                    return Ok(body);
                }
                last = format!("it answered {body}");
            }
            Ok(r) => last = format!("it answered {}", r.status()),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let stopped = last_stopped_reason(client, x).await.map(|r| format!("; its last task stopped: {r}")).unwrap_or_default();
    anyhow::bail!("the ECS service {} did not answer GET {url}{path} with {expect:?} within {}s ({last}){stopped}", x.service, limit.as_secs())
}

async fn last_stopped_reason(client: &AwsClient, x: &NextNames) -> Option<String> {
    let list = client
        .json("ecs", &format!("{ECS}.ListTasks"), json!({"cluster": x.cluster, "serviceName": x.service, "desiredStatus": "STOPPED"}))
        .await
        .ok()?;
    let arns = list["taskArns"].as_array().filter(|a| !a.is_empty())?.clone();
    let tasks = client.json("ecs", &format!("{ECS}.DescribeTasks"), json!({"cluster": x.cluster, "tasks": arns})).await.ok()?;
    let task = tasks["tasks"].as_array()?.iter().max_by(|a, b| a["stoppedAt"].as_f64().partial_cmp(&b["stoppedAt"].as_f64()).unwrap_or(std::cmp::Ordering::Equal))?;
    let exit = task["containers"][0]["exitCode"].as_i64().map(|c| format!(" (exit code {c})")).unwrap_or_default();
    Some(format!("{}{exit}", task["stoppedReason"].as_str().unwrap_or_default()))
}

/// The roles of the deploy chain, each with what its job needs and nothing more.
async fn create_roles(client: &AwsClient, n: &Names, x: &NextNames) -> anyhow::Result<()> {
    let repository = arn("ecr", &format!("repository/{}", n.ecr));
    let bucket = format!("arn:aws:s3:::{}", n.artifacts);
    let objects = format!("{bucket}/*");
    let build_logs = [arn("logs", &format!("log-group:{}", n.logs)), arn("logs", &format!("log-group:{}:*", n.logs))];
    // ECS pulls the image and ships the task's logs as the task execution role.
    let execution = policy(&[
        json!({"Action": ["ecr:GetAuthorizationToken"], "Resource": "*"}),
        json!({"Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"], "Resource": repository}),
        json!({"Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": arn("logs", &format!("log-group:{}:*", x.service_logs))}),
    ]);
    // The two builds read and write pipeline artifacts and write their logs.
    let build = policy(&[
        json!({"Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": build_logs}),
        json!({"Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"], "Resource": objects}),
        json!({"Action": ["s3:GetBucketAcl", "s3:GetBucketLocation"], "Resource": bucket}),
    ]);
    let projects = [arn("codebuild", &format!("project/{}", x.defs_project)), arn("codebuild", &format!("project/{}", x.test_project))];
    let pipeline = policy(&[
        json!({"Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:PutObjectAcl"], "Resource": objects}),
        json!({"Action": ["s3:GetBucketVersioning", "s3:GetBucketAcl", "s3:GetBucketLocation"], "Resource": bucket}),
        json!({"Action": ["ecr:DescribeImages"], "Resource": repository}),
        json!({"Action": ["codebuild:StartBuild", "codebuild:BatchGetBuilds", "codebuild:StopBuild"], "Resource": projects}),
        json!({"Action": ["ecs:DescribeServices", "ecs:UpdateService"], "Resource": arn("ecs", &format!("service/{}/{}", x.cluster, x.service))}),
        json!({"Action": ["ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"], "Resource": "*"}),
        json!({"Action": ["iam:PassRole"], "Resource": Names::role_arn(&x.execution_role),
               "Condition": {"StringEqualsIfExists": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}}),
    ]);
    let events = policy(&[json!({"Action": ["codepipeline:StartPipelineExecution"], "Resource": pipeline_arn(&x.pipeline)})]);
    for (role, principal, document) in [
        (&x.execution_role, "ecs-tasks.amazonaws.com", execution),
        (&x.build_role, "codebuild.amazonaws.com", build),
        (&x.pipeline_role, "codepipeline.amazonaws.com", pipeline),
        (&x.events_role, "events.amazonaws.com", events),
    ] {
        create_role(client, role, principal, &document).await?;
    }
    Ok(())
}

/// The deploy pipeline's two builds; their source is the pipeline's artifact, so the
/// buildspecs are the projects' own.
async fn create_projects(client: &AwsClient, n: &Names, x: &NextNames, url: &str) -> anyhow::Result<()> {
    for (name, buildspec, var) in [(&x.defs_project, DEFS_BUILDSPEC, ("CONTAINER_NAME", CONTAINER)), (&x.test_project, TEST_BUILDSPEC, ("SERVICE_URL", url))] {
        let artifacts = json!({"type": "CODEPIPELINE"});
        let source = json!({"type": "CODEPIPELINE", "buildspec": buildspec});
        let environment = build_environment(false, &[var]);
        Project { name, source, artifacts, environment, role: &x.build_role, minutes: 5 }.create(client, n).await?;
    }
    Ok(())
}

async fn create_pipeline(client: &AwsClient, n: &Names, x: &NextNames) -> anyhow::Result<()> {
    let pipeline = json!({
        "pipeline": {
            "name": x.pipeline,
            "roleArn": Names::role_arn(&x.pipeline_role),
            "artifactStore": {"type": "S3", "location": n.artifacts},
            "stages": [
                {"name": "Source", "actions": [action("Image", "Source", "ECR", 1, &[], &["image-detail"],
                    json!({"RepositoryName": n.ecr, "ImageTag": "latest"}))]},
                {"name": "Build", "actions": [action("ImageDefinitions", "Build", "CodeBuild", 1, &["image-detail"], &["image-definitions"],
                    json!({"ProjectName": x.defs_project}))]},
                {"name": "Deploy", "actions": [action("DeployToEcs", "Deploy", "ECS", 1, &["image-definitions"], &[],
                    json!({"ClusterName": x.cluster, "ServiceName": x.service, "FileName": "imagedefinitions.json"}))]},
                {"name": "Test", "actions": [action("TestOverHttp", "Test", "CodeBuild", 1, &["image-definitions"], &[],
                    json!({"ProjectName": x.test_project}))]},
            ],
        }
    });
    ignore_exists(client.json("codepipeline", "CodePipeline_20150709.CreatePipeline", pipeline).await).map_err(aws_err("creating the deploy pipeline"))
}
