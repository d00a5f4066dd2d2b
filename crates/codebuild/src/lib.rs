//! codeyard-codebuild: CodeBuild projects and builds that really run their buildspec.
//!
//! # Design
//!
//! * [`service`] implements the generated `CodeBuildApi` trait (awsJson `CodeBuild_20161006.*`); [`project`] keeps
//!   projects in the model's own shape so every field round-trips (Terraform plans stay empty).
//! * [`runner::Engine`] owns the build lifecycle: a build is stored (SUBMITTED, QUEUED), waits
//!   for one of `build_concurrency` slots, then walks AWS's phases. Every transition is one
//!   store commit carrying its EventBridge events (Build State Change / Build Phase Change).
//!   `runner::phases` holds PROVISIONING..FINALIZING; [`overrides`] merges a project with a
//!   typed StartBuildInput (validated against the model for EventBridge targets too); [`io`]
//!   is the leaf (store namespaces, scratch files, uploads) the I/O modules share, so none of
//!   them depends on the runner. [`error::CodeBuildError`] is mapped to AWS codes once.
//! * [`buildspec`] parses 0.1 / 0.2 leniently (YAML 1.1 booleans, numeric versions);
//!   [`script`] turns a phase into one bash script with AWS's semantics (one shell per phase,
//!   first failing command named with its exit status, `finally`, variables kept across phases).
//! * [`executor`] is where commands run: the [`executor::Executor`] trait (its doc comment is
//!   the contract) with a conformance suite, and the `local` backend (a process group per build
//!   under `<data_dir>/codebuild/builds/<uuid>`, killed whole on stop or timeout).
//! * [`container`] is the `container` backend (one podman container of the project's image per
//!   build, see its doc comment); [`images`] resolves `environment.image` (codeyard's ECR in
//!   any URI form, the curated-name map, anything else as given); [`credentials`] serves the
//!   container credentials endpoint builds in containers take their role credentials from;
//!   [`standard`] builds the stand-in for AWS's curated images. [`register_with`] picks the
//!   executor (`--executor local|container|auto`); podman is probed at the first container
//!   build ([`container::LazyContainerExecutor`]), not at start-up.
//! * [`index`]: the build id indexes ListBuilds and ListBuildsForProject page through, written
//!   in the commit that stores a new build.
//! * [`source`], [`upload`], [`cache`], [`reports`], [`environment`] are the build's I/O;
//!   [`logs`] streams output to CloudWatch Logs and implements `codeyard logs`.
//! * [`hubs`] offers builds to CodePipeline (`BuildRunner`) and projects as EventBridge targets,
//!   each call authorized for the caller it is given (codebuild:StartBuild, BatchGetBuilds,
//!   StopBuild on the project).
//! * [`access`]: a build acts as its service role's session `AWSCodeBuild-<uuid>` (logs, source
//!   download, artifacts, cache, ECR pulls with SERVICE_ROLE credentials); CodeBuild's trust
//!   check ("CodeBuild is not authorized to perform: sts:AssumeRole on ...") at CreateProject,
//!   UpdateProject and PROVISIONING. A denial fails the build in AWS's phase: PROVISIONING
//!   (log stream: ACCESS_DENIED; image pull), DOWNLOAD_SOURCE, UPLOAD_ARTIFACTS.
//!
//! A build that was running when the server died is marked FAULT at start-up ("codeyard
//! restarted during the build") and its orphaned processes are killed.

pub mod access;
pub mod artifacts;
pub mod build;
pub mod buildspec;
pub mod cache;
pub mod container;
pub mod credentials;
pub mod environment;
pub mod error;
pub mod executor;
pub mod hubs;
pub mod images;
pub mod index;
pub mod io;
pub mod logs;
pub mod overrides;
pub mod project;
pub mod reports;
pub mod runner;
pub mod runtimes;
pub mod script;
pub mod secrets;
pub mod service;
pub mod source;
pub mod standard;
pub mod upload;

pub use logs::cli_logs;

use codeyard_wire::{Platform, Registry};
use codeyard_podman::storage_options;
use std::sync::Arc;

/// Where builds run: `codeyard serve --executor` / `CODEYARD_EXECUTOR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutorChoice {
    /// On this machine, with its tools.
    Local,
    /// In a podman container of the project's image; never on the host.
    Container,
    /// Containers where podman works; the host where it does not, or for a curated image that
    /// cannot be had (each such build's log says so).
    Auto,
}

impl std::str::FromStr for ExecutorChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(ExecutorChoice::Local),
            "container" => Ok(ExecutorChoice::Container),
            "auto" => Ok(ExecutorChoice::Auto),
            other => Err(format!(
                "unknown executor '{other}' (auto, container or local)"
            )),
        }
    }
}

