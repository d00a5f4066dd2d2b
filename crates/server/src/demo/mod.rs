//! `codeyard demo`: the seed topology (the AWS DevOps demonstration) created through the AWS
//! APIs, the bundled sample service pushed with git, and the pipeline followed live.
//!
//! Push to master -> EventBridge rule -> CodePipeline: Source (CodeCommit) -> BuildAndTest
//! (CodeBuild compiles and tests the Java service, then an S3 deploy extracts the jar to
//! `app-jar/target/app.jar`) -> BuildDockerImage (CodeBuild bakes the jar into an image with
//! `docker build` and pushes it to ECR).
//!
//! `--next` goes on to what comes next ([`next`]): the image push starts a deploy pipeline
//! that runs the service on ECS and tests it over HTTP.

mod base_image;
mod next;

use crate::client::AwsClient;
use codeyard_core::AwsError;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const REGION: &str = "eu-west-1";
const ACCOUNT: &str = codeyard_core::DEFAULT_ACCOUNT;

/// `(path under app/, its content)` for each file named, bundled at build time.
macro_rules! sample_app {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../../../examples/aws-devops-demo/app/", $path)))),*]
    };
}

/// The sample service, bundled into the binary so the demo needs nothing but the binary.
const SAMPLE_APP: &[(&str, &str)] = sample_app![
    "codebuild/buildspec_build_and_test.yml",
    "codebuild/buildspec_build_docker_image.yml",
    "docker/image/Dockerfile",
    "docker/resources/run-dev-mode.sh",
    "src/main/java/demo/CrmDb.java",
    "src/main/java/demo/CrmServer.java",
    "src/test/java/demo/CrmTest.java",
];

pub struct DemoOptions {
    /// Use this server instead of looking for one on 127.0.0.1:4566 or starting one.
    pub endpoint: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// Stop after the run (for scripts); otherwise keep serving until Ctrl-C.
    pub exit: bool,
    pub timeout: Duration,
    /// Where the embedded server runs builds (`./dev demo` uses containers of the stand-in image).
    pub executor: codeyard_codebuild::ExecutorChoice,
    /// After the seed pipeline: deploy its image to ECS through a deploy pipeline started by
    /// the image push, test it over HTTP, push a change and follow it to the running service.
    pub next: bool,
}

/// Names of the demo's resources (suffixed when the server already holds an earlier run).
struct Names {
    /// `codeyard-demo[-suffix]`, which every name starts with.
    prefix: String,
    repo: String,
    artifacts: String,
    cache: String,
    logs: String,
    ecr: String,
    build_project: String,
    image_project: String,
    pipeline: String,
    rule: String,
    codebuild_role: String,
    pipeline_role: String,
    events_role: String,
}

impl Names {
    fn new(suffix: &str) -> Names {
        let prefix = format!("codeyard-demo{suffix}");
        let n = |name: &str| format!("{prefix}-{name}");
        Names {
            repo: n("repo"),
            artifacts: n("artifacts"),
            cache: n("cache"),
            logs: n("builds"),
            ecr: n("app"),
            build_project: n("build-and-test"),
            image_project: n("docker-image"),
            pipeline: n("pipeline"),
            rule: n("on-push"),
            codebuild_role: n("codebuild-role"),
            pipeline_role: n("codepipeline-role"),
            events_role: n("events-role"),
            prefix,
        }
    }

    /// The ARN of the role `name`.
    fn role_arn(name: &str) -> String {
        format!("arn:aws:iam::{ACCOUNT}:role/{name}")
    }
}

fn step(msg: &str) {
    println!("  \u{2713} {msg}");
}

