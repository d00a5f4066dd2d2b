//! The codeyard server: builds the [`Platform`], registers every service on one
//! [`Registry`], and serves them on one port. `main.rs` is the CLI around it; tests start it
//! in-process with [`start`].

use codeyard_core::Hub;
use codeyard_store::SqliteStore;
use codeyard_wire::{App, Authenticator, Platform, Registry, ServerConfig};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

pub use codeyard_wire::{AccessKey, AuthMode};

pub mod client;
pub mod demo;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How to run a server.
#[derive(Clone, Debug)]
pub struct Options {
    pub data_dir: std::path::PathBuf,
    pub bind: std::net::IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    pub auth: AuthMode,
    pub access_keys: Vec<AccessKey>,
    /// How IAM decisions apply (`--iam`): enforce (the default, as on AWS), audit, off.
    pub iam: codeyard_core::IamMode,
    /// The URL clients use; defaults to `http://localhost:<port>` for loopback binds.
    pub public_endpoint: Option<String>,
    pub build_concurrency: usize,
    pub strict_models: bool,
    /// Where builds run (`--executor`): on this machine, in containers, or `auto`.
    pub executor: codeyard_codebuild::ExecutorChoice,
    /// What an acknowledged write survives: the process dying (default) or a power loss too.
    pub durability: codeyard_store::Durability,
    /// Where scheduled work reads the time: the system clock, or a test's `TestClock`.
    pub clock: codeyard_core::SharedClock,
}

impl Options {
    pub fn new(data_dir: impl Into<std::path::PathBuf>) -> Self {
        Options {
            data_dir: data_dir.into(),
            bind: [127, 0, 0, 1].into(),
            port: 4566,
            auth: AuthMode::Open,
            access_keys: Vec::new(),
            iam: codeyard_core::IamMode::Enforce,
            public_endpoint: None,
            build_concurrency: 4,
            strict_models: false,
            executor: codeyard_codebuild::ExecutorChoice::Local,
            durability: codeyard_store::Durability::Process,
            clock: std::sync::Arc::new(codeyard_core::SystemClock),
        }
    }
}

/// A server that is listening.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub endpoint: String,
    pub platform: Platform,
    pub app: Arc<App>,
    task: tokio::task::JoinHandle<()>,
    /// Where builds run, as chosen at start-up.
    pub executor: codeyard_codebuild::ExecutorStatus,
    /// Held while serving: a second server on the same data dir refuses to start.
    data_dir_lock: Option<codeyard_store::files::DataDirLock>,
}

impl RunningServer {
    /// Stops accepting, cancels background workers and waits for in-flight requests.
    pub async fn shutdown(mut self) {
        self.platform.shutdown.cancel();
        let _ = (&mut self.task).await;
        self.data_dir_lock.take();
    }
    /// Waits until the server stops (after a shutdown signal).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Registers every service. The order of HTTP services matters: S3 comes last because it takes
/// every request no other surface claimed.
async fn register_all(
    registry: &mut Registry,
    platform: &Platform,
    executor: codeyard_codebuild::ExecutorChoice,
) -> anyhow::Result<codeyard_codebuild::ExecutorStatus> {
    codeyard_iam::register(registry, platform).await?;
    codeyard_logs::register(registry, platform).await?;
    codeyard_events::register(registry, platform).await?;
    codeyard_codecommit::register(registry, platform).await?;
    let executor = codeyard_codebuild::register_with(registry, platform, executor).await?;
    codeyard_codepipeline::register(registry, platform).await?;
    codeyard_ecr::register(registry, platform).await?;
    codeyard_s3::register(registry, platform).await?;
    codeyard_kms::register(registry, platform).await?;
    codeyard_ssm::register(registry, platform).await?;
    codeyard_secretsmanager::register(registry, platform).await?;
    codeyard_ecs::register(registry, platform).await?;
    Ok(executor)
}

/// `/_codeyard/health` with where builds run added (`builds`: executor, detail).
async fn health_with_builds(
    app: Arc<App>,
    builds: codeyard_codebuild::ExecutorStatus,
    req: axum::extract::Request,
) -> axum::response::Response {
    let resp = codeyard_wire::dispatch::handle(axum::extract::State(app), req).await;
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(mut v) if v.is_object() => {
            v["builds"] = serde_json::json!(builds);
            parts.headers.remove(http::header::CONTENT_LENGTH);
            axum::body::Body::from(v.to_string())
        }
        _ => axum::body::Body::from(bytes),
    };
    axum::response::Response::from_parts(parts, body)
}

