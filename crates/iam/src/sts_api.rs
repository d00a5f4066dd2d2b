//! The STS API (awsQuery): the generated [`StsApi`] trait implemented over [`crate::sts::Sts`].

use crate::query_validation_error;
use crate::sts::{Session, Sts};
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

    async fn get_caller_identity(&self, ctx: &RequestContext, _input: GetCallerIdentityInput) -> AwsResult<GetCallerIdentityOutput> {
        let user_id = match self.sts.session(&ctx.access_key).await? {
            Some(s) => s.user_id,
            None => ctx.account.clone(),
        };
        Ok(GetCallerIdentityOutput { user_id: Some(user_id), account: Some(ctx.account.clone()), arn: Some(ctx.caller_arn.clone()) })
    }

    async fn assume_role(&self, ctx: &RequestContext, input: AssumeRoleInput) -> AwsResult<AssumeRoleOutput> {
        let duration = input.duration_seconds.map(i64::from);
        let session = self.sts.assume_role(&ctx.caller_arn, &ctx.region, &input.role_arn, &input.role_session_name, duration, true).await?;
        let assumed_role_user =
            AssumedRoleUser { assumed_role_id: session.assumed_role_id.clone().unwrap_or_default(), arn: session.credentials.arn.clone() };
        Ok(AssumeRoleOutput {
            credentials: Some(credentials(&session)),
            assumed_role_user: Some(assumed_role_user),
            packed_policy_size: Some(0),
            source_identity: None,
        })
    }

    async fn get_session_token(&self, ctx: &RequestContext, input: GetSessionTokenInput) -> AwsResult<GetSessionTokenOutput> {
        let duration = input.duration_seconds.map_or(DEFAULT_SESSION_TOKEN_SECONDS, i64::from);
        let session = self.sts.session_token(&ctx.account, &ctx.access_key, &ctx.caller_arn, duration).await?;
        Ok(GetSessionTokenOutput { credentials: Some(credentials(&session)) })
    }
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
