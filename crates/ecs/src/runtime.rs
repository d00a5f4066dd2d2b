//! Where tasks really run: each container of a task is a podman container of its image
//! (pulled from codeyard's registry through ECR's [`ContainerImages`] with a registry token, or
//! as named), with its environment, command and entry point, its port mappings published on
//! 127.0.0.1 and its output shipped to CloudWatch Logs under the awslogs configuration.
//!
//! Containers carry the label [`TASK_LABEL`] (`<namespace>|<task key>`) so that a restarted
//! server finds them again ([`Runtime::adopt`]) and removes those no task owns. Storage is
//! private to the data dir (`<data_dir>/ecs/containers`); podman's tmpdir is kept short
//! ([`PrivateTmpdir`]) so that bridge and awsvpc tasks get a network of their own
//! ([`Podman::private_network`]).
//!
//! [`ContainerImages`]: codeyard_core::hub::ContainerImages

use crate::domain::{Ecs, is_stopped, mark_stopping, now};
use crate::records::Scope;
use crate::records::*;
use codeyard_api::ecs::*;
use codeyard_core::RequestContext;
use codeyard_core::hub::Hub;
use codeyard_podman::{Podman, PrivateTmpdir};
use codeyard_store::StateStoreExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

pub const TASK_LABEL: &str = "codeyard.ecs-task";
pub const CONTAINER_LABEL: &str = "codeyard.ecs-container";
const PULL_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a stopping task waits for its containers' output to reach CloudWatch Logs.
const LOG_DRAIN: Duration = Duration::from_secs(5);

pub struct Runtime {
    /// podman, detected when first needed (a server that never runs a task never probes).
    pub podman: tokio::sync::OnceCell<Result<Arc<Podman>, String>>,
    /// Where the tasks' container storage lives (`<data_dir>/ecs/containers`).
    pub containers_dir: std::path::PathBuf,
    pub ecs: Ecs,
    pub hub: Arc<Hub>,
    pub endpoint: String,
    pub shutdown: CancellationToken,
    /// Task ids (namespace|key) being launched or stopped by this process.
    pub launching: Mutex<HashSet<String>>,
    pub stopping: Mutex<HashSet<String>>,
    /// podman's tmpdir, once podman is detected (removed when dropped with no container left).
    pub tmpdir: std::sync::OnceLock<PrivateTmpdir>,
    /// Per container id followed by [`Runtime::watch`]: cancelled when its output has all been
    /// shipped to CloudWatch Logs (at once without awslogs).
    pub shipping: Mutex<HashMap<String, CancellationToken>>,
    /// Task definitions whose images [`Runtime::prefetch`] pulled ahead of their tasks.
    pub prefetched: Mutex<HashSet<String>>,
}

/// A running container of a task, as [`Runtime::watch`] follows it.
#[derive(Clone)]
struct TaskContainer {
    s: Scope,
    /// The task's key in its namespace.
    key: String,
    /// The container's name in the task definition.
    name: String,
    /// podman's container id.
    cid: String,
    def: ContainerDefinition,
    /// What its log shipping writes CloudWatch Logs as (the task execution role).
    ctx: RequestContext,
    task_id: String,
}

fn label_of(s: &Scope, key: &str) -> String {
    format!("{}|{key}", s.tasks())
}

fn container_name(task_id: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("codeyard-ecs-{task_id}-{clean}")
}

/// The context ECS pulls images and ships logs in: the task execution role's session, else
/// the account's own.
fn execution_context(
    s: &Scope,
    endpoint: &str,
    td: &TaskDefinition,
    task_id: &str,
) -> RequestContext {
    let ctx = s.context(endpoint);
    match td.execution_role_arn.as_deref().filter(|r| !r.is_empty()) {
        Some(role) => ctx.acting_as_role(role, task_id),
        None => ctx,
    }
}

/// Why a launch failed, as ECS reports it on the task and container.
struct LaunchError {
    reason: String,
}

