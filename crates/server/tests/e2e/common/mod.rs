//! The harness every end-to-end test uses: a real codeyard server (in-process, on a free
//! port, in a fresh data dir, with strict model checks on) and aws-sdk-rust configuration
//! pointed at it.
// (dead_code is allowed for the harness in main.rs: not every suite uses every helper)

use codeyard_server::{Options, RunningServer};
use std::path::PathBuf;

mod chain;
pub use chain::*;

pub const REGION: &str = "eu-west-1";
pub const ACCOUNT: &str = "000000000000";

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub endpoint: String,
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
    /// Set by [`TestServer::with`] and [`terraform_applied`]: when the test ends (the server is
    /// dropped or stopped) every answer must have fit AWS's models.
    check_models_at_end: bool,
}

impl TestServer {
    /// A fresh server in a fresh data dir.
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_path_buf();
        let mut t = Self::start_in(path, |_| {}).await;
        t._dir = Some(dir);
        t
    }

    /// A fresh server in a fresh data dir, with options adjusted by `tweak` (a test clock...).
    pub async fn start_with(tweak: impl FnOnce(&mut Options)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_path_buf();
        let mut t = Self::start_in(path, tweak).await;
        t._dir = Some(dir);
        t
    }

    /// A server on an existing data dir (restart tests), with options adjusted by `tweak`.
    pub async fn start_in(data_dir: PathBuf, tweak: impl FnOnce(&mut Options)) -> TestServer {
        let _ = tracing_init();
        let mut opts = Options::new(&data_dir);
        opts.port = 0;
        opts.strict_models = true;
        tweak(&mut opts);
        let server = codeyard_server::start(opts).await.expect("server starts");
        let endpoint = format!("http://localhost:{}", server.addr.port());
        TestServer { server: Some(server), endpoint, data_dir, _dir: None, check_models_at_end: false }
    }

    /// A fresh server and one client of it: `TestServer::with(aws_sdk_ssm::Client::new)`,
    /// `TestServer::with(s3_client_for)`. When the test ends the server asserts that every
    /// answer fit AWS's models (what [`TestServer::assert_no_model_violations`] checks).
    pub async fn with<C>(new: impl FnOnce(&aws_config::SdkConfig) -> C) -> (TestServer, C) {
        let mut t = Self::start().await;
        t.check_models_at_end = true;
        let client = new(&t.sdk_config().await);
        (t, client)
    }

    /// A fresh server under `--auth enforce` that knows one access key (`id`, `secret`, in the
    /// test account); checks the models when the test ends, as [`TestServer::with`].
    pub async fn enforcing(id: &str, secret: &str) -> TestServer {
        let mut t = Self::start_with(auth_with_key(codeyard_server::AuthMode::Enforce, id, secret)).await;
        t.check_models_at_end = true;
        t
    }

    /// SDK configuration with test credentials and region eu-west-1.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        self.sdk_config_with("test", "test").await
    }

    pub async fn sdk_config_with(&self, key: &str, secret: &str) -> aws_config::SdkConfig {
        sdk_config_for(&self.endpoint, key, secret).await
    }

    /// Fails the test if any answer so far did not fit AWS's model.
    pub fn assert_no_model_violations(&self) {
        let app = &self.server.as_ref().expect("running").app;
        let v = app.violations.lock().unwrap();
        assert!(v.is_empty(), "answers that do not fit AWS's models: {v:#?}");
    }

    pub async fn stop(mut self) -> PathBuf {
        if self.check_models_at_end {
            self.assert_no_model_violations();
        }
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        self.data_dir.clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Not while a failing test unwinds: its own message is the one to read.
        if self.check_models_at_end && self.server.is_some() && !std::thread::panicking() {
            self.assert_no_model_violations();
        }
    }
}

/// The `tweak` ([`TestServer::start_with`], [`TestServer::start_in`]) of a server in `--auth
/// mode` that knows one access key, `id` / `secret`, in the test account.
pub fn auth_with_key(mode: codeyard_server::AuthMode, id: &str, secret: &str) -> impl Fn(&mut Options) + Clone {
    let (id, secret) = (id.to_string(), secret.to_string());
    move |o| {
        o.auth = mode;
        o.access_keys = vec![codeyard_server::AccessKey { id: id.clone(), secret: secret.clone(), account: ACCOUNT.into() }];
    }
}

