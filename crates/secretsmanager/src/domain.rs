//! Secrets Manager's domain: secrets, their versions and staging labels, per account and
//! region, in the state store (`secretsmanager/<account>/<region>/secrets`, keyed by name).
//!
//! Secret values are never stored in the clear: each version's value is encrypted through the
//! hub's [`KeyVault`](codeyard_core::hub::KeyVault) under the secret's KMS key (default
//! `alias/aws/secretsmanager`), with the encryption context Secrets Manager uses
//! (`SecretARN`, `SecretVersionId`) and `kms:ViaService` `secretsmanager.<region>.amazonaws.com`,
//! as the caller: a caller the key's policy refuses cannot read or write the secret.

use codeyard_core::hub::Hub;
use codeyard_core::time::Timestamp;
use codeyard_core::{AwsError, RequestContext};
use codeyard_store::{Batch, Expect, SharedStore, StateStoreExt, StoreError, Update};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const CURRENT: &str = "AWSCURRENT";
pub const PREVIOUS: &str = "AWSPREVIOUS";
pub const DEFAULT_KEY: &str = "alias/aws/secretsmanager";
/// Versions without a staging label kept per secret (AWS keeps about 100).
const MAX_DEPRECATED: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValueKind {
    String,
    Binary,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VersionRecord {
    pub id: String,
    pub created: Timestamp,
    pub stages: Vec<String>,
    pub kind: ValueKind,
    /// base64 of the KMS ciphertext of the value.
    pub ciphertext: String,
    pub kms_key_arn: String,
    pub last_accessed: Option<Timestamp>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecretRecord {
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    /// As the caller gave it (None: the AWS managed key).
    pub kms_key_id: Option<String>,
    pub created: Timestamp,
    pub last_changed: Timestamp,
    pub last_accessed: Option<Timestamp>,
    /// When DeleteSecret was called, and when the secret goes (DescribeSecret's DeletedDate,
    /// "the date the secret is scheduled for deletion").
    pub deleted: Option<Timestamp>,
    pub deletion_date: Option<Timestamp>,
    pub tags: Vec<(String, String)>,
    pub policy: Option<String>,
    pub versions: BTreeMap<String, VersionRecord>,
}

impl SecretRecord {
    pub fn version_with_stage(&self, stage: &str) -> Option<&VersionRecord> {
        self.versions.values().find(|v| v.stages.iter().any(|s| s == stage))
    }
    pub fn stages(&self) -> BTreeMap<String, Vec<String>> {
        self.versions.values().filter(|v| !v.stages.is_empty()).map(|v| (v.id.clone(), v.stages.clone())).collect()
    }
}

/// A secret's value in the clear (only ever in memory).
#[derive(Clone, PartialEq, Eq)]
pub enum SecretValue {
    String(String),
    Binary(Vec<u8>),
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(..)")
    }
}

impl SecretValue {
    fn kind(&self) -> ValueKind {
        match self {
            SecretValue::String(_) => ValueKind::String,
            SecretValue::Binary(_) => ValueKind::Binary,
        }
    }
    fn bytes(&self) -> &[u8] {
        match self {
            SecretValue::String(s) => s.as_bytes(),
            SecretValue::Binary(b) => b,
        }
    }
}

/// What goes wrong; `From<SecretsError> for AwsError` gives Secrets Manager's codes.
#[derive(Debug)]
pub enum SecretsError {
    NotFound,
    /// No version with this id or staging label: the message says which.
    ValueNotFound(String),
    Exists(String),
    MarkedForDeletion,
    InvalidRequest(String),
    InvalidParameter(String),
    MalformedPolicy(String),
    PublicPolicy,
    /// An error from KMS (AccessDeniedException passes as is).
    Kms(AwsError),
    Encryption(String),
    Decryption(String),
    Store(StoreError),
}

codeyard_core::wrap_error!(StoreError => SecretsError::Store);

impl From<SecretsError> for AwsError {
    fn from(e: SecretsError) -> Self {
        match e {
            SecretsError::NotFound => AwsError::client("ResourceNotFoundException", "Secrets Manager can't find the specified secret."),
            SecretsError::ValueNotFound(m) => AwsError::client("ResourceNotFoundException", m),
            SecretsError::Exists(m) => AwsError::client("ResourceExistsException", m),
            SecretsError::MarkedForDeletion => AwsError::client("InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion."),
            SecretsError::InvalidRequest(m) => AwsError::client("InvalidRequestException", m),
            SecretsError::InvalidParameter(m) => AwsError::client("InvalidParameterException", m),
            SecretsError::MalformedPolicy(m) => AwsError::client("MalformedPolicyDocumentException", m),
            SecretsError::PublicPolicy => AwsError::client("PublicPolicyException", "This resource policy contains an unsupported public access grant: BlockPublicPolicy is set."),
            SecretsError::Kms(e) => e,
            SecretsError::Encryption(m) => AwsError::client("EncryptionFailure", m),
            SecretsError::Decryption(m) => AwsError::client("DecryptionFailure", m),
            SecretsError::Store(e) => e.into(),
        }
    }
}

pub type SecretsResult<T> = Result<T, SecretsError>;

#[derive(Clone, Debug)]
pub struct Scope {
    pub account: String,
    pub region: String,
}

impl Scope {
    pub fn of(ctx: &RequestContext) -> Scope {
        Scope { account: ctx.account.clone(), region: ctx.region.clone() }
    }
    pub fn ns(&self) -> String {
        format!("secretsmanager/{}/{}/secrets", self.account, self.region)
    }
    pub fn arn_prefix(&self) -> String {
        format!("arn:aws:secretsmanager:{}:{}:secret:", self.region, self.account)
    }
    pub fn via_service(&self) -> String {
        format!("secretsmanager.{}.amazonaws.com", self.region)
    }
}

/// The name a SecretId gives, and the full ARN when it is one (names and partial ARNs do not).
pub fn parse_secret_id(s: &Scope, id: &str) -> (String, Option<String>) {
    match id.strip_prefix(&s.arn_prefix()) {
        Some(rest) => (rest.to_string(), Some(id.to_string())),
        None => (id.to_string(), None),
    }
}

/// What CreateSecret asks for.
#[derive(Debug, Default)]
pub struct NewSecret {
    pub name: String,
    pub token: Option<String>,
    pub description: Option<String>,
    pub kms_key_id: Option<String>,
    pub value: Option<SecretValue>,
    pub tags: Vec<(String, String)>,
}

/// What GetSecretValue answers.
#[derive(Debug)]
pub struct ReadValue {
    pub secret: SecretRecord,
    pub version: VersionRecord,
    pub value: SecretValue,
}

#[derive(Clone)]
pub struct Secrets {
    pub store: SharedStore,
    pub hub: Arc<Hub>,
}

fn check_name(name: &str) -> SecretsResult<()> {
    let ok = !name.is_empty() && name.len() <= 512 && name.chars().all(|c| c.is_ascii_alphanumeric() || "/_+=.@-!".contains(c));
    if !ok {
        return Err(SecretsError::InvalidParameter("Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!".into()));
    }
    Ok(())
}

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn unb64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap_or_default()
}

