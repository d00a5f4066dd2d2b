//! KMS's domain: keys and aliases per account and region, in the state store.
//!
//! Storage (namespaces under `kms/<account>/<region>`):
//! * `.../keys`, keyed by key id: [`KeyRecord`] (its material wrapped under the master key);
//! * `.../aliases`, keyed by alias name (`alias/...`): [`AliasRecord`].

use crate::crypto::{self, CryptoError, MasterKey, WrappedMaterial};
use codeyard_core::AwsError;
use codeyard_core::time::Timestamp;
use codeyard_store::{Batch, Expect, SharedStore, StateStoreExt, StoreError, Update};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The AWS managed aliases services create on first use.
pub const MANAGED_ALIASES: &[(&str, &str)] = &[("alias/aws/ssm", "ssm"), ("alias/aws/secretsmanager", "secretsmanager"), ("alias/aws/s3", "s3")];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    Enabled,
    Disabled,
    PendingDeletion,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Enabled => "Enabled",
            KeyStatus::Disabled => "Disabled",
            KeyStatus::PendingDeletion => "PendingDeletion",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Manager {
    Aws,
    Customer,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key_id: String,
    pub arn: String,
    pub account: String,
    pub created: Timestamp,
    pub description: String,
    pub status: KeyStatus,
    /// The status to return to when a scheduled deletion is cancelled is always Disabled (AWS).
    pub deletion_date: Option<Timestamp>,
    pub pending_window_days: Option<i32>,
    pub manager: Manager,
    pub policy: String,
    pub rotation_enabled: bool,
    pub rotation_period_days: i32,
    pub tags: BTreeMap<String, String>,
    pub multi_region: bool,
    pub material: WrappedMaterial,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AliasRecord {
    pub name: String,
    pub target_key_id: String,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// What goes wrong in KMS's domain; `From<KmsError> for AwsError` gives AWS's codes.
#[derive(Debug)]
pub enum KmsError {
    NotFound(String),
    AliasExists(String),
    Disabled(String),
    InvalidState(String),
    InvalidCiphertext,
    IncorrectKey,
    InvalidKeyUsage(String),
    InvalidArn(String),
    Invalid(String),
    Validation(String),
    Unsupported(String),
    Tag(String),
    MalformedPolicy(String),
    Store(StoreError),
}

codeyard_core::wrap_error!(StoreError => KmsError::Store);

impl From<KmsError> for AwsError {
    fn from(e: KmsError) -> Self {
        match e {
            KmsError::NotFound(m) => AwsError::client("NotFoundException", m),
            KmsError::AliasExists(m) => AwsError::client("AlreadyExistsException", m),
            KmsError::Disabled(m) => AwsError::client("DisabledException", m),
            KmsError::InvalidState(m) => AwsError::client("KMSInvalidStateException", m),
            KmsError::InvalidCiphertext => AwsError::client("InvalidCiphertextException", ""),
            KmsError::IncorrectKey => AwsError::client("IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation."),
            KmsError::InvalidKeyUsage(m) => AwsError::client("InvalidKeyUsageException", m),
            KmsError::InvalidArn(m) => AwsError::client("InvalidArnException", m),
            KmsError::Invalid(m) => AwsError::client("InvalidAliasNameException", m),
            KmsError::Validation(m) => AwsError::validation(m),
            KmsError::Unsupported(m) => AwsError::client("UnsupportedOperationException", m),
            KmsError::Tag(m) => AwsError::client("TagException", m),
            KmsError::MalformedPolicy(m) => AwsError::client("MalformedPolicyDocumentException", m),
            KmsError::Store(e) => e.into(),
        }
    }
}

pub type KmsResult<T> = Result<T, KmsError>;

/// Where keys live.
#[derive(Clone, Debug)]
pub struct Scope {
    pub account: String,
    pub region: String,
}

impl Scope {
    pub fn of(ctx: &codeyard_core::RequestContext) -> Scope {
        Scope { account: ctx.account.clone(), region: ctx.region.clone() }
    }
    fn keys_ns(&self) -> String {
        format!("kms/{}/{}/keys", self.account, self.region)
    }
    fn aliases_ns(&self) -> String {
        format!("kms/{}/{}/aliases", self.account, self.region)
    }
    pub fn key_arn(&self, id: &str) -> String {
        format!("arn:aws:kms:{}:{}:key/{id}", self.region, self.account)
    }
    pub fn alias_arn(&self, name: &str) -> String {
        format!("arn:aws:kms:{}:{}:{name}", self.region, self.account)
    }
}

/// The default key policy AWS writes when CreateKey names none.
pub fn default_policy(account: &str) -> String {
    format!(
        r#"{{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {{
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "arn:aws:iam::{account}:root"
    }},
    "Action" : "kms:*",
    "Resource" : "*"
  }} ]
}}"#
    )
}