fn tracing_init() -> Result<(), ()> {
    tracing_subscriber_init();
    Ok(())
}

fn tracing_subscriber_init() {
    // Quiet by default; CODEYARD_LOG=debug shows the server's log in test output.
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("CODEYARD_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
    });
}

/// A codeyard server as a separate process (crash and restart tests: `kill -9` needs one).
pub struct ServerProcess {
    pub child: std::process::Child,
    pub endpoint: String,
    pub port: u16,
}

/// How long a spawned server may take to print its listening line.
const SPAWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

impl ServerProcess {
    pub fn spawn(data_dir: &std::path::Path, extra_args: &[&str]) -> ServerProcess {
        Self::spawn_with_env(data_dir, &[], extra_args)
    }

    /// As [`ServerProcess::spawn`], with extra environment variables for the server. Panics
    /// with the server's stderr when it does not print its listening line within 30 s.
    pub fn spawn_with_env(data_dir: &std::path::Path, env: &[(&str, &str)], extra_args: &[&str]) -> ServerProcess {
        use std::io::{BufRead, Read};
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_codeyard"))
            .args(["serve", "--port", "0", "--data-dir"])
            .arg(data_dir)
            .args(extra_args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("codeyard starts");
        // stderr is drained for the server's whole life (a full pipe would block it); its
        // start is kept for the panic message.
        let stderr = child.stderr.take().unwrap();
        let head = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = head.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut stderr = stderr;
            while let Ok(n @ 1..) = stderr.read(&mut buf) {
                let mut kept = kept.lock().unwrap();
                let room = (64 * 1024usize).saturating_sub(kept.len()).min(n);
                kept.extend_from_slice(&buf[..room]);
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        // "codeyard listening on http://localhost:PORT (127.0.0.1:PORT)"
        let line = rx.recv_timeout(SPAWN_LIMIT).unwrap_or_default();
        let Some(endpoint) = line.split_whitespace().nth(3).map(str::to_string) else {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            std::thread::sleep(std::time::Duration::from_millis(100)); // the last of stderr
            let stderr = String::from_utf8_lossy(&head.lock().unwrap()).into_owned();
            panic!("codeyard serve did not say it was listening within {SPAWN_LIMIT:?} (stdout: {line:?}, {status}); its stderr:\n{stderr}");
        };
        let port = endpoint.rsplit(':').next().unwrap().parse().unwrap();
        ServerProcess { child, endpoint, port }
    }

    /// `kill -9`.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the aws CLI against `endpoint`; returns (exit ok, stdout, stderr).
pub fn aws_cli(endpoint: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new("aws")
        .args(args)
        .args(["--endpoint-url", endpoint, "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_PAGER", "")
        .output()
        .expect("aws CLI runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// Runs `terraform <args>` in `dir` against the server at `endpoint`: the AWS provider reads
/// the endpoint (`AWS_ENDPOINT_URL`), credentials and region from the environment, so a
/// configuration needs no provider block beyond [`TERRAFORM_PROVIDER`]; one that still declares
/// `variable "endpoint"` gets it as `-var=endpoint=...`. `init` uses the provider mirror at
/// /opt/tf-plugins. Returns (exit code, combined output).
pub fn terraform(dir: &std::path::Path, endpoint: &str, args: &[&str]) -> (i32, String) {
    let mut cmd = std::process::Command::new("terraform");
    cmd.current_dir(dir).args(args).arg("-no-color").arg("-input=false");
    if args.first() == Some(&"init") {
        if std::path::Path::new("/opt/tf-plugins").is_dir() {
            cmd.arg("-plugin-dir=/opt/tf-plugins");
        }
    } else if matches!(args.first(), Some(&"apply") | Some(&"plan") | Some(&"destroy")) && declares_endpoint_variable(dir) {
        cmd.arg(format!("-var=endpoint={endpoint}"));
    }
    if !endpoint.is_empty() {
        cmd.env("AWS_ENDPOINT_URL", endpoint);
    }
    cmd.env("AWS_ACCESS_KEY_ID", "test").env("AWS_SECRET_ACCESS_KEY", "test").env("AWS_REGION", REGION);
    cmd.env("TF_IN_AUTOMATION", "1").env("CHECKPOINT_DISABLE", "1").env("AWS_EC2_METADATA_DISABLED", "true");
    // Terraform and the AWS provider are Go programs that spend about a third of a command's
    // CPU in garbage collection at the default GOGC=100; 400 cuts a plan of the seed topology
    // from 6.1 s to 4.2 s of CPU for 0.16 GB more memory (467 MB peak).
    if std::env::var_os("GOGC").is_none() {
        cmd.env("GOGC", "400");
    }
    let out = cmd.output().expect("terraform runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn tf_files(dir: &std::path::Path) -> Vec<String> {
    let entries = std::fs::read_dir(dir).map(|d| d.flatten().collect::<Vec<_>>()).unwrap_or_default();
    entries.iter().filter(|e| e.path().extension().is_some_and(|x| x == "tf")).filter_map(|e| std::fs::read_to_string(e.path()).ok()).collect()
}

fn declares_endpoint_variable(dir: &std::path::Path) -> bool {
    tf_files(dir).iter().any(|text| text.contains("variable \"endpoint\""))
}

/// The provider block [`terraform_workspace`] writes as `provider.tf` beside a configuration
/// that has none. Everything else comes from the environment [`terraform`] sets; only S3 needs
/// a setting, path-style addressing, since `<bucket>.localhost` does not resolve here.
pub const TERRAFORM_PROVIDER: &str = "provider \"aws\" {\n  s3_use_path_style = true\n}\n";

/// Copies a Terraform configuration from `crates/server/tests/terraform/<name>` into a fresh
/// temporary directory, with the shared modules of `tests/terraform/modules` beside it
/// (`source = "./modules/service_role"`), adds [`TERRAFORM_PROVIDER`] unless the
/// configuration has its own provider block, and runs `terraform init` there.
pub fn terraform_workspace(name: &str) -> tempfile::TempDir {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/terraform");
    let dir = tempfile::tempdir().expect("temp dir");
    copy_files(&root.join(name), dir.path());
    for module in std::fs::read_dir(root.join("modules")).into_iter().flatten().flatten().filter(|m| m.path().is_dir()) {
        copy_files(&module.path(), &dir.path().join("modules").join(module.file_name()));
    }
    if !tf_files(dir.path()).iter().any(|text| text.contains("provider \"aws\"")) {
        std::fs::write(dir.path().join("provider.tf"), TERRAFORM_PROVIDER).unwrap();
    }
    let (code, out) = terraform(dir.path(), "", &["init"]);
    assert_eq!(code, 0, "terraform init failed:\n{out}");
    dir
}

/// Copies the files of `src` (not its folders) into `dest`, which it creates.
fn copy_files(src: &std::path::Path, dest: &std::path::Path) {
    std::fs::create_dir_all(dest).unwrap();
    for entry in std::fs::read_dir(src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dest.join(entry.file_name())).unwrap();
        }
    }
}

// ---- helpers the suites share ------------------------------------------------------------

/// SDK configuration for `endpoint` with static credentials, region eu-west-1.
pub async fn sdk_config_for(endpoint: &str, key: &str, secret: &str) -> aws_config::SdkConfig {
    sdk_config_with(endpoint, aws_credential_types::Credentials::new(key, secret, None, None, "codeyard-tests")).await
}

/// SDK configuration for an STS session's temporary credentials (key, secret and token).
pub async fn sdk_config_for_session(endpoint: &str, key: &str, secret: &str, token: &str) -> aws_config::SdkConfig {
    sdk_config_with(endpoint, aws_credential_types::Credentials::new(key, secret, Some(token.to_string()), None, "codeyard-tests-session")).await
}

async fn sdk_config_with(endpoint: &str, creds: aws_credential_types::Credentials) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .load()
        .await
}

/// SDK configuration with the test credentials, for code that only has the endpoint.
pub async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    sdk_config_for(endpoint, "test", "test").await
}

/// An S3 client using path-style addresses (`http://localhost:PORT/bucket/key`).
pub async fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    s3_client_for(&sdk(endpoint).await)
}

/// An S3 client on `conf`, path-style.
pub fn s3_client_for(conf: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(conf).force_path_style(true).build())
}

/// Creates a bucket in eu-west-1.
pub async fn make_bucket(s3: &aws_sdk_s3::Client, name: &str) {
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
    s3.create_bucket()
        .bucket(name)
        .create_bucket_configuration(CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::EuWest1).build())
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateBucket {name}: {e:?}"));
}