impl Runtime {
    async fn podman(&self) -> Result<Arc<Podman>, String> {
        self.podman
            .get_or_init(|| async {
                let podman = Podman::detect_private(&self.containers_dir).await.map(|(podman, tmp)| {
                    let _ = self.tmpdir.set(tmp);
                    Arc::new(podman)
                });
                if let Ok(p) = &podman {
                    if p.private_network().is_none() {
                        tracing::info!(tmpdir = ?p.tmpdir(), "ecs: tasks use podman's default network (slirp4netns is missing or podman's tmpdir is too long for its socket)");
                    }
                }
                match &podman {
                    Ok(p) => tracing::info!("ecs: tasks run in podman ({})", p.description),
                    Err(e) => tracing::warn!("ecs: tasks cannot run: {e}"),
                }
                podman
            })
            .await
            .clone()
    }

    /// Starts a PROVISIONING task's containers; on failure the task stops with
    /// TaskFailedToStart and the reason.
    pub async fn launch(self: Arc<Self>, s: Scope, key: String) {
        let id = label_of(&s, &key);
        let result = self.clone().launch_inner(&s, &key).await;
        if let Err(e) = result {
            tracing::info!(task = %key, reason = %e.reason, "ecs: task failed to start");
            self.remove_containers(&s, &key).await;
            let reason = e.reason.clone();
            let _ = self
                .ecs
                .change_task(&s, &key, |t| {
                    mark_stopping(t, TaskStopCode::TaskFailedToStart, reason.clone());
                    for c in t.containers.iter_mut().flatten() {
                        if !is(&c.last_status, TaskStatus::Stopped) {
                            c.last_status = TaskStatus::Stopped.field();
                            c.reason.get_or_insert(reason.clone());
                        }
                    }
                    finish_stopped(t);
                    true
                })
                .await;
        }
        self.launching.lock().unwrap().remove(&id);
        self.ecs.wake.notify_one();
    }

    async fn launch_inner(self: Arc<Self>, s: &Scope, key: &str) -> Result<(), LaunchError> {
        let podman = self.podman().await.map_err(|e| LaunchError {
            reason: format!("CannotStartContainerError: {e}"),
        })?;
        let Some((task, _)) = self
            .ecs
            .store
            .get_as::<Task>(&s.tasks(), key)
            .await
            .ok()
            .flatten()
        else {
            return Ok(());
        };
        if !is(&task.desired_status, TaskStatus::Running) {
            return Ok(());
        }
        let td_arn = task.task_definition_arn.clone().unwrap_or_default();
        let (td, _) = self
            .ecs
            .task_definition(s, &td_arn)
            .await
            .map_err(|_| LaunchError {
                reason: format!("TaskDefinition not found: {td_arn}"),
            })?;
        let td = td.definition;
        let task_id = task_id(task.task_arn.as_deref().unwrap_or_default());
        let ctx = execution_context(s, &self.endpoint, &td, &task_id);
        let _ = self
            .ecs
            .change_task(s, key, |t| {
                t.last_status = TaskStatus::Pending.field();
                t.pull_started_at = Some(now());
                true
            })
            .await;
        let overrides = task.overrides.clone().unwrap_or_default();
        let mut started: Vec<(String, String, String, Vec<NetworkBinding>)> = Vec::new();
        // When the last image was pulled: pullStoppedAt, as ECS reports it (before the start).
        let mut pulled_at = None;
        for def in td.container_definitions.clone().unwrap_or_default() {
            let name = def.name.clone().unwrap_or_default();
            let image = def.image.clone().unwrap_or_default();
            let reference = self.pull(&podman, &ctx, &image).await.map_err(|why| LaunchError {
                reason: format!("CannotPullContainerError: pull image manifest has been retried 1 time(s): {image}: {why}"),
            })?;
            pulled_at = Some(now());
            let over = overrides
                .container_overrides
                .iter()
                .flatten()
                .find(|o| o.name.as_deref() == Some(name.as_str()))
                .cloned();
            let cname = container_name(&task_id, &name);
            let args = run_args(
                &podman,
                &td,
                &def,
                over.as_ref(),
                &cname,
                &label_of(s, key),
                &reference,
            );
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let cid = podman.output(&args).await.map_err(|e| LaunchError {
                reason: format!("CannotStartContainerError: {e}"),
            })?;
            let bindings = self.bindings(&podman, &cid).await;
            let digest = podman
                .output(&["image", "inspect", "--format", "{{.Digest}}", &reference])
                .await
                .unwrap_or_default();
            started.push((name, cid, digest, bindings));
        }
        let updated = self
            .ecs
            .change_task(s, key, |t| {
                let at = now();
                t.pull_stopped_at = Some(pulled_at.unwrap_or(at));
                t.connectivity = Some(Connectivity::Connected);
                t.connectivity_at = Some(at);
                t.started_at = Some(at);
                if is(&t.desired_status, TaskStatus::Running) {
                    t.last_status = TaskStatus::Running.field();
                }
                for c in t.containers.iter_mut().flatten() {
                    if let Some((_, cid, digest, bindings)) =
                        started.iter().find(|(n, ..)| Some(n) == c.name.as_ref())
                    {
                        c.runtime_id = Some(cid.clone());
                        c.last_status = TaskStatus::Running.field();
                        c.network_bindings = Some(bindings.clone());
                        if !digest.is_empty() {
                            c.image_digest = Some(digest.clone());
                        }
                    }
                }
                true
            })
            .await
            .ok()
            .flatten();
        if updated.is_none() {
            // The task record is gone: nothing owns these containers.
            self.remove_containers(s, key).await;
            return Ok(());
        }
        for (name, cid, ..) in started {
            let def = container_def(&td, &name);
            self.follow(TaskContainer {
                s: s.clone(),
                key: key.to_string(),
                name,
                cid,
                def: def.unwrap_or_default(),
                ctx: ctx.clone(),
                task_id: task_id.clone(),
            });
        }
        Ok(())
    }