pub async fn run(opts: DemoOptions) -> anyhow::Result<i32> {
    println!("codeyard demo: the AWS DevOps demonstration pipeline, running on this machine\n");
    if opts.next && which("jlink").is_none() {
        println!("codeyard demo --next needs a JDK with jlink on this machine: the service's base image gets its");
        println!("Java runtime from it (install one, e.g. `apt-get install openjdk-17-jdk-headless`).");
        return Ok(2);
    }
    // 1. A server: the one given, one already on 4566, or an embedded one in a fresh data dir.
    let (endpoint, embedded) = match opts.endpoint.clone() {
        Some(e) => (e, None),
        None if healthy("http://localhost:4566").await => ("http://localhost:4566".to_string(), None),
        None => {
            let data_dir = opts.data_dir.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!("codeyard-demo-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S")))
            });
            let mut o = crate::Options::new(&data_dir);
            o.executor = opts.executor;
            if tokio::net::TcpListener::bind("127.0.0.1:4566").await.is_err() {
                o.port = 0;
            }
            let server = crate::start(o).await?;
            println!("  started codeyard {} at {} (data in {})", crate::VERSION, server.endpoint, data_dir.display());
            (server.endpoint.clone(), Some(server))
        }
    };
    if embedded.is_none() {
        println!("  using the codeyard server at {endpoint}");
    }
    let client = AwsClient::new(&endpoint, REGION, "test", "test");
    // A server that already holds an earlier demo run gets a fresh set of names.
    let earlier = client.json("codecommit", "CodeCommit_20150413.GetRepository", json!({"repositoryName": Names::new("").repo})).await;
    let suffix = if earlier.is_ok() { format!("-{}", chrono::Utc::now().format("%H%M%S")) } else { String::new() };
    let names = Names::new(&suffix);
    let registry_host = endpoint.split("://").nth(1).unwrap_or(&endpoint).to_string();
    let work = tempfile::tempdir()?;

    // 2. A base image in the local registry (nothing can be pulled offline).
    println!("\nSetting up:");
    let base = base_image::push(&client, &registry_host, work.path()).await?;
    step(&format!("base image {} ({}) pushed to the registry", base.reference, base.describe()));
    if let (true, Some(why)) = (opts.next, &base.no_java) {
        println!("\ncodeyard demo --next needs a JDK with jlink on this machine to give the service's image a Java");
        println!("runtime ({why}); install one with its jmods (e.g. `apt-get install openjdk-17-jdk-headless openjdk-17-jmods`).");
        stop(embedded).await;
        return Ok(2);
    }

    // 3. The topology, through the AWS APIs.
    let clone_url = create_topology(&client, &names, &base.reference).await?;

    // 4. A developer pushes the service to master.
    let repo = work.path().join("repo");
    let commit = push_sample(&clone_url, &repo)?;
    step(&format!("pushed the sample service to master: commit {}", &commit[..12]));

    // 5. Follow the execution the event rule starts.
    println!("\nPipeline {} (started by the push through the EventBridge rule):", names.pipeline);
    let status = follow(&client, &names.pipeline, &commit, opts.timeout).await?;
    let mut ok = status == "Succeeded";
    println!();
    if ok {
        println!("Pipeline succeeded.");
        println!("  artifact: s3://{}/app-jar/target/app.jar", names.artifacts);
        println!("            aws --endpoint-url {endpoint} s3 cp s3://{}/app-jar/target/app.jar .", names.artifacts);
        let tag = &commit[..14];
        println!("  image:    {registry_host}/{}:latest and :{tag}", names.ecr);
        println!("            podman pull --tls-verify=false {registry_host}/{}:latest", names.ecr);
        println!("            skopeo inspect --tls-verify=false docker://{registry_host}/{}:latest", names.ecr);
    } else {
        println!("Pipeline ended {status}.");
    }

    // 6. What happens next: the image push deploys to ECS and the deployment is tested.
    let mut deployed: Option<next::Deployed> = None;
    if ok && opts.next {
        let story = next::Story { client: &client, names: &names, repo: &repo, clone_url: &clone_url, timeout: opts.timeout };
        let outcome = tokio::select! {
            r = next::run(&story, &mut deployed) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        ok = match outcome {
            Ok(passed) => passed,
            Err(e) => {
                println!("\ncodeyard demo --next failed: {e:#}");
                false
            }
        };
    }
    match embedded {
        Some(server) if !opts.exit => {
            println!("\ncodeyard keeps serving at {endpoint}; press Ctrl-C to stop.");
            let token = server.platform.shutdown.clone();
            let client = client.clone();
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                if let Some(d) = deployed {
                    next::remove(&client, &d).await;
                }
                token.cancel();
            });
            server.wait().await;
        }
        server => {
            // The service's containers must not outlive the run (a server keeps them across
            // its own restarts).
            if let Some(d) = deployed.filter(|_| opts.exit || server.is_some()) {
                next::remove(&client, &d).await;
            }
            stop(server).await;
        }
    }
    Ok(if ok { 0 } else { 1 })
}