/// Opens the data dir, registers services, binds and serves until `platform.shutdown`.
pub async fn start(mut opts: Options) -> anyhow::Result<RunningServer> {
    std::fs::create_dir_all(&opts.data_dir)?;
    // Absolute, because builds and git children run in other working directories
    // (`--data-dir ./cy` would otherwise name a build's script relative to the build dir).
    opts.data_dir = std::fs::canonicalize(&opts.data_dir)?;
    let data_dir_lock = codeyard_store::files::DataDirLock::acquire(&opts.data_dir)?;
    codeyard_store::files::set_durability(opts.durability);
    // Under the data-dir lock every queue lease in the store is a dead server's: hand them back.
    let store_options = codeyard_store::StoreOptions { durability: opts.durability, reclaim_leases: true };
    let store = Arc::new(SqliteStore::open_with(&opts.data_dir.join("state.db"), store_options).await?);
    let listener = tokio::net::TcpListener::bind((opts.bind, opts.port)).await?;
    let addr = listener.local_addr()?;
    let endpoint = opts.public_endpoint.clone().unwrap_or_else(|| {
        if opts.bind.is_loopback() || opts.bind.is_unspecified() {
            format!("http://localhost:{}", addr.port())
        } else {
            format!("http://{addr}")
        }
    });
    let config = Arc::new(ServerConfig {
        data_dir: opts.data_dir.clone(),
        public_endpoint: endpoint.clone(),
        auth: opts.auth,
        access_keys: opts.access_keys.clone(),
        iam: opts.iam,
        build_concurrency: opts.build_concurrency.max(1),
        strict_models: opts.strict_models,
    });
    let hub = Arc::new(Hub::default());
    let platform = Platform {
        store,
        hub: hub.clone(),
        auth: Arc::new(Authenticator::new(&config, hub)),
        config,
        shutdown: CancellationToken::new(),
        clock: opts.clock.clone(),
    };
    let mut registry = Registry::default();
    let executor = register_all(&mut registry, &platform, opts.executor).await?;
    let hosts = codeyard_wire::HostCheck::new(opts.bind, &endpoint);
    let app = Arc::new(App { registry, platform: platform.clone(), violations: Mutex::new(Vec::new()), version: VERSION, hosts });
    let health = {
        let (app, builds) = (app.clone(), executor.clone());
        move |req: axum::extract::Request| health_with_builds(app.clone(), builds.clone(), req)
    };
    let router = axum::Router::new()
        .route("/_codeyard/health", axum::routing::any(health))
        // The web console: `GET /` from a browser and `/_codeyard/console/...`.
        .merge(codeyard_console::router(app.clone()))
        // `codeyard export terraform`: signed like an API call, answered as the signing identity.
        .route(codeyard_export::ROUTE, axum::routing::get(export_terraform))
        .fallback(codeyard_wire::dispatch::handle)
        .with_state(app.clone());
    let shutdown = platform.shutdown.clone();
    let task = tokio::spawn(async move {
        // With the peer address: the wire layer hands it on as aws:SourceIp.
        let served = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(async move { shutdown.cancelled().await }).await;
        if let Err(e) = served {
            tracing::error!(error = %e, "server stopped with an error");
        }
    });
    tracing::info!(%addr, %endpoint, data_dir = %opts.data_dir.display(), "codeyard listening");
    Ok(RunningServer { addr, endpoint, platform, app, task, data_dir_lock: Some(data_dir_lock), executor })
}