fn encryption_context(arn: &str, version_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("SecretARN".to_string(), arn.to_string()), ("SecretVersionId".to_string(), version_id.to_string())])
}

fn kms_error(e: AwsError, encrypting: bool) -> SecretsError {
    if e.code == "AccessDeniedException" {
        return SecretsError::Kms(e);
    }
    let m = format!("{} ({}: {})", if encrypting { "Secrets Manager can't encrypt the protected secret text using the provided KMS key." } else { "Secrets Manager can't decrypt the protected secret text using the provided KMS key." }, e.code, e.message);
    if encrypting { SecretsError::Encryption(m) } else { SecretsError::Decryption(m) }
}

/// Moves `stages` onto `version_id`: each leaves the version that had it; a version losing
/// AWSCURRENT gets AWSPREVIOUS (which leaves its holder).
pub fn move_stages(secret: &mut SecretRecord, version_id: &str, stages: &[String]) {
    for stage in stages {
        let holder = secret.version_with_stage(stage).map(|v| v.id.clone());
        if holder.as_deref() == Some(version_id) {
            continue;
        }
        if let Some(h) = &holder {
            if let Some(v) = secret.versions.get_mut(h) {
                v.stages.retain(|s| s != stage);
            }
            if stage == CURRENT {
                for v in secret.versions.values_mut() {
                    v.stages.retain(|s| s != PREVIOUS);
                }
                if let Some(v) = secret.versions.get_mut(h) {
                    v.stages.push(PREVIOUS.to_string());
                }
            }
        }
        if let Some(v) = secret.versions.get_mut(version_id)
            && !v.stages.contains(stage)
        {
            v.stages.push(stage.clone());
        }
    }
    // Forget the oldest versions that no label keeps, beyond the limit.
    let mut deprecated: Vec<(Timestamp, String)> = secret.versions.values().filter(|v| v.stages.is_empty()).map(|v| (v.created, v.id.clone())).collect();
    if deprecated.len() > MAX_DEPRECATED {
        deprecated.sort();
        for (_, id) in deprecated.iter().take(deprecated.len() - MAX_DEPRECATED) {
            secret.versions.remove(id);
        }
    }
}