/// Shuts the embedded server down, if there is one.
async fn stop(server: Option<crate::RunningServer>) {
    if let Some(server) = server {
        server.shutdown().await;
    }
}

async fn healthy(endpoint: &str) -> bool {
    let client = reqwest::Client::builder().timeout(Duration::from_millis(800)).build().unwrap();
    matches!(client.get(format!("{endpoint}/_codeyard/health")).send().await, Ok(r) if r.status().is_success())
}

fn ignore_exists<T>(r: Result<T, AwsError>) -> Result<(), AwsError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code.contains("AlreadyExists") || e.code.contains("AlreadyOwned") || e.code.contains("NameExists") => Ok(()),
        Err(e) => Err(e),
    }
}

fn aws_err(what: &str) -> impl Fn(AwsError) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("{what}: {e}")
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(cmd)).find(|f| f.is_file()))
}

fn run_cmd(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new(cmd).args(args).output().map_err(|e| anyhow::anyhow!("{cmd}: {e}"))?;
    if !out.status.success() {
        anyhow::bail!("{cmd} {} failed:\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn trust_policy(service: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}).to_string()
}

const ALLOW_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// The role `name` that `principal` (`codebuild.amazonaws.com`) may assume, with `policy` inline.
async fn create_role(client: &AwsClient, name: &str, principal: &str, policy: &str) -> anyhow::Result<()> {
    let trust = trust_policy(principal);
    ignore_exists(client.query("iam", "CreateRole", "2010-05-08", &[("RoleName", name), ("AssumeRolePolicyDocument", &trust)]).await)
        .map_err(aws_err("creating a role"))?;
    client
        .query("iam", "PutRolePolicy", "2010-05-08", &[("RoleName", name), ("PolicyName", "demo"), ("PolicyDocument", policy)])
        .await
        .map_err(aws_err("putting a role policy"))?;
    Ok(())
}

/// A CodeBuild project's environment: the curated standard image with `vars`.
fn build_environment(privileged: bool, vars: &[(&str, &str)]) -> Value {
    json!({
        "type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_SMALL",
        "privilegedMode": privileged,
        "environmentVariables": vars.iter().map(|(k, v)| json!({"name": k, "value": v, "type": "PLAINTEXT"})).collect::<Vec<_>>(),
    })
}

/// A CodeBuild project of the demo (it logs to the demo's log group).
struct Project<'a> {
    name: &'a str,
    source: Value,
    artifacts: Value,
    environment: Value,
    role: &'a str,
    minutes: i64,
}

impl Project<'_> {
    async fn create(self, client: &AwsClient, n: &Names) -> anyhow::Result<()> {
        let project = json!({
            "name": self.name,
            "source": self.source,
            "artifacts": self.artifacts,
            "environment": self.environment,
            "serviceRole": Names::role_arn(self.role),
            "timeoutInMinutes": self.minutes,
            "logsConfig": {"cloudWatchLogs": {"status": "ENABLED", "groupName": n.logs}},
        });
        ignore_exists(client.json("codebuild", "CodeBuild_20161006.CreateProject", project).await).map_err(aws_err("creating a CodeBuild project"))
    }
}

/// A pipeline action declaration.
fn action(name: &str, category: &str, provider: &str, run_order: i64, inputs: &[&str], outputs: &[&str], config: Value) -> Value {
    json!({
        "name": name,
        "actionTypeId": {"category": category, "owner": "AWS", "provider": provider, "version": "1"},
        "runOrder": run_order,
        "configuration": config,
        "inputArtifacts": inputs.iter().map(|a| json!({"name": a})).collect::<Vec<_>>(),
        "outputArtifacts": outputs.iter().map(|a| json!({"name": a})).collect::<Vec<_>>(),
    })
}

/// The ARN of the pipeline `name`.
fn pipeline_arn(name: &str) -> String {
    format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:{name}")
}

