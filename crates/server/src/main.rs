//! The `codeyard` command line.

use clap::{Parser, Subcommand};
use codeyard_server::{AccessKey, AuthMode, Options};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "codeyard", version, about = "The AWS DevOps toolchain on your own machine, really running.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CODEYARD_BIND", default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "CODEYARD_PORT", default_value_t = 4566)]
    port: u16,
    /// Where state, repositories, objects and builds live (default: ~/.local/share/codeyard).
    #[arg(long, env = "CODEYARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// `open` accepts any access key; `enforce` verifies every SigV4 signature.
    #[arg(long, env = "CODEYARD_AUTH", default_value = "open", value_parser = ["open", "enforce"])]
    auth: String,
    /// Access keys for `--auth enforce`: `ID:SECRET[:ACCOUNT]`, comma separated.
    #[arg(long, env = "CODEYARD_ACCESS_KEYS", default_value = "")]
    access_keys: String,
    /// How IAM policies apply: `enforce` refuses what AWS would refuse; `audit` allows it but
    /// records each would-be denial (`codeyard doctor` lists them); `off` evaluates nothing.
    #[arg(long, env = "CODEYARD_IAM", default_value = "enforce", value_parser = ["enforce", "audit", "off"])]
    iam: String,
    /// The URL clients use to reach the server (default http://localhost:<port>).
    #[arg(long, env = "CODEYARD_PUBLIC_ENDPOINT")]
    public_endpoint: Option<String>,
    /// Builds that run at once; more wait in QUEUED.
    #[arg(long, env = "CODEYARD_BUILD_CONCURRENCY", default_value_t = 4)]
    build_concurrency: usize,
    /// Check every API answer against AWS's models and count violations (for tests).
    #[arg(long, env = "CODEYARD_STRICT_MODELS")]
    strict_models: bool,
    /// What an acknowledged write survives: `process` (the server being killed at any
    /// instant) or `power` (a power loss too: every commit and object is fsynced first).
    #[arg(long, env = "CODEYARD_DURABILITY", default_value = "process", value_parser = ["process", "power"])]
    durability: String,
    /// Where builds run: `local` (this machine), `container` (a podman container of the
    /// project's image, never the host) or `auto` (containers where podman works, else the
    /// host, saying so in the build log).
    #[arg(long, env = "CODEYARD_EXECUTOR", default_value = "auto", value_parser = ["auto", "container", "local"])]
    executor: String,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every API on one port until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Print the table of supported operations per service (Markdown).
    Ops {
        /// Instead, list each implemented operation with its IAM actions and resource ARNs.
        #[arg(long)]
        iam: bool,
    },
    /// Run the AWS DevOps demonstration: create the seed topology, push the sample service,
    /// follow the pipeline live. Exit code 0 when the pipeline succeeded.
    Demo {
        /// Stop after the run instead of serving until Ctrl-C.
        #[arg(long)]
        exit: bool,
        /// Use this codeyard endpoint (default: one on localhost:4566, or an embedded server).
        #[arg(long)]
        endpoint: Option<String>,
        /// Data dir for the embedded server (default: a fresh temporary one).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
        /// Where the embedded server runs builds (see `serve --executor`).
        #[arg(long, env = "CODEYARD_EXECUTOR", default_value = "auto", value_parser = ["auto", "container", "local"])]
        executor: String,
        /// Then what happens next: the image push starts a deploy pipeline that runs the
        /// service on ECS and tests it over HTTP; a pushed change reaches the running service.
        #[arg(long)]
        next: bool,
    },
    /// Print a build's log from CloudWatch Logs (`--follow` tails it while it runs).
    Logs {
        /// The build id (`<project>:<uuid>`).
        build_id: String,
        #[arg(long, short)]
        follow: bool,
        #[arg(long, env = "CODEYARD_ENDPOINT", default_value = "http://localhost:4566")]
        endpoint: String,
    },
    /// List recent EventBridge deliveries and failures (why did my pipeline not start?).
    Events {
        /// Only this rule's deliveries.
        #[arg(long)]
        rule: Option<String>,
        #[arg(long, env = "CODEYARD_ENDPOINT", default_value = "http://localhost:4566")]
        endpoint: String,
    },
    /// Build images for builds (`build-standard`: a stand-in for AWS's curated images).
    Images {
        #[command(subcommand)]
        command: ImagesCommand,
    },
    /// Print the web console's URL (served by the server at `--endpoint`) and open it in a
    /// browser where one can be opened.
    Console {
        #[arg(long, env = "CODEYARD_ENDPOINT", default_value = "http://localhost:4566")]
        endpoint: String,
        /// Only print the URL.
        #[arg(long)]
        no_open: bool,
    },
    /// Print what a server holds as Terraform (hashicorp/aws 5.100.0), ready to apply to
    /// another server or to AWS (`export terraform --pipeline NAME | --all`).
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Check the topology for traps, e.g. a CodeCommit-sourced pipeline that nothing starts, and
    /// list the requests IAM denied (or, with `--iam audit`, would have denied) with the policy
    /// statement that would allow each.
    Doctor {
        #[arg(long, env = "CODEYARD_ENDPOINT", default_value = "http://localhost:4566")]
        endpoint: String,
    },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// HCL that recreates one pipeline with what it depends on and what starts it (roles and
    /// their policies, projects, repositories, buckets, rules and targets), or every resource.
    /// Signed with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (default `test`) for AWS_REGION.
    Terraform {
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        pipeline: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long, env = "CODEYARD_ENDPOINT", default_value = "http://localhost:4566")]
        endpoint: String,
        /// Write the HCL to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ImagesCommand {
    /// Build a stand-in for AWS's curated images (bash, git, curl, zip, a JDK, python3 with the
    /// aws CLI) from Debian packages with mmdebstrap, into the server's container storage, and
    /// map aws/codebuild/standard:7.0 and the other curated names to it.
    BuildStandard {
        /// The data dir of the server that will run the builds (default: ~/.local/share/codeyard).
        #[arg(long, env = "CODEYARD_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Debian suite.
        #[arg(long, default_value = "bookworm")]
        suite: String,
        /// Debian mirror (default: the host's own apt source).
        #[arg(long)]
        mirror: Option<String>,
        /// Where the built root filesystem is kept for the next data dir
        /// (default: ~/.cache/codeyard).
        #[arg(long, env = "CODEYARD_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
    },
}

