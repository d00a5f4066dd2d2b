//! The Secrets Manager API (awsJson1.1): the generated `SecretsManagerApi` trait over
//! [`crate::domain::Secrets`].

use crate::domain::{self, NewSecret, PasswordRules, Scope, SecretRecord, SecretValue, Secrets, SecretsError, VersionRecord, CURRENT};
use codeyard_api::secretsmanager::*;
use codeyard_api::{Blob, Timestamp, Unit};
use codeyard_core::tags::{self, MAX_TAGS};
use codeyard_core::{AccessRequest, AwsError, AwsResult, RequestContext};
use serde_json::Value;

pub struct SecretsManagerService {
    pub secrets: Secrets,
}

fn ts(t: codeyard_core::time::Timestamp) -> Timestamp {
    Timestamp(t)
}

fn tags_out(tags: &[(String, String)]) -> Option<Vec<Tag>> {
    (!tags.is_empty()).then(|| tags.iter().map(|(k, v)| Tag { key: Some(k.clone()), value: Some(v.clone()) }).collect())
}

fn tags_in(tags: Option<Vec<Tag>>) -> Vec<(String, String)> {
    tags.unwrap_or_default().into_iter().map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default())).collect()
}

fn value_of(string: Option<String>, binary: Option<Blob>) -> Result<Option<SecretValue>, SecretsError> {
    match (string, binary) {
        (Some(_), Some(_)) => Err(SecretsError::InvalidParameter("You can't specify both a binary secret value and a string secret value in the same secret.".into())),
        (Some(s), None) => Ok(Some(SecretValue::String(s))),
        (None, Some(b)) => Ok(Some(SecretValue::Binary(b.0))),
        (None, None) => Ok(None),
    }
}

fn check_token(token: &Option<String>) -> Result<(), SecretsError> {
    if let Some(t) = token
        && !(32..=64).contains(&t.len())
    {
        return Err(SecretsError::InvalidParameter("ClientRequestToken must be 32-64 characters long.".into()));
    }
    Ok(())
}

fn describe(s: &SecretRecord) -> DescribeSecretResponse {
    DescribeSecretResponse {
        arn: Some(s.arn.clone()),
        name: Some(s.name.clone()),
        description: s.description.clone(),
        kms_key_id: s.kms_key_id.clone(),
        rotation_enabled: Some(false),
        last_changed_date: Some(ts(s.last_changed)),
        last_accessed_date: s.last_accessed.map(ts),
        deleted_date: s.deletion_date.map(ts),
        tags: tags_out(&s.tags),
        version_ids_to_stages: Some(s.stages()),
        created_date: Some(ts(s.created)),
        ..Default::default()
    }
}

/// ListSecrets' entry: DescribeSecret's fields (the same members on the wire), with the
/// stages under the name ListSecrets gives them.
fn list_entry(s: &SecretRecord) -> SecretListEntry {
    let d = describe(s);
    let mut entry: SecretListEntry = serde_json::to_value(&d).ok().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
    entry.secret_versions_to_stages = d.version_ids_to_stages;
    entry
}

fn value_out(secret: &SecretRecord, version: &VersionRecord, value: SecretValue) -> GetSecretValueResponse {
    let (secret_string, secret_binary) = match value {
        SecretValue::String(s) => (Some(s), None),
        SecretValue::Binary(b) => (None, Some(Blob(b))),
    };
    GetSecretValueResponse {
        arn: Some(secret.arn.clone()),
        name: Some(secret.name.clone()),
        version_id: Some(version.id.clone()),
        secret_binary,
        secret_string,
        version_stages: Some(version.stages.clone()),
        created_date: Some(ts(version.created)),
    }
}

/// Whether a secret matches ListSecrets' filters (AND across filters, OR across values; a
/// value starting with `!` negates).
fn matches_filters(s: &SecretRecord, filters: &[Filter]) -> bool {
    filters.iter().all(|f| {
        let values = f.values.clone().unwrap_or_default();
        values.iter().any(|raw| {
            let (neg, v) = match raw.strip_prefix('!') {
                Some(v) => (true, v),
                None => (false, raw.as_str()),
            };
            let lower = v.to_lowercase();
            let prefix_ci = |x: &str| x.to_lowercase().starts_with(&lower);
            let hit = match f.key.as_ref() {
                Some(FilterNameStringType::Name) => s.name.starts_with(v),
                Some(FilterNameStringType::Description) => s.description.as_deref().is_some_and(prefix_ci),
                Some(FilterNameStringType::TagKey) => s.tags.iter().any(|(k, _)| k.starts_with(v)),
                Some(FilterNameStringType::TagValue) => s.tags.iter().any(|(_, val)| val.starts_with(v)),
                Some(FilterNameStringType::PrimaryRegion) => false,
                Some(FilterNameStringType::OwningService) => false,
                _ => prefix_ci(&s.name) || s.description.as_deref().is_some_and(prefix_ci) || s.tags.iter().any(|(k, val)| prefix_ci(k) || prefix_ci(val)),
            };
            hit != neg
        })
    })
}

