//! The KMS API (awsJson1.1): the generated `KmsApi` trait over [`crate::domain::Kms`].

use crate::domain::{AliasRecord, KeyRecord, KeyStatus, Kms, KmsError, Manager, NewKey, Scope};
use codeyard_api::kms::*;
use codeyard_api::{Blob, Timestamp, Unit};
use codeyard_core::tags::{self, MAX_TAGS};
use codeyard_core::hub::Hub;
use codeyard_core::{AccessRequest, AwsError, AwsResult, IamMode, RequestContext};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct KmsService {
    pub kms: Kms,
    /// For the policy lockout safety check.
    pub hub: Arc<Hub>,
}

/// The access requests of a KMS action on `key` (resolved: the key's ARN and its key policy
/// as the resource policy), with the condition keys KMS sets. The key policy must allow: IAM
/// policies count only where it names the account (the default policy's first statement).
pub fn key_request(ctx: &RequestContext, action: &str, key: &KeyRecord, encryption_context: Option<&BTreeMap<String, String>>, via_service: Option<&str>) -> AccessRequest {
    let mut r = key_policy_request(ctx, action, key.arn.clone(), &key.policy);
    if let Some(v) = via_service {
        r = r.with("kms:ViaService", v);
    }
    if let Some(ec) = encryption_context {
        for (k, v) in ec {
            r = r.with(format!("kms:EncryptionContext:{k}"), v.clone());
            r = r.with("kms:EncryptionContextKeys", k.clone());
        }
    }
    r
}

/// `action` on the key `key_arn` under the key policy `policy`, which must allow.
fn key_policy_request(ctx: &RequestContext, action: &str, key_arn: String, policy: &str) -> AccessRequest {
    AccessRequest::new(action, key_arn)
        .with_resource_policy(Some(policy.to_string()))
        .requiring_resource_policy()
        .with("kms:CallerAccount", ctx.account.clone())
}

fn str_member<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

/// The encryption context an action is asked with: ReEncrypt's source context for
/// kms:ReEncryptFrom, its destination context for kms:ReEncryptTo, else `EncryptionContext`.
fn context_member(input: &Value, action: &str) -> Option<BTreeMap<String, String>> {
    let member = match action {
        "kms:ReEncryptFrom" => "SourceEncryptionContext",
        "kms:ReEncryptTo" => "DestinationEncryptionContext",
        _ => "EncryptionContext",
    };
    serde_json::from_value(input.get(member)?.clone()).ok()
}

/// The required `CiphertextBlob` of Decrypt and ReEncrypt.
fn ciphertext(blob: Option<Blob>) -> Result<Vec<u8>, AwsError> {
    blob.map(|b| b.0).ok_or_else(|| AwsError::validation("1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null"))
}

fn limit(l: Option<i32>) -> usize {
    l.unwrap_or(100).clamp(1, 1000) as usize
}

/// One page of `items` after `marker` (an index).
fn page<T: Clone>(items: &[T], marker: Option<&str>, limit: usize) -> (Vec<T>, Option<String>) {
    let start: usize = marker.and_then(|m| m.parse().ok()).unwrap_or(0);
    let end = (start + limit).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    (items.get(start..end).unwrap_or_default().to_vec(), next)
}

pub fn metadata(k: &KeyRecord) -> KeyMetadata {
    KeyMetadata {
        aws_account_id: Some(k.account.clone()),
        key_id: k.key_id.clone(),
        arn: Some(k.arn.clone()),
        creation_date: Some(Timestamp(k.created)),
        enabled: Some(k.status == KeyStatus::Enabled),
        description: Some(k.description.clone()),
        key_usage: Some(KeyUsageType::EncryptDecrypt),
        key_state: Some(KeyState::from(k.status.as_str())),
        deletion_date: k.deletion_date.map(Timestamp),
        origin: Some(OriginType::AwsKms),
        key_manager: Some(match k.manager {
            Manager::Aws => KeyManagerType::Aws,
            Manager::Customer => KeyManagerType::Customer,
        }),
        customer_master_key_spec: Some(CustomerMasterKeySpec::SymmetricDefault),
        key_spec: Some(KeySpec::SymmetricDefault),
        encryption_algorithms: Some(vec![EncryptionAlgorithmSpec::SymmetricDefault]),
        multi_region: Some(k.multi_region),
        ..Default::default()
    }
}