    /// Starts following a running container ([`Runtime::watch`]); its log shipping is
    /// registered before this returns, so a stop that comes next waits for it.
    fn follow(self: &Arc<Self>, container: TaskContainer) {
        let shipped = CancellationToken::new();
        self.shipping
            .lock()
            .unwrap()
            .insert(container.cid.clone(), shipped.clone());
        tokio::spawn(self.clone().watch(container, shipped));
    }

    /// Pulls the images of the task definition `td_arn` ahead of its tasks, once per revision:
    /// a deployment whose tasks wait for the older tasks to free their host ports pulls while
    /// those stop, and the new tasks' own pulls (which still authorize and check the image)
    /// find its layers here. A failure is left to the tasks' pulls to report.
    pub fn prefetch(self: &Arc<Self>, s: Scope, td_arn: String) {
        if !self.prefetched.lock().unwrap().insert(td_arn.clone()) {
            return;
        }
        let rt = self.clone();
        tokio::spawn(async move {
            let Ok(podman) = rt.podman().await else { return };
            let Ok((td, _)) = rt.ecs.task_definition(&s, &td_arn).await else {
                return;
            };
            let td = td.definition;
            let ctx = execution_context(&s, &rt.endpoint, &td, "ecs-prefetch");
            for def in td.container_definitions.iter().flatten() {
                let image = def.image.clone().unwrap_or_default();
                if let Err(why) = rt.pull(&podman, &ctx, &image).await {
                    tracing::debug!(%image, error = %why, "ecs: pulling ahead of the tasks failed");
                }
            }
        });
    }

