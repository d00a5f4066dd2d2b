//! codeyard-secretsmanager: AWS Secrets Manager (awsJson1.1).
//!
//! * [`domain`]: secrets, versions and staging labels in the state store; values encrypted
//!   through the hub's KMS key vault (never stored in the clear); [`domain::SecretsError`]
//!   gets Secrets Manager's codes at the edge.
//! * [`api`]: the generated `codeyard_api::secretsmanager::SecretsManagerApi` trait. Every call
//!   on a secret is authorized on the secret's ARN with its resource policy.
//! * [`SecretReaderImpl`]: the hub's [`SecretReader`] (CodeBuild's `secrets-manager` variables).

pub mod api;
pub mod domain;

use async_trait::async_trait;
use codeyard_core::hub::SecretReader;
use codeyard_core::{AwsError, AwsResult, RequestContext};
use codeyard_wire::{Platform, Registry};
use domain::{Scope, SecretValue, Secrets};
use std::sync::Arc;

/// How often secrets past their recovery window are deleted.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Secrets Manager as builds use it: authorized as the context's caller
/// (`secretsmanager:GetSecretValue` with the secret's resource policy, then KMS decrypt
/// through Secrets Manager).
pub struct SecretReaderImpl {
    secrets: Secrets,
}

#[async_trait]
impl SecretReader for SecretReaderImpl {
    async fn secret_value(&self, ctx: &RequestContext, secret_id: &str, version_stage: Option<&str>, version_id: Option<&str>) -> AwsResult<String> {
        let s = Scope::of(ctx);
        let (secret, _) = self.secrets.find(&s, secret_id).await?;
        self.secrets
            .hub
            .authorize(ctx, &api::secret_request(ctx, "secretsmanager:GetSecretValue", Some(&secret), &secret.name))
            .await
            .map_err(|d| d.to_error("AccessDeniedException"))?;
        let read = self.secrets.get_value(ctx, &secret.arn, version_id, version_stage).await?;
        match read.value {
            SecretValue::String(v) => Ok(v),
            SecretValue::Binary(_) => Err(AwsError::client("InvalidRequestException", format!("The secret {} holds a SecretBinary, not a SecretString.", secret.name))),
        }
    }
}

/// Registers Secrets Manager and the hub's secret reader.
pub async fn register(registry: &mut Registry, platform: &Platform) -> anyhow::Result<()> {
    let secrets = Secrets { store: platform.store.clone(), hub: platform.hub.clone() };
    platform.hub.set_secrets(Arc::new(SecretReaderImpl { secrets: secrets.clone() }));
    registry.add_aws(codeyard_api::secretsmanager::service(api::SecretsManagerService { secrets: secrets.clone() }));
    let purge = |secrets: Secrets, now| async move { secrets.purge_due(now).await };
    platform.spawn_sweep(PURGE_EVERY, secrets, purge, ("secrets past their recovery window deleted", "secret purge failed"));
    Ok(())
}