/// The AWS error code of an SDK error (or of its service error), "" when it has none. Every
/// SDK crate re-exports the same `ProvideErrorMetadata`.
pub fn error_code<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("").to_string()
}

/// The credential helper a developer configures for CodeCommit over HTTPS.
pub const GIT_CREDENTIAL_HELPER: &str = "!aws codecommit credential-helper --ignore-host-check $@";

/// `git` as a developer runs it against codeyard's CodeCommit: the aws CLI credential helper
/// with the test credentials, a fixed identity, no user or system config.
pub fn git_command(dir: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new("git");
    c.current_dir(dir)
        .args(["-c", "credential.helper=", "-c", &format!("credential.helper={GIT_CREDENTIAL_HELPER}"), "-c", "credential.UseHttpPath=true"])
        .args(["-c", "user.name=Dev", "-c", "user.email=dev@example.com", "-c", "init.defaultBranch=main"])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", REGION);
    c
}

/// Runs a command that must succeed; returns its trimmed stdout.
pub fn run_ok(mut c: std::process::Command) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(out.status.success(), "{c:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `git <args>` in `dir` (see [`git_command`]), which must succeed; returns trimmed stdout.
pub fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let mut c = git_command(dir);
    c.args(args);
    run_ok(c)
}

/// Polls `probe` (every `every`) until it gives a value; panics naming `what` after `limit`.
/// The one wait loop of the suites: a check waits for a condition, never for a fixed time.
pub async fn wait_for<T, F, Fut>(what: &str, limit: std::time::Duration, every: std::time::Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(every).await;
    }
}