fn alias_entry(s: &Scope, a: &AliasRecord) -> AliasListEntry {
    AliasListEntry {
        alias_name: Some(a.name.clone()),
        alias_arn: Some(s.alias_arn(&a.name)),
        target_key_id: Some(a.target_key_id.clone()),
        creation_date: Some(Timestamp(a.created)),
        last_updated_date: Some(Timestamp(a.updated)),
    }
}

fn customer_managed(k: &KeyRecord) -> Result<(), KmsError> {
    if k.manager == Manager::Aws {
        return Err(KmsError::Unsupported(format!("{} is an AWS managed key: it cannot be changed", k.arn)));
    }
    Ok(())
}

/// AWS's ValidationException for a number outside its member's range.
fn out_of_range(value: i32, member: &str, range: &str) -> AwsError {
    KmsError::Validation(format!("1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must have value {range}")).into()
}

fn not_pending_deletion(k: &KeyRecord) -> Result<(), KmsError> {
    if k.status == KeyStatus::PendingDeletion {
        return Err(KmsError::InvalidState(format!("{} is pending deletion.", k.arn)));
    }
    Ok(())
}

fn tags_map(tags: Option<Vec<Tag>>) -> BTreeMap<String, String> {
    tags.unwrap_or_default().into_iter().map(|t| (t.tag_key, t.tag_value)).collect()
}

fn check_algorithm(a: &Option<EncryptionAlgorithmSpec>) -> Result<(), KmsError> {
    match a {
        None | Some(EncryptionAlgorithmSpec::SymmetricDefault) => Ok(()),
        Some(other) => Err(KmsError::InvalidKeyUsage(format!("The encryption algorithm {} is not supported by a SYMMETRIC_DEFAULT key.", other.as_str()))),
    }
}

fn data_key_len(bytes: Option<i32>, spec: &Option<DataKeySpec>) -> Result<usize, KmsError> {
    match (bytes, spec) {
        (Some(_), Some(_)) => Err(KmsError::Validation("Please specify either number of bytes or key spec.".into())),
        (Some(n), None) => Ok(n as usize),
        (None, Some(DataKeySpec::Aes128)) => Ok(16),
        (None, Some(_)) => Ok(32),
        (None, None) => Err(KmsError::Validation("Please specify either number of bytes or key spec.".into())),
    }
}

impl KmsService {
    /// AWS's policy lockout safety check (CreateKey with a policy, PutKeyPolicy; skipped with
    /// `BypassPolicyLockoutSafetyCheck`): the new policy must let the caller change it again,
    /// or the key could never be managed again. Only when IAM enforces: in audit mode the
    /// question would be recorded as a denial of a call nobody made.
    async fn lockout_check(&self, ctx: &RequestContext, key_arn: String, policy: &str, bypass: Option<bool>) -> AwsResult<()> {
        if bypass == Some(true) || self.hub.iam_mode() != IamMode::Enforce {
            return Ok(());
        }
        let next_change = key_policy_request(ctx, "kms:PutKeyPolicy", key_arn, policy);
        self.hub
            .authorize(ctx, &next_change)
            .await
            .map_err(|_| KmsError::MalformedPolicy("The new key policy will not allow you to update the key policy in the future.".into()).into())
    }

    /// EnableKey / DisableKey: customer managed keys not pending deletion.
    async fn set_status(&self, ctx: &RequestContext, key_id: &str, status: KeyStatus) -> AwsResult<Unit> {
        self.change_key(ctx, key_id, |k| {
            not_pending_deletion(k)?;
            k.status = status;
            Ok(())
        })
        .await
    }

