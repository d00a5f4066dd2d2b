//! Parameter Store's domain: parameters with their versions, labels and tags, per account and
//! region.
//!
//! Storage: namespace `ssm/<account>/<region>/parameters`, keyed by [`names::store_key`], one
//! [`ParameterRecord`] per parameter holding its (at most 100) versions. Every change is one
//! compare-and-swap on that document ([`StateStoreExt::update`]). SecureString values are
//! stored as the KMS ciphertext (base64) [`crate::crypto`] produced, never in plain text.

use crate::crypto::Crypto;
use crate::error::{SsmError, SsmResult, invalid};
use crate::names::{self, Reference, Selector};
pub use codeyard_api::ssm::{ParameterTier, ParameterType};
use codeyard_core::RequestContext;
use codeyard_core::tags;
use codeyard_store::{SharedStore, StateStoreExt, Update};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The filters of GetParametersByPath and DescribeParameters as the store applies them
/// (implemented by `filters::FilterSet`; a trait so that this module does not depend on that one).
pub trait ParameterFilter: Send + Sync {
    /// The version of `record` the filters select (by label), or None when it does not pass.
    fn select<'a>(&self, record: &'a ParameterRecord) -> Option<&'a ParameterVersion>;
    fn matches(&self, record: &ParameterRecord) -> bool {
        self.select(record).is_some()
    }
}

/// Versions kept per parameter: the 101st drops the oldest.
pub const MAX_VERSIONS: usize = 100;
pub const STANDARD_MAX_VALUE: usize = 4096;
pub const ADVANCED_MAX_VALUE: usize = 8192;
pub use codeyard_core::tags::MAX_TAGS;
/// The KMS key of SecureString parameters that name none.
pub const DEFAULT_KEY: &str = "alias/aws/ssm";
/// How often PutParameter retries when the parameter changed between its read and its write.
const PUT_ATTEMPTS: usize = 5;

/// A parameter: its name as created, its tags and its versions (ascending; the last is current).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ParameterRecord {
    pub name: String,
    pub tags: BTreeMap<String, String>,
    pub versions: Vec<ParameterVersion>,
}

impl ParameterRecord {
    pub fn current(&self) -> &ParameterVersion {
        self.versions
            .last()
            .expect("a stored parameter has a version")
    }

    fn version(&self, v: i64) -> Option<&ParameterVersion> {
        self.versions.iter().find(|p| p.version == v)
    }

    /// The version a selector names.
    pub fn select(&self, selector: &Selector) -> SsmResult<&ParameterVersion> {
        match selector {
            Selector::Latest => Ok(self.current()),
            Selector::Version(v) => self.version(*v).ok_or_else(|| SsmError::VersionNotFound {
                name: self.name.clone(),
                version: v.to_string(),
            }),
            Selector::Label(l) => self
                .versions
                .iter()
                .find(|p| p.labels.iter().any(|x| x == l))
                .ok_or_else(|| SsmError::VersionNotFound {
                    name: self.name.clone(),
                    version: l.clone(),
                }),
        }
    }
}

/// One version of a parameter, with everything PutParameter set on it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ParameterVersion {
    pub version: i64,
    pub r#type: ParameterType,
    pub value: StoredValue,
    pub description: Option<String>,
    pub allowed_pattern: Option<String>,
    /// The key as the caller named it (`alias/aws/ssm` by default), SecureString only.
    pub key_id: Option<String>,
    pub tier: ParameterTier,
    pub data_type: String,
    pub modified_ms: i64,
    pub modified_by: String,
    pub labels: Vec<String>,
}

/// A value as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoredValue {
    Plain {
        text: String,
    },
    /// The KMS ciphertext blob, base64 (what GetParameter without WithDecryption answers).
    Encrypted {
        ciphertext: String,
    },
}

/// What PutParameter asks for.
#[derive(Clone, Debug, Default)]
pub struct PutRequest {
    pub name: String,
    pub value: String,
    pub r#type: Option<ParameterType>,
    pub description: Option<String>,
    pub key_id: Option<String>,
    pub overwrite: bool,
    pub allowed_pattern: Option<String>,
    pub tags: Vec<(String, String)>,
    pub tier: Option<ParameterTier>,
    pub data_type: Option<String>,
    pub policies: Option<String>,
}

