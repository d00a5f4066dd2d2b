//! STS's domain: temporary credentials bound to a role (AssumeRole) or to the caller
//! (GetSessionToken), kept in the store so that they survive a restart and so that the request
//! authenticator can verify requests signed with them ([`CredentialIssuer::lookup`]).
//!
//! Storage: `sts/credentials`, keyed by access key id (global: a key id names its account).
//! Expired credentials are refused by `lookup` and removed when they are next looked up.

use crate::iam::Iam;
use async_trait::async_trait;
use codeyard_core::hub::{CredentialIssuer, Credentials};
use codeyard_core::time::Timestamp;
use codeyard_core::{AwsError, AwsResult, ids};
use codeyard_store::{Batch, Expect, SharedStore, StateStoreExt};
use serde::{Deserialize, Serialize};

const CREDENTIALS_NS: &str = "sts/credentials";
/// Issued access key ids start with this (AWS's prefix for temporary keys).
const TEMPORARY_KEY_PREFIX: &str = "ASIA";

/// Issued credentials and the principal they act as.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    pub credentials: Credentials,
    /// GetCallerIdentity's UserId: `<RoleId>:<session name>` for roles, the account for root.
    pub user_id: String,
    /// For assumed roles: `<RoleId>:<session name>` and the role's name.
    pub assumed_role_id: Option<String>,
}

#[derive(Clone)]
pub struct Sts {
    store: SharedStore,
    iam: Iam,
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

impl Sts {
    pub fn new(store: SharedStore, iam: Iam) -> Self {
        Sts { store, iam }
    }

    /// Issues credentials for `role_arn` (which must exist) for `duration_seconds`.
    /// `strict_duration` refuses a duration above the role's MaxSessionDuration as the API
    /// does; otherwise (builds) it is capped.
    pub async fn assume_role(
        &self,
        caller_arn: &str,
        region: &str,
        role_arn: &str,
        session_name: &str,
        duration_seconds: Option<i64>,
        strict_duration: bool,
    ) -> AwsResult<Session> {
        let arn = codeyard_core::arn::Arn::parse(role_arn)
            .filter(|a| a.service == "iam" && a.resource.starts_with("role/"))
            .ok_or_else(|| access_denied(caller_arn, role_arn))?;
        let role = self
            .iam
            .role_by_arn(&arn.account, role_arn)
            .await?
            .ok_or_else(|| access_denied(caller_arn, role_arn))?;
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
        self.issue(account, caller_arn, account, None, duration)
            .await
    }

    async fn issue(
        &self,
        account: &str,
        arn: &str,
        user_id: &str,
        assumed_role_id: Option<String>,
        duration: i64,
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

#[async_trait]
impl CredentialIssuer for Sts {
    async fn assume_role(
        &self,
        account: &str,
        role_arn: &str,
        session_name: &str,
        duration_seconds: u32,
    ) -> AwsResult<Credentials> {
        let caller = format!("arn:aws:iam::{account}:root");
        let duration = (duration_seconds as i64).max(900);
        let session = self
            .assume_role(&caller, "", role_arn, session_name, Some(duration), false)
            .await?;
        Ok(session.credentials)
    }

    async fn lookup(&self, access_key_id: &str) -> AwsResult<Option<Credentials>> {
        Ok(self.session(access_key_id).await?.map(|s| s.credentials))
    }
}
