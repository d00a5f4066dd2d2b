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
//!   executor (`--executor local|container|auto`).
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

/// What was chosen at start-up, for the log and `/_codeyard/health`.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorStatus {
    /// What was asked for (`auto`, `container`, `local`).
    pub requested: String,
    /// What builds use (`container` or `local`).
    pub executor: String,
    /// The podman flag set chosen, or why containers are not used.
    pub detail: String,
    /// Global podman options of the build containers' storage (to inspect them by hand).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub podman_options: Option<Vec<String>>,
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
    let (executor, status, note): (Arc<dyn executor::Executor>, ExecutorStatus, Option<String>) =
        match choice {
            ExecutorChoice::Local => (
                Arc::new(executor::LocalExecutor),
                ExecutorStatus {
                    requested,
                    executor: "local".into(),
                    detail: "builds run on this machine".into(),
                    podman_options: None,
                },
                None,
            ),
            ExecutorChoice::Container | ExecutorChoice::Auto => {
                let dir = containers_dir(&platform.config.data_dir);
                std::fs::create_dir_all(&dir)?;
                match container::Podman::detect(&dir).await {
                    Ok(podman) => {
                        match podman.remove_labelled(container::BUILD_LABEL).await {
                            Ok(0) => {}
                            Ok(n) => {
                                tracing::warn!("removed {n} build containers an earlier run left")
                            }
                            Err(e) => tracing::warn!("cannot list earlier build containers: {e}"),
                        }
                        let status = ExecutorStatus {
                            requested,
                            executor: "container".into(),
                            detail: podman.description.clone(),
                            podman_options: Some(podman.global.clone()),
                        };
                        let exec = container::ContainerExecutor {
                            podman: Arc::new(podman),
                            images: Arc::new(images::ImageResolver::new(
                                &platform.config.public_endpoint,
                                &platform.config.data_dir,
                            )),
                            host_fallback: choice == ExecutorChoice::Auto,
                            extra_mounts: vec![],
                            privileged_mounts: vec![
                                platform.config.data_dir.join("ecr").join("containers"),
                            ],
                        };
                        (Arc::new(exec), status, None)
                    }
                    Err(why) if choice == ExecutorChoice::Container => {
                        anyhow::bail!("--executor container: {why}")
                    }
                    Err(why) => (
                        Arc::new(executor::LocalExecutor),
                        ExecutorStatus {
                            requested,
                            executor: "local".into(),
                            detail: format!(
                                "containers unavailable, builds run on this machine: {why}"
                            ),
                            podman_options: None,
                        },
                        Some(format!(
                            "Warning: executor auto: {why}; this build runs on the host"
                        )),
                    ),
                }
            }
        };
    tracing::info!(executor = %status.executor, requested = %status.requested, "codebuild executor: {}", status.detail);
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
