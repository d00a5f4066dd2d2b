//! ECS end to end with aws-sdk-rust, the aws CLI and Terraform: task definitions and their
//! revisions, services whose tasks really run as podman containers of an image pushed to
//! codeyard's ECR (HTTP answered on the published port, logs in CloudWatch Logs), exited tasks
//! replaced, stop and delete leaving no container, a restart finding its containers again.

use crate::common::*;
use aws_sdk_ecs::types::{
    AwsVpcConfiguration, ContainerDefinition, DesiredStatus, KeyValuePair, LogConfiguration, LogDriver, NetworkConfiguration,
    NetworkMode, PortMapping, Tag, TaskDefinitionStatus,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub(crate) fn ecs_client(conf: &aws_config::SdkConfig) -> aws_sdk_ecs::Client {
    aws_sdk_ecs::Client::new(conf)
}

fn code<E: aws_sdk_ecs::error::ProvideErrorMetadata>(e: &aws_sdk_ecs::error::SdkError<E>) -> String {
    e.as_service_error().and_then(|s| s.code()).unwrap_or("?").to_string()
}

/// A free port on 127.0.0.1 for a task's published port.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Builds a busybox image whose `/www/index.html` says `body` with buildah and pushes it to
/// the test server's ECR as `repo:tag` (the repository is created when missing). Answers the
/// image's ECR URI in AWS's form.
pub(crate) async fn push_web_image(t: &TestServer, work: &Path, repo: &str, tag: &str, body: &str) -> String {
    push_busybox_image(t, work, repo, tag, Some(body)).await
}

/// As [`push_web_image`]; without a body the image has no `/www`, so `httpd -h /www` exits at
/// once (busybox's sh runs applets even without their links, so leaving `httpd` out would not).
pub(crate) async fn push_busybox_image(t: &TestServer, work: &Path, repo: &str, tag: &str, body: Option<&str>) -> String {
    let ecr = aws_sdk_ecr::Client::new(&t.sdk_config().await);
    let _ = ecr.create_repository().repository_name(repo).send().await;
    let dir = format!("img-{}-{tag}", repo.replace('/', "-"));
    let www = match body {
        Some(b) => format!("echo '{b}' > {dir}/rootfs/www/index.html"),
        None => format!("rmdir {dir}/rootfs/www"),
    };
    crate::ecr::sh(
        t,
        work,
        &format!(
            r#"rm -rf {dir} && mkdir -p {dir}/rootfs/bin {dir}/rootfs/www
cp "$(command -v busybox)" {dir}/rootfs/bin/busybox
for c in sh httpd echo sleep cat; do ln -sf busybox {dir}/rootfs/bin/$c; done
{www}
printf 'FROM scratch\nCOPY rootfs/ /\nCMD ["/bin/sh"]\n' > {dir}/Dockerfile
buildah bud -q --isolation chroot -t $REG/{repo}:{tag} {dir} >/dev/null
buildah push -q --tls-verify=false $REG/{repo}:{tag} docker://$REG/{repo}:{tag}"#
        ),
    );
    format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{repo}:{tag}")
}

/// The podman containers ECS runs for a data dir; removes any left when dropped.
pub(crate) struct TaskContainers(pub PathBuf);

impl TaskContainers {
    fn podman(&self) -> Command {
        let dir = self.0.join("ecs").join("containers");
        let mut c = Command::new("podman");
        c.args(["--root", &dir.join("storage").display().to_string(), "--runroot", &dir.join("run").display().to_string()]);
        c.args(["--tmpdir", &dir.join("tmp").display().to_string(), "--storage-driver", "vfs", "--events-backend", "file"]);
        c
    }

    /// Waits (up to `limit`) until no task container is left.
    pub async fn wait_all_removed(&self, what: &str, limit: Duration) {
        wait_for(what, limit, Duration::from_millis(300), || async { self.ids().is_empty().then_some(()) }).await
    }

    /// Ids of the task containers (running or not), by ECS's task label.
    pub fn ids(&self) -> Vec<String> {
        let out = self.podman().args(["ps", "-a", "-q", "--filter", "label=codeyard.ecs-task"]).output().expect("podman runs");
        String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect()
    }
}

impl Drop for TaskContainers {
    fn drop(&mut self) {
        let _ = self.podman().args(["rm", "-f", "-a", "-t", "0"]).output();
    }
}

/// GET `http://127.0.0.1:port/` (None while nothing answers).
pub(crate) async fn http_body(port: u16) -> Option<String> {
    let r = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/")).timeout(Duration::from_secs(2)).send().await.ok()?;
    r.status().is_success().then_some(())?;
    r.text().await.ok().map(|t| t.trim().to_string())
}

/// A container definition serving `/www` on `port` (awsvpc: the containerPort is published),
/// logging "serving on PORT" first, with awslogs to `/ecs/<name>`.
pub(crate) fn web_container(name: &str, image: &str, port: u16) -> ContainerDefinition {
    ContainerDefinition::builder()
        .name(name)
        .image(image)
        .essential(true)
        .port_mappings(PortMapping::builder().container_port(port as i32).build())
        .environment(KeyValuePair::builder().name("PORT").value(port.to_string()).build())
        .entry_point("/bin/sh")
        .command("-c")
        .command("echo serving on $PORT; exec httpd -f -p $PORT -h /www")
        .log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", format!("/ecs/{name}"))
                .options("awslogs-region", REGION)
                .options("awslogs-stream-prefix", "ecs")
                .build()
                .unwrap(),
        )
        .build()
}