impl Secrets {
    /// The secret a SecretId (name, full ARN or partial ARN) names, with its store version.
    pub async fn find(&self, s: &Scope, id: &str) -> SecretsResult<(SecretRecord, i64)> {
        let (name, full) = parse_secret_id(s, id);
        if let Some((rec, v)) = self.store.get_as::<SecretRecord>(&s.ns(), &name).await?
            && full.as_ref().is_none_or(|a| *a == rec.arn || rec.arn == format!("{a}-{}", &rec.arn[rec.arn.len() - 6..]))
        {
            return Ok((rec, v));
        }
        // A full ARN: the name without the random suffix.
        if full.is_some()
            && name.len() > 7
            && name.as_bytes()[name.len() - 7] == b'-'
            && let Some((rec, v)) = self.store.get_as::<SecretRecord>(&s.ns(), &name[..name.len() - 7]).await?
            && Some(&rec.arn) == full.as_ref()
        {
            return Ok((rec, v));
        }
        Err(SecretsError::NotFound)
    }

    async fn encrypt(&self, ctx: &RequestContext, secret: &SecretRecord, version_id: &str, value: &SecretValue) -> SecretsResult<(String, String)> {
        let s = Scope::of(ctx);
        let vault = self.hub.keys().map_err(|e| kms_error(e, true))?;
        let key = secret.kms_key_id.as_deref().unwrap_or(DEFAULT_KEY);
        let out = vault
            .encrypt(ctx, key, value.bytes(), &encryption_context(&secret.arn, version_id), Some(&s.via_service()))
            .await
            .map_err(|e| kms_error(e, true))?;
        Ok((b64(&out.bytes), out.key_arn))
    }

    pub async fn decrypt(&self, ctx: &RequestContext, secret: &SecretRecord, version: &VersionRecord) -> SecretsResult<SecretValue> {
        let s = Scope::of(ctx);
        let vault = self.hub.keys().map_err(|e| kms_error(e, false))?;
        let out = vault
            .decrypt(ctx, &unb64(&version.ciphertext), &encryption_context(&secret.arn, &version.id), Some(&s.via_service()))
            .await
            .map_err(|e| kms_error(e, false))?;
        Ok(match version.kind {
            ValueKind::String => SecretValue::String(String::from_utf8(out.bytes).map_err(|_| SecretsError::Decryption("The secret value is not UTF-8".into()))?),
            ValueKind::Binary => SecretValue::Binary(out.bytes),
        })
    }