    /// Pulls `image` (from codeyard's registry with a token, else as named when absent) and
    /// answers the reference to run.
    async fn pull(
        &self,
        podman: &Podman,
        ctx: &RequestContext,
        image: &str,
    ) -> Result<String, String> {
        let spec = match self.hub.images() {
            Ok(images) => images.pull_spec(ctx, image).await.map_err(|e| e.message)?,
            Err(_) => None,
        };
        let (reference, mut args) = match &spec {
            Some(p) => (
                p.reference.clone(),
                vec![
                    "pull".to_string(),
                    "-q".into(),
                    "--tls-verify=false".into(),
                    "--creds".into(),
                    format!("{}:{}", p.username, p.password),
                ],
            ),
            None => {
                if podman.output(&["image", "exists", image]).await.is_ok() {
                    return Ok(image.to_string());
                }
                (image.to_string(), vec!["pull".to_string(), "-q".into()])
            }
        };
        args.push(reference.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match tokio::time::timeout(PULL_TIMEOUT, podman.output(&args)).await {
            Ok(Ok(_)) => Ok(reference),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!(
                "the pull took longer than {} s",
                PULL_TIMEOUT.as_secs()
            )),
        }
    }

    /// The container's published ports (`podman port`: `80/tcp -> 127.0.0.1:8080`).
    async fn bindings(&self, podman: &Podman, cid: &str) -> Vec<NetworkBinding> {
        let text = podman.output(&["port", cid]).await.unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let (inside, outside) = l.split_once(" -> ")?;
                let (port, proto) = inside.trim().split_once('/')?;
                let (ip, host_port) = outside.trim().rsplit_once(':')?;
                Some(NetworkBinding {
                    bind_ip: Some(ip.to_string()),
                    container_port: port.parse().ok(),
                    host_port: host_port.parse().ok(),
                    protocol: Some(TransportProtocol::from(proto)),
                    ..Default::default()
                })
            })
            .collect()
    }

    /// Follows a running container: ships its output to CloudWatch Logs (`shipped` is
    /// cancelled when that ends) and, when it exits, records the exit code; an essential
    /// container's exit stops the task.
    async fn watch(self: Arc<Self>, container: TaskContainer, shipped: CancellationToken) {
        let done = shipped.drop_guard();
        let Ok(podman) = self.podman().await else {
            self.shipping.lock().unwrap().remove(&container.cid);
            return;
        };
        let shipper = self.clone().ship_logs(podman.clone(), container.clone());
        let TaskContainer { s, key, name, cid, def, .. } = container;
        let rt = self.clone();
        let shipping_cid = cid.clone();
        let logs = tokio::spawn(async move {
            let _done = done;
            shipper.await;
            rt.shipping.lock().unwrap().remove(&shipping_cid);
        });
        let wait_args = ["wait", cid.as_str()];
        let code = tokio::select! {
            r = podman.output(&wait_args) => r,
            _ = self.shutdown.cancelled() => { logs.abort(); return; }
        };
        tracing::debug!(container = %cid, result = ?code, "ecs: container exited");
        let exit_code: Option<i32> = code
            .ok()
            .and_then(|c| c.trim().lines().last().and_then(|l| l.trim().parse().ok()));
        let _ = tokio::time::timeout(Duration::from_secs(5), logs).await;
        let essential = def.essential.unwrap_or(true);
        let reason = "Essential container in task exited".to_string();
        let _ = self
            .ecs
            .change_task(&s, &key, |t| {
                let mut changed = false;
                for c in t.containers.iter_mut().flatten() {
                    if c.name.as_deref() == Some(name.as_str())
                        && !is(&c.last_status, TaskStatus::Stopped)
                    {
                        c.last_status = TaskStatus::Stopped.field();
                        c.exit_code = exit_code;
                        changed = true;
                    }
                }
                if essential && is(&t.desired_status, TaskStatus::Running) {
                    mark_stopping(t, TaskStopCode::EssentialContainerExited, reason.clone());
                    changed = true;
                }
                changed
            })
            .await;
        self.ecs.wake.notify_one();
    }

    async fn ship_logs(self: Arc<Self>, podman: Arc<Podman>, container: TaskContainer) {
        let TaskContainer { cid, def, ctx, task_id, name, .. } = container;
        let Some(conf) = def
            .log_configuration
            .as_ref()
            .filter(|l| l.log_driver == LogDriver::Awslogs)
        else {
            return;
        };
        let opts = conf.options.clone().unwrap_or_default();
        let Some(group) = opts.get("awslogs-group").cloned() else {
            return;
        };
        let stream = match opts.get("awslogs-stream-prefix") {
            Some(p) => format!("{p}/{name}/{task_id}"),
            None => format!("{name}/{task_id}"),
        };
        let mut ctx = ctx;
        if let Some(r) = opts.get("awslogs-region") {
            ctx.region = r.clone();
        }
        let Ok(sink) = self.hub.logs() else { return };
        if let Err(e) = sink.ensure_stream(&ctx, &group, &stream).await {
            tracing::warn!(group = %group, error = %e.message, "ecs: cannot create the task's log stream");
            return;
        }
        let mut cmd = podman.command();
        cmd.args(["logs", "-f", &cid])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let Ok(mut child) = cmd.spawn() else { return };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        for out in [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(out).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        loop {
            let Some(first) = rx.recv().await else { break };
            let mut batch = vec![first];
            tokio::time::sleep(Duration::from_millis(200)).await;
            while let Ok(l) = rx.try_recv() {
                batch.push(l);
            }
            let ms = codeyard_core::time::epoch_millis(&codeyard_core::time::now());
            let events = batch.into_iter().map(|l| (ms, l)).collect();
            if let Err(e) = sink.append(&ctx, &group, &stream, events).await {
                tracing::warn!(group = %group, error = %e.message, "ecs: cannot ship a task's logs");
            }
        }
        let _ = child.wait().await;
    }

    /// Stops a task whose desiredStatus is STOPPED: its containers get SIGTERM, then SIGKILL
    /// after the stop timeout; their exit codes are recorded and the task is STOPPED.
    pub async fn stop(self: Arc<Self>, s: Scope, key: String) {
        let id = label_of(&s, &key);
        let task = self
            .ecs
            .store
            .get_as::<Task>(&s.tasks(), &key)
            .await
            .ok()
            .flatten()
            .map(|(t, _)| t);
        if let (Some(task), Ok(podman)) = (task, self.podman().await) {
            let _ = self
                .ecs
                .change_task(&s, &key, |t| {
                    let changed = is(&t.last_status, TaskStatus::Running);
                    if changed {
                        t.last_status = TaskStatus::Deactivating.field();
                    }
                    changed
                })
                .await;
            let timeout = self.stop_timeout(&s, &task).await;
            let mut codes: BTreeMap<String, Option<i32>> = BTreeMap::new();
            let mut shippers = Vec::new();
            for c in task.containers.iter().flatten() {
                let Some(cid) = &c.runtime_id else { continue };
                // `podman stop` returns once the container is down and its network torn down
                // (the published ports are free for the service's next task).
                let _ = podman
                    .output(&["stop", "-t", &timeout.to_string(), cid])
                    .await;
                let code = podman
                    .output(&["inspect", "--format", "{{.State.ExitCode}}", cid])
                    .await
                    .ok()
                    .and_then(|c| c.trim().parse().ok());
                codes.insert(c.name.clone().unwrap_or_default(), code);
                shippers.extend(self.shipping.lock().unwrap().get(cid).cloned());
            }
            // The containers' last output reaches CloudWatch Logs before they are removed
            // (their `podman logs -f` ends with them).
            let drained = async {
                for shipped in &shippers {
                    shipped.cancelled().await;
                }
            };
            if tokio::time::timeout(LOG_DRAIN, drained).await.is_err() {
                tracing::debug!(task = %key, "ecs: the task's log shipping did not end in time");
            }
            self.remove_containers(&s, &key).await;
            let _ = self
                .ecs
                .change_task(&s, &key, |t| {
                    for c in t.containers.iter_mut().flatten() {
                        if !is(&c.last_status, TaskStatus::Stopped) {
                            c.last_status = TaskStatus::Stopped.field();
                            if c.exit_code.is_none() {
                                c.exit_code = codes
                                    .get(c.name.as_deref().unwrap_or_default())
                                    .cloned()
                                    .flatten();
                            }
                        }
                    }
                    finish_stopped(t);
                    true
                })
                .await;
        }
        self.stopping.lock().unwrap().remove(&id);
        self.ecs.wake.notify_one();
    }

    async fn stop_timeout(&self, s: &Scope, task: &Task) -> i32 {
        let td = self
            .ecs
            .task_definition(s, task.task_definition_arn.as_deref().unwrap_or_default())
            .await
            .ok();
        td.and_then(|(t, _)| {
            t.definition
                .container_definitions
                .and_then(|c| c.iter().filter_map(|d| d.stop_timeout).max())
        })
        .unwrap_or(30)
        .clamp(0, 120)
    }

    /// Removes every container of a task.
    pub async fn remove_containers(&self, s: &Scope, key: &str) {
        let Ok(podman) = self.podman().await else {
            return;
        };
        if let Err(why) = podman.remove_labelled(&format!("{TASK_LABEL}={}", label_of(s, key))).await {
            tracing::warn!(task = %key, error = %why, "ecs: removing the task's containers failed");
        }
    }

    /// At start-up: follows again the containers of running tasks, removes those no task owns
    /// (or whose task is stopping or was still being launched), and stops the tasks whose
    /// containers are gone (their services replace them).
    pub async fn adopt(self: &Arc<Self>) {
        let Ok(namespaces) = self.ecs.store.namespaces("ecs/").await else {
            return;
        };
        if !namespaces.iter().any(|ns| ns.ends_with("/tasks")) {
            return;
        }
        let Ok(podman) = self.podman().await else {
            return;
        };
        let listing = podman
            .output(&[
                "ps",
                "-a",
                "--filter",
                &format!("label={TASK_LABEL}"),
                "--format",
                &format!("{{{{.ID}}}}\t{{{{index .Labels \"{TASK_LABEL}\"}}}}\t{{{{index .Labels \"{CONTAINER_LABEL}\"}}}}"),
            ])
            .await;
        let listing = listing.unwrap_or_default();
        let mut found: HashSet<String> = HashSet::new();
        for line in listing.lines() {
            let parts: Vec<&str> = line.split('\t').collect();
            let [cid, label, name] = parts.as_slice() else {
                continue;
            };
            let (ns, key) = label.split_once('|').unwrap_or(("", ""));
            let owner = match Scope::of_namespace(ns) {
                Some((s, _)) => self
                    .ecs
                    .store
                    .get_as::<Task>(ns, key)
                    .await
                    .ok()
                    .flatten()
                    .map(|(t, _)| (s, t)),
                None => None,
            };
            match owner {
                Some((s, t))
                    if is(&t.last_status, TaskStatus::Running)
                        && is(&t.desired_status, TaskStatus::Running) =>
                {
                    let td = self
                        .ecs
                        .task_definition(&s, t.task_definition_arn.as_deref().unwrap_or_default())
                        .await
                        .ok();
                    let td = td.map(|(r, _)| r.definition).unwrap_or_default();
                    let def = container_def(&td, name);
                    let task_id = task_id(t.task_arn.as_deref().unwrap_or_default());
                    let ctx = execution_context(&s, &self.endpoint, &td, &task_id);
                    found.insert(label.to_string());
                    self.follow(TaskContainer {
                        s,
                        key: key.to_string(),
                        name: name.to_string(),
                        cid: cid.to_string(),
                        def: def.unwrap_or_default(),
                        ctx,
                        task_id,
                    });
                }
                _ => {
                    tracing::info!(container = %cid, task = %key, "ecs: removing a container no running task owns");
                    if let Err(why) = podman.remove(cid).await {
                        tracing::warn!(container = %cid, task = %key, error = %why, "ecs: removing an orphaned container failed");
                    }
                }
            }
        }
        // Running tasks whose containers are gone.
        let Ok(namespaces) = self.ecs.store.namespaces("ecs/").await else {
            return;
        };
        for ns in namespaces {
            let Some((s, kind)) = Scope::of_namespace(&ns) else {
                continue;
            };
            if kind != "tasks" {
                continue;
            }
            let Ok(docs) = self.ecs.store.scan(&ns, "").collect().await else {
                continue;
            };
            for d in docs {
                let Ok(t) = d.parse::<Task>() else { continue };
                let lost = (is(&t.last_status, TaskStatus::Running) || is(&t.last_status, TaskStatus::Deactivating))
                    && !found.contains(&label_of(&s, &d.key));
                if lost {
                    let _ = self
                        .ecs
                        .change_task(&s, &d.key, |t| {
                            mark_stopping(
                                t,
                                TaskStopCode::TaskFailedToStart,
                                "Task stopped: its container was gone when codeyard restarted"
                                    .into(),
                            );
                            for c in t.containers.iter_mut().flatten() {
                                c.last_status = TaskStatus::Stopped.field();
                            }
                            finish_stopped(t);
                            true
                        })
                        .await;
                }
            }
        }
    }
}