    /// EnableKeyRotation (every `period_days`) and DisableKeyRotation (`None`).
    async fn set_rotation(&self, ctx: &RequestContext, key_id: &str, period_days: Option<i32>) -> AwsResult<Unit> {
        self.change_key(ctx, key_id, |k| {
            rotatable(k)?;
            k.rotation_enabled = period_days.is_some();
            if let Some(days) = period_days {
                k.rotation_period_days = days;
            }
            Ok(())
        })
        .await
    }

    /// A change to a customer managed key (AWS managed keys cannot be changed); the
    /// operation answers an empty output.
    async fn change_key(&self, ctx: &RequestContext, key_id: &str, mut change: impl FnMut(&mut KeyRecord) -> Result<(), KmsError> + Send) -> AwsResult<Unit> {
        self.kms
            .update_key(&Scope::of(ctx), key_id, |k| {
                customer_managed(k)?;
                change(k)
            })
            .await?;
        Ok(Unit {})
    }

    async fn key_for_request(&self, ctx: &RequestContext, operation: &str, action: &str, input: &Value) -> Option<KeyRecord> {
        let s = Scope::of(ctx);
        if matches!(operation, "Decrypt") || action == "kms:ReEncryptFrom" {
            use base64::Engine;
            let blob = base64::engine::general_purpose::STANDARD.decode(str_member(input, "CiphertextBlob")?).ok()?;
            return self.kms.key_of_ciphertext(&s, &blob).await.ok();
        }
        let id = str_member(input, "TargetKeyId").or_else(|| str_member(input, "DestinationKeyId").filter(|_| action == "kms:ReEncryptTo")).or_else(|| str_member(input, "KeyId"))?;
        if operation == "CreateAlias" || operation == "UpdateAlias" {
            return self.kms.resolve(&s, id, false).await.ok();
        }
        self.kms.resolve(&s, id, matches!(operation, "DescribeKey" | "Encrypt" | "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext")).await.ok()
    }
}

#[codeyard_api::service]
impl KmsApi for KmsService {
    /// Every action on a key is asked on the key's ARN (whatever the input named it by) with
    /// its key policy as the resource policy; alias actions on the alias ARN.
    async fn access_requests(&self, ctx: &RequestContext, operation: &str, input: &Value) -> AwsResult<Vec<AccessRequest>> {
        let Some(actions) = codeyard_api::iam_actions("kms", operation) else { return Ok(Vec::new()) };
        let s = Scope::of(ctx);
        let mut out = Vec::new();
        for action in actions {
            let ec = context_member(input, action.action);
            if action.resources.is_empty() {
                out.push(AccessRequest::new(action.action, "*").with("kms:CallerAccount", ctx.account.clone()));
                continue;
            }
            for r in action.resources {
                match r.kind {
                    "alias" => {
                        if let Some(name) = str_member(input, "AliasName") {
                            out.push(AccessRequest::new(action.action, s.alias_arn(name)).with("kms:CallerAccount", ctx.account.clone()));
                        }
                    }
                    _ => match self.key_for_request(ctx, operation, action.action, input).await {
                        Some(key) => out.push(key_request(ctx, action.action, &key, ec.as_ref(), None)),
                        None => {
                            let given = str_member(input, "TargetKeyId").or_else(|| str_member(input, "KeyId"));
                            let resource = match given {
                                Some(a) if a.starts_with("arn:") => a.to_string(),
                                Some(id) if !id.starts_with("alias/") => s.key_arn(id),
                                _ => format!("arn:aws:kms:{}:{}:key/*", s.region, s.account),
                            };
                            out.push(AccessRequest::new(action.action, resource).with("kms:CallerAccount", ctx.account.clone()));
                        }
                    },
                }
            }
        }
        Ok(out)
    }