/// A version read back, its value decrypted when asked.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub name: String,
    pub arn: String,
    pub version: ParameterVersion,
    /// The value to answer: plain text, decrypted, or the ciphertext (base64).
    pub value: String,
    pub selector: Option<String>,
}

/// Where parameters live: account and region.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub account: &'a str,
    pub region: &'a str,
}

impl<'a> Scope<'a> {
    pub fn of(ctx: &'a RequestContext) -> Scope<'a> {
        Scope {
            account: &ctx.account,
            region: &ctx.region,
        }
    }
    fn ns(&self) -> String {
        format!("ssm/{}/{}/parameters", self.account, self.region)
    }
    pub fn arn(&self, name: &str) -> String {
        names::arn(self.account, self.region, name)
    }
}

/// Which page of a listing: at most `max` items, after the caller's NextToken.
#[derive(Clone, Copy, Debug)]
pub struct Paging<'a> {
    pub max: usize,
    pub token: Option<&'a str>,
}

/// A page of a listing and where the next one starts.
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// Parameter Store of one server. Cheap to clone.
#[derive(Clone)]
pub struct Parameters {
    store: SharedStore,
    crypto: Crypto,
}

fn now_ms() -> i64 {
    codeyard_core::time::epoch_millis(&codeyard_core::time::now())
}

fn value_len(v: &str) -> usize {
    v.chars().count()
}

/// The tier a value gets: the one asked for (Intelligent-Tiering picks), never down from
/// Advanced.
fn decide_tier(
    asked: Option<&ParameterTier>,
    previous: Option<&ParameterTier>,
    value: &str,
) -> SsmResult<ParameterTier> {
    let len = value_len(value);
    let was_advanced = previous == Some(&ParameterTier::Advanced);
    let tier = match asked.or(previous) {
        None | Some(ParameterTier::Standard) => ParameterTier::Standard,
        Some(ParameterTier::Advanced) => ParameterTier::Advanced,
        Some(ParameterTier::IntelligentTiering) => {
            if len > STANDARD_MAX_VALUE || was_advanced {
                ParameterTier::Advanced
            } else {
                ParameterTier::Standard
            }
        }
        Some(ParameterTier::Unknown(t)) => {
            return Err(invalid(format!(
                "1 validation error detected: Value '{t}' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Advanced, Intelligent-Tiering, Standard]"
            )));
        }
    };
    if tier == ParameterTier::Standard && was_advanced {
        return Err(invalid(
            "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced parameter and recreate it as a standard parameter.",
        ));
    }
    if tier == ParameterTier::Standard && len > STANDARD_MAX_VALUE {
        return Err(invalid(
            "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html",
        ));
    }
    if len > ADVANCED_MAX_VALUE {
        return Err(invalid(
            "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length less than or equal to 8192",
        ));
    }
    Ok(tier)
}

fn check_data_type(
    data_type: &str,
    r#type: &ParameterType,
    value: &str,
    previous: Option<&str>,
) -> SsmResult<()> {
    if !matches!(data_type, "text" | "aws:ec2:image") {
        return Err(invalid(format!(
            "The following data type is not supported: {data_type} (Data type names are all lowercase.)"
        )));
    }
    if let Some(prev) = previous
        && prev != data_type
        && (prev == "aws:ec2:image" || data_type == "aws:ec2:image")
    {
        return Err(invalid(format!(
            "You can't change the data type of a parameter from {prev} to {data_type}."
        )));
    }
    if data_type == "aws:ec2:image" {
        if *r#type != ParameterType::String {
            return Err(invalid(
                "The data type aws:ec2:image is only supported for String parameters.",
            ));
        }
        // ami- followed by 8 or 17 lowercase hexadecimal digits.
        let ok = value.strip_prefix("ami-").is_some_and(|h| {
            matches!(h.len(), 8 | 17)
                && h.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        });
        if !ok {
            return Err(invalid(format!(
                "Parameter value, {value}, is not a valid value for data type aws:ec2:image: the value must be an AMI ID such as ami-12345abcdeEXAMPLE (ami- and 8 or 17 hexadecimal digits)."
            )));
        }
    }
    Ok(())
}