/// The policy of an AWS managed key (`aws/<service>`): use through the service by anyone in
/// the account, metadata to the account, as AWS writes them.
pub fn managed_policy(account: &str, region: &str, service: &str) -> String {
    let display = match service {
        "ssm" => "AWS Systems Manager",
        "s3" => "S3",
        _ => "AWS Secrets Manager",
    };
    format!(
        r#"{{
  "Version" : "2012-10-17",
  "Id" : "auto-{service}-1",
  "Statement" : [ {{
    "Sid" : "Allow access through {display} for all principals in the account that are authorized to use {display}",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "*"
    }},
    "Action" : [ "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey" ],
    "Resource" : "*",
    "Condition" : {{
      "StringEquals" : {{
        "kms:CallerAccount" : "{account}",
        "kms:ViaService" : "{service}.{region}.amazonaws.com"
      }}
    }}
  }}, {{
    "Sid" : "Allow direct access to key metadata to the account",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "arn:aws:iam::{account}:root"
    }},
    "Action" : [ "kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant" ],
    "Resource" : "*"
  }} ]
}}"#
    )
}

/// Checks a key policy is a JSON policy document (MalformedPolicyDocumentException otherwise).
pub fn check_policy(text: &str) -> KmsResult<()> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|_| KmsError::MalformedPolicy("The new key policy will not allow you to update the key policy in the future.".into()))?;
    if !v.get("Statement").is_some_and(|s| s.is_array() || s.is_object()) {
        return Err(KmsError::MalformedPolicy("Policy contains a statement with no principal or no action.".into()));
    }
    Ok(())
}

/// What CreateKey asks for.
#[derive(Clone, Debug, Default)]
pub struct NewKey {
    pub description: String,
    pub policy: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub multi_region: bool,
}

#[derive(Clone)]
pub struct Kms {
    pub store: SharedStore,
    pub master: MasterKey,
}

fn not_found_id(s: &Scope, id: &str) -> KmsError {
    KmsError::NotFound(format!("Key '{}' does not exist", s.key_arn(id)))
}

impl Kms {
    pub async fn create_key(&self, s: &Scope, new: NewKey, manager: Manager) -> KmsResult<KeyRecord> {
        let key_id = uuid::Uuid::new_v4().to_string();
        let arn = s.key_arn(&key_id);
        if let Some(p) = &new.policy {
            check_policy(p)?;
        }
        let rec = KeyRecord {
            material: self.master.new_material(&arn),
            key_id: key_id.clone(),
            arn,
            account: s.account.clone(),
            created: codeyard_core::time::now(),
            description: new.description,
            status: KeyStatus::Enabled,
            deletion_date: None,
            pending_window_days: None,
            manager,
            policy: new.policy.unwrap_or_else(|| default_policy(&s.account)),
            rotation_enabled: false,
            rotation_period_days: 365,
            tags: new.tags,
            multi_region: new.multi_region,
        };
        self.store.commit(Batch::new().put(s.keys_ns(), &key_id, &rec, Expect::Absent)).await?;
        Ok(rec)
    }