    async fn create_key(&self, ctx: &RequestContext, input: CreateKeyInput) -> AwsResult<CreateKeyOutput> {
        let spec = input.key_spec.as_ref().map(|k| k.as_str().to_string()).or_else(|| input.customer_master_key_spec.as_ref().map(|k| k.as_str().to_string()));
        if let Some(spec) = spec.filter(|s| s != "SYMMETRIC_DEFAULT") {
            return Err(KmsError::Unsupported(format!("KeySpec {spec} is not supported by this server: only SYMMETRIC_DEFAULT keys are.")).into());
        }
        if let Some(u) = input.key_usage.as_ref().filter(|u| **u != KeyUsageType::EncryptDecrypt) {
            return Err(KmsError::Validation(format!("KeyUsage {} is not compatible with KeySpec SYMMETRIC_DEFAULT", u.as_str())).into());
        }
        if let Some(o) = input.origin.as_ref().filter(|o| **o != OriginType::AwsKms) {
            return Err(KmsError::Unsupported(format!("Origin {} is not supported by this server.", o.as_str())).into());
        }
        if input.custom_key_store_id.is_some() {
            return Err(AwsError::client("CustomKeyStoreNotFoundException", "Custom key stores are not supported by this server."));
        }
        if let Some(policy) = &input.policy {
            crate::domain::check_policy(policy)?;
            let any_new_key = Scope::of(ctx).key_arn("*");
            self.lockout_check(ctx, any_new_key, policy, input.bypass_policy_lockout_safety_check).await?;
        }
        let new = NewKey {
            description: input.description.unwrap_or_default(),
            policy: input.policy,
            tags: tags_map(input.tags),
            multi_region: input.multi_region.unwrap_or(false),
        };
        let key = self.kms.create_key(&Scope::of(ctx), new, Manager::Customer).await?;
        Ok(CreateKeyResponse { key_metadata: Some(metadata(&key)) })
    }

    async fn describe_key(&self, ctx: &RequestContext, input: DescribeKeyInput) -> AwsResult<DescribeKeyOutput> {
        let key = self.kms.resolve(&Scope::of(ctx), &input.key_id, true).await?;
        Ok(CreateKeyResponse { key_metadata: Some(metadata(&key)) })
    }

    async fn list_keys(&self, ctx: &RequestContext, input: ListKeysInput) -> AwsResult<ListKeysOutput> {
        let keys: Vec<KeyListEntry> = self.kms.list_keys(&Scope::of(ctx)).await?.into_iter().map(|k| KeyListEntry { key_id: Some(k.key_id), key_arn: Some(k.arn) }).collect();
        let (keys, next) = page(&keys, input.marker.as_deref(), limit(input.limit));
        Ok(ListKeysResponse { keys: Some(keys), truncated: Some(next.is_some()), next_marker: next })
    }

    async fn update_key_description(&self, ctx: &RequestContext, input: UpdateKeyDescriptionInput) -> AwsResult<UpdateKeyDescriptionOutput> {
        self.change_key(ctx, &input.key_id, |k| {
            k.description = input.description.clone();
            Ok(())
        })
        .await
    }

    async fn enable_key(&self, ctx: &RequestContext, input: EnableKeyInput) -> AwsResult<EnableKeyOutput> {
        self.set_status(ctx, &input.key_id, KeyStatus::Enabled).await
    }

    async fn disable_key(&self, ctx: &RequestContext, input: DisableKeyInput) -> AwsResult<DisableKeyOutput> {
        self.set_status(ctx, &input.key_id, KeyStatus::Disabled).await
    }

    async fn schedule_key_deletion(&self, ctx: &RequestContext, input: ScheduleKeyDeletionInput) -> AwsResult<ScheduleKeyDeletionOutput> {
        let days = input.pending_window_in_days.unwrap_or(30);
        if !(7..=30).contains(&days) {
            return Err(out_of_range(days, "pendingWindowInDays", "between 7 and 30 inclusive"));
        }
        let key = self
            .kms
            .update_key(&Scope::of(ctx), &input.key_id, |k| {
                customer_managed(k)?;
                not_pending_deletion(k)?;
                k.status = KeyStatus::PendingDeletion;
                k.deletion_date = Some(codeyard_core::time::now() + chrono::Duration::days(days as i64));
                k.pending_window_days = Some(days);
                Ok(())
            })
            .await?;
        Ok(ScheduleKeyDeletionResponse {
            key_id: Some(key.arn.clone()),
            deletion_date: key.deletion_date.map(Timestamp),
            key_state: Some(KeyState::PendingDeletion),
            pending_window_in_days: Some(days),
        })
    }