    async fn new_version(&self, ctx: &RequestContext, secret: &SecretRecord, id: &str, value: &SecretValue) -> SecretsResult<VersionRecord> {
        let (ciphertext, kms_key_arn) = self.encrypt(ctx, secret, id, value).await?;
        Ok(VersionRecord { id: id.to_string(), created: codeyard_core::time::now(), stages: Vec::new(), kind: value.kind(), ciphertext, kms_key_arn, last_accessed: None })
    }

    pub async fn create(&self, ctx: &RequestContext, new: NewSecret) -> SecretsResult<(SecretRecord, Option<String>)> {
        let s = Scope::of(ctx);
        check_name(&new.name)?;
        if let Some((existing, _)) = self.store.get_as::<SecretRecord>(&s.ns(), &new.name).await? {
            if existing.deleted.is_some() {
                return Err(SecretsError::InvalidRequest("You can't create this secret because a secret with this name is already scheduled for deletion.".into()));
            }
            // Idempotent retry: same token and same value.
            if let (Some(token), Some(value)) = (&new.token, &new.value)
                && let Some(v) = existing.versions.get(token)
            {
                if self.decrypt(ctx, &existing, v).await? == *value {
                    return Ok((existing, Some(token.clone())));
                }
                return Err(SecretsError::Exists(format!("The operation failed because the secret {} already exists.", new.name)));
            }
            return Err(SecretsError::Exists(format!("The operation failed because the secret {} already exists.", new.name)));
        }
        let now = codeyard_core::time::now();
        let mut rec = SecretRecord {
            arn: format!("{}{}-{}", s.arn_prefix(), new.name, codeyard_core::ids::alnum(6)),
            name: new.name.clone(),
            description: new.description,
            kms_key_id: new.kms_key_id,
            created: now,
            last_changed: now,
            last_accessed: None,
            deleted: None,
            deletion_date: None,
            tags: new.tags,
            policy: None,
            versions: BTreeMap::new(),
        };
        let mut version_id = None;
        if let Some(value) = &new.value {
            let id = new.token.clone().unwrap_or_else(codeyard_core::ids::uuid);
            let v = self.new_version(ctx, &rec, &id, value).await?;
            rec.versions.insert(id.clone(), v);
            move_stages(&mut rec, &id, &[CURRENT.to_string()]);
            version_id = Some(id);
        }
        match self.store.commit(Batch::new().put(s.ns(), &rec.name, &rec, Expect::Absent)).await {
            Err(StoreError::Conflict(..)) => Err(SecretsError::Exists(format!("The operation failed because the secret {} already exists.", new.name))),
            r => {
                r?;
                Ok((rec, version_id))
            }
        }
    }

    /// Changes a secret (compare-and-swap on its record). `change` may refuse.
    pub async fn update<F>(&self, s: &Scope, name: &str, mut change: F) -> SecretsResult<SecretRecord>
    where
        F: FnMut(&mut SecretRecord) -> SecretsResult<()> + Send,
    {
        let out = self
            .store
            .update::<SecretRecord, SecretsError, _>(&s.ns(), name, |cur| {
                let Some(mut rec) = cur else { return Err(SecretsError::NotFound) };
                change(&mut rec)?;
                Ok(Update::put(rec))
            })
            .await?;
        out.ok_or(SecretsError::NotFound)
    }

    /// A live (not deleted) secret.
    pub async fn live(&self, s: &Scope, id: &str) -> SecretsResult<SecretRecord> {
        let (rec, _) = self.find(s, id).await?;
        if rec.deleted.is_some() {
            return Err(SecretsError::MarkedForDeletion);
        }
        Ok(rec)
    }