fn default_data_dir() -> PathBuf {
    dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("codeyard")
}

fn options(a: &ServeArgs) -> anyhow::Result<Options> {
    let mut o = Options::new(a.data_dir.clone().unwrap_or_else(default_data_dir));
    o.bind = a.bind;
    o.port = a.port;
    o.auth = if a.auth == "enforce" { AuthMode::Enforce } else { AuthMode::Open };
    for spec in a.access_keys.split(',').filter(|s| !s.trim().is_empty()) {
        let parts: Vec<&str> = spec.trim().split(':').collect();
        if parts.len() < 2 {
            anyhow::bail!("access key '{spec}' is not ID:SECRET[:ACCOUNT]");
        }
        o.access_keys.push(AccessKey {
            id: parts[0].into(),
            secret: parts[1].into(),
            account: parts.get(2).map(|s| s.to_string()).unwrap_or_else(|| codeyard_core::DEFAULT_ACCOUNT.into()),
        });
    }
    if o.auth == AuthMode::Enforce && o.access_keys.is_empty() {
        anyhow::bail!("--auth enforce needs --access-keys (or CODEYARD_ACCESS_KEYS)");
    }
    o.iam = codeyard_core::IamMode::parse(&a.iam).expect("clap checked the value");
    o.public_endpoint = a.public_endpoint.clone();
    o.build_concurrency = a.build_concurrency;
    o.strict_models = a.strict_models;
    o.durability = a.durability.parse().map_err(anyhow::Error::msg)?;
    o.executor = a.executor.parse().map_err(anyhow::Error::msg)?;
    Ok(o)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CODEYARD_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let server = codeyard_server::start(options(&args)?).await?;
            // One line on stdout that scripts and tests wait for.
            println!("codeyard listening on {} ({})", server.endpoint, server.addr);
            let token = server.platform.shutdown.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("shutting down");
                token.cancel();
            });
            server.wait().await;
            Ok(())
        }
        Command::Demo { exit, endpoint, data_dir, timeout, executor, next } => {
            let code = codeyard_server::demo::run(codeyard_server::demo::DemoOptions {
                endpoint,
                data_dir,
                exit,
                timeout: std::time::Duration::from_secs(timeout),
                executor: executor.parse().map_err(anyhow::Error::msg)?,
                next,
            })
            .await?;
            std::process::exit(code);
        }
        Command::Logs { build_id, follow, endpoint } => codeyard_codebuild::cli_logs(&endpoint, &build_id, follow).await,
        Command::Events { rule, endpoint } => codeyard_events::cli_events(&endpoint, rule.as_deref()).await,
        Command::Doctor { endpoint } => {
            let pipelines = codeyard_codepipeline::cli_doctor(&endpoint).await?;
            let denials = print_iam_denials(&endpoint).await?;
            std::process::exit(pipelines.max(denials))
        }
        Command::Images { command: ImagesCommand::BuildStandard { data_dir, suite, mirror, cache_dir } } => {
            let data_dir = data_dir.unwrap_or_else(default_data_dir);
            let cache_dir = cache_dir.unwrap_or_else(|| dirs::cache_dir().unwrap_or_else(|| PathBuf::from(".")).join("codeyard"));
            let built = codeyard_codebuild::standard::build_standard(&data_dir, &suite, mirror.as_deref(), &cache_dir).await?;
            println!("{built}");
            Ok(())
        }
        Command::Console { endpoint, no_open } => open_console(&endpoint, no_open).await,
        Command::Export { command: ExportCommand::Terraform { pipeline, all, endpoint, output } } => export_terraform(&endpoint, pipeline.as_deref(), all, output.as_deref()).await,
        Command::Ops { iam } => {
            let table = if iam { codeyard_server::iam_actions_markdown().await? } else { codeyard_server::coverage_markdown().await? };
            print!("{table}");
            Ok(())
        }
    }
}