/// Waits until EventBridge has nothing left to do: its ingress and delivery queues are empty
/// (`/_codeyard/events/queues` counts leased items too, so every event published so far has
/// been matched and every delivery made). The barrier for "no more deliveries will come".
pub async fn events_idle(endpoint: &str) {
    let url = format!("{endpoint}/_codeyard/events/queues");
    wait_for("EventBridge queues to drain", std::time::Duration::from_secs(30), std::time::Duration::from_millis(50), || async {
        let q: serde_json::Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
        (q["ingress"] == 0 && q["delivery"] == 0).then_some(())
    })
    .await
}

/// A policy document of Allow statements, each (actions, resources).
pub fn allow_policy(statements: &[(&[&str], &[&str])]) -> String {
    let statements: Vec<serde_json::Value> = statements
        .iter()
        .map(|(actions, resources)| serde_json::json!({"Effect": "Allow", "Action": actions, "Resource": resources}))
        .collect();
    serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// What a CodeBuild service role needs for the builds of the suites: its logs, S3 sources,
/// artifacts and cache, CodeCommit sources and ECR pulls (AWS's documented minimum, on `*`).
pub fn codebuild_role_policy() -> String {
    allow_policy(&[
        (&["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], &["*"]),
        (&["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:GetBucketAcl", "s3:GetBucketLocation", "s3:ListBucket"], &["*"]),
        (&["codecommit:GitPull"], &["*"]),
        (&["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"], &["*"]),
    ])
}

/// What a CodePipeline role needs for S3 / CodeCommit sources, CodeBuild actions and S3 deploys.
pub fn codepipeline_role_policy() -> String {
    allow_policy(&[
        (&["s3:*"], &["*"]),
        (&["codebuild:StartBuild", "codebuild:BatchGetBuilds", "codebuild:StopBuild"], &["*"]),
        (
            &["codecommit:GetBranch", "codecommit:GetCommit", "codecommit:GetRepository", "codecommit:UploadArchive", "codecommit:GetUploadArchiveStatus", "codecommit:CancelUploadArchive", "codecommit:GitPull"],
            &["*"],
        ),
    ])
}

/// What an EventBridge target role needs to start pipelines and builds.
pub fn events_role_policy() -> String {
    allow_policy(&[(&["codepipeline:StartPipelineExecution", "codebuild:StartBuild"], &["*"])])
}

/// Creates the role `name` that `service` (`codebuild.amazonaws.com`) may assume, with
/// `policy` (a document's JSON; "" for none) as its inline policy; returns its ARN. Suites give
/// every role the trust and statements AWS would need, so a green run predicts one on AWS.
pub async fn create_service_role(iam: &aws_sdk_iam::Client, name: &str, service: &str, policy: &str) -> String {
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]});
    let role = iam.create_role().role_name(name).assume_role_policy_document(trust.to_string()).send().await.expect("CreateRole");
    if !policy.is_empty() {
        iam.put_role_policy().role_name(name).policy_name("permissions").policy_document(policy).send().await.expect("PutRolePolicy");
    }
    role.role().expect("role").arn().to_string()
}

