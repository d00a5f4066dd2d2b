//! codeyard-codepipeline: AWS CodePipeline that really runs its pipelines.
//!
//! * [`api`]: the awsJson API (`CodePipeline_20150709.*`): the generated `CodePipelineApi`
//!   trait, a thin adapter over the domain.
//! * [`model`]: AWS's pipeline declaration (round-tripped unchanged) and the stored documents:
//!   pipelines (`codepipeline/<account>/<region>/pipelines`) and executions (`.../executions`,
//!   keyed `<pipeline>/<execution id>`, each carrying the declaration it started with, its
//!   stage progress and every action run).
//! * [`validate`]: CreatePipeline's structural checks (InvalidStructureException and friends);
//!   [`action_types`]: the providers codeyard runs and their configuration keys.
//! * [`engine`]: the scheduler, driven by the durable queue `codepipeline.work` (execution
//!   modes SUPERSEDED / QUEUED / PARALLEL, stage transitions, runOrder groups, stop, retry);
//!   its decisions are plain functions over execution documents in `engine::progress`.
//! * [`actions`]: the providers (CodeCommit and S3 sources, CodeBuild, S3 deploy, manual
//!   approval) written against the hub's interfaces and [`actions::ActionHost`], the narrow
//!   view of the engine they need (the engine implements it; actions never name the engine).
//! * [`target`]: the pipeline as an EventBridge target; [`poller`]: PollForSourceChanges
//!   (started beside the engine by [`register`], so the engine does not know it).
//! * [`errors`]: the AWS errors every module shares, and the one rule for store errors (a
//!   conflict is the operation's own error, anything else a logged 500 InternalFailure).
//!
//! CodePipeline acts as the pipeline's `roleArn` (an action's own `roleArn` first) in every
//! call it makes for an execution: [`actions::role_context`] is the session (named with the
//! execution's start in epoch milliseconds, as CodePipeline names its sessions), so IAM decides
//! each artifact get/put, CodeCommit and CodeBuild call and S3 deploy, and a denial fails the
//! action with the message CodePipeline gives ("Error calling startBuild: User: ... is not
//! authorized to perform: codebuild:StartBuild ..."). CreatePipeline and UpdatePipeline check
//! iam:PassRole of every role the declaration names; the pipeline as an EventBridge target
//! checks codepipeline:StartPipelineExecution for the target's role.
//!
//! Module dependencies run one way: api -> engine -> actions -> model; target, poller and
//! doctor -> engine; everything -> errors, model.
//! * [`doctor`]: the "nothing will ever start this pipeline" check (server log and `codeyard doctor`).
//! * [`events`]: the three CodePipeline state-change events on the default bus.

pub mod action_types;
pub mod actions;
pub mod api;
pub mod doctor;
pub mod engine;
pub mod errors;
pub mod events;
pub mod model;
pub mod poller;
pub mod target;
pub mod validate;
pub mod variables;

pub use doctor::{cli_doctor, doctor_report};

use codeyard_wire::{Platform, Registry};
use std::sync::Arc;

/// Registers the API, the EventBridge target and the engine's workers.
pub async fn register(registry: &mut Registry, platform: &Platform) -> anyhow::Result<()> {
    let engine = engine::Engine::new(platform.clone());
    registry.add_aws(codeyard_api::codepipeline::service(api::CodePipelineService {
        engine: engine.clone(),
    }));
    platform.hub.register_target(
        "codepipeline",
        Arc::new(target::PipelineTarget {
            engine: engine.clone(),
        }),
    );
    engine.spawn_workers();
    // PollForSourceChanges lives beside the engine, not in it: the poller starts executions
    // through the engine, and the engine knows nothing of the poller.
    tokio::spawn(poller::run(engine));
    Ok(())
}

#[cfg(test)]
mod tests;
