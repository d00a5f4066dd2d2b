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
    /// The URL clients use; defaults to `http://localhost:<port>` for loopback binds.
    pub public_endpoint: Option<String>,
    pub build_concurrency: usize,
    pub strict_models: bool,
}

impl Options {
    pub fn new(data_dir: impl Into<std::path::PathBuf>) -> Self {
        Options {
            data_dir: data_dir.into(),
            bind: [127, 0, 0, 1].into(),
            port: 4566,
            auth: AuthMode::Open,
            access_keys: Vec::new(),
            public_endpoint: None,
            build_concurrency: 4,
            strict_models: false,
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
}

impl RunningServer {
    /// Stops accepting, cancels background workers and waits for in-flight requests.
    pub async fn shutdown(self) {
        self.platform.shutdown.cancel();
        let _ = self.task.await;
    }
    /// Waits until the server stops (after a shutdown signal).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Registers every service. The order of HTTP services matters: S3 comes last because it takes
/// every request no other surface claimed.
async fn register_all(registry: &mut Registry, platform: &Platform) -> anyhow::Result<()> {
    codeyard_iam::register(registry, platform).await?;
    codeyard_logs::register(registry, platform).await?;
    codeyard_events::register(registry, platform).await?;
    codeyard_codecommit::register(registry, platform).await?;
    codeyard_codebuild::register(registry, platform).await?;
    codeyard_codepipeline::register(registry, platform).await?;
    codeyard_ecr::register(registry, platform).await?;
    codeyard_s3::register(registry, platform).await?;
    Ok(())
}

/// Opens the data dir, registers services, binds and serves until `platform.shutdown`.
pub async fn start(opts: Options) -> anyhow::Result<RunningServer> {
    std::fs::create_dir_all(&opts.data_dir)?;
    let store = Arc::new(SqliteStore::open(&opts.data_dir.join("state.db")).await?);
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
    };
    let mut registry = Registry::default();
    register_all(&mut registry, &platform).await?;
    let app = Arc::new(App { registry, platform: platform.clone(), violations: Mutex::new(Vec::new()), version: VERSION });
    let router = axum::Router::new().fallback(codeyard_wire::dispatch::handle).with_state(app.clone());
    let shutdown = platform.shutdown.clone();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router).with_graceful_shutdown(async move { shutdown.cancelled().await }).await;
        if let Err(e) = served {
            tracing::error!(error = %e, "server stopped with an error");
        }
    });
    tracing::info!(%addr, %endpoint, data_dir = %opts.data_dir.display(), "codeyard listening");
    Ok(RunningServer { addr, endpoint, platform, app, task })
}

/// The README's table of supported operations, generated from the registered services.
pub async fn coverage_markdown() -> anyhow::Result<String> {
    let dir = tempfile_dir()?;
    let mut opts = Options::new(&dir);
    opts.port = 0;
    let server = start(opts).await?;
    let mut out = String::from("| service | operations implemented | not yet |\n|---|---|---|\n");
    let rows = server.app.registry.coverage();
    let mut services: Vec<&str> = rows.iter().map(|r| r.0).collect();
    services.dedup();
    for s in services {
        let yes: Vec<&str> = rows.iter().filter(|r| r.0 == s && r.2).map(|r| r.1.as_str()).collect();
        let no = rows.iter().filter(|r| r.0 == s && !r.2).count();
        out.push_str(&format!("| {s} | {} ({}) | {no} |\n", yes.join(", "), yes.len()));
    }
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("codeyard-ops-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
