//! codeyard-kms: AWS Key Management Service (awsJson1.1), symmetric keys with real
//! authenticated encryption.
//!
//! * [`crypto`]: AES-256-GCM; the master key file that wraps every key's material; the
//!   ciphertext blob format (it names its key, so Decrypt needs no KeyId).
//! * [`domain`]: keys and aliases in the state store; [`domain::KmsError`] gets KMS's codes at
//!   the edge. AWS managed keys (`alias/aws/ssm`, `alias/aws/secretsmanager`, `alias/aws/s3`) are created on
//!   first use with the policy AWS writes for them.
//! * [`api`]: the generated `codeyard_api::kms::KmsApi` trait. Every call on a key is
//!   authorized on the key's ARN with its key policy as the resource policy.
//! * [`KeyVaultImpl`]: the hub's [`KeyVault`], which SSM and Secrets Manager encrypt through
//!   (authorized as the caller, with `kms:ViaService`).

pub mod api;
pub mod crypto;
pub mod domain;

use async_trait::async_trait;
use codeyard_core::hub::{Hub, KeyVault, KeyVaultOutput};
use codeyard_core::{AwsResult, RequestContext};
use codeyard_wire::{Platform, Registry};
use domain::{Kms, Scope};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How often keys whose deletion date has passed are deleted.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// KMS as other services use it: every call is authorized for the context's caller on the
/// key, with its key policy and `kms:ViaService`.
pub struct KeyVaultImpl {
    kms: Kms,
    hub: Arc<Hub>,
}

impl KeyVaultImpl {
    async fn authorize(&self, ctx: &RequestContext, action: &str, key: &domain::KeyRecord, ec: &BTreeMap<String, String>, via: Option<&str>) -> AwsResult<()> {
        self.hub
            .authorize(ctx, &api::key_request(ctx, action, key, Some(ec), via))
            .await
            .map_err(|d| d.to_error("AccessDeniedException"))
    }
}

#[async_trait]
impl KeyVault for KeyVaultImpl {
    async fn encrypt(&self, ctx: &RequestContext, key_id: &str, plaintext: &[u8], ec: &BTreeMap<String, String>, via_service: Option<&str>) -> AwsResult<KeyVaultOutput> {
        let s = Scope::of(ctx);
        let key = self.kms.resolve(&s, key_id, true).await?;
        self.authorize(ctx, "kms:Encrypt", &key, ec, via_service).await?;
        let material = self.kms.usable(&key)?;
        Ok(KeyVaultOutput { bytes: crypto::encrypt(&key.key_id, &material, plaintext, ec), key_arn: key.arn })
    }

    async fn generate_data_key(&self, ctx: &RequestContext, key_id: &str, ec: &BTreeMap<String, String>, via_service: Option<&str>) -> AwsResult<KeyVaultOutput> {
        let s = Scope::of(ctx);
        let key = self.kms.resolve(&s, key_id, true).await?;
        self.authorize(ctx, "kms:GenerateDataKey", &key, ec, via_service).await?;
        let material = self.kms.usable(&key)?;
        let data_key = crypto::random_bytes(32);
        Ok(KeyVaultOutput { bytes: crypto::encrypt(&key.key_id, &material, &data_key, ec), key_arn: key.arn })
    }

    async fn decrypt(&self, ctx: &RequestContext, ciphertext: &[u8], ec: &BTreeMap<String, String>, via_service: Option<&str>) -> AwsResult<KeyVaultOutput> {
        let s = Scope::of(ctx);
        let key = self.kms.key_of_ciphertext(&s, ciphertext).await?;
        self.authorize(ctx, "kms:Decrypt", &key, ec, via_service).await?;
        let (bytes, key) = self.kms.decrypt(&s, ciphertext, ec, None).await?;
        Ok(KeyVaultOutput { bytes, key_arn: key.arn })
    }
}

/// Registers KMS and the hub's key vault.
pub async fn register(registry: &mut Registry, platform: &Platform) -> anyhow::Result<()> {
    let master = crypto::MasterKey::load_or_create(&platform.config.data_dir.join("kms"))?;
    let kms = Kms { store: platform.store.clone(), master };
    platform.hub.set_keys(Arc::new(KeyVaultImpl { kms: kms.clone(), hub: platform.hub.clone() }));
    registry.add_aws(codeyard_api::kms::service(api::KmsService { kms: kms.clone(), hub: platform.hub.clone() }));
    let purge = |kms: Kms, now| async move { kms.purge_due(now).await };
    platform.spawn_sweep(PURGE_EVERY, kms, purge, ("KMS keys past their deletion date deleted", "KMS key purge failed"));
    Ok(())
}
