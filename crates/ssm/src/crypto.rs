//! SecureString values through KMS (the hub's [`KeyVault`]): encrypted under the parameter's
//! key with the encryption context `PARAMETER_ARN` = the parameter's ARN and
//! `kms:ViaService` = `ssm.<region>.amazonaws.com`, as Parameter Store does on AWS. What is
//! stored (and what GetParameter answers without WithDecryption) is the ciphertext, base64.

use crate::error::{SsmError, SsmResult};
use base64::Engine;
use codeyard_core::RequestContext;
use codeyard_core::hub::Hub;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone)]
pub struct Crypto {
    hub: Arc<Hub>,
}

fn context(arn: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("PARAMETER_ARN".to_string(), arn.to_string())])
}

fn via(ctx: &RequestContext) -> String {
    format!("ssm.{}.amazonaws.com", ctx.region)
}

impl Crypto {
    pub fn new(hub: Arc<Hub>) -> Self {
        Crypto { hub }
    }

    /// The ciphertext of `plaintext` under `key_id`, base64.
    pub async fn encrypt(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        arn: &str,
        plaintext: &str,
    ) -> SsmResult<String> {
        let keys = self.hub.keys().map_err(SsmError::Kms)?;
        let out = keys
            .encrypt(
                ctx,
                key_id,
                plaintext.as_bytes(),
                &context(arn),
                Some(&via(ctx)),
            )
            .await
            .map_err(SsmError::Kms)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(out.bytes))
    }

    /// The plaintext of a stored ciphertext.
    pub async fn decrypt(
        &self,
        ctx: &RequestContext,
        arn: &str,
        ciphertext: &str,
    ) -> SsmResult<String> {
        let blob = base64::engine::general_purpose::STANDARD
            .decode(ciphertext)
            .map_err(|e| {
                SsmError::Kms(codeyard_core::AwsError::internal(format!(
                    "stored ciphertext of {arn}: {e}"
                )))
            })?;
        let keys = self.hub.keys().map_err(SsmError::Kms)?;
        let out = keys
            .decrypt(ctx, &blob, &context(arn), Some(&via(ctx)))
            .await
            .map_err(SsmError::Kms)?;
        String::from_utf8(out.bytes).map_err(|e| {
            SsmError::Kms(codeyard_core::AwsError::internal(format!(
                "decrypted value of {arn}: {e}"
            )))
        })
    }
}