/// `GET /_codeyard/export/terraform?pipeline=NAME` (or `?all=1`): [`codeyard_export::terraform`]
/// for the signing identity; the `endpoint` variable defaults to the URL the client used.
async fn export_terraform(axum::extract::State(app): axum::extract::State<Arc<App>>, req: axum::extract::Request) -> axum::response::Response {
    use codeyard_wire::dispatch::json_error;
    let (parts, _) = req.into_parts();
    let ctx = match app.authenticate_request(&parts, b"").await {
        Ok(ctx) => ctx,
        Err(e) => return json_error(&e),
    };
    let params: std::collections::BTreeMap<String, String> = serde_urlencoded::from_str(parts.uri.query().unwrap_or("")).unwrap_or_default();
    let selection = match (params.get("pipeline"), params.get("all").map(String::as_str)) {
        (Some(name), None) if !name.is_empty() => codeyard_export::Selection::Pipeline(name.clone()),
        (None, Some("1" | "true")) => codeyard_export::Selection::All,
        _ => return json_error(&codeyard_core::AwsError::validation("name one pipeline (?pipeline=NAME) or ask for every resource (?all=1)")),
    };
    match codeyard_export::terraform(&app, &ctx, selection, &ctx.endpoint).await {
        Ok(hcl) => axum::response::Response::builder()
            .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(axum::body::Body::from(hcl))
            .expect("response builds"),
        Err(e) => json_error(&e),
    }
}

/// (model, operation, implemented?) for every operation of every registered API, from a
/// throwaway server.
async fn registered_coverage() -> anyhow::Result<Vec<(&'static str, String, bool)>> {
    let dir = tempfile_dir()?;
    let mut opts = Options::new(&dir);
    opts.port = 0;
    let server = start(opts).await?;
    let rows = server.app.registry.coverage();
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rows)
}

/// The README's table of supported operations, generated from the registered services.
pub async fn coverage_markdown() -> anyhow::Result<String> {
    let mut out = String::from("| service | operations implemented | not yet |\n|---|---|---|\n");
    let rows = registered_coverage().await?;
    let mut services: Vec<&str> = rows.iter().map(|r| r.0).collect();
    services.dedup();
    for s in services {
        let yes: Vec<&str> = rows.iter().filter(|r| r.0 == s && r.2).map(|r| r.1.as_str()).collect();
        let no = rows.iter().filter(|r| r.0 == s && !r.2).count();
        out.push_str(&format!("| {s} | {} ({}) | {no} |\n", yes.join(", "), yes.len()));
    }
    Ok(out)
}

/// `codeyard ops --iam`: every implemented operation with the IAM actions and resource ARN
/// templates that authorize it (AWS's Service Authorization Reference, via `codeyard_api`).
pub async fn iam_actions_markdown() -> anyhow::Result<String> {
    let mut out = String::from("| service | operation | IAM actions | resources |\n|---|---|---|---|\n");
    for (model, op, _) in registered_coverage().await?.into_iter().filter(|r| r.2) {
        let actions = codeyard_api::iam_actions(model, &op).unwrap_or_default();
        let names: Vec<&str> = actions.iter().map(|a| a.action).collect();
        let arns: Vec<&str> = actions.iter().flat_map(|a| a.resources.iter().map(|r| r.arn)).collect();
        let arns = if arns.is_empty() { "*".to_string() } else { arns.join(", ") };
        out.push_str(&format!("| {model} | {op} | {} | {arns} |\n", names.join(", ")));
    }
    Ok(out)
}

/// Implemented operations (`model:Operation`) that have no IAM action in the generated
/// tables of `codeyard_api` (from AWS's Service Authorization Reference): IAM could not
/// authorize them, so a test requires this to be empty.
pub async fn implemented_operations_without_iam_action() -> anyhow::Result<Vec<String>> {
    let rows = registered_coverage().await?;
    let missing = rows
        .into_iter()
        .filter(|(model, op, implemented)| *implemented && codeyard_api::iam_actions(model, op).is_none_or(|a| a.is_empty()))
        .map(|(model, op, _)| format!("{model}:{op}"))
        .collect();
    Ok(missing)
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("codeyard-ops-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