/// Where builds run, for the log and `/_codeyard/health` (`builds`): set at start-up and
/// updated when the container executor probes podman (at the first container build). Clones
/// share one state; it serializes as the current [`ExecutorState`].
#[derive(Clone, Debug)]
pub struct ExecutorStatus(Arc<std::sync::RwLock<ExecutorState>>);

#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorState {
    /// What was asked for (`auto`, `container`, `local`).
    pub requested: String,
    /// What builds use (`container` or `local`; `auto` until podman is probed).
    pub executor: String,
    /// The podman flag set chosen, why containers are not used, or that podman is not probed
    /// yet.
    pub detail: String,
    /// Global podman options of the build containers' storage (to inspect them by hand).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub podman_options: Option<Vec<String>>,
}

impl ExecutorStatus {
    pub fn new(requested: &str, executor: &str, detail: &str, podman_options: Option<Vec<String>>) -> Self {
        ExecutorStatus(Arc::new(std::sync::RwLock::new(ExecutorState {
            requested: requested.to_string(),
            executor: executor.to_string(),
            detail: detail.to_string(),
            podman_options,
        })))
    }

    /// The state now.
    pub fn current(&self) -> ExecutorState {
        self.0.read().unwrap().clone()
    }

    pub fn set(&self, executor: &str, detail: &str, podman_options: Option<Vec<String>>) {
        let mut s = self.0.write().unwrap();
        s.executor = executor.to_string();
        s.detail = detail.to_string();
        s.podman_options = podman_options;
    }
}

impl serde::Serialize for ExecutorStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.current().serialize(s)
    }
}

/// Where the container executor keeps its storage.
pub fn containers_dir(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("codebuild").join("containers")
}

/// Registers the CodeBuild API with the `local` executor (see [`register_with`]).
pub async fn register(registry: &mut Registry, platform: &Platform) -> anyhow::Result<()> {
    register_with(registry, platform, ExecutorChoice::Local)
        .await
        .map(|_| ())
}

/// Registers the CodeBuild API, the pipeline build runner, the EventBridge target and the
/// container credentials endpoint; picks the executor; ends builds a previous run of the
/// server left in progress (and removes their containers).
pub async fn register_with(
    registry: &mut Registry,
    platform: &Platform,
    choice: ExecutorChoice,
) -> anyhow::Result<ExecutorStatus> {
    let requested = format!("{choice:?}").to_lowercase();
    let local = |detail: String| ExecutorStatus::new(&requested, "local", &detail, None);
    let (executor, status, note): (Arc<dyn executor::Executor>, ExecutorStatus, Option<String>) =
        match choice {
            ExecutorChoice::Local => (
                Arc::new(executor::LocalExecutor),
                local("builds run on this machine".into()),
                None,
            ),
            ExecutorChoice::Container | ExecutorChoice::Auto => {
                let dir = containers_dir(&platform.config.data_dir);
                std::fs::create_dir_all(&dir)?;
                match container::Podman::installed().await {
                    Ok(version) => {
                        let status = ExecutorStatus::new(
                            &requested,
                            &requested,
                            &format!("{version}; not probed yet (the first container build probes podman)"),
                            Some(storage_options(&dir)),
                        );
                        let exec = container::LazyContainerExecutor::new(
                            dir,
                            Arc::new(images::ImageResolver::new(
                                &platform.config.public_endpoint,
                                &platform.config.data_dir,
                            )),
                            choice == ExecutorChoice::Auto,
                            vec![platform.config.data_dir.join("ecr").join("containers")],
                            status.clone(),
                        );
                        exec.remove_leftovers().await;
                        (Arc::new(exec), status, None)
                    }
                    Err(why) if choice == ExecutorChoice::Container => {
                        anyhow::bail!("--executor container: {why}")
                    }
                    Err(why) => (
                        Arc::new(executor::LocalExecutor),
                        local(format!("containers unavailable, builds run on this machine: {why}")),
                        Some(format!(
                            "Warning: executor auto: {why}; this build runs on the host"
                        )),
                    ),
                }
            }
        };
    let shown = status.current();
    tracing::info!(executor = %shown.executor, requested = %shown.requested, "codebuild executor: {}", shown.detail);
    let engine = runner::Engine::with_note(platform.clone(), executor, note);
    engine.recover().await?;
    registry.add_http(Arc::new(credentials::Service(engine.credentials.clone())));
    registry.add_aws(codeyard_api::codebuild::service(service::CodeBuildService {
        engine: engine.clone(),
    }));
    platform.hub.set_builds(Arc::new(hubs::PipelineBuilds {
        engine: engine.clone(),
    }));
    platform.hub.register_target(
        "codebuild",
        Arc::new(hubs::ProjectTarget {
            engine: engine.clone(),
        }),
    );
    let shutdown = platform.shutdown.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        engine.shutdown();
    });
    Ok(status)
}