/// The EventBridge rule `rule` on `pattern`, starting the pipeline `pipeline` through `role`.
async fn rule_starting_pipeline(client: &AwsClient, rule: &str, pattern: Value, pipeline: &str, role: &str) -> anyhow::Result<()> {
    client
        .json("events", "AWSEvents.PutRule", json!({"Name": rule, "EventPattern": pattern.to_string(), "State": "ENABLED"}))
        .await
        .map_err(aws_err("creating the event rule"))?;
    client
        .json(
            "events",
            "AWSEvents.PutTargets",
            json!({"Rule": rule, "Targets": [{"Id": "CodePipeline", "Arn": pipeline_arn(pipeline), "RoleArn": Names::role_arn(role)}]}),
        )
        .await
        .map_err(aws_err("adding the rule's target"))?;
    Ok(())
}

async fn create_topology(client: &AwsClient, n: &Names, base_image: &str) -> anyhow::Result<String> {
    // IAM roles: the build's, the pipeline's and the rule's (builds really get the role's
    // temporary credentials).
    for (role, principal) in [
        (&n.codebuild_role, "codebuild.amazonaws.com"),
        (&n.pipeline_role, "codepipeline.amazonaws.com"),
        (&n.events_role, "events.amazonaws.com"),
    ] {
        create_role(client, role, principal, ALLOW_ALL).await?;
    }
    step("IAM roles for CodeBuild, CodePipeline and EventBridge");

    let location = format!("<CreateBucketConfiguration><LocationConstraint>{REGION}</LocationConstraint></CreateBucketConfiguration>");
    for bucket in [&n.artifacts, &n.cache] {
        ignore_exists(client.s3("PUT", &format!("/{bucket}"), location.clone().into_bytes()).await).map_err(aws_err("creating a bucket"))?;
    }
    step(&format!("S3 buckets {} and {}", n.artifacts, n.cache));

    ignore_exists(client.json("logs", "Logs_20140328.CreateLogGroup", json!({"logGroupName": n.logs})).await).map_err(aws_err("creating the log group"))?;
    ignore_exists(client.json("ecr", "AmazonEC2ContainerRegistry_V20150921.CreateRepository", json!({"repositoryName": n.ecr})).await)
        .map_err(aws_err("creating the ECR repository"))?;
    step(&format!("log group {} and ECR repository {}", n.logs, n.ecr));

    let repo = match client
        .json("codecommit", "CodeCommit_20150413.CreateRepository", json!({"repositoryName": n.repo, "repositoryDescription": "codeyard demo"}))
        .await
    {
        Ok(v) => v,
        Err(e) if e.code == "RepositoryNameExistsException" => client
            .json("codecommit", "CodeCommit_20150413.GetRepository", json!({"repositoryName": n.repo}))
            .await
            .map_err(aws_err("reading the repository"))?,
        Err(e) => return Err(aws_err("creating the repository")(e)),
    };
    let clone_url = repo["repositoryMetadata"]["cloneUrlHttp"].as_str().unwrap_or_default().to_string();
    let repo_arn = repo["repositoryMetadata"]["Arn"].as_str().unwrap_or_default().to_string();
    step(&format!("CodeCommit repository {} ({clone_url})", n.repo));

    let image_vars = [
        ("MY_IMAGE_NAME", "demo/java-devops-crm-demo"),
        ("MY_AWS_REGION", REGION),
        ("MY_ECR_REPO", &n.ecr),
        ("MY_AWS_ACCOUNT_ID", ACCOUNT),
        ("MY_S3_APP_BUCKET", &n.artifacts),
        ("BASE_IMAGE", base_image),
    ];
    let projects = [
        (&n.build_project, "codebuild/buildspec_build_and_test.yml", build_environment(false, &[]), 5),
        (&n.image_project, "codebuild/buildspec_build_docker_image.yml", build_environment(true, &image_vars), 10),
    ];
    for (name, buildspec, environment, minutes) in projects {
        let source = json!({"type": "CODECOMMIT", "location": clone_url, "gitCloneDepth": 1, "buildspec": buildspec});
        let artifacts = json!({"type": "NO_ARTIFACTS"});
        Project { name, source, artifacts, environment, role: &n.codebuild_role, minutes }.create(client, n).await?;
    }
    step(&format!("CodeBuild projects {} and {}", n.build_project, n.image_project));

    let pipeline = json!({
        "pipeline": {
            "name": n.pipeline,
            "roleArn": Names::role_arn(&n.pipeline_role),
            "artifactStore": {"type": "S3", "location": n.artifacts},
            "stages": [
                {"name": "Source", "actions": [action("Source", "Source", "CodeCommit", 1, &[], &["source-artifact"],
                    json!({"RepositoryName": n.repo, "BranchName": "master", "PollForSourceChanges": "false"}))]},
                {"name": "BuildAndTest", "actions": [
                    action("BuildAndTest", "Build", "CodeBuild", 1, &["source-artifact"], &["app-jar-artifact"], json!({"ProjectName": n.build_project})),
                    action("UploadJar", "Deploy", "S3", 2, &["app-jar-artifact"], &[], json!({"BucketName": n.artifacts, "Extract": "true", "ObjectKey": "app-jar"})),
                ]},
                {"name": "BuildDockerImage", "actions": [
                    action("BuildDockerImage", "Build", "CodeBuild", 1, &["source-artifact"], &[], json!({"ProjectName": n.image_project})),
                ]},
            ],
        }
    });
    ignore_exists(client.json("codepipeline", "CodePipeline_20150709.CreatePipeline", pipeline).await).map_err(aws_err("creating the pipeline"))?;
    step(&format!("CodePipeline {} (Source -> BuildAndTest -> BuildDockerImage)", n.pipeline));

    let pattern = json!({
        "source": ["aws.codecommit"],
        "detail-type": ["CodeCommit Repository State Change"],
        "resources": [repo_arn],
        "detail": {"event": ["referenceCreated", "referenceUpdated"], "referenceType": ["branch"], "referenceName": ["master"]},
    });
    rule_starting_pipeline(client, &n.rule, pattern, &n.pipeline, &n.events_role).await?;
    step(&format!("EventBridge rule {}: a push to master starts the pipeline", n.rule));
    Ok(clone_url)
}