pub(crate) fn fargate_network() -> NetworkConfiguration {
    NetworkConfiguration::builder()
        .awsvpc_configuration(AwsVpcConfiguration::builder().subnets("subnet-0abc").security_groups("sg-0abc").build().unwrap())
        .build()
}

/// Waits until the service's deployments are one and its running count is its desired count
/// (`aws ecs wait services-stable`), and answers its running tasks.
pub(crate) async fn wait_stable(ecs: &aws_sdk_ecs::Client, cluster: &str, service: &str) -> Vec<aws_sdk_ecs::types::Task> {
    wait_for("the service to be stable", Duration::from_secs(120), Duration::from_millis(300), || async {
        let d = ecs.describe_services().cluster(cluster).services(service).send().await.ok()?;
        let s = d.services()[0].clone();
        let stable = s.deployments().len() == 1 && s.running_count() == s.desired_count();
        if !stable {
            return None;
        }
        let arns = ecs.list_tasks().cluster(cluster).service_name(service).send().await.ok()?.task_arns().to_vec();
        if arns.len() as i32 != s.desired_count() {
            return None;
        }
        if arns.is_empty() {
            return Some(Vec::new());
        }
        let tasks = ecs.describe_tasks().cluster(cluster).set_tasks(Some(arns)).send().await.ok()?.tasks().to_vec();
        tasks.iter().all(|t| t.last_status() == Some("RUNNING")).then_some(tasks)
    })
    .await
}

/// Cluster `apps`, an awsvpc task definition `web` serving `image` on `port`, and the service
/// `web` of one task; waits until it is stable and answers HTTP; answers its tasks.
pub(crate) async fn start_web_service(ecs: &aws_sdk_ecs::Client, image: &str, port: u16) -> Vec<aws_sdk_ecs::types::Task> {
    ecs.create_cluster().cluster_name("apps").send().await.unwrap();
    ecs.register_task_definition()
        .family("web")
        .network_mode(NetworkMode::Awsvpc)
        .container_definitions(web_container("web", image, port))
        .send()
        .await
        .unwrap();
    ecs.create_service()
        .cluster("apps")
        .service_name("web")
        .task_definition("web")
        .desired_count(1)
        .network_configuration(fargate_network())
        .send()
        .await
        .unwrap();
    let tasks = wait_stable(ecs, "apps", "web").await;
    wait_for("the task to answer", Duration::from_secs(30), Duration::from_millis(200), || http_body(port)).await;
    tasks
}