    async fn cancel_key_deletion(&self, ctx: &RequestContext, input: CancelKeyDeletionInput) -> AwsResult<CancelKeyDeletionOutput> {
        let key = self
            .kms
            .update_key(&Scope::of(ctx), &input.key_id, |k| {
                if k.status != KeyStatus::PendingDeletion {
                    return Err(KmsError::InvalidState(format!("{} is not pending deletion.", k.arn)));
                }
                k.status = KeyStatus::Disabled;
                k.deletion_date = None;
                k.pending_window_days = None;
                Ok(())
            })
            .await?;
        Ok(CancelKeyDeletionResponse { key_id: Some(key.arn) })
    }

    async fn create_alias(&self, ctx: &RequestContext, input: CreateAliasInput) -> AwsResult<CreateAliasOutput> {
        self.kms.create_alias(&Scope::of(ctx), &input.alias_name, &input.target_key_id).await?;
        Ok(Unit {})
    }

    async fn update_alias(&self, ctx: &RequestContext, input: UpdateAliasInput) -> AwsResult<UpdateAliasOutput> {
        self.kms.update_alias(&Scope::of(ctx), &input.alias_name, &input.target_key_id).await?;
        Ok(Unit {})
    }

    async fn delete_alias(&self, ctx: &RequestContext, input: DeleteAliasInput) -> AwsResult<DeleteAliasOutput> {
        self.kms.delete_alias(&Scope::of(ctx), &input.alias_name).await?;
        Ok(Unit {})
    }

    async fn list_aliases(&self, ctx: &RequestContext, input: ListAliasesInput) -> AwsResult<ListAliasesOutput> {
        let s = Scope::of(ctx);
        let mut aliases = self.kms.list_aliases(&s).await?;
        if let Some(id) = &input.key_id {
            let key = self.kms.resolve(&s, id, false).await?;
            aliases.retain(|a| a.target_key_id == key.key_id);
        }
        let entries: Vec<AliasListEntry> = aliases.iter().map(|a| alias_entry(&s, a)).collect();
        let (aliases, next) = page(&entries, input.marker.as_deref(), limit(input.limit));
        Ok(ListAliasesResponse { aliases: Some(aliases), truncated: Some(next.is_some()), next_marker: next })
    }

    async fn encrypt(&self, ctx: &RequestContext, input: EncryptInput) -> AwsResult<EncryptOutput> {
        check_algorithm(&input.encryption_algorithm)?;
        let ec = input.encryption_context.unwrap_or_default();
        let (blob, key) = self.kms.encrypt(&Scope::of(ctx), &input.key_id, &input.plaintext.0, &ec, true).await?;
        Ok(EncryptResponse { ciphertext_blob: Some(Blob(blob)), key_id: Some(key.arn), encryption_algorithm: Some(EncryptionAlgorithmSpec::SymmetricDefault) })
    }

    async fn decrypt(&self, ctx: &RequestContext, input: DecryptInput) -> AwsResult<DecryptOutput> {
        check_algorithm(&input.encryption_algorithm)?;
        let blob = ciphertext(input.ciphertext_blob)?;
        let ec = input.encryption_context.unwrap_or_default();
        let (plain, key) = self.kms.decrypt(&Scope::of(ctx), &blob, &ec, input.key_id.as_deref()).await?;
        Ok(DecryptResponse { key_id: Some(key.arn), plaintext: Some(Blob(plain)), encryption_algorithm: Some(EncryptionAlgorithmSpec::SymmetricDefault), ..Default::default() })
    }

