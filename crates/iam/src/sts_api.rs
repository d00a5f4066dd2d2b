//! The STS API (awsQuery): the generated [`StsApi`] trait implemented over [`crate::sts::Sts`].

use crate::query_validation_error;
use crate::sts::{Assumer, Session, SessionPolicies, Sts};
use codeyard_api::sts::*;
use codeyard_api::Timestamp;
use codeyard_core::{AwsError, AwsResult, RequestContext};
use codeyard_wire::shapes::Problem;

pub struct StsService {
    pub sts: Sts,
}

/// GetSessionToken's default lifetime (12 hours), as AWS documents it.
const DEFAULT_SESSION_TOKEN_SECONDS: i64 = 43_200;

#[codeyard_api::service]
impl StsApi for StsService {
    fn validation_error(&self, _operation: &str, problems: &[Problem]) -> AwsError {
        query_validation_error(problems)
    }

    /// AssumeRole is decided by the domain (the trust policy can allow on its own, which an
    /// identity-only check before the call would miss); the rest as the reference says.
    async fn access_requests(&self, ctx: &RequestContext, operation: &str, input: &serde_json::Value) -> AwsResult<Vec<codeyard_core::AccessRequest>> {
        // GetSessionToken: "No permissions are required for users to perform this operation."
        if operation == "AssumeRole" || operation == "GetSessionToken" {
            return Ok(Vec::new());
        }
        Ok(codeyard_api::access::access_requests("sts", ctx, operation, input))
    }

    async fn get_caller_identity(&self, ctx: &RequestContext, _input: GetCallerIdentityInput) -> AwsResult<GetCallerIdentityOutput> {
        let user_id = match self.sts.session(&ctx.access_key).await? {
            Some(s) => s.user_id,
            None => ctx.account.clone(),
        };
        Ok(GetCallerIdentityOutput { user_id: Some(user_id), account: Some(ctx.account.clone()), arn: Some(ctx.caller_arn.clone()) })
    }

    async fn assume_role(&self, ctx: &RequestContext, input: AssumeRoleInput) -> AwsResult<AssumeRoleOutput> {
        let duration = input.duration_seconds.map(i64::from);
        let policies = SessionPolicies {
            policy: input.policy,
            policy_arns: input.policy_arns.into_iter().flatten().filter_map(|p| p.arn).collect(),
        };
        // AWS reports how much of the packed session policy quota the policies use, in percent.
        let packed = packed_size(&policies);
        let session = self.sts.assume_role(Assumer::Caller(ctx), &ctx.region, &input.role_arn, &input.role_session_name, duration, true, policies).await?;
        let assumed_role_user =
            AssumedRoleUser { assumed_role_id: session.assumed_role_id.clone().unwrap_or_default(), arn: session.credentials.arn.clone() };
        Ok(AssumeRoleOutput {
            credentials: Some(credentials(&session)),
            assumed_role_user: Some(assumed_role_user),
            packed_policy_size: packed,
            source_identity: None,
        })
    }

    async fn get_session_token(&self, ctx: &RequestContext, input: GetSessionTokenInput) -> AwsResult<GetSessionTokenOutput> {
        let duration = input.duration_seconds.map_or(DEFAULT_SESSION_TOKEN_SECONDS, i64::from);
        let session = self.sts.session_token(&ctx.account, &ctx.access_key, &ctx.caller_arn, duration).await?;
        Ok(GetSessionTokenOutput { credentials: Some(credentials(&session)) })
    }
}

/// PackedPolicySize: the session policies' share of the packed size quota, in percent (`None`
/// without session policies, as STS leaves it out).
fn packed_size(p: &SessionPolicies) -> Option<i32> {
    if p.policy.is_none() && p.policy_arns.is_empty() {
        return None;
    }
    let bytes = p.policy.as_ref().map_or(0, |d| d.split_whitespace().map(str::len).sum::<usize>()) + 64 * p.policy_arns.len();
    Some(((bytes * 100).div_ceil(2048)).min(100) as i32)
}

fn credentials(s: &Session) -> Credentials {
    let c = &s.credentials;
    Credentials {
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.clone(),
        // Issued sessions always carry both; long-term keys never reach here.
        session_token: c.session_token.clone().unwrap_or_default(),
        expiration: Timestamp(c.expiration.unwrap_or_else(codeyard_core::time::now)),
    }
}
