//! STS's domain: temporary credentials bound to a role (AssumeRole) or to the caller
//! (GetSessionToken), kept in the store so that they survive a restart and so that the request
//! authenticator can verify requests signed with them ([`CredentialIssuer::lookup`]).
//!
//! Storage: `sts/credentials`, keyed by access key id (global: a key id names its account).
//! Expired credentials are refused by `lookup` and removed when they are next looked up.

use crate::iam::Iam;
use crate::policy_document::{DocumentKind, validate};
use codeyard_core::{AccessRequest, Denied, RequestContext};
use std::sync::{Arc, OnceLock};
use async_trait::async_trait;
use codeyard_core::hub::{CredentialIssuer, Credentials};
use codeyard_core::time::Timestamp;
use codeyard_core::{AwsError, AwsResult, ids};
use codeyard_store::{Batch, Expect, SharedStore, StateStoreExt};
use serde::{Deserialize, Serialize};

const CREDENTIALS_NS: &str = "sts/credentials";
/// Issued access key ids start with this (AWS's prefix for temporary keys).
const TEMPORARY_KEY_PREFIX: &str = "ASIA";

/// The decisions AssumeRole asks of the authorizer (the crate's `IamAuthorizer` implements
/// it), behind a trait so that STS does not depend on the authorizer, which reads sessions.
#[async_trait]
pub trait TrustCheck: Send + Sync {
    /// A signed request's caller: the role's trust policy (the request's resource policy,
    /// required) and, unless it names the caller, the caller's identity policies.
    async fn caller_may_assume(&self, ctx: &RequestContext, request: &AccessRequest) -> Result<(), Denied>;
    /// An AWS service acting for `account`: the trust policy must name the service.
    async fn service_may_assume(&self, account: &str, service: &str, request: &AccessRequest) -> Result<(), Denied>;
}

/// Issued credentials and the principal they act as.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    pub credentials: Credentials,
    /// GetCallerIdentity's UserId: `<RoleId>:<session name>` for roles, the account for root.
    pub user_id: String,
    /// For assumed roles: `<RoleId>:<session name>` and the role's name.
    pub assumed_role_id: Option<String>,
    /// Session policies passed to AssumeRole: the inline `Policy` document and the `PolicyArns`.
    /// The session may do only what its role's policies and these allow.
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub policy_arns: Vec<String>,
}

#[derive(Clone)]
pub struct Sts {
    store: SharedStore,
    iam: Iam,
    authorizer: Arc<OnceLock<Arc<dyn TrustCheck>>>,
}

fn access_denied(caller: &str, role_arn: &str) -> AwsError {
    AwsError::new(
        403,
        "AccessDenied",
        format!(
            "User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
        ),
    )
}

/// Who asks to assume a role: it decides which policies must allow it.
#[derive(Clone, Copy)]
pub enum Assumer<'a> {
    /// A signed request's caller: the role's trust policy and (unless the trust policy names
    /// the caller itself) the caller's identity policies must allow `sts:AssumeRole`.
    Caller(&'a RequestContext),
    /// An AWS service (`codebuild.amazonaws.com`) acting for `account`: the trust policy must
    /// name the service.
    Service { account: &'a str, service: &'a str },
    /// The server itself (the legacy [`CredentialIssuer::assume_role`]): nothing is checked.
    Server,
}

/// Session policies passed to AssumeRole (`Policy`, `PolicyArns`).
#[derive(Clone, Debug, Default)]
pub struct SessionPolicies {
    pub policy: Option<String>,
    pub policy_arns: Vec<String>,
}

impl Sts {
    pub fn new(store: SharedStore, iam: Iam) -> Self {
        Sts { store, iam, authorizer: Arc::new(OnceLock::new()) }
    }

    /// The evaluator that decides trust (set once at registration; without it nothing is
    /// checked, as in unit tests).
    pub fn set_authorizer(&self, a: Arc<dyn TrustCheck>) {
        let _ = self.authorizer.set(a);
    }

    /// Issues credentials for `role_arn` (which must exist and trust `who`) for
    /// `duration_seconds`. `strict_duration` refuses a duration above the role's
    /// MaxSessionDuration as the API does; otherwise (builds) it is capped.
    #[allow(clippy::too_many_arguments)]
    pub async fn assume_role(
        &self,
        who: Assumer<'_>,
        region: &str,
        role_arn: &str,
        session_name: &str,
        duration_seconds: Option<i64>,
        strict_duration: bool,
        policies: SessionPolicies,
    ) -> AwsResult<Session> {
        let caller = match who {
            Assumer::Caller(ctx) => ctx.caller_arn.clone(),
            Assumer::Service { service, .. } => service.to_string(),
            Assumer::Server => String::new(),
        };
        let arn = codeyard_core::arn::Arn::parse(role_arn)
            .filter(|a| a.service == "iam" && a.resource.starts_with("role/"))
            .ok_or_else(|| access_denied(&caller, role_arn))?;
        let role = self
            .iam
            .role_by_arn(&arn.account, role_arn)
            .await?
            .ok_or_else(|| access_denied(&caller, role_arn))?;
        if let Some(authorizer) = self.authorizer.get() {
            let request = AccessRequest::new("sts:AssumeRole", role_arn)
                .with("sts:RoleSessionName", session_name)
                .with_resource_policy(Some(role.assume_role_policy.clone()))
                .owned_by(arn.account.clone());
            let verdict = match who {
                Assumer::Caller(ctx) => authorizer.caller_may_assume(ctx, &request).await,
                Assumer::Service { account, service } => authorizer.service_may_assume(account, service, &request).await,
                Assumer::Server => Ok(()),
            };
            verdict.map_err(|_| access_denied(&caller, role_arn))?;
        }
        if let Some(p) = &policies.policy {
            validate(p, DocumentKind::Identity)?;
        }
        let mut duration = duration_seconds.unwrap_or(3600);
        if duration > role.max_session_duration {
            if strict_duration {
                return Err(AwsError::client(
                    "ValidationError",
                    format!(
                        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role. (DurationSeconds: {duration}, MaxSessionDuration: {})",
                        role.max_session_duration
                    ),
                ));
            }
            duration = role.max_session_duration;
        }
        let assumed_role_id = format!("{}:{session_name}", role.id);
        let principal = format!(
            "arn:aws:sts::{}:assumed-role/{}/{session_name}",
            arn.account, role.name
        );
        let session = self
            .issue(
                &arn.account,
                &principal,
                &assumed_role_id,
                Some(assumed_role_id.clone()),
                duration,
                policies,
            )
            .await?;
        // RoleLastUsed is informational: a failure to record it must not fail the call.
        if let Err(e) = self
            .iam
            .record_role_use(&arn.account, &role.name, region)
            .await
        {
            tracing::warn!(error = %e, role = %role.name, "could not record role use");
        }
        Ok(session)
    }