    /// Decrypts under the key the ciphertext names (SourceKeyId, when given, must be it) and
    /// encrypts under DestinationKeyId; the plaintext never leaves KMS. IAM asked
    /// kms:ReEncryptFrom on the source key and kms:ReEncryptTo on the destination key.
    async fn re_encrypt(&self, ctx: &RequestContext, input: ReEncryptInput) -> AwsResult<ReEncryptOutput> {
        check_algorithm(&input.source_encryption_algorithm)?;
        check_algorithm(&input.destination_encryption_algorithm)?;
        let blob = ciphertext(input.ciphertext_blob)?;
        let s = Scope::of(ctx);
        let source_ec = input.source_encryption_context.unwrap_or_default();
        let (plain, source) = self.kms.decrypt(&s, &blob, &source_ec, input.source_key_id.as_deref()).await?;
        let destination_ec = input.destination_encryption_context.unwrap_or_default();
        let (blob, key) = self.kms.encrypt(&s, &input.destination_key_id, &plain, &destination_ec, true).await?;
        Ok(ReEncryptResponse {
            ciphertext_blob: Some(Blob(blob)),
            source_key_id: Some(source.arn),
            key_id: Some(key.arn),
            source_encryption_algorithm: Some(EncryptionAlgorithmSpec::SymmetricDefault),
            destination_encryption_algorithm: Some(EncryptionAlgorithmSpec::SymmetricDefault),
            ..Default::default()
        })
    }

    async fn generate_data_key(&self, ctx: &RequestContext, input: GenerateDataKeyInput) -> AwsResult<GenerateDataKeyOutput> {
        let n = data_key_len(input.number_of_bytes, &input.key_spec)?;
        let plain = crate::crypto::random_bytes(n);
        let ec = input.encryption_context.unwrap_or_default();
        let (blob, key) = self.kms.encrypt(&Scope::of(ctx), &input.key_id, &plain, &ec, true).await?;
        Ok(GenerateDataKeyResponse { ciphertext_blob: Some(Blob(blob)), plaintext: Some(Blob(plain)), key_id: Some(key.arn), ..Default::default() })
    }

    async fn generate_data_key_without_plaintext(&self, ctx: &RequestContext, input: GenerateDataKeyWithoutPlaintextInput) -> AwsResult<GenerateDataKeyWithoutPlaintextOutput> {
        let n = data_key_len(input.number_of_bytes, &input.key_spec)?;
        let plain = crate::crypto::random_bytes(n);
        let ec = input.encryption_context.unwrap_or_default();
        let (blob, key) = self.kms.encrypt(&Scope::of(ctx), &input.key_id, &plain, &ec, true).await?;
        Ok(GenerateDataKeyWithoutPlaintextResponse { ciphertext_blob: Some(Blob(blob)), key_id: Some(key.arn), ..Default::default() })
    }

    async fn generate_random(&self, _ctx: &RequestContext, input: GenerateRandomInput) -> AwsResult<GenerateRandomOutput> {
        let n = input.number_of_bytes.unwrap_or(32);
        Ok(GenerateRandomResponse { plaintext: Some(Blob(crate::crypto::random_bytes(n as usize))), ciphertext_for_recipient: None })
    }

    async fn get_key_policy(&self, ctx: &RequestContext, input: GetKeyPolicyInput) -> AwsResult<GetKeyPolicyOutput> {
        let name = input.policy_name.unwrap_or_else(|| "default".into());
        let key = self.kms.resolve(&Scope::of(ctx), &input.key_id, false).await?;
        if name != "default" {
            return Err(KmsError::NotFound(format!("No such policy exists: {name}")).into());
        }
        Ok(GetKeyPolicyResponse { policy: Some(key.policy), policy_name: Some(name) })
    }

    async fn put_key_policy(&self, ctx: &RequestContext, input: PutKeyPolicyInput) -> AwsResult<PutKeyPolicyOutput> {
        if input.policy_name.as_deref().is_some_and(|n| n != "default") {
            return Err(KmsError::NotFound(format!("No such policy exists: {}", input.policy_name.unwrap_or_default())).into());
        }
        crate::domain::check_policy(&input.policy)?;
        let key = self.kms.resolve(&Scope::of(ctx), &input.key_id, false).await?;
        self.lockout_check(ctx, key.arn, &input.policy, input.bypass_policy_lockout_safety_check).await?;
        self.change_key(ctx, &input.key_id, |k| {
            k.policy = input.policy.clone();
            Ok(())
        })
        .await
    }