    pub async fn key_by_id(&self, s: &Scope, id: &str) -> KmsResult<Option<KeyRecord>> {
        Ok(self.store.get_as::<KeyRecord>(&s.keys_ns(), id).await?.map(|(k, _)| k))
    }

    pub async fn alias(&self, s: &Scope, name: &str) -> KmsResult<Option<AliasRecord>> {
        Ok(self.store.get_as::<AliasRecord>(&s.aliases_ns(), name).await?.map(|(a, _)| a))
    }

    /// The key `key_id` names: a key id, key ARN, alias name or alias ARN (of this account and
    /// region). An AWS managed alias is created on first use when `create_managed`.
    pub async fn resolve(&self, s: &Scope, key_id: &str, create_managed: bool) -> KmsResult<KeyRecord> {
        let local = if let Some(rest) = key_id.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            if parts.len() != 5 || parts[1] != "kms" {
                return Err(KmsError::InvalidArn(format!("Invalid arn {key_id}")));
            }
            if parts[2] != s.region || parts[3] != s.account {
                return Err(KmsError::NotFound(format!("Invalid keyId {key_id}")));
            }
            parts[4].to_string()
        } else {
            key_id.to_string()
        };
        if local.starts_with("alias/") {
            let alias = match self.alias(s, &local).await? {
                Some(a) => a,
                None if create_managed && MANAGED_ALIASES.iter().any(|(a, _)| *a == local) => self.create_managed(s, &local).await?,
                None => return Err(KmsError::NotFound(format!("Alias {} is not found.", s.alias_arn(&local)))),
            };
            return self.key_by_id(s, &alias.target_key_id).await?.ok_or_else(|| not_found_id(s, &alias.target_key_id));
        }
        let id = local.strip_prefix("key/").unwrap_or(&local);
        if key_id.starts_with("arn:") && !local.starts_with("key/") {
            return Err(KmsError::InvalidArn(format!("Invalid arn {key_id}")));
        }
        if uuid::Uuid::parse_str(id).is_err() && !id.starts_with("mrk-") {
            return Err(KmsError::NotFound(format!("Invalid keyId {key_id}")));
        }
        self.key_by_id(s, id).await?.ok_or_else(|| not_found_id(s, id))
    }

    /// Creates the AWS managed key behind `alias/aws/<service>` (or answers the one a
    /// concurrent first use made).
    async fn create_managed(&self, s: &Scope, alias: &str) -> KmsResult<AliasRecord> {
        let service = MANAGED_ALIASES.iter().find(|(a, _)| *a == alias).map(|(_, svc)| *svc).unwrap_or("secretsmanager");
        let key_id = uuid::Uuid::new_v4().to_string();
        let arn = s.key_arn(&key_id);
        let now = codeyard_core::time::now();
        let desc = match service {
            "ssm" => "Default key that protects my SSM parameters when no other key is defined",
            "s3" => "Default key that protects my S3 objects when no other key is defined",
            _ => "Default key that protects my Secrets Manager data when no other key is defined",
        };
        let rec = KeyRecord {
            material: self.master.new_material(&arn),
            key_id: key_id.clone(),
            arn,
            account: s.account.clone(),
            created: now,
            description: desc.to_string(),
            status: KeyStatus::Enabled,
            deletion_date: None,
            pending_window_days: None,
            manager: Manager::Aws,
            policy: managed_policy(&s.account, &s.region, service),
            rotation_enabled: true,
            rotation_period_days: 365,
            tags: BTreeMap::new(),
            multi_region: false,
        };
        let a = AliasRecord { name: alias.to_string(), target_key_id: key_id.clone(), created: now, updated: now };
        let batch = Batch::new().put(s.keys_ns(), &key_id, &rec, Expect::Absent).put(s.aliases_ns(), alias, &a, Expect::Absent);
        match self.store.commit(batch).await {
            Ok(()) => Ok(a),
            Err(StoreError::Conflict(..)) => self.alias(s, alias).await?.ok_or_else(|| KmsError::NotFound(format!("Alias {} is not found.", s.alias_arn(alias)))),
            Err(e) => Err(e.into()),
        }
    }

    /// Changes a key record (compare-and-swap); `change` may refuse.
    pub async fn update_key<F>(&self, s: &Scope, key_id: &str, mut change: F) -> KmsResult<KeyRecord>
    where
        F: FnMut(&mut KeyRecord) -> KmsResult<()> + Send,
    {
        let key = self.resolve(s, key_id, false).await?;
        let id = key.key_id.clone();
        let out = self
            .store
            .update::<KeyRecord, KmsError, _>(&s.keys_ns(), &id, |cur| {
                let Some(mut k) = cur else { return Err(not_found_id(s, &id)) };
                change(&mut k)?;
                Ok(Update::put(k))
            })
            .await?;
        out.ok_or_else(|| not_found_id(s, &id))
    }

    pub async fn list_keys(&self, s: &Scope) -> KmsResult<Vec<KeyRecord>> {
        Ok(self.store.list_all_as::<KeyRecord>(&s.keys_ns()).await?)
    }

    pub async fn list_aliases(&self, s: &Scope) -> KmsResult<Vec<AliasRecord>> {
        Ok(self.store.list_all_as::<AliasRecord>(&s.aliases_ns()).await?)
    }

    fn check_alias_name(name: &str) -> KmsResult<()> {
        if !name.starts_with("alias/") || name.len() <= 6 {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$"
            )));
        }
        if name.starts_with("alias/aws/") {
            return Err(KmsError::Invalid("Cannot create alias with prefix 'alias/aws/'".into()));
        }
        Ok(())
    }

    /// The customer managed key an alias may point at.
    async fn alias_target(&self, s: &Scope, target: &str) -> KmsResult<KeyRecord> {
        if target.starts_with("alias/") || target.contains(":alias/") {
            return Err(KmsError::Validation("Aliases must refer to keys. Not aliases".into()));
        }
        let key = self.resolve(s, target, false).await?;
        if key.manager == Manager::Aws {
            return Err(KmsError::Unsupported(format!("{} is an AWS managed key: its aliases cannot be changed", key.arn)));
        }
        if key.status == KeyStatus::PendingDeletion {
            return Err(KmsError::InvalidState(format!("{} is pending deletion.", key.arn)));
        }
        Ok(key)
    }

    pub async fn create_alias(&self, s: &Scope, name: &str, target: &str) -> KmsResult<()> {
        Self::check_alias_name(name)?;
        let key = self.alias_target(s, target).await?;
        let now = codeyard_core::time::now();
        let a = AliasRecord { name: name.to_string(), target_key_id: key.key_id, created: now, updated: now };
        match self.store.commit(Batch::new().put(s.aliases_ns(), name, &a, Expect::Absent)).await {
            Err(StoreError::Conflict(..)) => Err(KmsError::AliasExists(format!("An alias with the name {} already exists", s.alias_arn(name)))),
            r => Ok(r?),
        }
    }

    pub async fn update_alias(&self, s: &Scope, name: &str, target: &str) -> KmsResult<()> {
        Self::check_alias_name(name)?;
        let key = self.alias_target(s, target).await?;
        let not_found = || KmsError::NotFound(format!("Alias {} is not found.", s.alias_arn(name)));
        self.store
            .update::<AliasRecord, KmsError, _>(&s.aliases_ns(), name, |cur| {
                let Some(mut a) = cur else { return Err(not_found()) };
                a.target_key_id = key.key_id.clone();
                a.updated = codeyard_core::time::now();
                Ok(Update::put(a))
            })
            .await?;
        Ok(())
    }

    pub async fn delete_alias(&self, s: &Scope, name: &str) -> KmsResult<()> {
        Self::check_alias_name(name)?;
        let Some((_, v)) = self.store.get_as::<AliasRecord>(&s.aliases_ns(), name).await? else {
            return Err(KmsError::NotFound(format!("Alias {} is not found.", s.alias_arn(name))));
        };
        self.store.commit(Batch::new().delete(s.aliases_ns(), name, Expect::Version(v))).await?;
        Ok(())
    }

    /// A key usable for cryptography right now (Enabled), with its material.
    pub fn usable(&self, key: &KeyRecord) -> KmsResult<aes_gcm::Key<aes_gcm::Aes256Gcm>> {
        match key.status {
            KeyStatus::Enabled => {}
            KeyStatus::Disabled => return Err(KmsError::Disabled(format!("{} is disabled.", key.arn))),
            KeyStatus::PendingDeletion => return Err(KmsError::InvalidState(format!("{} is pending deletion.", key.arn))),
        }
        self.master.unwrap(&key.arn, &key.material).map_err(|_| KmsError::Store(StoreError::Backend(format!("the material of {} does not unwrap with this data dir's master key", key.arn))))
    }

    pub async fn encrypt(&self, s: &Scope, key_id: &str, plaintext: &[u8], ctx: &BTreeMap<String, String>, create_managed: bool) -> KmsResult<(Vec<u8>, KeyRecord)> {
        let key = self.resolve(s, key_id, create_managed).await?;
        let material = self.usable(&key)?;
        Ok((crypto::encrypt(&key.key_id, &material, plaintext, ctx), key))
    }

    /// The key a ciphertext names (InvalidCiphertextException when it names none).
    pub async fn key_of_ciphertext(&self, s: &Scope, blob: &[u8]) -> KmsResult<KeyRecord> {
        let id = crypto::key_id_of(blob).map_err(|_| KmsError::InvalidCiphertext)?;
        self.key_by_id(s, &id).await?.ok_or(KmsError::InvalidCiphertext)
    }

    pub async fn decrypt(&self, s: &Scope, blob: &[u8], ctx: &BTreeMap<String, String>, expected_key: Option<&str>) -> KmsResult<(Vec<u8>, KeyRecord)> {
        let key = self.key_of_ciphertext(s, blob).await?;
        if let Some(want) = expected_key {
            let want = self.resolve(s, want, false).await?;
            if want.key_id != key.key_id {
                return Err(KmsError::IncorrectKey);
            }
        }
        let material = self.usable(&key)?;
        match crypto::decrypt(blob, &material, ctx) {
            Ok(p) => Ok((p, key)),
            Err(CryptoError::NotACiphertext | CryptoError::Invalid | CryptoError::Corrupt) => Err(KmsError::InvalidCiphertext),
        }
    }

    /// Deletes the keys whose scheduled deletion date has passed (and their aliases).
    pub async fn purge_due(&self, now: Timestamp) -> KmsResult<usize> {
        let mut n = 0;
        for ns in self.store.namespaces("kms/").await? {
            let Some(prefix) = ns.strip_suffix("/keys") else { continue };
            let keys: Vec<KeyRecord> = self.store.list_all_as(&ns).await?;
            let aliases: Vec<AliasRecord> = self.store.list_all_as(&format!("{prefix}/aliases")).await?;
            for k in keys.iter().filter(|k| k.status == KeyStatus::PendingDeletion && k.deletion_date.is_some_and(|d| d <= now)) {
                let mut batch = Batch::new().delete(&ns, &k.key_id, Expect::Any);
                for a in aliases.iter().filter(|a| a.target_key_id == k.key_id) {
                    batch = batch.delete(format!("{prefix}/aliases"), &a.name, Expect::Any);
                }
                self.store.commit(batch).await?;
                n += 1;
            }
        }
        Ok(n)
    }
}
