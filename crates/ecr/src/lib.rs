//! codeyard-ecr: Amazon ECR and the OCI registry behind it, as one store.
//!
//! * [`api`]: the ECR API (awsJson1.1): the generated `codeyard_api::ecr::EcrApi` trait as a
//!   thin adapter over [`domain::Ecr`]; [`domain::EcrError`] gets ECR's error codes there.
//! * [`distribution`]: the OCI Distribution API under `/v2/` on the shared port, which docker,
//!   podman, buildah and skopeo push to and pull from. `repositoryUri` is
//!   `<host:port>/<name>`, so what ECR describes is what clients use, as is.
//! * [`domain`]: repositories, images, tags, layers, uploads and tokens in the state store;
//!   pushes through either door are the same images, raise "ECR Image Action" events (in the
//!   same commit) and run the repository's lifecycle policy ([`lifecycle`]).
//! * [`blobs`]: content-addressed bytes via `object_store` under `<data_dir>/registry`, shared
//!   by every repository; [`domain::Ecr::collect_garbage`] (hourly, and
//!   `POST /_codeyard/ecr/gc?graceSeconds=N`) deletes what nothing references.
//! * [`buildenv`]: the `docker` builds get (podman with vfs storage and chroot isolation, AWS
//!   registry names mapped to codeyard's registry).

pub mod api;
pub mod authz;
pub mod blobs;
pub mod buildenv;
pub mod distribution;
pub mod hub_images;
pub mod domain;
pub mod lifecycle;
pub mod manifest;

use codeyard_wire::{Platform, Registry};
use std::sync::Arc;

/// How often unreferenced blobs are collected, and how old they must be.
const GC_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
const GC_GRACE_HOURS: i64 = 1;

/// Registers this crate's services and background workers.
pub async fn register(registry: &mut Registry, platform: &Platform) -> anyhow::Result<()> {
    let blobs = Arc::new(blobs::BlobStore::open(
        platform.config.data_dir.join("registry"),
    )?);
    let ecr = Arc::new(domain::Ecr {
        store: platform.store.clone(),
        blobs,
    });
    registry.add_aws(codeyard_api::ecr::service(api::EcrService { ecr: ecr.clone() }));
    registry.add_http(Arc::new(distribution::Distribution {
        ecr: ecr.clone(),
        auth: platform.config.auth,
        hub: platform.hub.clone(),
    }));

    let registry_host = platform
        .internal_context(
            codeyard_core::DEFAULT_ACCOUNT,
            codeyard_core::DEFAULT_REGION,
        )
        .host()
        .to_string();
    platform
        .hub
        .add_build_environment(Arc::new(buildenv::PodmanDocker {
            registry_host,
            containers_dir: platform.config.data_dir.join("ecr").join("containers"),
        }));

    platform.hub.set_images(Arc::new(hub_images::RegistryImages { ecr: ecr.clone(), hub: platform.hub.clone() }));
    let shutdown = platform.shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(GC_EVERY) => {}
            }
            match ecr
                .collect_garbage(chrono::Duration::hours(GC_GRACE_HOURS))
                .await
            {
                Ok(n) if n > 0 => tracing::info!(blobs = n, "registry garbage collected"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "registry garbage collection failed"),
            }
        }
    });
    Ok(())
}