fn page<T: Clone>(items: &[T], token: Option<&str>, max: Option<i32>) -> Result<(Vec<T>, Option<String>), SecretsError> {
    let start: usize = match token {
        Some(t) => t.parse().map_err(|_| SecretsError::InvalidParameter("Invalid NextToken".into()))?,
        None => 0,
    };
    let max = max.unwrap_or(100).clamp(1, 100) as usize;
    let end = (start + max).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items.get(start..end).unwrap_or_default().to_vec(), next))
}

fn check_policy(text: &str) -> Result<Value, SecretsError> {
    let v: Value = serde_json::from_str(text).map_err(|e| SecretsError::MalformedPolicy(format!("This resource policy contains a syntax error: {e}")))?;
    if !v.get("Statement").is_some_and(|s| s.is_array() || s.is_object()) {
        return Err(SecretsError::MalformedPolicy("This resource policy contains a syntax error: Statement is missing.".into()));
    }
    Ok(v)
}

/// An Allow statement for everyone without a condition: what BlockPublicPolicy refuses.
fn is_public(policy: &Value) -> bool {
    let statements = match policy.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(o) => vec![o.clone()],
        None => vec![],
    };
    statements.iter().any(|st| {
        let allow = st.get("Effect").and_then(Value::as_str) == Some("Allow");
        let everyone = match st.get("Principal") {
            Some(Value::String(s)) => s == "*",
            Some(Value::Object(o)) => o.get("AWS").is_some_and(|a| a == "*" || a.as_array().is_some_and(|l| l.iter().any(|x| x == "*"))),
            _ => false,
        };
        allow && everyone && st.get("Condition").is_none()
    })
}

impl SecretsManagerService {
    /// Changes the secret `secret_id` names (by name, ARN or partial ARN), deleted or not.
    async fn change(&self, ctx: &RequestContext, secret_id: &str, change: impl FnMut(&mut SecretRecord) -> Result<(), SecretsError> + Send) -> AwsResult<SecretRecord> {
        let s = Scope::of(ctx);
        let (secret, _) = self.secrets.find(&s, secret_id).await?;
        Ok(self.secrets.update(&s, &secret.name, change).await?)
    }

    async fn authorize(&self, ctx: &RequestContext, action: &str, secret: &SecretRecord) -> Result<(), SecretsError> {
        self.secrets
            .hub
            .authorize(ctx, &secret_request(ctx, action, Some(secret), &secret.name))
            .await
            .map_err(|d| SecretsError::Kms(d.to_error("AccessDeniedException")))
    }
}

/// The request for `action` on a secret (its ARN and resource policy), or on the ARN a new
/// secret named `name` would have.
pub fn secret_request(ctx: &RequestContext, action: &str, secret: Option<&SecretRecord>, name: &str) -> AccessRequest {
    let s = Scope::of(ctx);
    let mut r = match secret {
        Some(sec) => {
            let mut r = AccessRequest::new(action, sec.arn.clone()).with_resource_policy(sec.policy.clone()).with("secretsmanager:SecretId", sec.arn.clone());
            for (k, v) in &sec.tags {
                r = r.with(format!("aws:ResourceTag/{k}"), v.clone());
            }
            r
        }
        None => AccessRequest::new(action, format!("{}{name}", s.arn_prefix())),
    };
    r = r.with("secretsmanager:Name", name.to_string());
    r
}

