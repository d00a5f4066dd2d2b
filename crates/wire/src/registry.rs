//! What a service is to the server: the [`Platform`] it is built on, the [`AwsService`] trait
//! for awsJson and awsQuery APIs (JSON values in, JSON values out, the wire handled here), and
//! the [`HttpService`] trait for surfaces that speak raw HTTP (S3 via s3s, git smart HTTP, the OCI
//! registry).

use crate::models::{ServiceModel, model};
use crate::shapes::{Problem, validation_message};
use async_trait::async_trait;
use axum::body::Body;
use codeyard_core::{AwsError, AwsResult, Hub, RequestContext};
use codeyard_store::SharedStore;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// Any access key is accepted (a local tool on loopback). The default.
    Open,
    /// Every request's SigV4 signature is verified against configured or issued keys.
    Enforce,
}

#[derive(Clone, Debug)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
    pub account: String,
}

/// Server-wide settings every service can read.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    /// The URL clients reach the server at (`http://localhost:4566`), used in clone URLs,
    /// repository URIs and the endpoint builds are given.
    pub public_endpoint: String,
    pub auth: AuthMode,
    pub access_keys: Vec<AccessKey>,
    /// How IAM decisions apply (`--iam enforce|audit|off`).
    pub iam: codeyard_core::IamMode,
    /// How many builds run at once; more wait in QUEUED.
    pub build_concurrency: usize,
    /// Check every awsJson/awsQuery answer against the model and count violations
    /// (tests turn this on and require zero).
    pub strict_models: bool,
}

/// Who a verified (or, in open mode, trusted) request comes from.
#[derive(Clone, Debug)]
pub struct Identity {
    pub access_key: String,
    pub account: String,
    pub arn: String,
}

/// Resolves access keys to accounts and, in enforce mode, checks signatures. Every surface
/// (AWS APIs, git, registry, S3) asks this one object.
pub struct Authenticator {
    pub mode: AuthMode,
    keys: HashMap<String, AccessKey>,
    hub: Arc<Hub>,
}

impl Authenticator {
    pub fn new(config: &ServerConfig, hub: Arc<Hub>) -> Self {
        let keys = config.access_keys.iter().map(|k| (k.id.clone(), k.clone())).collect();
        Authenticator { mode: config.auth, keys, hub }
    }

    /// The secret and identity of an access key: configured keys, then keys issued by STS.
    pub async fn lookup(&self, access_key: &str) -> Option<(String, Identity)> {
        if let Some(k) = self.keys.get(access_key) {
            let arn = format!("arn:aws:iam::{}:root", k.account);
            return Some((k.secret.clone(), Identity { access_key: k.id.clone(), account: k.account.clone(), arn }));
        }
        if let Ok(issuer) = self.hub.credentials() {
            if let Ok(Some(c)) = issuer.lookup(access_key).await {
                return Some((c.secret_access_key, Identity { access_key: c.access_key_id, account: c.account, arn: c.arn }));
            }
        }
        None
    }

    /// The session token a temporary (STS-issued) access key must be presented with; `None`
    /// for configured long-term keys and unknown keys.
    pub async fn session_token_of(&self, access_key: &str) -> Option<String> {
        if self.keys.contains_key(access_key) {
            return None;
        }
        let issuer = self.hub.credentials().ok()?;
        issuer.lookup(access_key).await.ok().flatten()?.session_token
    }

    /// The identity a request is attributed to in open mode: a known key's account, a
    /// 12-digit access key as the account id itself, or the default account.
    pub async fn identify_open(&self, access_key: &str) -> Identity {
        if let Some((_, id)) = self.lookup(access_key).await {
            return id;
        }
        let account = if access_key.len() == 12 && access_key.bytes().all(|b| b.is_ascii_digit()) {
            access_key.to_string()
        } else {
            codeyard_core::DEFAULT_ACCOUNT.to_string()
        };
        Identity { access_key: access_key.to_string(), arn: format!("arn:aws:iam::{account}:root"), account }
    }
}

/// Everything a service is built on. Cheap to clone.
#[derive(Clone)]
pub struct Platform {
    pub store: SharedStore,
    pub hub: Arc<Hub>,
    pub config: Arc<ServerConfig>,
    pub auth: Arc<Authenticator>,
    /// Cancelled when the server shuts down: background workers stop on it.
    pub shutdown: CancellationToken,
    /// "Now" for work the server does by itself on a schedule (EventBridge's scheduler);
    /// the system clock, or a test's [`codeyard_core::TestClock`].
    pub clock: codeyard_core::SharedClock,
}

impl Platform {
    /// A context for work the server does by itself in an account and region.
    pub fn internal_context(&self, account: &str, region: &str) -> RequestContext {
        RequestContext::internal(account, region, &self.config.public_endpoint)
    }

    /// [`codeyard_core::periodic::spawn_sweep`] on this platform's clock, until it shuts down.
    pub fn spawn_sweep<T, J, F, E>(&self, period: std::time::Duration, state: T, job: J, log: (&'static str, &'static str))
    where
        T: Clone + Send + 'static,
        J: Fn(T, codeyard_core::time::Timestamp) -> F + Send + 'static,
        F: std::future::Future<Output = Result<usize, E>> + Send,
        E: std::fmt::Debug,
    {
        let stop = self.shutdown.clone().cancelled_owned();
        codeyard_core::periodic::spawn_sweep(period, stop, self.clock.clone(), state, job, log);
    }
}