/// A zip of `files`, made with Python's zipfile (no zip crate among the server's dev-dependencies).
pub fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for (name, content) in files {
        let path = src.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let zip = dir.path().join("out.zip");
    let script = "import sys, zipfile, os\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n    for root, _, names in os.walk(sys.argv[2]):\n        for n in names:\n            p = os.path.join(root, n)\n            z.write(p, os.path.relpath(p, sys.argv[2]))\n";
    let ok = std::process::Command::new("python3").args(["-c", script]).arg(&zip).arg(&src).status().unwrap().success();
    assert!(ok, "python3 zipfile");
    std::fs::read(zip).unwrap()
}

/// Runs the aws CLI against `endpoint` with these credentials (an IAM user's or a session's:
/// `token` for temporary ones); returns (exit ok, stdout, stderr).
pub fn aws_cli_as(endpoint: &str, key: &str, secret: &str, token: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new("aws");
    cmd.args(args)
        .args(["--endpoint-url", endpoint, "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_PAGER", "")
        .env_remove("AWS_SESSION_TOKEN");
    if let Some(t) = token {
        cmd.env("AWS_SESSION_TOKEN", t);
    }
    let out = cmd.output().expect("aws CLI runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// A session of a role the account root may assume (its trust policy allows
/// `arn:aws:iam::<acct>:root`), with `policy` as the role's inline policy: the non-root caller
/// the enforcement suites act as. Credentials for the SDK (`conf`) and for tools (`key`,
/// `secret`, `token`).
pub struct RoleSession {
    pub conf: aws_config::SdkConfig,
    pub role_arn: String,
    pub arn: String,
    pub key: String,
    pub secret: String,
    pub token: String,
}

impl RoleSession {
    /// Creates role `name` with `policy` (a document's JSON; "" for none) and assumes it as root.
    pub async fn start(t: &TestServer, name: &str, policy: &str) -> RoleSession {
        let root = t.sdk_config().await;
        let iam = aws_sdk_iam::Client::new(&root);
        let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}, "Action": "sts:AssumeRole"}]});
        let role = iam.create_role().role_name(name).assume_role_policy_document(trust.to_string()).send().await.expect("CreateRole");
        let role_arn = role.role().expect("role").arn().to_string();
        if !policy.is_empty() {
            iam.put_role_policy().role_name(name).policy_name("permissions").policy_document(policy).send().await.expect("PutRolePolicy");
        }
        let out = aws_sdk_sts::Client::new(&root).assume_role().role_arn(&role_arn).role_session_name("session").send().await.expect("AssumeRole");
        let c = out.credentials().expect("credentials");
        let (key, secret, token) = (c.access_key_id().to_string(), c.secret_access_key().to_string(), c.session_token().to_string());
        let conf = sdk_config_for_session(&t.endpoint, &key, &secret, &token).await;
        let arn = out.assumed_role_user().expect("assumed role user").arn().to_string();
        RoleSession { conf, role_arn, arn, key, secret, token }
    }

    /// `git` in `dir` as this session (the aws credential helper with its keys and token).
    pub fn git_command(&self, dir: &std::path::Path) -> std::process::Command {
        let mut c = git_command(dir);
        c.env("AWS_ACCESS_KEY_ID", &self.key).env("AWS_SECRET_ACCESS_KEY", &self.secret).env("AWS_SESSION_TOKEN", &self.token);
        c
    }
}