#[codeyard_api::service]
impl SecretsManagerApi for SecretsManagerService {
    /// Every call on a secret is asked on the secret's ARN with its resource policy.
    async fn access_requests(&self, ctx: &RequestContext, operation: &str, input: &Value) -> AwsResult<Vec<AccessRequest>> {
        let Some(actions) = codeyard_api::iam_actions("secretsmanager", operation) else { return Ok(Vec::new()) };
        let s = Scope::of(ctx);
        let id = input.get("SecretId").or_else(|| input.get("Name")).and_then(Value::as_str);
        let secret = match id {
            Some(id) => self.secrets.find(&s, id).await.ok().map(|(r, _)| r),
            None => None,
        };
        let mut out = Vec::new();
        for action in actions {
            if action.resources.is_empty() {
                out.push(AccessRequest::new(action.action, "*"));
                continue;
            }
            let name = secret.as_ref().map(|r| r.name.clone()).or_else(|| id.map(|i| domain::parse_secret_id(&s, i).0)).unwrap_or_default();
            let mut r = secret_request(ctx, action.action, secret.as_ref(), &name);
            if let Some(k) = input.get("KmsKeyId").and_then(Value::as_str) {
                r = r.with("secretsmanager:KmsKeyId", k.to_string());
            }
            if let Some(Value::Array(tags)) = input.get("Tags") {
                for t in tags {
                    if let (Some(k), Some(v)) = (t.get("Key").and_then(Value::as_str), t.get("Value").and_then(Value::as_str)) {
                        r = r.with(format!("aws:RequestTag/{k}"), v.to_string()).with("aws:TagKeys", k.to_string());
                    }
                }
            }
            out.push(r);
        }
        Ok(out)
    }

    async fn create_secret(&self, ctx: &RequestContext, input: CreateSecretInput) -> AwsResult<CreateSecretOutput> {
        check_token(&input.client_request_token)?;
        if input.add_replica_regions.as_ref().is_some_and(|r| !r.is_empty()) {
            return Err(SecretsError::InvalidRequest("Replicating secrets to other regions is not supported by this server.".into()).into());
        }
        let new = NewSecret {
            value: value_of(input.secret_string, input.secret_binary)?,
            name: input.name,
            token: input.client_request_token,
            description: input.description,
            kms_key_id: input.kms_key_id,
            tags: tags_in(input.tags),
        };
        let (rec, version_id) = self.secrets.create(ctx, new).await?;
        Ok(CreateSecretResponse { arn: Some(rec.arn), name: Some(rec.name), version_id, replication_status: None })
    }

    async fn get_secret_value(&self, ctx: &RequestContext, input: GetSecretValueInput) -> AwsResult<GetSecretValueOutput> {
        let r = self.secrets.get_value(ctx, &input.secret_id, input.version_id.as_deref(), input.version_stage.as_deref()).await?;
        Ok(value_out(&r.secret, &r.version, r.value))
    }

    async fn batch_get_secret_value(&self, ctx: &RequestContext, input: BatchGetSecretValueInput) -> AwsResult<BatchGetSecretValueOutput> {
        let s = Scope::of(ctx);
        let ids: Vec<String> = match (&input.secret_id_list, &input.filters) {
            (Some(_), Some(_)) => return Err(SecretsError::InvalidParameter("Either 'SecretIdList' or 'Filters' must be provided, but not both.".into()).into()),
            (Some(list), None) => list.clone(),
            (None, Some(filters)) => {
                let all: Vec<SecretRecord> = self.secrets.list(&s).await?;
                all.into_iter().filter(|r| r.deleted.is_none() && matches_filters(r, filters)).map(|r| r.arn).collect()
            }
            (None, None) => return Err(SecretsError::InvalidParameter("Either 'SecretIdList' or 'Filters' must be provided.".into()).into()),
        };
        let (ids, next) = page(&ids, input.next_token.as_deref(), input.max_results.or(Some(20)))?;
        let mut values = Vec::new();
        let mut errors = Vec::new();
        for id in ids {
            let res = async {
                let (secret, _) = self.secrets.find(&s, &id).await?;
                self.authorize(ctx, "secretsmanager:GetSecretValue", &secret).await?;
                self.secrets.get_value(ctx, &id, None, None).await
            }
            .await;
            match res {
                Ok(r) => values.push(value_out(&r.secret, &r.version, r.value)),
                Err(e) => {
                    let e: AwsError = e.into();
                    errors.push(APIErrorType { secret_id: Some(id), error_code: Some(e.code), message: Some(e.message) });
                }
            }
        }
        Ok(BatchGetSecretValueResponse { secret_values: Some(values), next_token: next, errors: Some(errors) })
    }