/// An AWS API spoken as awsJson1.1 or awsQuery. The wire layer decodes the request into the
/// JSON value of the operation's input shape (validated against the model), calls [`call`],
/// and encodes the returned JSON value (or error) in the protocol's shape.
///
/// [`call`]: AwsService::call
#[async_trait]
pub trait AwsService: Send + Sync + 'static {
    /// The embedded model's name (`iam`, `sts`, `logs`, `codecommit`, ...).
    fn model_name(&self) -> &'static str;
    /// Operations this service implements. Any other operation of the model answers
    /// `UnknownOperationException` (400) at once. Services on a generated `codeyard_api`
    /// trait derive this from the methods their impl block defines.
    fn implemented(&self) -> &[&'static str];
    /// Runs an operation. Timestamps in the output are epoch-second numbers.
    async fn call(&self, ctx: &RequestContext, operation: &str, input: Value) -> AwsResult<Value>;
    /// The error for input that breaks the model's constraints. AWS answers most services
    /// with `ValidationException`; services with their own exceptions (CodeCommit's
    /// `RepositoryNameRequiredException`) override this.
    fn validation_error(&self, _operation: &str, problems: &[Problem]) -> AwsError {
        AwsError::validation(validation_message(problems))
    }
    fn model(&self) -> &'static ServiceModel {
        model(self.model_name()).expect("service model is embedded")
    }
    /// What IAM must allow for this call (one request per action and resource), asked by the
    /// dispatcher after the input validated and before [`call`](AwsService::call). Services on
    /// a generated `codeyard_api` trait answer from the Service Authorization Reference.
    async fn access_requests(&self, _ctx: &RequestContext, _operation: &str, _input: &Value) -> AwsResult<Vec<codeyard_core::AccessRequest>> {
        Ok(Vec::new())
    }
    /// The error code this service answers a denial with (IAM and STS: `AccessDenied`).
    fn access_denied_code(&self) -> &'static str {
        "AccessDeniedException"
    }
}

/// A surface that speaks raw HTTP on the shared port.
#[async_trait]
pub trait HttpService: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Whether this service takes the request. Services are asked in registration order;
    /// S3 is registered last and takes whatever no API and no other service claimed.
    fn claims(&self, parts: &http::request::Parts) -> bool;
    /// Handles the request. `ctx` carries the SigV4 scope when the request had one; the
    /// service authenticates by its own scheme (git, registry, s3s) through `Platform::auth`.
    async fn handle(&self, ctx: RequestContext, req: http::Request<Body>) -> http::Response<Body>;
    /// Asked before [`handle`](HttpService::handle) when the request carries no AWS signature
    /// (see [`crate::auth`]). The default leaves it to the surface: git and the registry
    /// challenge for credentials themselves. S3 refuses all but public reads.
    async fn unsigned(&self, _parts: &http::request::Parts) -> crate::auth::Unsigned {
        crate::auth::Unsigned::Handle
    }
    /// For an HTTP surface that is an AWS API (S3): its model name and the operations it
    /// implements, for the table of supported operations.
    fn api_coverage(&self) -> Option<(&'static str, &'static [&'static str])> {
        None
    }
}

/// Every registered service, built once at start-up.
#[derive(Default)]
pub struct Registry {
    pub aws: Vec<Arc<dyn AwsService>>,
    pub http: Vec<Arc<dyn HttpService>>,
}

impl Registry {
    pub fn add_aws(&mut self, s: Arc<dyn AwsService>) {
        self.aws.push(s);
    }
    pub fn add_http(&mut self, s: Arc<dyn HttpService>) {
        self.http.push(s);
    }
    pub fn by_target_prefix(&self, prefix: &str) -> Option<&Arc<dyn AwsService>> {
        self.aws.iter().find(|s| s.model().target_prefix() == Some(prefix))
    }
    pub fn by_model(&self, name: &str) -> Option<&Arc<dyn AwsService>> {
        self.aws.iter().find(|s| s.model_name() == name)
    }
    /// For awsQuery: by the signing name in the credential scope, then by `Version`.
    pub fn query_service(&self, signing_name: Option<&str>, version: Option<&str>) -> Option<&Arc<dyn AwsService>> {
        let query = || self.aws.iter().filter(|s| s.model().protocol() == "query");
        signing_name
            .and_then(|n| query().find(|s| s.model().signing_name() == n))
            .or_else(|| version.and_then(|v| query().find(|s| s.model().api_version() == v)))
    }

    /// (service model, operation, implemented?) for every operation of every registered API:
    /// the source of the README's table of supported operations.
    pub fn coverage(&self) -> Vec<(&'static str, String, bool)> {
        let mut rows = Vec::new();
        let apis = self.aws.iter().map(|s| (s.model_name(), s.implemented()));
        let http_apis = self.http.iter().filter_map(|s| s.api_coverage());
        for (name, implemented) in apis.chain(http_apis) {
            let Some(model) = model(name) else { continue };
            let mut ops = model.operations.clone();
            ops.sort();
            for op in ops {
                let yes = implemented.contains(&op.as_str());
                rows.push((name, op, yes));
            }
        }
        rows
    }
}