    /// GetSessionToken: credentials acting as the caller itself.
    pub async fn session_token(
        &self,
        account: &str,
        caller_access_key: &str,
        caller_arn: &str,
        duration: i64,
    ) -> AwsResult<Session> {
        if self.session(caller_access_key).await?.is_some() {
            return Err(AwsError::new(
                403,
                "AccessDenied",
                "Cannot call GetSessionToken with session credentials",
            ));
        }
        self.issue(account, caller_arn, account, None, duration, SessionPolicies::default())
            .await
    }

    async fn issue(
        &self,
        account: &str,
        arn: &str,
        user_id: &str,
        assumed_role_id: Option<String>,
        duration: i64,
        policies: SessionPolicies,
    ) -> AwsResult<Session> {
        let expiration: Timestamp =
            codeyard_core::time::now() + chrono::Duration::seconds(duration);
        let credentials = Credentials {
            access_key_id: format!("{TEMPORARY_KEY_PREFIX}{}", ids::upper_alnum(16)),
            secret_access_key: ids::alnum(40),
            session_token: Some(format!("IQoJb3JpZ2luX2VjE{}", ids::alnum(280))),
            expiration: Some(expiration),
            account: account.to_string(),
            arn: arn.to_string(),
        };
        let session = Session {
            credentials,
            user_id: user_id.to_string(),
            assumed_role_id,
            policy: policies.policy,
            policy_arns: policies.policy_arns,
        };
        let key = session.credentials.access_key_id.clone();
        self.store
            .commit(Batch::new().put(CREDENTIALS_NS, key, &session, Expect::Absent))
            .await?;
        Ok(session)
    }

    /// The live session an access key id belongs to, if it was issued here and has not expired.
    pub async fn session(&self, access_key_id: &str) -> AwsResult<Option<Session>> {
        if !access_key_id.starts_with(TEMPORARY_KEY_PREFIX) {
            return Ok(None); // Not one of ours: no store read on every request.
        }
        let Some((session, version)) = self
            .store
            .get_as::<Session>(CREDENTIALS_NS, access_key_id)
            .await?
        else {
            return Ok(None);
        };
        let expired = session
            .credentials
            .expiration
            .is_some_and(|e| e <= codeyard_core::time::now());
        if expired {
            let _ = self
                .store
                .commit(Batch::new().delete(
                    CREDENTIALS_NS,
                    access_key_id,
                    Expect::Version(version),
                ))
                .await;
            return Ok(None);
        }
        Ok(Some(session))
    }
}

impl Sts {
    /// Credentials for the server or a service principal (`who`) assuming `role_arn`, for at
    /// least 15 minutes (STS's minimum).
    async fn credentials_for(&self, who: Assumer<'_>, role_arn: &str, session_name: &str, duration_seconds: u32) -> AwsResult<Credentials> {
        let duration = (duration_seconds as i64).max(900);
        let session = self.assume_role(who, "", role_arn, session_name, Some(duration), false, SessionPolicies::default()).await?;
        Ok(session.credentials)
    }
}

#[async_trait]
impl CredentialIssuer for Sts {
    async fn assume_role(&self, _account: &str, role_arn: &str, session_name: &str, duration_seconds: u32) -> AwsResult<Credentials> {
        self.credentials_for(Assumer::Server, role_arn, session_name, duration_seconds).await
    }

    async fn assume_role_as_service(&self, account: &str, role_arn: &str, service_principal: &str, session_name: &str, duration_seconds: u32) -> AwsResult<Credentials> {
        let who = Assumer::Service { account, service: service_principal };
        self.credentials_for(who, role_arn, session_name, duration_seconds).await
    }

    /// Issued sessions (`ASIA...`) and IAM users' active access keys (`AKIA...`).
    async fn lookup(&self, access_key_id: &str) -> AwsResult<Option<Credentials>> {
        if let Some(c) = self.iam.access_key_credentials(access_key_id).await? {
            return Ok(Some(c));
        }
        Ok(self.session(access_key_id).await?.map(|s| s.credentials))
    }
}