/// Waits until a task is STOPPED; answers it.
async fn wait_task_stopped(ecs: &aws_sdk_ecs::Client, cluster: &str, task: &str) -> aws_sdk_ecs::types::Task {
    wait_for("the task to stop", Duration::from_secs(60), Duration::from_millis(300), || async {
        let d = ecs.describe_tasks().cluster(cluster).tasks(task).send().await.ok()?;
        let t = d.tasks()[0].clone();
        (t.last_status() == Some("STOPPED")).then_some(t)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn task_definitions_revisions_and_errors() {
    let t = TestServer::start().await;
    let ecs = ecs_client(&t.sdk_config().await);
    ecs.create_cluster().cluster_name("apps").tags(Tag::builder().key("team").value("a").build()).send().await.unwrap();
    // CreateCluster again answers the same cluster.
    let again = ecs.create_cluster().cluster_name("apps").send().await.unwrap();
    assert_eq!(again.cluster().unwrap().status(), Some("ACTIVE"));
    let image = "busybox:latest";
    let c = ContainerDefinition::builder().name("app").image(image).memory(128).build();
    let r1 = ecs.register_task_definition().family("web").container_definitions(c.clone()).send().await.unwrap();
    let td1 = r1.task_definition().unwrap();
    assert_eq!(td1.revision(), 1);
    assert_eq!(td1.status(), Some(&TaskDefinitionStatus::Active));
    assert_eq!(td1.task_definition_arn(), Some(format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:1").as_str()));
    assert_eq!(td1.network_mode(), Some(&NetworkMode::Bridge));
    assert_eq!(td1.container_definitions()[0].essential(), Some(true));
    let r2 = ecs
        .register_task_definition()
        .family("web")
        .container_definitions(c.clone())
        .tags(Tag::builder().key("v").value("2").build())
        .send()
        .await
        .unwrap();
    assert_eq!(r2.task_definition().unwrap().revision(), 2);
    // family, family:revision and ARN forms.
    let latest = ecs.describe_task_definition().task_definition("web").send().await.unwrap();
    assert_eq!(latest.task_definition().unwrap().revision(), 2);
    let by_rev = ecs.describe_task_definition().task_definition("web:1").send().await.unwrap();
    assert_eq!(by_rev.task_definition().unwrap().revision(), 1);
    let arn = r2.task_definition().unwrap().task_definition_arn().unwrap().to_string();
    let with_tags = ecs
        .describe_task_definition()
        .task_definition(&arn)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    assert_eq!(with_tags.tags()[0].value(), Some("2"));
    let families = ecs.list_task_definition_families().send().await.unwrap();
    assert_eq!(families.families(), ["web"]);
    // Deregistering makes a revision INACTIVE; the family then resolves to the other one.
    let dereg = ecs.deregister_task_definition().task_definition("web:2").send().await.unwrap();
    assert_eq!(dereg.task_definition().unwrap().status(), Some(&TaskDefinitionStatus::Inactive));
    let latest = ecs.describe_task_definition().task_definition("web").send().await.unwrap();
    assert_eq!(latest.task_definition().unwrap().revision(), 1);
    let active = ecs.list_task_definitions().family_prefix("web").send().await.unwrap();
    assert_eq!(active.task_definition_arns().len(), 1);
    let inactive = ecs.list_task_definitions().status(TaskDefinitionStatus::Inactive).send().await.unwrap();
    assert_eq!(inactive.task_definition_arns(), [arn.clone()]);
    // Tags on the cluster.
    let cluster_arn = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/apps");
    ecs.tag_resource().resource_arn(&cluster_arn).tags(Tag::builder().key("env").value("dev").build()).send().await.unwrap();
    ecs.untag_resource().resource_arn(&cluster_arn).tag_keys("team").send().await.unwrap();
    let tags = ecs.list_tags_for_resource().resource_arn(&cluster_arn).send().await.unwrap();
    assert_eq!(tags.tags().len(), 1);
    assert_eq!(tags.tags()[0].key(), Some("env"));

    // Errors, as ECS answers them, and nothing changed.
    let e = ecs.describe_task_definition().task_definition("nope").send().await.unwrap_err();
    assert_eq!(code(&e), "ClientException");
    let e = ecs.describe_services().cluster("missing").services("x").send().await.unwrap_err();
    assert_eq!(code(&e), "ClusterNotFoundException");
    let e = ecs.update_service().cluster("apps").service("x").desired_count(1).send().await.unwrap_err();
    assert_eq!(code(&e), "ServiceNotFoundException");
    let e = ecs.delete_service().cluster("apps").service("x").send().await.unwrap_err();
    assert_eq!(code(&e), "ServiceNotFoundException");
    let e = ecs.create_service().cluster("apps").service_name("s").task_definition("nope:9").send().await.unwrap_err();
    assert_eq!(code(&e), "ClientException");
    let missing = ecs.describe_clusters().clusters("apps").clusters("gone").send().await.unwrap();
    assert_eq!(missing.clusters().len(), 1);
    assert_eq!(missing.failures()[0].reason(), Some("MISSING"));
    let (ok, _, err) = aws_cli(&t.endpoint, &["ecs", "describe-task-definition", "--task-definition", "web:7"]);
    assert!(!ok && err.contains("ClientException"), "{err}");
    ecs.delete_cluster().cluster("apps").send().await.unwrap();
    let gone = ecs.describe_clusters().clusters("apps").send().await.unwrap();
    assert_eq!(gone.clusters()[0].status(), Some("INACTIVE"));
    assert!(ecs.list_clusters().send().await.unwrap().cluster_arns().is_empty());
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_serves_http_replaces_its_tasks_and_leaves_no_container() {
    let t = TestServer::start().await;
    let containers = TaskContainers(t.data_dir.clone());
    let conf = t.sdk_config().await;
    let ecs = ecs_client(&conf);
    let work = tempfile::tempdir().unwrap();
    let image = push_web_image(&t, work.path(), "web", "v1", "hello from v1").await;
    ecs.create_cluster().cluster_name("apps").send().await.unwrap();
    let port = free_port();
    ecs.register_task_definition()
        .family("web")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(web_container("web", &image, port))
        .send()
        .await
        .unwrap();
    let created = ecs
        .create_service()
        .cluster("apps")
        .service_name("web")
        .task_definition("web")
        .desired_count(1)
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .network_configuration(fargate_network())
        .send()
        .await
        .unwrap();
    let svc = created.service().unwrap();
    assert_eq!(svc.deployments()[0].rollout_state(), Some(&aws_sdk_ecs::types::DeploymentRolloutState::InProgress));
    let tasks = wait_stable(&ecs, "apps", "web").await;
    let (ok, _, err) = aws_cli(&t.endpoint, &["ecs", "wait", "services-stable", "--cluster", "apps", "--services", "web"]);
    assert!(ok, "aws ecs wait services-stable: {err}");
    let first = tasks[0].task_arn().unwrap().to_string();
    let binding = &tasks[0].containers()[0].network_bindings()[0];
    assert_eq!(binding.host_port(), Some(port as i32));
    assert_eq!(binding.bind_ip(), Some("127.0.0.1"));
    let body = wait_for("the task to answer HTTP", Duration::from_secs(30), Duration::from_millis(200), || http_body(port)).await;
    assert_eq!(body, "hello from v1");
    let s = wait_for("the rollout to complete", Duration::from_secs(30), Duration::from_millis(300), || async {
        let d = ecs.describe_services().cluster("apps").services("web").send().await.ok()?;
        let s = d.services()[0].clone();
        (s.deployments()[0].rollout_state() == Some(&aws_sdk_ecs::types::DeploymentRolloutState::Completed)).then_some(s)
    })
    .await;
    assert!(s.events().iter().any(|e| e.message().unwrap_or_default().contains("has reached a steady state")), "{:?}", s.events());
    // The container's output is in CloudWatch Logs under the awslogs configuration.
    let task_id = first.rsplit('/').next().unwrap().to_string();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    wait_for("the task's log line", Duration::from_secs(30), Duration::from_millis(300), || async {
        let ev = logs.get_log_events().log_group_name("/ecs/web").log_stream_name(format!("ecs/web/{task_id}")).send().await.ok()?;
        ev.events().iter().any(|e| e.message() == Some(&format!("serving on {port}"))).then_some(())
    })
    .await;

    // A stopped task is replaced by the service.
    ecs.stop_task().cluster("apps").task(&first).reason("testing replacement").send().await.unwrap();
    let stopped = wait_task_stopped(&ecs, "apps", &first).await;
    assert_eq!(stopped.stopped_reason(), Some("testing replacement"));
    assert_eq!(stopped.stop_code(), Some(&aws_sdk_ecs::types::TaskStopCode::UserInitiated));
    let tasks = wait_stable(&ecs, "apps", "web").await;
    assert_ne!(tasks[0].task_arn().unwrap(), first);
    let body = wait_for("the new task to answer", Duration::from_secs(30), Duration::from_millis(200), || http_body(port)).await;
    assert_eq!(body, "hello from v1");
    assert_eq!(containers.ids().len(), 1, "one container for one task");

    // A one-off task that exits reports its exit code and ECS's reason.
    let exits = ContainerDefinition::builder().name("job").image(&image).entry_point("/bin/sh").command("-c").command("echo bye; exit 3").build();
    ecs.register_task_definition().family("job").container_definitions(exits).send().await.unwrap();
    let run = ecs.run_task().cluster("apps").task_definition("job").started_by("tester").send().await.unwrap();
    let job = run.tasks()[0].task_arn().unwrap().to_string();
    let done = wait_task_stopped(&ecs, "apps", &job).await;
    assert_eq!(done.stopped_reason(), Some("Essential container in task exited"));
    assert_eq!(done.stop_code(), Some(&aws_sdk_ecs::types::TaskStopCode::EssentialContainerExited));
    assert_eq!(done.containers()[0].exit_code(), Some(3));
    let by_starter = ecs.list_tasks().cluster("apps").started_by("tester").desired_status(DesiredStatus::Stopped).send().await.unwrap();
    assert_eq!(by_starter.task_arns(), [job.clone()]);

    // A service whose container exits is replaced each time (a new task per exit).
    let quitter = ContainerDefinition::builder().name("q").image(&image).entry_point("/bin/sh").command("-c").command("sleep 1; exit 1").build();
    ecs.register_task_definition().family("quitter").container_definitions(quitter).send().await.unwrap();
    ecs.create_service().cluster("apps").service_name("quitter").task_definition("quitter").desired_count(1).send().await.unwrap();
    wait_for("the exited task to be replaced", Duration::from_secs(90), Duration::from_millis(500), || async {
        let stopped = ecs.list_tasks().cluster("apps").service_name("quitter").desired_status(DesiredStatus::Stopped).send().await.ok()?;
        (stopped.task_arns().len() >= 2).then_some(())
    })
    .await;
    let e = ecs.delete_service().cluster("apps").service("quitter").send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    ecs.delete_service().cluster("apps").service("quitter").force(true).send().await.unwrap();

    // Deleting the service stops its task and removes its container.
    ecs.update_service().cluster("apps").service("web").desired_count(0).send().await.unwrap();
    ecs.delete_service().cluster("apps").service("web").send().await.unwrap();
    for name in ["web", "quitter"] {
        wait_for("the service to be INACTIVE", Duration::from_secs(90), Duration::from_millis(300), || async {
            let d = ecs.describe_services().cluster("apps").services(name).send().await.ok()?;
            (d.services()[0].status() == Some("INACTIVE")).then_some(())
        })
        .await;
    }
    containers.wait_all_removed("every container to be removed", Duration::from_secs(30)).await;
    assert!(http_body(port).await.is_none());
    ecs.delete_cluster().cluster("apps").send().await.unwrap();
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_finds_the_running_tasks_without_duplicates() {
    let data = tempfile::tempdir().unwrap();
    let t = TestServer::start_in(data.path().to_path_buf(), |_| {}).await;
    let containers = TaskContainers(t.data_dir.clone());
    let work = tempfile::tempdir().unwrap();
    let image = push_web_image(&t, work.path(), "web", "v1", "still here").await;
    let ecs = ecs_client(&t.sdk_config().await);
    let port = free_port();
    let before = start_web_service(&ecs, &image, port).await;
    let dir = t.stop().await;
    // The container keeps serving while codeyard is down.
    assert_eq!(http_body(port).await.as_deref(), Some("still here"));
    let t = TestServer::start_in(dir, |_| {}).await;
    let ecs = ecs_client(&t.sdk_config().await);
    let after = wait_stable(&ecs, "apps", "web").await;
    assert_eq!(after[0].task_arn(), before[0].task_arn(), "the same task, not a new one");
    // A few scheduler ticks later there is still one task and one container.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let running = ecs.list_tasks().cluster("apps").service_name("web").send().await.unwrap();
    assert_eq!(running.task_arns().len(), 1);
    assert_eq!(containers.ids().len(), 1);
    assert_eq!(http_body(port).await.as_deref(), Some("still here"));
    ecs.delete_service().cluster("apps").service("web").force(true).send().await.unwrap();
    containers.wait_all_removed("every container to be removed", Duration::from_secs(60)).await;
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_cluster_task_definition_and_service() {
    let t = TestServer::start().await;
    let containers = TaskContainers(t.data_dir.clone());
    let work = tempfile::tempdir().unwrap();
    let image = push_web_image(&t, work.path(), "web", "v1", "from terraform").await;
    let port = free_port();
    let ws = terraform_workspace("ecs");
    let (image, port_var) = (format!("-var=image={image}"), format!("-var=port={port}"));
    let vars = [image.as_str(), port_var.as_str()];
    terraform_apply(ws.path(), &t.endpoint, &vars);
    let ecs = ecs_client(&t.sdk_config().await);
    wait_stable(&ecs, "tf-apps", "tf-web").await;
    let body = wait_for("the Terraform service to answer", Duration::from_secs(30), Duration::from_millis(200), || http_body(port)).await;
    assert_eq!(body, "from terraform");
    terraform_plan_clean(ws.path(), &t.endpoint, &vars);
    terraform_destroy(ws.path(), &t.endpoint, &vars);
    containers.wait_all_removed("every container to be removed", Duration::from_secs(60)).await;
    let families = ecs.list_task_definitions().family_prefix("tf-web").send().await.unwrap();
    assert!(families.task_definition_arns().is_empty());
    t.assert_no_model_violations();
}