/// The bytes of base64 text (coreutils `base64 -d`; no base64 crate among the dev-dependencies):
/// a KMS ciphertext blob as an API or the CLI answered it.
pub fn base64_bytes(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("base64").arg("-d").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().expect("base64 runs");
    child.stdin.take().unwrap().write_all(text.trim().trim_matches('"').as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "base64 -d");
    out.stdout
}

/// The files under `dir` (recursively: the store, its WAL, KMS's key file, ...) whose bytes
/// contain `needle`: where a secret would leak in plain text.
pub fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    // Regular files only: a build's FIFO under the data dir would block a read forever.
    regular_files_under(dir)
        .into_iter()
        .filter(|path| std::fs::read(path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)))
        .collect()
}

/// `terraform apply` in `dir` with `vars` (`-var=...`), then `terraform plan -detailed-exitcode`
/// with the same: asserts that both succeed and that the plan is empty. Answers apply's output.
pub fn terraform_apply_clean(dir: &std::path::Path, endpoint: &str, vars: &[&str]) -> String {
    let applied = terraform_apply(dir, endpoint, vars);
    terraform_plan_clean(dir, endpoint, vars);
    applied
}

/// `terraform apply` in `dir` with `vars` (`-var=...`), asserting that it succeeds; answers
/// its output.
pub fn terraform_apply(dir: &std::path::Path, endpoint: &str, vars: &[&str]) -> String {
    let apply: Vec<&str> = ["apply", "-auto-approve"].iter().chain(vars).copied().collect();
    let (code, applied) = terraform(dir, endpoint, &apply);
    assert_eq!(code, 0, "terraform apply {vars:?} failed:\n{applied}");
    applied
}

/// `terraform plan -detailed-exitcode` in `dir` with `vars`: asserts that the plan is empty
/// (what was applied reads back as configured).
pub fn terraform_plan_clean(dir: &std::path::Path, endpoint: &str, vars: &[&str]) {
    let plan: Vec<&str> = ["plan", "-detailed-exitcode"].iter().chain(vars).copied().collect();
    let (code, out) = terraform(dir, endpoint, &plan);
    assert_eq!(code, 0, "the plan after apply {vars:?} is not empty:\n{out}");
}

/// The start of every Terraform suite: a fresh server (checking the models when the test
/// ends, as [`TestServer::with`]), the configuration `name` applied to it with a clean plan
/// after ([`terraform_workspace`], [`terraform_apply_clean`]), and a client made by `new`
/// (`aws_sdk_kms::Client::new`; `|_| ()` for none).
pub async fn terraform_applied<C>(name: &str, new: impl FnOnce(&aws_config::SdkConfig) -> C) -> (TestServer, tempfile::TempDir, C) {
    let (t, client) = TestServer::with(new).await;
    let ws = terraform_workspace(name);
    terraform_apply_clean(ws.path(), &t.endpoint, &[]);
    (t, ws, client)
}

/// `terraform destroy` in `dir` with `vars`, asserting that it succeeds.
pub fn terraform_destroy(dir: &std::path::Path, endpoint: &str, vars: &[&str]) {
    let destroy: Vec<&str> = ["destroy", "-auto-approve"].iter().chain(vars).copied().collect();
    let (code, out) = terraform(dir, endpoint, &destroy);
    assert_eq!(code, 0, "terraform destroy failed:\n{out}");
}

/// Every regular file under `dir`, recursively. Symbolic links, sockets and FIFOs are skipped
/// (reading a FIFO blocks for ever: CodeBuild's container executor makes one under the data
/// dir), so "is this value anywhere on disk" scans cannot hang.
pub fn regular_files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => stack.push(entry.path()),
                Ok(kind) if kind.is_file() => out.push(entry.path()),
                _ => {}
            }
        }
    }
    out
}