fn check_pattern(pattern: &str, value: &str) -> SsmResult<()> {
    if pattern.is_empty() {
        return Ok(());
    }
    let re = regex::Regex::new(pattern)
        .map_err(|_| SsmError::InvalidAllowedPattern(pattern.to_string()))?;
    if re.is_match(value) {
        Ok(())
    } else {
        Err(SsmError::PatternMismatch(pattern.to_string()))
    }
}

fn check_tags(tags: &BTreeMap<String, String>) -> SsmResult<()> {
    if tags.len() > MAX_TAGS {
        return Err(SsmError::TooManyTags);
    }
    if let Some(k) = tags
        .keys()
        .find(|k| k.to_ascii_lowercase().starts_with("aws:"))
    {
        return Err(invalid(format!(
            "The tag key \"{k}\" is not valid: tag keys can't start with \"aws:\"."
        )));
    }
    Ok(())
}

/// The opaque paging token of a listing: the key of the last item answered, base64.
fn encode_token(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn decode_token(token: Option<&str>) -> SsmResult<Option<String>> {
    use base64::Engine;
    match token {
        None | Some("") => Ok(None),
        Some(t) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(Some)
            .ok_or(SsmError::InvalidNextToken),
    }
}

/// An index-based paging token (history).
fn decode_index(token: Option<&str>) -> SsmResult<usize> {
    match decode_token(token)? {
        None => Ok(0),
        Some(s) => s.parse().map_err(|_| SsmError::InvalidNextToken),
    }
}

impl Parameters {
    pub fn new(store: SharedStore, crypto: Crypto) -> Self {
        Parameters { store, crypto }
    }

    async fn record(&self, s: Scope<'_>, key: &str) -> SsmResult<Option<ParameterRecord>> {
        Ok(self
            .store
            .get_as::<ParameterRecord>(&s.ns(), key)
            .await?
            .map(|(r, _)| r))
    }

    async fn existing(&self, s: Scope<'_>, key: &str) -> SsmResult<ParameterRecord> {
        self.record(s, key).await?.ok_or(SsmError::NotFound)
    }

    /// PutParameter: the new version and its tier.
    pub async fn put(
        &self,
        ctx: &RequestContext,
        req: PutRequest,
    ) -> SsmResult<(i64, ParameterTier)> {
        let s = Scope::of(ctx);
        names::validate_new_name(&req.name)?;
        if req.overwrite && !req.tags.is_empty() {
            return Err(invalid(
                "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.",
            ));
        }
        if req.policies.is_some() {
            return Err(invalid(
                "Parameter policies (Expiration, ExpirationNotification, NoChangeNotification) are not supported by codeyard: omit Policies.",
            ));
        }
        if req.value.is_empty() {
            return Err(invalid(
                "1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1.",
            ));
        }
        if let Some(ParameterType::Unknown(t)) = &req.r#type {
            return Err(invalid(format!(
                "1 validation error detected: Value '{t}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]"
            )));
        }
        let tags: BTreeMap<String, String> = req.tags.iter().cloned().collect();
        check_tags(&tags)?;
        let key = names::store_key(&req.name);
        let arn = s.arn(&req.name);
        for _ in 0..PUT_ATTEMPTS {
            let prior = self.record(s, &key).await?;
            let prev = prior.as_ref().map(|r| r.current().clone());
            if prev.is_some() && !req.overwrite {
                return Err(SsmError::AlreadyExists);
            }
            let Some(r#type) = req
                .r#type
                .clone()
                .or_else(|| prev.as_ref().map(|p| p.r#type.clone()))
            else {
                return Err(invalid(
                    "A parameter type is required when you create a parameter.",
                ));
            };
            let description = req
                .description
                .clone()
                .or_else(|| prev.as_ref().and_then(|p| p.description.clone()));
            let allowed_pattern = req
                .allowed_pattern
                .clone()
                .or_else(|| prev.as_ref().and_then(|p| p.allowed_pattern.clone()));
            let data_type = req
                .data_type
                .clone()
                .filter(|d| !d.is_empty())
                .or_else(|| prev.as_ref().map(|p| p.data_type.clone()))
                .unwrap_or_else(|| "text".into());
            check_data_type(
                &data_type,
                &r#type,
                &req.value,
                prev.as_ref().map(|p| p.data_type.as_str()),
            )?;
            let tier = decide_tier(
                req.tier.as_ref(),
                prev.as_ref().map(|p| &p.tier),
                &req.value,
            )?;
            if let Some(p) = &allowed_pattern {
                check_pattern(p, &req.value)?;
            }
            let key_id = match r#type {
                ParameterType::SecureString => Some(
                    req.key_id
                        .clone()
                        .or_else(|| {
                            prev.as_ref()
                                .filter(|p| p.r#type == ParameterType::SecureString)
                                .and_then(|p| p.key_id.clone())
                        })
                        .unwrap_or_else(|| DEFAULT_KEY.to_string()),
                ),
                _ => None,
            };
            let value = match &key_id {
                Some(k) => StoredValue::Encrypted {
                    ciphertext: self.crypto.encrypt(ctx, k, &arn, &req.value).await?,
                },
                None => StoredValue::Plain {
                    text: req.value.clone(),
                },
            };
            let expected = prev.as_ref().map(|p| p.version);
            let name = req.name.clone();
            let new_tags = tags.clone();
            let mut stored_version = 0;
            let outcome = self
                .store
                .update(&s.ns(), &key, |current: Option<ParameterRecord>| {
                    if current.as_ref().map(|r| r.current().version) != expected {
                        return Err(SsmError::Contended);
                    }
                    let mut record = current.unwrap_or_else(|| ParameterRecord {
                        name: name.clone(),
                        tags: new_tags.clone(),
                        versions: vec![],
                    });
                    let version = record.versions.last().map_or(1, |p| p.version + 1);
                    if record.versions.len() >= MAX_VERSIONS {
                        let oldest = &record.versions[0];
                        if !oldest.labels.is_empty() {
                            return Err(SsmError::MaxVersions {
                                name: record.name.clone(),
                                oldest: oldest.version,
                            });
                        }
                        record.versions.remove(0);
                    }
                    record.versions.push(ParameterVersion {
                        version,
                        r#type: r#type.clone(),
                        value: value.clone(),
                        description: description.clone(),
                        allowed_pattern: allowed_pattern.clone(),
                        key_id: key_id.clone(),
                        tier: tier.clone(),
                        data_type: data_type.clone(),
                        modified_ms: now_ms(),
                        modified_by: ctx.caller_arn.clone(),
                        labels: vec![],
                    });
                    stored_version = version;
                    Ok(Update::put(record))
                })
                .await;
            match outcome {
                Ok(_) => return Ok((stored_version, tier)),
                Err(SsmError::Contended) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(SsmError::Contended)
    }

    async fn resolve(
        &self,
        ctx: &RequestContext,
        record: &ParameterRecord,
        v: &ParameterVersion,
        decrypt: bool,
        selector: Option<String>,
    ) -> SsmResult<Resolved> {
        let arn = Scope::of(ctx).arn(&record.name);
        let value = match &v.value {
            StoredValue::Plain { text } => text.clone(),
            StoredValue::Encrypted { ciphertext } if decrypt => {
                self.crypto.decrypt(ctx, &arn, ciphertext).await?
            }
            StoredValue::Encrypted { ciphertext } => ciphertext.clone(),
        };
        Ok(Resolved {
            name: record.name.clone(),
            arn,
            version: v.clone(),
            value,
            selector,
        })
    }

    /// GetParameter: a name, ARN, `name:3` or `name:label`.
    pub async fn get(
        &self,
        ctx: &RequestContext,
        reference: &str,
        decrypt: bool,
    ) -> SsmResult<Resolved> {
        let s = Scope::of(ctx);
        let Some(Reference { key, selector }) =
            names::parse_reference(s.account, s.region, reference)
        else {
            return Err(SsmError::NotFound);
        };
        let record = self.existing(s, &key).await?;
        let v = record.select(&selector)?.clone();
        self.resolve(ctx, &record, &v, decrypt, selector.wire())
            .await
    }

    /// GetParameters: the ones found (in the order asked, once each) and the names not found.
    pub async fn get_many(
        &self,
        ctx: &RequestContext,
        references: &[String],
        decrypt: bool,
    ) -> SsmResult<(Vec<Resolved>, Vec<String>)> {
        let (mut found, mut invalid_names) = (Vec::new(), Vec::new());
        let mut seen = std::collections::BTreeSet::new();
        for r in references {
            if !seen.insert(r.as_str()) {
                continue;
            }
            match self.get(ctx, r, decrypt).await {
                Ok(p) => found.push(p),
                Err(SsmError::NotFound | SsmError::VersionNotFound { .. }) => {
                    invalid_names.push(r.clone())
                }
                Err(e) => return Err(e),
            }
        }
        Ok((found, invalid_names))
    }

    /// GetParametersByPath.
    pub async fn by_path(
        &self,
        ctx: &RequestContext,
        path: &str,
        recursive: bool,
        filters: &dyn ParameterFilter,
        decrypt: bool,
        paging: Paging<'_>,
    ) -> SsmResult<Page<Resolved>> {
        let (max, token) = (paging.max, paging.token);
        let s = Scope::of(ctx);
        let path = names::validate_path(path)?;
        let after = decode_token(token)?;
        let (records, next) = self
            .matching(s, after.as_deref(), max, |r| {
                names::under_path(&r.name, &path, recursive) && filters.matches(r)
            })
            .await?;
        let mut items = Vec::with_capacity(records.len());
        for r in &records {
            let v = filters.select(r).unwrap_or_else(|| r.current()).clone();
            items.push(self.resolve(ctx, r, &v, decrypt, None).await?);
        }
        Ok(Page {
            items,
            next_token: next,
        })
    }

    /// DescribeParameters: the current version of each parameter that passes the filters.
    pub async fn describe(
        &self,
        ctx: &RequestContext,
        filters: &dyn ParameterFilter,
        paging: Paging<'_>,
    ) -> SsmResult<Page<ParameterRecord>> {
        let (max, token) = (paging.max, paging.token);
        let after = decode_token(token)?;
        let (items, next_token) = self
            .matching(Scope::of(ctx), after.as_deref(), max, |r| {
                filters.matches(r)
            })
            .await?;
        Ok(Page { items, next_token })
    }

    /// Up to `max` records after `after` (a store key) that pass `keep`, and the token of the
    /// next page when there is more.
    async fn matching(
        &self,
        s: Scope<'_>,
        after: Option<&str>,
        max: usize,
        keep: impl Fn(&ParameterRecord) -> bool,
    ) -> SsmResult<(Vec<ParameterRecord>, Option<String>)> {
        let ns = s.ns();
        let mut scan = self.store.scan(&ns, "").start_after(after);
        let mut out: Vec<(String, ParameterRecord)> = Vec::new();
        while let Some(page) = scan.next_page().await? {
            for doc in page {
                let r: ParameterRecord = doc.parse()?;
                if keep(&r) {
                    if out.len() == max {
                        let last = out.last().map(|(k, _)| encode_token(k));
                        return Ok((out.into_iter().map(|(_, r)| r).collect(), last));
                    }
                    out.push((doc.key, r));
                }
            }
        }
        Ok((out.into_iter().map(|(_, r)| r).collect(), None))
    }

    /// GetParameterHistory: versions oldest first, `max` at a time.
    pub async fn history(
        &self,
        ctx: &RequestContext,
        reference: &str,
        decrypt: bool,
        paging: Paging<'_>,
    ) -> SsmResult<(ParameterRecord, Page<Resolved>)> {
        let (max, token) = (paging.max, paging.token);
        let s = Scope::of(ctx);
        let key = self.plain_key(s, reference)?;
        let record = self.existing(s, &key).await?;
        let start = decode_index(token)?;
        if start > record.versions.len() {
            return Err(SsmError::InvalidNextToken);
        }
        let end = (start + max).min(record.versions.len());
        let mut items = Vec::new();
        for v in &record.versions[start..end] {
            items.push(self.resolve(ctx, &record, v, decrypt, None).await?);
        }
        let next_token = (end < record.versions.len()).then(|| encode_token(&end.to_string()));
        Ok((record, Page { items, next_token }))
    }

    /// A reference that must not carry a selector (history, labels, delete, tags).
    fn plain_key(&self, s: Scope<'_>, reference: &str) -> SsmResult<String> {
        match names::parse_reference(s.account, s.region, reference) {
            Some(Reference {
                key,
                selector: Selector::Latest,
            }) => Ok(key),
            Some(_) => Err(invalid(format!(
                "Parameter name {reference} is not valid: a version or label selector is not allowed here."
            ))),
            None => Err(SsmError::NotFound),
        }
    }

    /// LabelParameterVersion: (invalid labels, the version labelled). Valid labels move to the
    /// version from wherever they were.
    pub async fn label(
        &self,
        ctx: &RequestContext,
        reference: &str,
        version: Option<i64>,
        labels: &[String],
    ) -> SsmResult<(Vec<String>, i64)> {
        let s = Scope::of(ctx);
        let key = self.plain_key(s, reference)?;
        let (good, bad): (Vec<String>, Vec<String>) =
            labels.iter().cloned().partition(|l| names::valid_label(l));
        let mut labelled = 0;
        self.store
            .update(&s.ns(), &key, |current: Option<ParameterRecord>| {
                let mut record = current.ok_or(SsmError::NotFound)?;
                let target = version.unwrap_or(record.current().version);
                if record.version(target).is_none() {
                    return Err(SsmError::VersionNotFound {
                        name: record.name.clone(),
                        version: target.to_string(),
                    });
                }
                for v in record.versions.iter_mut() {
                    if v.version == target {
                        for l in &good {
                            if !v.labels.contains(l) {
                                v.labels.push(l.clone());
                            }
                        }
                        if v.labels.len() > names::MAX_LABELS_PER_VERSION {
                            return Err(SsmError::LabelLimit);
                        }
                    } else {
                        v.labels.retain(|l| !good.contains(l));
                    }
                }
                labelled = target;
                Ok::<_, SsmError>(Update::put(record))
            })
            .await?;
        Ok((bad, labelled))
    }

    /// UnlabelParameterVersion: (removed, invalid: not on that version).
    pub async fn unlabel(
        &self,
        ctx: &RequestContext,
        reference: &str,
        version: i64,
        labels: &[String],
    ) -> SsmResult<(Vec<String>, Vec<String>)> {
        let s = Scope::of(ctx);
        let key = self.plain_key(s, reference)?;
        let (mut removed, mut missing) = (Vec::new(), Vec::new());
        self.store
            .update(&s.ns(), &key, |current: Option<ParameterRecord>| {
                let mut record = current.ok_or(SsmError::NotFound)?;
                let name = record.name.clone();
                let v = record
                    .versions
                    .iter_mut()
                    .find(|v| v.version == version)
                    .ok_or_else(|| SsmError::VersionNotFound {
                        name,
                        version: version.to_string(),
                    })?;
                (removed, missing) = labels.iter().cloned().partition(|l| v.labels.contains(l));
                v.labels.retain(|l| !labels.contains(l));
                Ok::<_, SsmError>(Update::put(record))
            })
            .await?;
        Ok((removed, missing))
    }

    /// DeleteParameter.
    pub async fn delete(&self, ctx: &RequestContext, reference: &str) -> SsmResult<()> {
        let s = Scope::of(ctx);
        let key = self.plain_key(s, reference)?;
        self.store
            .update(
                &s.ns(),
                &key,
                |current: Option<ParameterRecord>| match current {
                    Some(_) => Ok(Update::delete()),
                    None => Err(SsmError::NotFound),
                },
            )
            .await?;
        Ok(())
    }

    /// DeleteParameters: (deleted, not found).
    pub async fn delete_many(
        &self,
        ctx: &RequestContext,
        references: &[String],
    ) -> SsmResult<(Vec<String>, Vec<String>)> {
        let (mut deleted, mut missing) = (Vec::new(), Vec::new());
        for r in references {
            match self.delete(ctx, r).await {
                Ok(()) => deleted.push(r.clone()),
                Err(SsmError::NotFound | SsmError::Invalid(_)) => missing.push(r.clone()),
                Err(e) => return Err(e),
            }
        }
        Ok((deleted, missing))
    }

    /// The tags of a parameter (ResourceId: its name).
    pub async fn tags(
        &self,
        ctx: &RequestContext,
        resource_id: &str,
    ) -> SsmResult<BTreeMap<String, String>> {
        let s = Scope::of(ctx);
        let key = self.tag_key(s, resource_id)?;
        match self.record(s, &key).await? {
            Some(r) => Ok(r.tags),
            None => Err(SsmError::InvalidResourceId(resource_id.to_string())),
        }
    }

    fn tag_key(&self, s: Scope<'_>, resource_id: &str) -> SsmResult<String> {
        self.plain_key(s, resource_id)
            .map_err(|_| SsmError::InvalidResourceId(resource_id.to_string()))
    }

    /// AddTagsToResource (`add`) and RemoveTagsFromResource (`remove`).
    pub async fn change_tags(
        &self,
        ctx: &RequestContext,
        resource_id: &str,
        add: &[(String, String)],
        remove: &[String],
    ) -> SsmResult<()> {
        let s = Scope::of(ctx);
        let key = self.tag_key(s, resource_id)?;
        self.store
            .update(&s.ns(), &key, |current: Option<ParameterRecord>| {
                let mut record =
                    current.ok_or_else(|| SsmError::InvalidResourceId(resource_id.to_string()))?;
                record.tags.extend(add.iter().cloned());
                tags::remove(&mut record.tags, remove);
                check_tags(&record.tags)?;
                Ok::<_, SsmError>(Update::put(record))
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_follow_aws() {
        let small = "x".repeat(10);
        let big = "x".repeat(5000);
        assert_eq!(
            decide_tier(None, None, &small).unwrap(),
            ParameterTier::Standard
        );
        assert!(
            matches!(decide_tier(None, None, &big), Err(SsmError::Invalid(m)) if m.contains("4096"))
        );
        assert_eq!(
            decide_tier(Some(&ParameterTier::IntelligentTiering), None, &big).unwrap(),
            ParameterTier::Advanced
        );
        assert_eq!(
            decide_tier(Some(&ParameterTier::IntelligentTiering), None, &small).unwrap(),
            ParameterTier::Standard
        );
        assert_eq!(
            decide_tier(None, Some(&ParameterTier::Advanced), &small).unwrap(),
            ParameterTier::Advanced
        );
        assert!(
            matches!(decide_tier(Some(&ParameterTier::Standard), Some(&ParameterTier::Advanced), &small), Err(SsmError::Invalid(m)) if m.contains("downgrade"))
        );
        assert!(decide_tier(Some(&ParameterTier::Advanced), None, &"x".repeat(8193)).is_err());
    }

    #[test]
    fn data_types_and_patterns() {
        // (data type, parameter type, value, the previous version's data type, accepted)
        let cases: &[(&str, ParameterType, &str, Option<&str>, bool)] = &[
            ("text", ParameterType::String, "v", None, true),
            (
                "aws:ec2:image",
                ParameterType::String,
                "ami-0123456789abcdef0",
                None,
                true,
            ),
            (
                "aws:ec2:image",
                ParameterType::String,
                "ami-12345678",
                None,
                true,
            ),
            (
                "aws:ec2:image",
                ParameterType::String,
                "ami-xyz",
                None,
                false,
            ),
            (
                "aws:ec2:image",
                ParameterType::StringList,
                "ami-12345678",
                None,
                false,
            ),
            ("Text", ParameterType::String, "v", None, false),
            (
                "text",
                ParameterType::String,
                "v",
                Some("aws:ec2:image"),
                false,
            ),
        ];
        for (data_type, kind, value, previous, accepted) in cases {
            let r = check_data_type(data_type, kind, value, *previous);
            assert_eq!(
                r.is_ok(),
                *accepted,
                "{data_type} {kind:?} {value} {previous:?}"
            );
        }
        assert!(check_pattern("^\\d+$", "123").is_ok());
        assert!(matches!(
            check_pattern("^\\d+$", "12a"),
            Err(SsmError::PatternMismatch(_))
        ));
        assert!(matches!(
            check_pattern("(", "x"),
            Err(SsmError::InvalidAllowedPattern(_))
        ));
    }

    #[test]
    fn tokens_round_trip() {
        assert_eq!(
            decode_token(Some(&encode_token("/a/b")))
                .unwrap()
                .as_deref(),
            Some("/a/b")
        );
        assert!(matches!(
            decode_token(Some("%%%")),
            Err(SsmError::InvalidNextToken)
        ));
        assert_eq!(decode_index(Some(&encode_token("7"))).unwrap(), 7);
    }
}