/// A task definition's container definition by name.
fn container_def(td: &TaskDefinition, name: &str) -> Option<ContainerDefinition> {
    td.container_definitions
        .iter()
        .flatten()
        .find(|d| d.name.as_deref() == Some(name))
        .cloned()
}

/// The task is STOPPED now.
pub fn finish_stopped(t: &mut Task) {
    let at = now();
    t.desired_status = TaskStatus::Stopped.field();
    t.last_status = TaskStatus::Stopped.field();
    t.stopping_at.get_or_insert(at);
    t.execution_stopped_at.get_or_insert(at);
    t.stopped_at.get_or_insert(at);
    t.connectivity = None;
    let _ = is_stopped(t);
}

/// `podman run` for one container of a task. Bridge and awsvpc tasks get
/// [`Podman::private_network`] when this machine has it: their published ports are forwarded
/// by a process of the task's own, which goes with it, instead of host firewall rules that
/// outlive a container whose cleanup never ran.
fn run_args(
    podman: &Podman,
    td: &TaskDefinition,
    def: &ContainerDefinition,
    over: Option<&ContainerOverride>,
    cname: &str,
    label: &str,
    reference: &str,
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "run".into(),
        "-d".into(),
        "--replace".into(),
        "--name".into(),
        cname.into(),
    ];
    a.extend(podman.run_flags.iter().cloned());
    a.extend(["--label".into(), format!("{TASK_LABEL}={label}")]);
    a.extend([
        "--label".into(),
        format!("{CONTAINER_LABEL}={}", def.name.clone().unwrap_or_default()),
    ]);
    for (k, v) in def.docker_labels.iter().flatten() {
        a.extend(["--label".into(), format!("{k}={v}")]);
    }
    a.extend([
        "--init".into(),
        "--init-path".into(),
        podman.init.display().to_string(),
    ]);
    a.extend(["--pull".into(), "never".into()]);
    let mode = td.network_mode.clone().unwrap_or(NetworkMode::Bridge);
    match mode {
        NetworkMode::Host => a.extend(["--network".into(), "host".into()]),
        NetworkMode::None => a.extend(["--network".into(), "none".into()]),
        _ => {
            if let Some(network) = podman.private_network() {
                a.extend(["--network".into(), network.into()]);
            }
            for p in def.port_mappings.iter().flatten() {
                let Some(cp) = p.container_port else { continue };
                let proto = p
                    .protocol
                    .as_ref()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_else(|| "tcp".into());
                let hp = match (&mode, p.host_port) {
                    (NetworkMode::Awsvpc, _) => cp.to_string(),
                    (_, Some(h)) if h > 0 => h.to_string(),
                    _ => String::new(),
                };
                a.extend(["-p".into(), format!("127.0.0.1:{hp}:{cp}/{proto}")]);
            }
            if let Some(h) = &def.hostname {
                a.extend(["--hostname".into(), h.clone()]);
            }
        }
    }
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for kv in def.environment.iter().flatten().chain(
        over.and_then(|o| o.environment.as_ref())
            .into_iter()
            .flatten(),
    ) {
        if let Some(n) = &kv.name {
            env.insert(n.clone(), kv.value.clone().unwrap_or_default());
        }
    }
    for (k, v) in env {
        a.extend(["-e".into(), format!("{k}={v}")]);
    }
    if let Some(w) = &def.working_directory {
        a.extend(["-w".into(), w.clone()]);
    }
    if let Some(u) = &def.user {
        a.extend(["-u".into(), u.clone()]);
    }
    if def.privileged == Some(true) {
        a.push("--privileged".into());
    }
    if def.readonly_root_filesystem == Some(true) {
        a.push("--read-only".into());
    }
    if let Some(ep) = def.entry_point.as_ref().filter(|e| !e.is_empty()) {
        a.extend([
            "--entrypoint".into(),
            serde_json::to_string(ep).unwrap_or_default(),
        ]);
    }
    a.push(reference.to_string());
    let command = over
        .and_then(|o| o.command.clone())
        .or_else(|| def.command.clone());
    a.extend(command.unwrap_or_default());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn podman() -> Podman {
        Podman {
            global: vec![],
            run_flags: vec!["--ulimit".into(), "nofile=1024:1024".into()],
            init: "/usr/bin/catatonit".into(),
            registries_conf: "/tmp/registries.conf".into(),
            description: String::new(),
        }
    }

    #[test]
    fn a_container_definition_becomes_podman_run() {
        let td = TaskDefinition {
            network_mode: Some(NetworkMode::Awsvpc),
            ..Default::default()
        };
        let def = ContainerDefinition {
            name: Some("web".into()),
            image: Some("x".into()),
            port_mappings: Some(vec![PortMapping {
                container_port: Some(8080),
                ..Default::default()
            }]),
            environment: Some(vec![KeyValuePair {
                name: Some("A".into()),
                value: Some("1".into()),
            }]),
            entry_point: Some(vec!["/bin/sh".into(), "-c".into()]),
            command: Some(vec!["echo hi".into()]),
            ..Default::default()
        };
        let over = ContainerOverride {
            environment: Some(vec![KeyValuePair {
                name: Some("A".into()),
                value: Some("2".into()),
            }]),
            ..Default::default()
        };
        let a = run_args(
            &podman(),
            &td,
            &def,
            Some(&over),
            "c1",
            "ns|k",
            "localhost:4566/web@sha256:ab",
        );
        let joined = a.join(" ");
        assert!(joined.contains("-p 127.0.0.1:8080:8080/tcp"), "{joined}");
        assert!(joined.contains("-e A=2"), "overrides win: {joined}");
        assert!(
            joined.contains("--label codeyard.ecs-task=ns|k"),
            "{joined}"
        );
        assert!(
            joined.contains(r#"--entrypoint ["/bin/sh","-c"]"#),
            "{joined}"
        );
        assert!(
            joined.ends_with("localhost:4566/web@sha256:ab echo hi"),
            "{joined}"
        );
        // bridge: the hostPort, or a free one when it is 0.
        let bridge = TaskDefinition {
            network_mode: Some(NetworkMode::Bridge),
            ..Default::default()
        };
        let mut d = def.clone();
        d.port_mappings = Some(vec![PortMapping {
            container_port: Some(80),
            host_port: Some(0),
            ..Default::default()
        }]);
        assert!(
            run_args(&podman(), &bridge, &d, None, "c", "l", "i")
                .join(" ")
                .contains("-p 127.0.0.1::80/tcp")
        );
        let host = TaskDefinition {
            network_mode: Some(NetworkMode::Host),
            ..Default::default()
        };
        assert!(
            run_args(&podman(), &host, &d, None, "c", "l", "i")
                .join(" ")
                .contains("--network host")
        );
    }
}
