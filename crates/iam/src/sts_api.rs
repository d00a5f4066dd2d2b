//! The STS API (awsQuery) as a thin adapter over [`crate::sts::Sts`].

use crate::query_validation_error;
use crate::sts::{Session, Sts};
use async_trait::async_trait;
use codeyard_core::time::epoch_json;
use codeyard_core::{AwsError, AwsResult, RequestContext};
use codeyard_wire::shapes::Problem;
use codeyard_wire::{AwsService, str_of};
use serde_json::{Value, json};

pub struct StsService {
    pub sts: Sts,
}

#[async_trait]
impl AwsService for StsService {
    fn model_name(&self) -> &'static str {
        "sts"
    }
    fn implemented(&self) -> &'static [&'static str] {
        &["GetCallerIdentity", "AssumeRole", "GetSessionToken"]
    }
    fn validation_error(&self, _operation: &str, problems: &[Problem]) -> AwsError {
        query_validation_error(problems)
    }
    async fn call(&self, ctx: &RequestContext, op: &str, input: Value) -> AwsResult<Value> {
        match op {
            "GetCallerIdentity" => {
                let user_id = match self.sts.session(&ctx.access_key).await? {
                    Some(s) => s.user_id,
                    None => ctx.account.clone(),
                };
                Ok(json!({"UserId": user_id, "Account": ctx.account, "Arn": ctx.caller_arn}))
            }
            "AssumeRole" => {
                let session = self
                    .sts
                    .assume_role(
                        &ctx.caller_arn,
                        &ctx.region,
                        str_of(&input, "RoleArn"),
                        str_of(&input, "RoleSessionName"),
                        input["DurationSeconds"].as_i64(),
                        true,
                    )
                    .await?;
                Ok(json!({
                    "Credentials": credentials_json(&session),
                    "AssumedRoleUser": {
                        "AssumedRoleId": session.assumed_role_id.clone().unwrap_or_default(),
                        "Arn": session.credentials.arn,
                    },
                    "PackedPolicySize": 0,
                }))
            }
            "GetSessionToken" => {
                let duration = input["DurationSeconds"].as_i64().unwrap_or(43200);
                let session = self
                    .sts
                    .session_token(&ctx.account, &ctx.access_key, &ctx.caller_arn, duration)
                    .await?;
                Ok(json!({"Credentials": credentials_json(&session)}))
            }
            _ => Err(AwsError::unknown_operation("STS", op)),
        }
    }
}

fn credentials_json(s: &Session) -> Value {
    let c = &s.credentials;
    json!({
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key,
        "SessionToken": c.session_token,
        "Expiration": c.expiration.as_ref().map(epoch_json),
    })
}