    /// PutSecretValue (and UpdateSecret with a value): a new version with `stages`
    /// (default AWSCURRENT). A token naming an existing version with the same value is a retry.
    pub async fn put_value(&self, ctx: &RequestContext, id: &str, token: Option<String>, value: SecretValue, stages: Option<Vec<String>>) -> SecretsResult<(SecretRecord, String)> {
        let s = Scope::of(ctx);
        let secret = self.live(&s, id).await?;
        let version_id = token.unwrap_or_else(codeyard_core::ids::uuid);
        if let Some(v) = secret.versions.get(&version_id) {
            if self.decrypt(ctx, &secret, v).await? == value {
                return Ok((secret, version_id));
            }
            return Err(SecretsError::Exists("You can't modify an existing version, you can only create a new version.".into()));
        }
        let stages = stages.unwrap_or_else(|| vec![CURRENT.to_string()]);
        let version = self.new_version(ctx, &secret, &version_id, &value).await?;
        let rec = self
            .update(&s, &secret.name, |rec| {
                if rec.deleted.is_some() {
                    return Err(SecretsError::MarkedForDeletion);
                }
                if rec.versions.contains_key(&version_id) {
                    return Err(SecretsError::Exists("You can't modify an existing version, you can only create a new version.".into()));
                }
                rec.versions.insert(version_id.clone(), version.clone());
                move_stages(rec, &version_id, &stages);
                rec.last_changed = codeyard_core::time::now();
                Ok(())
            })
            .await?;
        Ok((rec, version_id))
    }

    /// The value at a version id and/or stage (default AWSCURRENT), decrypted as the caller.
    pub async fn get_value(&self, ctx: &RequestContext, id: &str, version_id: Option<&str>, stage: Option<&str>) -> SecretsResult<ReadValue> {
        let s = Scope::of(ctx);
        let secret = self.live(&s, id).await?;
        let version = match (version_id, stage) {
            (Some(vid), stage) => {
                let v = secret.versions.get(vid).ok_or_else(|| SecretsError::ValueNotFound(format!("Secrets Manager can't find the specified secret value for VersionId: {vid}")))?;
                if let Some(st) = stage
                    && !v.stages.iter().any(|x| x == st)
                {
                    return Err(SecretsError::ValueNotFound(format!("Secrets Manager can't find the specified secret value for VersionId: {vid} and staging label: {st}")));
                }
                v.clone()
            }
            (None, stage) => {
                let st = stage.unwrap_or(CURRENT);
                secret.version_with_stage(st).cloned().ok_or_else(|| SecretsError::ValueNotFound(format!("Secrets Manager can't find the specified secret value for staging label: {st}")))?
            }
        };
        let value = self.decrypt(ctx, &secret, &version).await?;
        self.touch(&s, &secret, &version.id).await;
        Ok(ReadValue { secret, version, value })
    }

    /// Records the access date (a day's precision, as AWS shows it), at most once a day.
    async fn touch(&self, s: &Scope, secret: &SecretRecord, version_id: &str) {
        let today = codeyard_core::time::now().date_naive().and_hms_opt(0, 0, 0).map(|d| d.and_utc());
        let Some(today) = today else { return };
        if secret.last_accessed == Some(today) && secret.versions.get(version_id).is_some_and(|v| v.last_accessed == Some(today)) {
            return;
        }
        let r = self
            .update(s, &secret.name, |rec| {
                rec.last_accessed = Some(today);
                if let Some(v) = rec.versions.get_mut(version_id) {
                    v.last_accessed = Some(today);
                }
                Ok(())
            })
            .await;
        if let Err(e) = r {
            tracing::debug!(error = ?e, "could not record a secret's access date");
        }
    }

    /// Every secret of a scope (deleted ones too), by name.
    pub async fn list(&self, s: &Scope) -> SecretsResult<Vec<SecretRecord>> {
        Ok(self.store.list_all_as::<SecretRecord>(&s.ns()).await?)
    }

