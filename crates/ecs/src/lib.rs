//! codeyard-ecs: Amazon ECS (awsJson1.1) whose tasks really run as podman containers.
//!
//! * [`records`]: namespaces, ARNs and reference forms; the stored records are the API's own
//!   typed shapes.
//! * [`domain`]: clusters, task definitions (revisions, ACTIVE/INACTIVE), services (desired
//!   count, deployments and their rollout state, events) and tasks over the state store.
//! * [`api`]: the generated `codeyard_api::ecs::EcsApi` trait over [`domain::Ecs`];
//!   [`errors::EcsError`] gets ECS's error codes there.
//! * [`scheduler`]: keeps services at their desired count, rolls deployments, launches and
//!   stops tasks; [`runtime`]: one podman container per container definition, ports on
//!   127.0.0.1, logs to CloudWatch Logs, exit codes and stop reasons on the task.
//! * [`deploy`]: the hub's [`codeyard_core::hub::ServiceDeployer`] for CodePipeline's ECS deploy
//!   action.

pub mod api;
pub mod deploy;
pub mod domain;
pub mod errors;
pub mod records;
pub mod runtime;
pub mod scheduler;

use codeyard_wire::{Platform, Registry};
use std::sync::Arc;

pub async fn register(registry: &mut Registry, platform: &Platform) -> anyhow::Result<()> {
    let ecs = domain::Ecs {
        store: platform.store.clone(),
        wake: Arc::new(tokio::sync::Notify::new()),
    };
    registry.add_aws(codeyard_api::ecs::service(api::EcsService {
        ecs: ecs.clone(),
    }));
    platform
        .hub
        .set_service_deployer(Arc::new(deploy::Deployer {
            ecs: ecs.clone(),
            hub: platform.hub.clone(),
        }));
    let dir = platform.config.data_dir.join("ecs").join("containers");
    std::fs::create_dir_all(&dir)?;
    let rt = Arc::new(runtime::Runtime {
        podman: Default::default(),
        containers_dir: dir,
        ecs,
        hub: platform.hub.clone(),
        endpoint: platform.config.public_endpoint.clone(),
        shutdown: platform.shutdown.clone(),
        launching: Default::default(),
        stopping: Default::default(),
        tmpdir: Default::default(),
        shipping: Default::default(),
        prefetched: Default::default(),
    });
    tokio::spawn(scheduler::run(rt));
    Ok(())
}