    async fn put_secret_value(&self, ctx: &RequestContext, input: PutSecretValueInput) -> AwsResult<PutSecretValueOutput> {
        check_token(&input.client_request_token)?;
        let value = value_of(input.secret_string, input.secret_binary)?.ok_or_else(|| SecretsError::InvalidRequest("You must provide either SecretString or SecretBinary.".into()))?;
        let (rec, vid) = self.secrets.put_value(ctx, &input.secret_id, input.client_request_token, value, input.version_stages).await?;
        let stages = rec.versions.get(&vid).map(|v| v.stages.clone());
        Ok(PutSecretValueResponse { arn: Some(rec.arn), name: Some(rec.name), version_id: Some(vid), version_stages: stages })
    }

    async fn update_secret(&self, ctx: &RequestContext, input: UpdateSecretInput) -> AwsResult<UpdateSecretOutput> {
        check_token(&input.client_request_token)?;
        let s = Scope::of(ctx);
        let secret = self.secrets.live(&s, &input.secret_id).await?;
        let value = value_of(input.secret_string, input.secret_binary)?;
        if input.description.is_some() || input.kms_key_id.is_some() {
            self.secrets
                .update(&s, &secret.name, |rec| {
                    if rec.deleted.is_some() {
                        return Err(SecretsError::MarkedForDeletion);
                    }
                    if let Some(d) = &input.description {
                        rec.description = Some(d.clone());
                    }
                    if let Some(k) = &input.kms_key_id {
                        rec.kms_key_id = Some(k.clone());
                    }
                    rec.last_changed = codeyard_core::time::now();
                    Ok(())
                })
                .await?;
        }
        let version_id = match value {
            Some(v) => Some(self.secrets.put_value(ctx, &secret.arn, input.client_request_token, v, None).await?.1),
            None => None,
        };
        Ok(CancelRotateSecretResponse { arn: Some(secret.arn), name: Some(secret.name), version_id })
    }

    async fn describe_secret(&self, ctx: &RequestContext, input: DescribeSecretInput) -> AwsResult<DescribeSecretOutput> {
        let (rec, _) = self.secrets.find(&Scope::of(ctx), &input.secret_id).await?;
        Ok(describe(&rec))
    }