/// Writes the sample service into `repo`, commits it and pushes it to master; answers the commit.
fn push_sample(clone_url: &str, repo: &Path) -> anyhow::Result<String> {
    for (path, content) in SAMPLE_APP {
        let file = repo.join(path);
        std::fs::create_dir_all(file.parent().unwrap())?;
        std::fs::write(&file, content)?;
        if path.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    git(repo, &["init", "-q", "-b", "master"])?;
    commit_and_push(clone_url, repo, "CRM demo service")
}

/// Commits everything in the working copy `repo` as `message` and pushes master; answers the commit.
fn commit_and_push(clone_url: &str, repo: &Path, message: &str) -> anyhow::Result<String> {
    // Open mode accepts any credentials; git sends these after the server's 401 challenge.
    let url = clone_url.replacen("://", "://demo:demo@", 1);
    git(repo, &["add", "-A"])?;
    git(repo, &["commit", "-qm", message])?;
    git(repo, &["push", "-q", &url, "master"])?;
    git(repo, &["rev-parse", "HEAD"])
}

fn git(repo: &Path, args: &[&str]) -> anyhow::Result<String> {
    let repo = repo.to_str().unwrap_or_default();
    let mut all = vec!["-C", repo, "-c", "user.name=codeyard demo", "-c", "user.email=demo@codeyard.local", "-c", "credential.helper="];
    all.extend_from_slice(args);
    run_cmd("git", &all)
}

/// Follows the execution whose source revision is `revision` (a commit, an image digest) until
/// it ends; returns its status.
async fn follow(client: &AwsClient, pipeline: &str, revision: &str, timeout: Duration) -> anyhow::Result<String> {
    let started = Instant::now();
    let tty = std::io::stdout().is_terminal();
    let multi = MultiProgress::with_draw_target(if tty { ProgressDrawTarget::stdout() } else { ProgressDrawTarget::hidden() });
    let style = ProgressStyle::with_template("  {spinner} {prefix:36} {msg}").unwrap();
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let mut last_status: HashMap<String, String> = HashMap::new();
    let mut execution_id: Option<String> = None;
    let wait_bar = multi.add(ProgressBar::new_spinner().with_style(style.clone()).with_prefix("waiting for the execution"));
    loop {
        if started.elapsed() > timeout {
            multi.clear().ok();
            return Ok("TimedOut".into());
        }
        if execution_id.is_none() {
            let list = client
                .json("codepipeline", "CodePipeline_20150709.ListPipelineExecutions", json!({"pipelineName": pipeline}))
                .await
                .map_err(aws_err("listing executions"))?;
            execution_id = list["pipelineExecutionSummaries"].as_array().into_iter().flatten().find_map(|e| {
                let hit = e["sourceRevisions"].as_array().into_iter().flatten().any(|r| r["revisionId"] == revision);
                hit.then(|| e["pipelineExecutionId"].as_str().unwrap_or_default().to_string())
            });
            if let Some(id) = &execution_id {
                wait_bar.finish_and_clear();
                if !tty {
                    println!("  execution {id}");
                }
            } else {
                wait_bar.tick();
            }
        }
        if let Some(id) = &execution_id {
            let actions = client
                .json(
                    "codepipeline",
                    "CodePipeline_20150709.ListActionExecutions",
                    json!({"pipelineName": pipeline, "filter": {"pipelineExecutionId": id}}),
                )
                .await
                .map_err(aws_err("listing action executions"))?;
            let mut details: Vec<Value> = actions["actionExecutionDetails"].as_array().cloned().unwrap_or_default();
            details.sort_by(|a, b| a["startTime"].as_f64().partial_cmp(&b["startTime"].as_f64()).unwrap_or(std::cmp::Ordering::Equal));
            for d in &details {
                let key = format!("{} / {}", d["stageName"].as_str().unwrap_or(""), d["actionName"].as_str().unwrap_or(""));
                let status = d["status"].as_str().unwrap_or("").to_string();
                let secs = match (d["startTime"].as_f64(), d["lastUpdateTime"].as_f64()) {
                    (Some(s), Some(e)) if status != "InProgress" => e - s,
                    (Some(s), _) => chrono::Utc::now().timestamp_millis() as f64 / 1000.0 - s,
                    _ => 0.0,
                };
                let bar = bars.entry(key.clone()).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new_spinner().with_style(style.clone()).with_prefix(key.clone()));
                    b.enable_steady_tick(Duration::from_millis(120));
                    b
                });
                bar.set_message(format!("{status:<11} {secs:6.1}s"));
                if last_status.get(&key) != Some(&status) {
                    if !tty {
                        println!("  {key:36} {status}");
                    }
                    if status != "InProgress" {
                        bar.finish();
                    }
                    if status == "Failed" {
                        print_failure(client, &multi, d).await;
                    }
                    last_status.insert(key, status);
                }
            }
            let execution = client
                .json("codepipeline", "CodePipeline_20150709.GetPipelineExecution", json!({"pipelineName": pipeline, "pipelineExecutionId": id}))
                .await
                .map_err(aws_err("reading the execution"))?;
            let status = execution["pipelineExecution"]["status"].as_str().unwrap_or("").to_string();
            if matches!(status.as_str(), "Succeeded" | "Failed" | "Stopped" | "Superseded" | "Cancelled") {
                for b in bars.values() {
                    b.finish();
                }
                println!("  total {:.1}s", started.elapsed().as_secs_f64());
                return Ok(status);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Prints why an action failed and, for a build, the tail of its log.
async fn print_failure(client: &AwsClient, multi: &MultiProgress, detail: &Value) {
    let summary = detail["output"]["executionResult"]["externalExecutionSummary"].as_str().unwrap_or("");
    say(multi, format!("    failed: {summary}"));
    let Some(build_id) = detail["output"]["executionResult"]["externalExecutionId"].as_str() else { return };
    let Ok(builds) = client.json("codebuild", "CodeBuild_20161006.BatchGetBuilds", json!({"ids": [build_id]})).await else { return };
    let logs = &builds["builds"][0]["logs"];
    let (Some(group), Some(stream)) = (logs["groupName"].as_str(), logs["streamName"].as_str()) else { return };
    if let Ok(events) = client
        .json("logs", "Logs_20140328.GetLogEvents", json!({"logGroupName": group, "logStreamName": stream, "startFromHead": false, "limit": 25}))
        .await
    {
        say(multi, format!("    last lines of build {build_id}:"));
        for e in events["events"].as_array().into_iter().flatten() {
            say(multi, format!("    | {}", e["message"].as_str().unwrap_or("").trim_end()));
        }
    }
}

/// Prints a line above the progress bars (a hidden draw target, off a terminal, prints nothing).
fn say(multi: &MultiProgress, line: String) {
    if multi.is_hidden() {
        println!("{line}");
    } else {
        let _ = multi.println(line);
    }
}