    async fn list_key_policies(&self, ctx: &RequestContext, input: ListKeyPoliciesInput) -> AwsResult<ListKeyPoliciesOutput> {
        self.kms.resolve(&Scope::of(ctx), &input.key_id, false).await?;
        Ok(ListKeyPoliciesResponse { policy_names: Some(vec!["default".into()]), next_marker: None, truncated: Some(false) })
    }

    async fn get_key_rotation_status(&self, ctx: &RequestContext, input: GetKeyRotationStatusInput) -> AwsResult<GetKeyRotationStatusOutput> {
        let key = self.kms.resolve(&Scope::of(ctx), &input.key_id, false).await?;
        if key.status == KeyStatus::PendingDeletion {
            return Err(KmsError::InvalidState(format!("{} is pending deletion.", key.arn)).into());
        }
        let next = key.rotation_enabled.then(|| Timestamp(key.created + chrono::Duration::days(key.rotation_period_days as i64)));
        Ok(GetKeyRotationStatusResponse {
            key_rotation_enabled: Some(key.rotation_enabled),
            key_id: Some(key.arn),
            rotation_period_in_days: key.rotation_enabled.then_some(key.rotation_period_days),
            next_rotation_date: next,
            on_demand_rotation_start_date: None,
        })
    }

    async fn enable_key_rotation(&self, ctx: &RequestContext, input: EnableKeyRotationInput) -> AwsResult<EnableKeyRotationOutput> {
        let days = input.rotation_period_in_days.unwrap_or(365);
        if !(90..=2560).contains(&days) {
            return Err(out_of_range(days, "rotationPeriodInDays", "greater than or equal to 90 and less than or equal to 2560"));
        }
        self.set_rotation(ctx, &input.key_id, Some(days)).await
    }

    async fn disable_key_rotation(&self, ctx: &RequestContext, input: DisableKeyRotationInput) -> AwsResult<DisableKeyRotationOutput> {
        self.set_rotation(ctx, &input.key_id, None).await
    }

    async fn tag_resource(&self, ctx: &RequestContext, input: TagResourceInput) -> AwsResult<TagResourceOutput> {
        self.change_key(ctx, &input.key_id, |k| {
            not_pending_deletion(k)?;
            if input.tags.iter().any(|t| t.tag_key.starts_with("aws:")) {
                return Err(KmsError::Tag("Tags beginning with aws: are reserved".into()));
            }
            let new = input.tags.iter().map(|t| (t.tag_key.clone(), t.tag_value.clone()));
            tags::add(&mut k.tags, new, MAX_TAGS).map_err(|_| KmsError::Tag("Too many tags: a key has at most 50".into()))
        })
        .await
    }

    async fn untag_resource(&self, ctx: &RequestContext, input: UntagResourceInput) -> AwsResult<UntagResourceOutput> {
        self.change_key(ctx, &input.key_id, |k| {
            tags::remove(&mut k.tags, &input.tag_keys);
            Ok(())
        })
        .await
    }

    async fn list_resource_tags(&self, ctx: &RequestContext, input: ListResourceTagsInput) -> AwsResult<ListResourceTagsOutput> {
        let key = self.kms.resolve(&Scope::of(ctx), &input.key_id, false).await?;
        let tags: Vec<Tag> = key.tags.into_iter().map(|(tag_key, tag_value)| Tag { tag_key, tag_value }).collect();
        let (tags, next) = page(&tags, input.marker.as_deref(), limit(input.limit));
        Ok(ListResourceTagsResponse { tags: Some(tags), truncated: Some(next.is_some()), next_marker: next })
    }
}

fn rotatable(k: &KeyRecord) -> Result<(), KmsError> {
    match k.status {
        KeyStatus::Enabled => Ok(()),
        KeyStatus::Disabled => Err(KmsError::Disabled(format!("{} is disabled.", k.arn))),
        KeyStatus::PendingDeletion => Err(KmsError::InvalidState(format!("{} is pending deletion.", k.arn))),
    }
}