    async fn list_secrets(&self, ctx: &RequestContext, input: ListSecretsInput) -> AwsResult<ListSecretsOutput> {
        let s = Scope::of(ctx);
        let mut all: Vec<SecretRecord> = self.secrets.list(&s).await?;
        let include_deleted = input.include_planned_deletion.unwrap_or(false);
        let filters = input.filters.unwrap_or_default();
        all.retain(|r| (include_deleted || r.deleted.is_none()) && matches_filters(r, &filters));
        match input.sort_by.as_ref() {
            Some(SortByType::Name) => all.sort_by(|a, b| a.name.cmp(&b.name)),
            Some(SortByType::LastChangedDate) => all.sort_by_key(|r| r.last_changed),
            Some(SortByType::LastAccessedDate) => all.sort_by_key(|r| r.last_accessed),
            _ => all.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name))),
        }
        if input.sort_order.as_ref() != Some(&SortOrderType::Asc) {
            all.reverse();
        }
        let entries: Vec<SecretListEntry> = all.iter().map(list_entry).collect();
        let (secret_list, next_token) = page(&entries, input.next_token.as_deref(), input.max_results)?;
        Ok(ListSecretsResponse { secret_list: Some(secret_list), next_token })
    }

    async fn list_secret_version_ids(&self, ctx: &RequestContext, input: ListSecretVersionIdsInput) -> AwsResult<ListSecretVersionIdsOutput> {
        let (rec, _) = self.secrets.find(&Scope::of(ctx), &input.secret_id).await?;
        let deprecated = input.include_deprecated.unwrap_or(false);
        let mut versions: Vec<&VersionRecord> = rec.versions.values().filter(|v| deprecated || !v.stages.is_empty()).collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.created));
        let entries: Vec<SecretVersionsListEntry> = versions
            .iter()
            .map(|v| SecretVersionsListEntry {
                version_id: Some(v.id.clone()),
                version_stages: Some(v.stages.clone()),
                last_accessed_date: v.last_accessed.map(ts),
                created_date: Some(ts(v.created)),
                kms_key_ids: Some(vec![v.kms_key_arn.clone()]),
            })
            .collect();
        let (versions, next_token) = page(&entries, input.next_token.as_deref(), input.max_results)?;
        Ok(ListSecretVersionIdsResponse { versions: Some(versions), next_token, arn: Some(rec.arn), name: Some(rec.name) })
    }

    async fn delete_secret(&self, ctx: &RequestContext, input: DeleteSecretInput) -> AwsResult<DeleteSecretOutput> {
        let s = Scope::of(ctx);
        let force = input.force_delete_without_recovery.unwrap_or(false);
        if force && input.recovery_window_in_days.is_some() {
            return Err(SecretsError::InvalidParameter("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.".into()).into());
        }
        let days = input.recovery_window_in_days.unwrap_or(30);
        if !force && !(7..=30).contains(&days) {
            return Err(SecretsError::InvalidParameter("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).".into()).into());
        }
        let (secret, version) = self.secrets.find(&s, &input.secret_id).await?;
        let now = codeyard_core::time::now();
        if force {
            self.secrets.store.commit(codeyard_store::Batch::new().delete(s.ns(), &secret.name, codeyard_store::Expect::Version(version))).await.map_err(SecretsError::from)?;
            return Ok(DeleteSecretResponse { arn: Some(secret.arn), name: Some(secret.name), deletion_date: Some(ts(now)) });
        }
        let rec = self
            .secrets
            .update(&s, &secret.name, |rec| {
                if rec.deleted.is_some() {
                    return Err(SecretsError::InvalidRequest("You can't perform this operation on the secret because it was already scheduled for deletion.".into()));
                }
                rec.deleted = Some(now);
                rec.deletion_date = Some(now + chrono::Duration::days(days));
                Ok(())
            })
            .await?;
        Ok(DeleteSecretResponse { arn: Some(rec.arn), name: Some(rec.name), deletion_date: rec.deletion_date.map(ts) })
    }

    async fn restore_secret(&self, ctx: &RequestContext, input: RestoreSecretInput) -> AwsResult<RestoreSecretOutput> {
        let rec = self
            .change(ctx, &input.secret_id, |rec| {
                rec.deleted = None;
                rec.deletion_date = None;
                Ok(())
            })
            .await?;
        Ok(DeleteResourcePolicyResponse { arn: Some(rec.arn), name: Some(rec.name) })
    }

    async fn update_secret_version_stage(&self, ctx: &RequestContext, input: UpdateSecretVersionStageInput) -> AwsResult<UpdateSecretVersionStageOutput> {
        let s = Scope::of(ctx);
        let secret = self.secrets.live(&s, &input.secret_id).await?;
        let stage = input.version_stage.clone();
        let rec = self
            .secrets
            .update(&s, &secret.name, |rec| {
                let holder = rec.version_with_stage(&stage).map(|v| v.id.clone());
                for v in [&input.remove_from_version_id, &input.move_to_version_id].into_iter().flatten() {
                    if !rec.versions.contains_key(v) {
                        return Err(SecretsError::InvalidParameter(format!("Secrets Manager can't find the specified secret version: {v}")));
                    }
                }
                if let Some(h) = &holder
                    && input.move_to_version_id.as_deref() != Some(h.as_str())
                    && input.remove_from_version_id.as_deref() != Some(h.as_str())
                {
                    return Err(SecretsError::InvalidParameter(format!(
                        "The parameter RemoveFromVersionId can't be empty. Staging label {stage} is currently attached to version {h}, so you must explicitly reference that version in RemoveFromVersionId."
                    )));
                }
                if let Some(r) = &input.remove_from_version_id
                    && holder.as_deref() != Some(r.as_str())
                {
                    return Err(SecretsError::InvalidParameter(format!("The staging label {stage} is not attached to version {r}.")));
                }
                match &input.move_to_version_id {
                    Some(to) => domain::move_stages(rec, to, std::slice::from_ref(&stage)),
                    None => {
                        if stage == CURRENT {
                            return Err(SecretsError::InvalidParameter("You can only move staging label AWSCURRENT to a different secret version. It can't be completely removed.".into()));
                        }
                        for v in rec.versions.values_mut() {
                            v.stages.retain(|x| *x != stage);
                        }
                    }
                }
                rec.last_changed = codeyard_core::time::now();
                Ok(())
            })
            .await?;
        Ok(DeleteResourcePolicyResponse { arn: Some(rec.arn), name: Some(rec.name) })
    }

    async fn put_resource_policy(&self, ctx: &RequestContext, input: PutResourcePolicyInput) -> AwsResult<PutResourcePolicyOutput> {
        let s = Scope::of(ctx);
        let policy = check_policy(&input.resource_policy)?;
        if input.block_public_policy.unwrap_or(true) && is_public(&policy) {
            return Err(SecretsError::PublicPolicy.into());
        }
        let secret = self.secrets.live(&s, &input.secret_id).await?;
        let rec = self
            .secrets
            .update(&s, &secret.name, |rec| {
                rec.policy = Some(input.resource_policy.clone());
                Ok(())
            })
            .await?;
        Ok(DeleteResourcePolicyResponse { arn: Some(rec.arn), name: Some(rec.name) })
    }

    async fn get_resource_policy(&self, ctx: &RequestContext, input: GetResourcePolicyInput) -> AwsResult<GetResourcePolicyOutput> {
        let (rec, _) = self.secrets.find(&Scope::of(ctx), &input.secret_id).await?;
        Ok(GetResourcePolicyResponse { arn: Some(rec.arn), name: Some(rec.name), resource_policy: rec.policy })
    }

    async fn delete_resource_policy(&self, ctx: &RequestContext, input: DeleteResourcePolicyInput) -> AwsResult<DeleteResourcePolicyOutput> {
        let rec = self
            .change(ctx, &input.secret_id, |rec| {
                rec.policy = None;
                Ok(())
            })
            .await?;
        Ok(DeleteResourcePolicyResponse { arn: Some(rec.arn), name: Some(rec.name) })
    }

    async fn validate_resource_policy(&self, ctx: &RequestContext, input: ValidateResourcePolicyInput) -> AwsResult<ValidateResourcePolicyOutput> {
        if let Some(id) = &input.secret_id {
            self.secrets.find(&Scope::of(ctx), id).await?;
        }
        let errors: Vec<ValidationErrorsEntry> = match check_policy(&input.resource_policy) {
            Ok(p) if is_public(&p) => vec![ValidationErrorsEntry { check_name: Some("BLOCK_PUBLIC_POLICY".into()), error_message: Some("The resource policy grants public access to the secret.".into()) }],
            Ok(_) => vec![],
            Err(SecretsError::MalformedPolicy(m)) => vec![ValidationErrorsEntry { check_name: Some("IAM_POLICY_VALIDATION".into()), error_message: Some(m) }],
            Err(e) => return Err(e.into()),
        };
        Ok(ValidateResourcePolicyResponse { policy_validation_passed: Some(errors.is_empty()), validation_errors: Some(errors) })
    }

    async fn tag_resource(&self, ctx: &RequestContext, input: TagResourceInput) -> AwsResult<TagResourceOutput> {
        let new = tags_in(Some(input.tags));
        self.change(ctx, &input.secret_id, |rec| {
            if new.iter().any(|(k, _)| k.starts_with("aws:")) {
                return Err(SecretsError::InvalidParameter("Tag keys beginning with aws: are reserved.".into()));
            }
            tags::add(&mut rec.tags, new.clone(), MAX_TAGS).map_err(|_| SecretsError::InvalidParameter("A secret can have at most 50 tags.".into()))
        })
        .await?;
        Ok(Unit {})
    }

    async fn untag_resource(&self, ctx: &RequestContext, input: UntagResourceInput) -> AwsResult<UntagResourceOutput> {
        self.change(ctx, &input.secret_id, |rec| {
            tags::remove(&mut rec.tags, &input.tag_keys);
            Ok(())
        })
        .await?;
        Ok(Unit {})
    }

    async fn get_random_password(&self, _ctx: &RequestContext, input: GetRandomPasswordInput) -> AwsResult<GetRandomPasswordOutput> {
        let rules = PasswordRules {
            length: input.password_length.unwrap_or(32) as usize,
            exclude: input.exclude_characters.unwrap_or_default(),
            numbers: !input.exclude_numbers.unwrap_or(false),
            punctuation: !input.exclude_punctuation.unwrap_or(false),
            uppercase: !input.exclude_uppercase.unwrap_or(false),
            lowercase: !input.exclude_lowercase.unwrap_or(false),
            space: input.include_space.unwrap_or(false),
            require_each: input.require_each_included_type.unwrap_or(true),
        };
        Ok(GetRandomPasswordResponse { random_password: Some(domain::random_password(&rules)?) })
    }
}