    /// Deletes the secrets whose recovery window has passed.
    pub async fn purge_due(&self, now: Timestamp) -> SecretsResult<usize> {
        let mut n = 0;
        for ns in self.store.namespaces("secretsmanager/").await? {
            if !ns.ends_with("/secrets") {
                continue;
            }
            let all: Vec<SecretRecord> = self.store.list_all_as(&ns).await?;
            for rec in all.iter().filter(|r| r.deletion_date.is_some_and(|d| d <= now)) {
                self.store.commit(Batch::new().delete(&ns, &rec.name, Expect::Any)).await?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// GetRandomPassword's generator.
pub struct PasswordRules {
    pub length: usize,
    pub exclude: String,
    pub numbers: bool,
    pub punctuation: bool,
    pub uppercase: bool,
    pub lowercase: bool,
    pub space: bool,
    pub require_each: bool,
}

pub const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

pub fn random_password(r: &PasswordRules) -> SecretsResult<String> {
    use rand::Rng;
    let mut classes: Vec<Vec<char>> = Vec::new();
    let mut add = |on: bool, chars: &str| {
        if on {
            let c: Vec<char> = chars.chars().filter(|c| !r.exclude.contains(*c)).collect();
            if !c.is_empty() {
                classes.push(c);
            }
        }
    };
    add(r.lowercase, "abcdefghijklmnopqrstuvwxyz");
    add(r.uppercase, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    add(r.numbers, "0123456789");
    add(r.punctuation, PUNCTUATION);
    add(r.space, " ");
    if classes.is_empty() {
        return Err(SecretsError::InvalidParameter("The password can't be generated: every character type is excluded.".into()));
    }
    if r.require_each && r.length < classes.len() {
        return Err(SecretsError::InvalidParameter(format!("The password length {} is too short to include every required character type.", r.length)));
    }
    let all: Vec<char> = classes.iter().flatten().copied().collect();
    let mut rng = rand::rng();
    loop {
        let pw: Vec<char> = (0..r.length).map(|_| all[rng.random_range(0..all.len())]).collect();
        if !r.require_each || classes.iter().all(|c| pw.iter().any(|p| c.contains(p))) {
            return Ok(pw.into_iter().collect());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(id: &str, stages: &[&str]) -> VersionRecord {
        VersionRecord {
            id: id.into(),
            created: codeyard_core::time::now(),
            stages: stages.iter().map(|s| s.to_string()).collect(),
            kind: ValueKind::String,
            ciphertext: String::new(),
            kms_key_arn: String::new(),
            last_accessed: None,
        }
    }

    #[test]
    fn current_moves_and_leaves_previous_behind() {
        let now = codeyard_core::time::now();
        let mut s = SecretRecord {
            name: "n".into(),
            arn: "a".into(),
            description: None,
            kms_key_id: None,
            created: now,
            last_changed: now,
            last_accessed: None,
            deleted: None,
            deletion_date: None,
            tags: vec![],
            policy: None,
            versions: BTreeMap::new(),
        };
        s.versions.insert("v1".into(), version("v1", &[CURRENT]));
        s.versions.insert("v0".into(), version("v0", &[PREVIOUS]));
        s.versions.insert("v2".into(), version("v2", &[]));
        move_stages(&mut s, "v2", &[CURRENT.to_string()]);
        assert_eq!(s.versions["v2"].stages, vec![CURRENT]);
        assert_eq!(s.versions["v1"].stages, vec![PREVIOUS]);
        assert!(s.versions["v0"].stages.is_empty());
        move_stages(&mut s, "v0", &["AWSPENDING".to_string()]);
        assert_eq!(s.versions["v0"].stages, vec!["AWSPENDING"]);
    }

    #[test]
    fn passwords_follow_the_rules() {
        let rules = PasswordRules { length: 40, exclude: "abc".into(), numbers: true, punctuation: false, uppercase: true, lowercase: true, space: false, require_each: true };
        let pw = random_password(&rules).unwrap();
        assert_eq!(pw.chars().count(), 40);
        assert!(!pw.contains(['a', 'b', 'c']));
        assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(pw.chars().any(|c| c.is_ascii_digit()));
        let none = PasswordRules { numbers: false, uppercase: false, lowercase: false, ..rules };
        assert!(random_password(&none).is_err());
    }
}