/// `codeyard doctor`'s IAM part: each recorded denial with its suggested statement (repeats
/// of the same denial once, with their count). 1 when there are denials, 0 when none.
async fn print_iam_denials(endpoint: &str) -> anyhow::Result<i32> {
    let url = format!("{}{}", endpoint.trim_end_matches('/'), codeyard_iam::audit::DENIALS_PATH);
    let body: serde_json::Value = reqwest::get(&url).await?.error_for_status()?.json().await?;
    let mode = body["mode"].as_str().unwrap_or("enforce");
    let denials = body["denials"].as_array().cloned().unwrap_or_default();
    if denials.is_empty() {
        println!("codeyard doctor: IAM (--iam {mode}): no denials recorded");
        return Ok(0);
    }
    println!("codeyard doctor: IAM (--iam {mode}): {} denials recorded", denials.len());
    let s = |d: &serde_json::Value, k: &str| d[k].as_str().unwrap_or_default().to_string();
    // Oldest first; a repeated denial is shown where it first happened.
    let mut seen: Vec<(String, usize, String, &serde_json::Value)> = Vec::new();
    for d in &denials {
        let key = format!("{}|{}|{}|{}", s(d, "principal"), s(d, "action"), s(d, "resource"), d["enforced"]);
        match seen.iter_mut().find(|(k, ..)| *k == key) {
            Some(entry) => {
                entry.1 += 1;
                entry.2 = s(d, "time");
            }
            None => seen.push((key, 1, s(d, "time"), d)),
        }
    }
    for (_, count, last, d) in &seen {
        let outcome = if d["enforced"].as_bool().unwrap_or(true) { "DENIED" } else { "WOULD DENY (audit)" };
        let times = if *count > 1 { format!(" ({count} times, last {last})") } else { String::new() };
        println!("{outcome} {} {} {} on {}{times}", s(d, "time"), s(d, "principal"), s(d, "action"), s(d, "resource"));
        println!("  {}", s(d, "message"));
        match d.get("suggested_statement").filter(|v| !v.is_null()) {
            Some(st) => println!("  suggested policy statement: {st}"),
            None => println!("  an explicit Deny refused it: no added statement allows it"),
        }
    }
    Ok(1)
}

/// `codeyard console`: the console's URL, after checking a server answers there; opened with
/// the desktop's opener (`xdg-open`, macOS `open`) when there is a display.
async fn open_console(endpoint: &str, no_open: bool) -> anyhow::Result<()> {
    let base = endpoint.trim_end_matches('/');
    let health = format!("{base}/_codeyard/health");
    if let Err(e) = reqwest::get(&health).await.and_then(|r| r.error_for_status()) {
        anyhow::bail!("no codeyard server answers at {base} ({e}): start one with `codeyard serve`");
    }
    let url = format!("{base}{}/", codeyard_console::PREFIX);
    println!("{url}");
    let display = std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() || cfg!(target_os = "macos");
    if !no_open && display {
        let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
        let spawned = std::process::Command::new(opener)
            .arg(&url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Err(e) = spawned {
            eprintln!("could not open a browser ({opener}: {e}); open {url}");
        }
    }
    Ok(())
}

/// `codeyard export terraform`: the server's export route, signed as the environment's keys.
async fn export_terraform(endpoint: &str, pipeline: Option<&str>, all: bool, output: Option<&std::path::Path>) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let region = env("AWS_REGION").or(env("AWS_DEFAULT_REGION")).unwrap_or_else(|| codeyard_core::DEFAULT_REGION.into());
    let key = env("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "test".into());
    let secret = env("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| "test".into());
    let client = codeyard_server::client::AwsClient::new(endpoint, &region, &key, &secret);
    let query = match pipeline {
        Some(name) if !all => serde_urlencoded::to_string([("pipeline", name)])?,
        _ => "all=1".to_string(),
    };
    let headers = client.sign("GET", codeyard_export::ROUTE, &query, "codeyard", b"", &[]);
    let mut req = reqwest::Client::new().get(format!("{}{}?{query}", client.endpoint, codeyard_export::ROUTE));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.map_err(|e| anyhow::anyhow!("cannot reach {endpoint}: {e}"))?;
    let status = resp.status();
    let body = resp.text().await?;
    if !status.is_success() {
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        anyhow::bail!("{} ({}): {}", v["__type"].as_str().unwrap_or("error"), status.as_u16(), v["message"].as_str().unwrap_or(&body));
    }
    match output {
        Some(path) => std::fs::write(path, body)?,
        None => print!("{body}"),
    }
    Ok(())
}
