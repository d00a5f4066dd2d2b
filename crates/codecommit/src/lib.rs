//! codeyard-codecommit: CodeCommit as a real git host.
//!
//! * **Repositories** are bare git repositories under
//!   `<data_dir>/codecommit/<account>/<region>/<repository id>.git` (by id, so a rename is a
//!   store update only); their metadata (name, id, description, default branch, tags, dates) is
//!   a store document ([`repos`]).
//! * **Git over smart HTTP** ([`http`]): `/v1/repos/<name>/...` is served by git's own
//!   `upload-pack` / `receive-pack --stateless-rpc`, with request and response bodies streamed
//!   through pipes (a push of any size holds a few buffers in memory), protocol v2 passed
//!   through `Git-Protocol`, gzip request bodies decoded on the fly. Authentication is what the
//!   aws CLI's credential helper sends: HTTP Basic with the access key id as user name and
//!   `<amz date>Z<SigV4 signature>` over `GIT\n<path>\n\nhost:<host>\n\nhost\n` as password
//!   (see awscli/customizations/codecommit.py). Open mode accepts any credentials; enforce mode
//!   verifies the signature with the key's secret.
//! * **The API** ([`api`]): the generated `codeyard_api::codecommit::CodeCommitApi` trait,
//!   a thin adapter over [`repos`] and [`content`] (domain errors: [`error::CodeCommitError`],
//!   given AWS's codes at that edge), which drive git
//!   plumbing (`ls-tree`, `cat-file`, `diff-tree`, `hash-object`, a temporary index,
//!   `commit-tree`, and `update-ref <new> <old>` as the compare-and-swap that makes
//!   ParentCommitIdOutdatedException and concurrent pushes exact).
//! * **Events** ([`events`]): every accepted ref update becomes exactly one "CodeCommit
//!   Repository State Change" event, committed to the store's event outbox together with a
//!   per-repository record of the published ref values; start-up reconciles that record with
//!   the refs on disk so a crash between git and the store loses no event and repeats none.
//! * **Crash recovery** ([`recovery`]): git children die with the server; at start-up stale
//!   ref locks and unfinished pushes are removed, refs naming missing objects are rolled back,
//!   then every ref is reconciled with the store's record (one event per unpublished change),
//!   each repair logged. A kill -9 at any instant is completed or rolled back.
//! * **Hub** ([`hub`]): [`codeyard_core::hub::GitRepositories`] for pipelines and builds.

pub mod api;
pub mod content;
pub mod error;
pub mod events;
pub mod git;
pub mod http;
pub mod hub;
pub mod recovery;
pub mod repos;

use codeyard_wire::{Platform, Registry};
use std::sync::Arc;

/// The service's shared state: the repositories and the event publisher.
pub struct CodeCommit {
    pub repos: repos::Repos,
    pub events: events::Publisher,
    pub platform: Platform,
}

/// Registers the API, the git HTTP surface and the hub interface; cleans up after a crash
/// (orphan directories, unpublished ref changes) before serving.
pub async fn register(registry: &mut Registry, platform: &Platform) -> anyhow::Result<()> {
    let repos = repos::Repos {
        store: platform.store.clone(),
        data_dir: platform.config.data_dir.clone(),
    };
    let service = Arc::new(CodeCommit {
        events: events::Publisher::new(repos.clone()),
        repos,
        platform: platform.clone(),
    });
    service
        .repos
        .remove_orphans()
        .await
        .map_err(|e| anyhow::anyhow!("codecommit start-up: {e}"))?;
    recovery::repair_all(&service.repos)
        .await
        .map_err(|e| anyhow::anyhow!("codecommit start-up: {e}"))?;
    service
        .events
        .reconcile_all()
        .await
        .map_err(|e| anyhow::anyhow!("codecommit start-up: {e}"))?;
    registry.add_aws(codeyard_api::codecommit::service(api::CodeCommitService(service.clone())));
    registry.add_http(Arc::new(http::GitHttp(service.clone())));
    platform.hub.set_git(Arc::new(hub::Git(service)));
    Ok(())
}
