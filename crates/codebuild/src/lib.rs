//! codeyard-codebuild: CodeBuild projects and builds that really run their buildspec.
//!
//! # Design
//!
//! * [`service`] is the API adapter (awsJson `CodeBuild_20161006.*`); [`project`] keeps
//!   projects in the model's own shape so every field round-trips (Terraform plans stay empty).
//! * [`runner::Engine`] owns the build lifecycle: a build is stored (SUBMITTED, QUEUED), waits
//!   for one of `build_concurrency` slots, then walks AWS's phases. Every transition is one
//!   store commit carrying its EventBridge events (Build State Change / Build Phase Change).
//! * [`buildspec`] parses 0.1 / 0.2 leniently (YAML 1.1 booleans, numeric versions);
//!   [`script`] turns a phase into one bash script with AWS's semantics (one shell per phase,
//!   first failing command named with its exit status, `finally`, variables kept across phases).
//! * [`executor`] is where commands run: the [`executor::Executor`] trait (its doc comment is
//!   the contract) with a conformance suite, and the `local` backend (a process group per build
//!   under `<data_dir>/codebuild/builds/<uuid>`, killed whole on stop or timeout).
//! * [`source`], [`upload`], [`cache`], [`reports`], [`environment`] are the build's I/O;
//!   [`logs`] streams output to CloudWatch Logs and implements `codeyard logs`.
//! * [`hubs`] offers builds to CodePipeline (`BuildRunner`) and projects as EventBridge targets.
//!
//! A build that was running when the server died is marked FAULT at start-up ("codeyard
//! restarted during the build") and its orphaned processes are killed.

pub mod artifacts;
pub mod build;
pub mod buildspec;
pub mod cache;
pub mod environment;
pub mod executor;
pub mod hubs;
pub mod logs;
pub mod project;
pub mod reports;
pub mod runner;
pub mod script;
pub mod service;
pub mod source;
pub mod upload;

pub use logs::cli_logs;

use codeyard_wire::{Platform, Registry};
use std::sync::Arc;

/// Registers the CodeBuild API, the pipeline build runner, the EventBridge target, and ends
/// builds a previous run of the server left in progress.
pub async fn register(registry: &mut Registry, platform: &Platform) -> anyhow::Result<()> {
    let engine = runner::Engine::new(platform.clone(), Arc::new(executor::LocalExecutor));
    engine.recover().await?;
    registry.add_aws(Arc::new(service::CodeBuildService {
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
    Ok(())
}
