//! codeyard-core: the vocabulary every crate shares and nothing else.
//!
//! * [`AwsError`]: an error as AWS names it (code, message, HTTP status). Domain crates return
//!   it; the wire crate renders it in the protocol's shape.
//! * [`RequestContext`]: who is calling (account, region, access key) and how the server is
//!   reached (endpoint), filled in by the wire layer from the SigV4 credential scope.
//! * [`arn`], [`time`], [`ids`]: ARNs built as AWS builds them, AWS timestamp encodings, ids.
//! * [`clock`]: where background work reads "now" (the system clock, or a test's);
//!   [`periodic`]: sweeps a service runs every so often.
//! * [`tags`]: resource tags with AWS's quota.
//! * [`scope`]: an account and region, and the store namespaces and ARNs named from them.
//! * [`hub`]: the late-bound interfaces through which services call each other
//!   (events, pipelines, builds, objects, logs, credentials, git) without depending on each
//!   other's crates.

pub mod arn;
pub mod authz;
pub mod clock;
pub mod error;
pub mod hub;
pub mod ids;
pub mod periodic;
pub mod scope;
pub mod tags;
pub mod time;

pub use authz::{AccessRequest, Authorizer, Denied, IamMode};
pub use clock::{Clock, SharedClock, SystemClock, TestClock};
pub use error::{AwsError, AwsResult};
pub use hub::Hub;

/// The account used when a request does not map to another one.
pub const DEFAULT_ACCOUNT: &str = "000000000000";
/// The region used when a request carries no credential scope.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Who is calling and where the server is reached. Built by the wire layer for every request.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub account: String,
    pub region: String,
    /// The access key id from the credential scope ("" when the request was unsigned).
    pub access_key: String,
    /// The ARN of the caller (root, or an assumed-role session).
    pub caller_arn: String,
    pub request_id: String,
    /// Base URL clients use to reach this server, e.g. `http://localhost:4566`
    /// (taken from the request's Host header when there is one).
    pub endpoint: String,
    /// The client's address (`aws:SourceIp`), when the request came over HTTP; `None` for work
    /// the server does itself and for sessions services act in.
    pub source_ip: Option<std::net::IpAddr>,
}

impl RequestContext {
    /// A context for work the server does on its own behalf (delivery, engines, tests).
    pub fn internal(account: &str, region: &str, endpoint: &str) -> Self {
        RequestContext {
            account: account.to_string(),
            region: region.to_string(),
            access_key: String::new(),
            caller_arn: format!("arn:aws:iam::{account}:root"),
            request_id: ids::request_id(),
            endpoint: endpoint.to_string(),
            source_ip: None,
        }
    }

    /// The context of a call a service makes for a user through a role (CodePipeline through
    /// the pipeline's `roleArn`, CodeBuild through the project's service role, EventBridge
    /// through a target's `RoleArn`): the caller becomes the role's session
    /// `arn:aws:sts::<acct>:assumed-role/<role>/<session>`, so IAM evaluates the role's policies.
    /// A `role_arn` that is not a role ARN keeps the caller as it is (the service then fails
    /// where it uses the role).
    pub fn acting_as_role(&self, role_arn: &str, session_name: &str) -> RequestContext {
        let mut ctx = self.clone();
        if let Some(a) = arn::Arn::parse(role_arn).filter(|a| a.service == "iam" && a.resource.starts_with("role/")) {
            let name = a.resource.rsplit('/').next().unwrap_or_default();
            ctx.caller_arn = format!("arn:aws:sts::{}:assumed-role/{name}/{session_name}", a.account);
            ctx.access_key = String::new();
            ctx.source_ip = None;
        }
        ctx
    }

    /// The `host:port` part of the endpoint.
    pub fn host(&self) -> &str {
        self.endpoint.split("://").nth(1).unwrap_or(&self.endpoint).trim_end_matches('/')
    }
}
