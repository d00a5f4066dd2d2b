//! The question every enforcement point asks IAM, and the answer, without depending on IAM.
//!
//! Enforcement points (the wire's dispatcher for awsJson/awsQuery, S3, git, the registry, and
//! every call a service makes for a user through a role) build an [`AccessRequest`] per IAM
//! action the call needs and ask [`crate::Hub::authorize`]. The answer comes from the
//! [`Authorizer`] the IAM crate registers at start-up, which evaluates the caller's identity
//! policies (and the resource policy the enforcement point hands in) with AWS's documented
//! logic. The caller is the request context's `caller_arn`:
//!
//! * `arn:aws:iam::<acct>:root`: the account's root (the default `test` key, and work the
//!   server does by itself): allowed everything, except what a resource policy explicitly
//!   denies.
//! * `arn:aws:iam::<acct>:user/<path/>name`: an IAM user's access key.
//! * `arn:aws:sts::<acct>:assumed-role/<role>/<session>`: an STS session, including the
//!   sessions services act in ([`crate::RequestContext::acting_as_role`]).
//!
//! What happens with a denial depends on `--iam`: `enforce` refuses, `audit` records it and
//! allows, `off` asks nothing. The [`Authorizer`] applies the mode; enforcement points only
//! turn a [`Denied`] into their protocol's error.

use crate::{AwsError, RequestContext};
use async_trait::async_trait;
use std::collections::BTreeMap;

/// How IAM decisions are applied (`codeyard serve --iam`, `CODEYARD_IAM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IamMode {
    /// Denials refuse the request, as on AWS. The default.
    #[default]
    Enforce,
    /// Every request is allowed; each would-be denial is recorded (`codeyard doctor` lists them).
    Audit,
    /// No policy is evaluated.
    Off,
}

impl IamMode {
    pub fn parse(s: &str) -> Option<IamMode> {
        match s {
            "enforce" => Some(IamMode::Enforce),
            "audit" => Some(IamMode::Audit),
            "off" => Some(IamMode::Off),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            IamMode::Enforce => "enforce",
            IamMode::Audit => "audit",
            IamMode::Off => "off",
        }
    }
}

/// One IAM action on one resource, with the request's condition keys.
#[derive(Clone, Debug, Default)]
pub struct AccessRequest {
    /// `s3:PutObject`.
    pub action: String,
    /// The resource ARN (`arn:aws:s3:::bucket/key`), or `*` for actions without resource types.
    pub resource: String,
    /// Service condition keys and request-specific global keys (`s3:prefix`,
    /// `codecommit:References`, `aws:RequestTag/k`, `iam:PassedToService`). The authorizer adds
    /// the keys every request carries (aws:PrincipalArn, aws:CurrentTime, aws:SourceIp ...).
    pub context: BTreeMap<String, Vec<String>>,
    /// The resource's own policy (S3 bucket policy, ECR repository policy) as JSON, if it has one.
    pub resource_policy: Option<String>,
    /// The account that owns the resource, when it is not the caller's (cross-account access
    /// needs the resource policy to allow it too). `None`: the caller's account.
    pub resource_account: Option<String>,
    /// The resource's policy must allow even within the account (KMS key policies): IAM
    /// policies count only where it names the account.
    pub resource_policy_required: bool,
}

impl AccessRequest {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        AccessRequest { action: action.into(), resource: resource.into(), ..Default::default() }
    }
    /// Adds a condition key value.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.context.entry(key.into()).or_default().push(value.into());
        self
    }
    /// `iam:PassRole` of `role_arn` to `service` (`codebuild.amazonaws.com`): what AWS asks
    /// when a caller names a role a service will act as (CreateProject, CreatePipeline,
    /// PutTargets).
    pub fn pass_role(role_arn: impl Into<String>, service: &str) -> Self {
        Self::new("iam:PassRole", role_arn).with("iam:PassedToService", service)
    }
    pub fn with_resource_policy(mut self, policy: Option<String>) -> Self {
        self.resource_policy = policy;
        self
    }
    /// See [`AccessRequest::resource_policy_required`].
    pub fn requiring_resource_policy(mut self) -> Self {
        self.resource_policy_required = true;
        self
    }
    pub fn owned_by(mut self, account: impl Into<String>) -> Self {
        self.resource_account = Some(account.into());
        self
    }
}

/// A request IAM refuses: AWS's message, ready for the protocol's error shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    /// "User: arn:aws:sts::000000000000:assumed-role/R/S is not authorized to perform:
    /// s3:PutObject on resource: arn:aws:s3:::b/k because no identity-based policy allows the
    /// s3:PutObject action"
    pub message: String,
    pub action: String,
    pub resource: String,
}

impl Denied {
    /// The error in a service's code (`AccessDeniedException` for most awsJson services,
    /// `AccessDenied` for S3, IAM and STS).
    pub fn to_error(&self, code: &str) -> AwsError {
        AwsError::new(403, code, self.message.clone())
    }
}

/// Evaluates access requests (the IAM crate implements it over codeyard-policy).
#[async_trait]
pub trait Authorizer: Send + Sync {
    /// `Ok(())` when allowed (or when the mode lets it pass), `Err(Denied)` when refused.
    /// Store failures count as a denial with the reason in the message.
    async fn authorize(&self, ctx: &RequestContext, request: &AccessRequest) -> Result<(), Denied>;
    /// The mode in force.
    fn mode(&self) -> IamMode;
}

/// The ARN of an assumed-role session's role: `arn:aws:sts::1:assumed-role/R/S` ->
/// `arn:aws:iam::1:role/R` (roles with a path keep only the name in the session ARN, as on AWS;
/// the authorizer looks the role up by name).
pub fn role_of_session(session_arn: &str) -> Option<(String, String)> {
    let rest = session_arn.strip_prefix("arn:aws:sts::")?;
    let (account, resource) = rest.split_once(':')?;
    let role_and_session = resource.strip_prefix("assumed-role/")?;
    let (role, _session) = role_and_session.split_once('/')?;
    Some((account.to_string(), role.to_string()))
}
