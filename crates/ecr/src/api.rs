//! The ECR API (awsJson1.1, `AmazonEC2ContainerRegistry_V20150921.`): a thin adapter from
//! botocore's JSON shapes to [`Ecr`] and back.

use crate::domain::{Ecr, ImageView, PutError, RepoRef, Repository, Tag, repository_arn};
use crate::lifecycle;
use crate::manifest;
use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use codeyard_core::arn::Arn;
use codeyard_core::time::{epoch_json, now};
use codeyard_core::{AwsError, AwsResult, RequestContext};
use codeyard_wire::AwsService;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct EcrApi {
    pub ecr: Arc<Ecr>,
}

/// AWS's part size hint for InitiateLayerUpload.
const PART_SIZE: u64 = 10 * 1024 * 1024;

const OPERATIONS: &[&str] = &[
    "CreateRepository",
    "DescribeRepositories",
    "DeleteRepository",
    "ListImages",
    "DescribeImages",
    "BatchGetImage",
    "BatchDeleteImage",
    "PutImage",
    "GetAuthorizationToken",
    "GetDownloadUrlForLayer",
    "BatchCheckLayerAvailability",
    "InitiateLayerUpload",
    "UploadLayerPart",
    "CompleteLayerUpload",
    "PutLifecyclePolicy",
    "GetLifecyclePolicy",
    "DeleteLifecyclePolicy",
    "SetRepositoryPolicy",
    "GetRepositoryPolicy",
    "DeleteRepositoryPolicy",
    "PutImageTagMutability",
    "PutImageScanningConfiguration",
    "DescribeRegistry",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
];

const REPOSITORY_NAME_PATTERN: &str =
    "(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*";

fn valid_repository_name(name: &str) -> bool {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(&format!("^{REPOSITORY_NAME_PATTERN}$")).expect("name regex")
    });
    (2..=256).contains(&name.len()) && RE.is_match(name)
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn invalid(m: impl Into<String>) -> AwsError {
    AwsError::client("InvalidParameterException", m)
}

/// The repository an input names, in the registry it names (or the caller's).
fn repo_ref(ctx: &RequestContext, input: &Value) -> RepoRef {
    let account = s(input, "registryId").unwrap_or(&ctx.account);
    RepoRef::new(
        account,
        &ctx.region,
        s(input, "repositoryName").unwrap_or_default(),
    )
}

pub fn repository_json(ctx: &RequestContext, r: &Repository) -> Value {
    let mut v = json!({
        "repositoryArn": r.arn,
        "registryId": r.account,
        "repositoryName": r.name,
        "repositoryUri": format!("{}/{}", ctx.host(), r.name),
        "createdAt": epoch_json(&r.created_at),
        "imageTagMutability": r.tag_mutability,
        "imageScanningConfiguration": {"scanOnPush": r.scan_on_push},
        "encryptionConfiguration": r.encryption,
    });
    if let Some(f) = &r.mutability_exclusions {
        v["imageTagMutabilityExclusionFilters"] = f.clone();
    }
    v
}

fn tags_json(tags: &[Tag]) -> Value {
    Value::Array(
        tags.iter()
            .map(|t| json!({"Key": t.key, "Value": t.value}))
            .collect(),
    )
}

fn parse_tags(v: Option<&Value>) -> AwsResult<Vec<Tag>> {
    let mut out: Vec<Tag> = Vec::new();
    for t in v.and_then(Value::as_array).into_iter().flatten() {
        let key = s(t, "Key").ok_or_else(|| {
            AwsError::client("InvalidTagParameterException", "A tag key is required")
        })?;
        let value = s(t, "Value").unwrap_or_default();
        out.retain(|x| x.key != key);
        out.push(Tag {
            key: key.into(),
            value: value.into(),
        });
    }
    if out.len() > 50 {
        return Err(AwsError::client(
            "TooManyTagsException",
            "A repository can have at most 50 tags",
        ));
    }
    Ok(out)
}

fn image_id_json(digest: &str, tag: Option<&str>) -> Value {
    let mut v = json!({"imageDigest": digest});
    if let Some(t) = tag {
        v["imageTag"] = json!(t);
    }
    v
}

fn image_detail(r: &RepoRef, v: &ImageView) -> Value {
    let mut d = json!({
        "registryId": r.account,
        "repositoryName": r.name,
        "imageDigest": v.image.digest,
        "imageSizeInBytes": v.image.size,
        "imagePushedAt": epoch_json(&v.image.pushed_at),
        "imageManifestMediaType": v.image.media_type,
    });
    if !v.tags.is_empty() {
        d["imageTags"] = json!(v.tags);
    }
    if let Some(a) = &v.image.artifact_type {
        d["artifactMediaType"] = json!(a);
    }
    if let Some(sub) = &v.image.subject {
        d["subjectManifestDigest"] = json!(sub);
    }
    d
}

fn describe_id(id: &Value) -> String {
    format!(
        "{{imageDigest:'{}', imageTag:'{}'}}",
        s(id, "imageDigest").unwrap_or("null"),
        s(id, "imageTag").unwrap_or("null")
    )
}

/// Offset-based paging over an already ordered list.
fn page<T: Clone>(
    items: &[T],
    input: &Value,
    default_max: usize,
) -> AwsResult<(Vec<T>, Option<String>)> {
    let start = match s(input, "nextToken") {
        Some(t) => t.parse::<usize>().map_err(|_| {
            invalid(
                "Invalid parameter at 'nextToken' failed to satisfy constraint: 'invalid token'",
            )
        })?,
        None => 0,
    };
    let max = input
        .get("maxResults")
        .and_then(Value::as_u64)
        .map(|m| m as usize)
        .unwrap_or(default_max);
    let end = (start + max).min(items.len());
    let slice = items
        .get(start.min(items.len())..end)
        .unwrap_or_default()
        .to_vec();
    Ok((slice, (end < items.len()).then(|| end.to_string())))
}

impl EcrApi {
    async fn create_repository(&self, ctx: &RequestContext, input: &Value) -> AwsResult<Value> {
        let r = repo_ref(ctx, input);
        if !valid_repository_name(&r.name) {
            return Err(invalid(format!(
                "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '{REPOSITORY_NAME_PATTERN}''"
            )));
        }
        let encryption = match input.get("encryptionConfiguration") {
            Some(given) => {
                let kind = s(given, "encryptionType").unwrap_or("AES256");
                let mut e = json!({"encryptionType": kind});
                if kind.starts_with("KMS") {
                    let key = s(given, "kmsKey").map(str::to_string);
                    e["kmsKey"] = json!(key.unwrap_or_else(|| codeyard_core::arn::arn(
                        "kms",
                        &r.region,
                        &r.account,
                        "alias/aws/ecr"
                    )));
                }
                e
            }
            None => json!({"encryptionType": "AES256"}),
        };
        let repo = Repository {
            name: r.name.clone(),
            account: r.account.clone(),
            region: r.region.clone(),
            arn: repository_arn(&r.account, &r.region, &r.name),
            created_at: now(),
            tag_mutability: s(input, "imageTagMutability")
                .unwrap_or("MUTABLE")
                .to_string(),
            mutability_exclusions: input.get("imageTagMutabilityExclusionFilters").cloned(),
            scan_on_push: input
                .pointer("/imageScanningConfiguration/scanOnPush")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            encryption,
            tags: parse_tags(input.get("tags"))?,
            policy: None,
            lifecycle_policy: None,
            lifecycle_evaluated_at: None,
        };
        let repo = self.ecr.create_repository(repo).await?;
        Ok(json!({"repository": repository_json(ctx, &repo)}))
    }

    async fn describe_repositories(&self, ctx: &RequestContext, input: &Value) -> AwsResult<Value> {
        let account = s(input, "registryId").unwrap_or(&ctx.account);
        let repos = match input.get("repositoryNames").and_then(Value::as_array) {
            Some(names) => {
                let mut out = Vec::new();
                for n in names {
                    let r = RepoRef::new(account, &ctx.region, n.as_str().unwrap_or_default());
                    out.push(self.ecr.repository(&r).await?.0);
                }
                out
            }
            None => self.ecr.list_repositories(account, &ctx.region).await?,
        };
        let (items, next) = page(&repos, input, 1000)?;
        let mut out = json!({"repositories": items.iter().map(|r| repository_json(ctx, r)).collect::<Vec<_>>()});
        if let Some(n) = next {
            out["nextToken"] = json!(n);
        }
        Ok(out)
    }

    async fn list_images(&self, ctx: &RequestContext, input: &Value) -> AwsResult<Value> {
        let r = repo_ref(ctx, input);
        self.ecr.repository(&r).await?;
        let status = input
            .pointer("/filter/tagStatus")
            .and_then(Value::as_str)
            .unwrap_or("ANY");
        let mut ids = Vec::new();
        for v in self.ecr.images(&r).await? {
            if v.tags.is_empty() {
                if status != "TAGGED" {
                    ids.push(image_id_json(&v.image.digest, None));
                }
            } else if status != "UNTAGGED" {
                ids.extend(
                    v.tags
                        .iter()
                        .map(|t| image_id_json(&v.image.digest, Some(t))),
                );
            }
        }
        let (items, next) = page(&ids, input, 1000)?;
        let mut out = json!({"imageIds": items});
        if let Some(n) = next {
            out["nextToken"] = json!(n);
        }
        Ok(out)
    }

    /// Finds the image an ImageIdentifier names; Err((failureCode, reason)).
    fn find<'a>(
        views: &'a [ImageView],
        id: &Value,
    ) -> Result<&'a ImageView, (&'static str, String)> {
        let digest = s(id, "imageDigest");
        let tag = s(id, "imageTag");
        if digest.is_none() && tag.is_none() {
            return Err((
                "MissingDigestAndTag",
                "Invalid request parameters: both tag and digest cannot be null".into(),
            ));
        }
        if let Some(d) = digest
            && !manifest::valid_digest(d)
        {
            return Err(("InvalidImageDigest", "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'".into()));
        }
        let by_digest = digest.and_then(|d| views.iter().find(|v| v.image.digest == d));
        let by_tag = tag.and_then(|t| views.iter().find(|v| v.tags.iter().any(|x| x == t)));
        match (digest, tag, by_digest, by_tag) {
            (Some(_), Some(_), Some(a), Some(b)) if a.image.digest != b.image.digest => Err((
                "ImageTagDoesNotMatchDigest",
                "Invalid request parameters: given tag does not map to the given digest".into(),
            )),
            (Some(_), Some(_), Some(_), None) => Err((
                "ImageTagDoesNotMatchDigest",
                "Invalid request parameters: given tag does not map to the given digest".into(),
            )),
            (Some(_), _, Some(v), _) => Ok(v),
            (None, Some(_), _, Some(v)) => Ok(v),
            _ => Err(("ImageNotFound", "Requested image not found".into())),
        }
    }

    async fn describe_images(&self, ctx: &RequestContext, input: &Value) -> AwsResult<Value> {
        let r = repo_ref(ctx, input);
        self.ecr.repository(&r).await?;
        let views = self.ecr.images(&r).await?;
        let details: Vec<Value> = match input.get("imageIds").and_then(Value::as_array) {
            Some(ids) => {
                let mut out = Vec::new();
                for id in ids {
                    match Self::find(&views, id) {
                        Ok(v) => out.push(image_detail(&r, v)),
                        Err(("ImageNotFound" | "ImageTagDoesNotMatchDigest", _)) => {
                            return Err(AwsError::client(
                                "ImageNotFoundException",
                                format!(
                                    "The image with imageId {} does not exist within the repository with name '{}' in the registry with id '{}'",
                                    describe_id(id),
                                    r.name,
                                    r.account
                                ),
                            ));
                        }
                        Err((_, reason)) => return Err(invalid(reason)),
                    }
                }
                out
            }
            None => {
                let status = input
                    .pointer("/filter/tagStatus")
                    .and_then(Value::as_str)
                    .unwrap_or("ANY");
                views
                    .iter()
                    .filter(|v| match status {
                        "TAGGED" => !v.tags.is_empty(),
                        "UNTAGGED" => v.tags.is_empty(),
                        _ => true,
                    })
                    .map(|v| image_detail(&r, v))
                    .collect()
            }
        };
        let (items, next) = page(&details, input, 1000)?;
        let mut out = json!({"imageDetails": items});
        if let Some(n) = next {
            out["nextToken"] = json!(n);
        }
        Ok(out)
    }

    async fn batch_get_image(&self, ctx: &RequestContext, input: &Value) -> AwsResult<Value> {
        let r = repo_ref(ctx, input);
        self.ecr.repository(&r).await?;
        let views = self.ecr.images(&r).await?;
        let accepted: Option<Vec<&str>> = input
            .get("acceptedMediaTypes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect());
        let (mut images, mut failures) = (Vec::new(), Vec::new());
        for id in input
            .get("imageIds")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match Self::find(&views, id) {
                Ok(v) => {
                    if accepted
                        .as_ref()
                        .is_some_and(|a| !a.contains(&v.image.media_type.as_str()))
                    {
                        failures.push(json!({"imageId": id, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"}));
                        continue;
                    }
                    let bytes = self.ecr.manifest_bytes(&v.image.digest).await?;
                    images.push(json!({
                        "registryId": r.account,
                        "repositoryName": r.name,
                        "imageId": image_id_json(&v.image.digest, s(id, "imageTag")),
                        "imageManifest": String::from_utf8_lossy(&bytes),
                        "imageManifestMediaType": v.image.media_type,
                    }));
                }
                Err((code, reason)) => failures
                    .push(json!({"imageId": id, "failureCode": code, "failureReason": reason})),
            }
        }
        Ok(json!({"images": images, "failures": failures}))
    }

    async fn batch_delete_image(&self, ctx: &RequestContext, input: &Value) -> AwsResult<Value> {
        let r = repo_ref(ctx, input);
        self.ecr.repository(&r).await?;
        let (mut deleted, mut failures) = (Vec::new(), Vec::new());
        for id in input
            .get("imageIds")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let views = self.ecr.images(&r).await?;
            let v = match Self::find(&views, id) {
                Ok(v) => v.clone(),
                Err((code, reason)) => {
                    failures
                        .push(json!({"imageId": id, "failureCode": code, "failureReason": reason}));
                    continue;
                }
            };
            // A tag alone removes the tag; the image goes with its last tag.
            if let (None, Some(tag)) = (s(id, "imageDigest"), s(id, "imageTag"))
                && v.tags.len() > 1
            {
                self.ecr.untag(&r, tag).await?;
                deleted.push(image_id_json(&v.image.digest, Some(tag)));
                continue;
            }
            match self.ecr.delete_image(&r, &v.image.digest).await? {
                Ok(tags) if tags.is_empty() => deleted.push(image_id_json(&v.image.digest, None)),
                Ok(tags) => {
                    deleted.extend(tags.iter().map(|t| image_id_json(&v.image.digest, Some(t))))
                }
                Err((code, reason)) => failures
                    .push(json!({"imageId": id, "failureCode": code, "failureReason": reason})),
            }
        }
        Ok(json!({"imageIds": deleted, "failures": failures}))
    }

    async fn put_image(&self, ctx: &RequestContext, input: &Value) -> AwsResult<Value> {
        let r = repo_ref(ctx, input);
        self.ecr.repository(&r).await?;
        let text = s(input, "imageManifest").unwrap_or_default();
        let tag = s(input, "imageTag");
        let bytes = Bytes::copy_from_slice(text.as_bytes());
        let digest = manifest::sha256_digest(&bytes);
        if tag.is_none() && self.ecr.image(&r, &digest).await?.is_some() {
            return Err(AwsError::client(
                "ImageAlreadyExistsException",
                format!(
                    "Image with digest '{digest}' already exists in the repository with name '{}' in registry with id '{}'",
                    r.name, r.account
                ),
            ));
        }
        let declared = s(input, "imageManifestMediaType");
        let result = self
            .ecr
            .put_manifest(&r, bytes, declared, tag, s(input, "imageDigest"), true)
            .await;
        let (image, _) = result.map_err(|e| put_error_to_aws(&r, tag, &digest, e))?;
        Ok(json!({"image": {
            "registryId": r.account,
            "repositoryName": r.name,
            "imageId": image_id_json(&image.digest, tag),
            "imageManifest": text,
            "imageManifestMediaType": image.media_type,
        }}))
    }

    async fn get_authorization_token(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> AwsResult<Value> {
        let registries: Vec<String> = match input.get("registryIds").and_then(Value::as_array) {
            Some(ids) if !ids.is_empty() => ids
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => vec![ctx.account.clone()],
        };
        let mut data = Vec::new();
        for account in registries {
            let (token, expires) = self.ecr.issue_token(&account, &ctx.region).await?;
            data.push(json!({
                "authorizationToken": base64::engine::general_purpose::STANDARD.encode(format!("AWS:{token}")),
                "expiresAt": epoch_json(&expires),
                "proxyEndpoint": format!("https://{account}.dkr.ecr.{}.amazonaws.com", ctx.region),
            }));
        }
        Ok(json!({"authorizationData": data}))
    }

    async fn layers_missing(&self, r: &RepoRef, digest: &str) -> AwsError {
        AwsError::client(
            "LayersNotFoundException",
            format!(
                "The image layer '{digest}' does not exist in the repository with name '{}' in the registry with id '{}'",
                r.name, r.account
            ),
        )
    }

    async fn get_download_url(&self, ctx: &RequestContext, input: &Value) -> AwsResult<Value> {
        let r = repo_ref(ctx, input);
        self.ecr.repository(&r).await?;
        let digest = s(input, "layerDigest").unwrap_or_default();
        if self.ecr.blob_in_repo(&r, digest).await?.is_none() {
            return Err(self.layers_missing(&r, digest).await);
        }
        Ok(
            json!({"downloadUrl": format!("{}/v2/{}/blobs/{digest}", ctx.endpoint.trim_end_matches('/'), r.name), "layerDigest": digest}),
        )
    }

    async fn batch_check_layers(&self, ctx: &RequestContext, input: &Value) -> AwsResult<Value> {
        let r = repo_ref(ctx, input);
        self.ecr.repository(&r).await?;
        let (mut layers, mut failures) = (Vec::new(), Vec::new());
        for d in input
            .get("layerDigests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !manifest::valid_digest(d) {
                failures.push(json!({"layerDigest": d, "failureCode": "InvalidLayerDigest", "failureReason": "Invalid layer digest"}));
                continue;
            }
            match self.ecr.blob_in_repo(&r, d).await? {
                Some(size) => layers.push(json!({"layerDigest": d, "layerAvailability": "AVAILABLE", "layerSize": size})),
                None => failures.push(json!({"layerDigest": d, "failureCode": "MissingLayerDigest", "failureReason": "Could not find layer"})),
            }
        }
        Ok(json!({"layers": layers, "failures": failures}))
    }

    async fn upload_for(&self, r: &RepoRef, input: &Value) -> AwsResult<String> {
        let id = s(input, "uploadId").unwrap_or_default().to_string();
        if self.ecr.upload(r, &id).await?.is_none() {
            return Err(AwsError::client(
                "UploadNotFoundException",
                format!(
                    "Upload with id '{id}' does not exist in the repository with name '{}' in the registry with id '{}'",
                    r.name, r.account
                ),
            ));
        }
        Ok(id)
    }

    async fn upload_layer_part(&self, ctx: &RequestContext, input: &Value) -> AwsResult<Value> {
        let r = repo_ref(ctx, input);
        self.ecr.repository(&r).await?;
        let id = self.upload_for(&r, input).await?;
        let blob = base64::engine::general_purpose::STANDARD
            .decode(s(input, "layerPartBlob").unwrap_or_default())
            .map_err(|_| invalid("layerPartBlob is not valid base64"))?;
        let first = input
            .get("partFirstByte")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let last = input
            .get("partLastByte")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let have = self.ecr.blobs.upload_size(&id).await?.unwrap_or(0);
        if first != have || last + 1 != first + blob.len() as u64 {
            return Err(AwsError::client(
                "InvalidLayerPartException",
                format!(
                    "The part's first byte {first} and last byte {last} do not follow the {have} bytes received so far"
                ),
            ));
        }
        let size = self
            .ecr
            .blobs
            .append(
                &id,
                futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(blob))]),
            )
            .await?;
        Ok(
            json!({"registryId": r.account, "repositoryName": r.name, "uploadId": id, "lastByteReceived": size.saturating_sub(1)}),
        )
    }

    async fn complete_layer_upload(&self, ctx: &RequestContext, input: &Value) -> AwsResult<Value> {
        let r = repo_ref(ctx, input);
        self.ecr.repository(&r).await?;
        let id = self.upload_for(&r, input).await?;
        let digest = input
            .pointer("/layerDigests/0")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if self.ecr.blobs.upload_size(&id).await?.unwrap_or(0) == 0 {
            return Err(AwsError::client(
                "EmptyUploadException",
                format!("The upload with id '{id}' contains no layer parts"),
            ));
        }
        if self.ecr.blob_in_repo(&r, &digest).await?.is_some() {
            self.ecr.cancel_upload(&id).await?;
            return Err(AwsError::client(
                "LayerAlreadyExistsException",
                format!(
                    "The image layer '{digest}' already exists in the repository with name '{}' in the registry with id '{}'",
                    r.name, r.account
                ),
            ));
        }
        match self.ecr.finish_upload(&r, &id, &digest).await? {
            Ok(_) => Ok(
                json!({"registryId": r.account, "repositoryName": r.name, "uploadId": id, "layerDigest": digest}),
            ),
            Err(actual) => Err(AwsError::client(
                "InvalidLayerException",
                format!("Calculated digest {actual} does not match the digest {digest} given"),
            )),
        }
    }

    async fn lifecycle_op(
        &self,
        ctx: &RequestContext,
        op: &str,
        input: &Value,
    ) -> AwsResult<Value> {
        let r = repo_ref(ctx, input);
        let not_found = || {
            AwsError::client(
                "LifecyclePolicyNotFoundException",
                format!(
                    "Lifecycle policy does not exist for the repository with name '{}' in the registry with id '{}'",
                    r.name, r.account
                ),
            )
        };
        let repo = match op {
            "PutLifecyclePolicy" => {
                let text = s(input, "lifecyclePolicyText")
                    .unwrap_or_default()
                    .to_string();
                lifecycle::validate(&text).map_err(|m| invalid(format!("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: '{m}'")))?;
                let repo = self
                    .ecr
                    .update_repository(&r, |repo| {
                        repo.lifecycle_policy = Some(text.clone());
                        Ok(())
                    })
                    .await?;
                self.ecr.apply_lifecycle(&r).await?;
                return Ok(
                    json!({"registryId": r.account, "repositoryName": r.name, "lifecyclePolicyText": repo.lifecycle_policy}),
                );
            }
            "GetLifecyclePolicy" => self.ecr.repository(&r).await?.0,
            _ => {
                let before = self.ecr.repository(&r).await?.0;
                if before.lifecycle_policy.is_none() {
                    return Err(not_found());
                }
                self.ecr
                    .update_repository(&r, |repo| {
                        repo.lifecycle_policy = None;
                        Ok(())
                    })
                    .await?;
                before
            }
        };
        let text = repo.lifecycle_policy.clone().ok_or_else(not_found)?;
        let mut out =
            json!({"registryId": r.account, "repositoryName": r.name, "lifecyclePolicyText": text});
        if let Some(t) = &repo.lifecycle_evaluated_at {
            out["lastEvaluatedAt"] = epoch_json(t);
        }
        Ok(out)
    }

    async fn policy_op(&self, ctx: &RequestContext, op: &str, input: &Value) -> AwsResult<Value> {
        let r = repo_ref(ctx, input);
        let not_found = || {
            AwsError::client(
                "RepositoryPolicyNotFoundException",
                format!(
                    "Repository policy does not exist for the repository with name '{}' in the registry with id '{}'",
                    r.name, r.account
                ),
            )
        };
        let text = match op {
            "SetRepositoryPolicy" => {
                let text = s(input, "policyText").unwrap_or_default().to_string();
                let doc: Value = serde_json::from_str(&text).map_err(|_| invalid("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'"))?;
                if doc.get("Statement").is_none() {
                    return Err(invalid(
                        "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'",
                    ));
                }
                self.ecr
                    .update_repository(&r, |repo| {
                        repo.policy = Some(text.clone());
                        Ok(())
                    })
                    .await?;
                text
            }
            "GetRepositoryPolicy" => self
                .ecr
                .repository(&r)
                .await?
                .0
                .policy
                .ok_or_else(not_found)?,
            _ => {
                let text = self
                    .ecr
                    .repository(&r)
                    .await?
                    .0
                    .policy
                    .ok_or_else(not_found)?;
                self.ecr
                    .update_repository(&r, |repo| {
                        repo.policy = None;
                        Ok(())
                    })
                    .await?;
                text
            }
        };
        Ok(json!({"registryId": r.account, "repositoryName": r.name, "policyText": text}))
    }

    fn arn_repo(&self, ctx: &RequestContext, input: &Value) -> AwsResult<RepoRef> {
        let text = s(input, "resourceArn").unwrap_or_default();
        let arn = Arn::parse(text)
            .filter(|a| a.service == "ecr" && a.resource.starts_with("repository/"));
        let Some(arn) = arn else {
            return Err(invalid(format!(
                "Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN {text}'"
            )));
        };
        let region = if arn.region.is_empty() {
            ctx.region.clone()
        } else {
            arn.region.clone()
        };
        Ok(RepoRef::new(&arn.account, &region, arn.resource_name()))
    }
}

/// The ECR error for a refused manifest.
pub fn put_error_to_aws(r: &RepoRef, tag: Option<&str>, digest: &str, e: PutError) -> AwsError {
    match e {
        PutError::RepositoryNotFound => crate::domain::repository_not_found(r),
        PutError::Invalid(m) => invalid(format!(
            "Invalid parameter at 'ImageManifest' failed to satisfy constraint: '{m}'"
        )),
        PutError::DigestMismatch(actual) => AwsError::client(
            "ImageDigestDoesNotMatchException",
            format!("Provided digest does not match the digest '{actual}' of the manifest"),
        ),
        PutError::BlobsMissing(d) => AwsError::client(
            "LayersNotFoundException",
            format!(
                "Layers with digests '{d:?}' required for pushing image into repository with name '{}' in the registry with id '{}' do not exist",
                r.name, r.account
            ),
        ),
        PutError::ManifestsMissing(d) => AwsError::client(
            "ReferencedImagesNotFoundException",
            format!(
                "Manifests with digests '{d:?}' referenced by the image do not exist in the repository with name '{}'",
                r.name
            ),
        ),
        PutError::TagImmutable(t) => AwsError::client(
            "ImageTagAlreadyExistsException",
            format!(
                "The image tag '{t}' already exists in the '{}' repository and cannot be overwritten because the repository is immutable.",
                r.name
            ),
        ),
        PutError::AlreadyExists => AwsError::client(
            "ImageAlreadyExistsException",
            format!(
                "Image with digest '{digest}' and tag '{}' already exists in the repository with name '{}' in registry with id '{}'",
                tag.unwrap_or_default(),
                r.name,
                r.account
            ),
        ),
        PutError::Internal(e) => e,
    }
}

#[async_trait]
impl AwsService for EcrApi {
    fn model_name(&self) -> &'static str {
        "ecr"
    }

    fn implemented(&self) -> &'static [&'static str] {
        OPERATIONS
    }

    /// ECR answers pattern violations (a bad repository name) with InvalidParameterException,
    /// and other constraint violations with the generic ValidationException.
    fn validation_error(&self, _operation: &str, problems: &[codeyard_wire::shapes::Problem]) -> AwsError {
        match problems.iter().find(|p| p.kind == codeyard_wire::shapes::ProblemKind::Pattern) {
            Some(p) => invalid(format!(
                "Invalid parameter at '{}' failed to satisfy constraint: 'must satisfy regular expression '{}''",
                p.member,
                p.message.rsplit("pattern: ").next().unwrap_or_default()
            )),
            None => AwsError::validation(codeyard_wire::shapes::validation_message(problems)),
        }
    }

    async fn call(&self, ctx: &RequestContext, operation: &str, input: Value) -> AwsResult<Value> {
        let input = &input;
        match operation {
            "CreateRepository" => self.create_repository(ctx, input).await,
            "DescribeRepositories" => self.describe_repositories(ctx, input).await,
            "DeleteRepository" => {
                let r = repo_ref(ctx, input);
                let force = input.get("force").and_then(Value::as_bool).unwrap_or(false);
                let repo = self.ecr.delete_repository(&r, force).await?;
                Ok(json!({"repository": repository_json(ctx, &repo)}))
            }
            "ListImages" => self.list_images(ctx, input).await,
            "DescribeImages" => self.describe_images(ctx, input).await,
            "BatchGetImage" => self.batch_get_image(ctx, input).await,
            "BatchDeleteImage" => self.batch_delete_image(ctx, input).await,
            "PutImage" => self.put_image(ctx, input).await,
            "GetAuthorizationToken" => self.get_authorization_token(ctx, input).await,
            "GetDownloadUrlForLayer" => self.get_download_url(ctx, input).await,
            "BatchCheckLayerAvailability" => self.batch_check_layers(ctx, input).await,
            "InitiateLayerUpload" => {
                let r = repo_ref(ctx, input);
                self.ecr.repository(&r).await?;
                let id = self.ecr.start_upload(&r).await?;
                Ok(json!({"uploadId": id, "partSize": PART_SIZE}))
            }
            "UploadLayerPart" => self.upload_layer_part(ctx, input).await,
            "CompleteLayerUpload" => self.complete_layer_upload(ctx, input).await,
            "PutLifecyclePolicy" | "GetLifecyclePolicy" | "DeleteLifecyclePolicy" => {
                self.lifecycle_op(ctx, operation, input).await
            }
            "SetRepositoryPolicy" | "GetRepositoryPolicy" | "DeleteRepositoryPolicy" => {
                self.policy_op(ctx, operation, input).await
            }
            "PutImageTagMutability" => {
                let r = repo_ref(ctx, input);
                let value = s(input, "imageTagMutability")
                    .unwrap_or("MUTABLE")
                    .to_string();
                let filters = input.get("imageTagMutabilityExclusionFilters").cloned();
                let repo = self
                    .ecr
                    .update_repository(&r, |repo| {
                        repo.tag_mutability = value.clone();
                        repo.mutability_exclusions = filters.clone();
                        Ok(())
                    })
                    .await?;
                let mut out = json!({"registryId": r.account, "repositoryName": r.name, "imageTagMutability": repo.tag_mutability});
                if let Some(f) = repo.mutability_exclusions {
                    out["imageTagMutabilityExclusionFilters"] = f;
                }
                Ok(out)
            }
            "PutImageScanningConfiguration" => {
                let r = repo_ref(ctx, input);
                let scan = input
                    .pointer("/imageScanningConfiguration/scanOnPush")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                self.ecr
                    .update_repository(&r, |repo| {
                        repo.scan_on_push = scan;
                        Ok(())
                    })
                    .await?;
                Ok(
                    json!({"registryId": r.account, "repositoryName": r.name, "imageScanningConfiguration": {"scanOnPush": scan}}),
                )
            }
            "DescribeRegistry" => {
                Ok(json!({"registryId": ctx.account, "replicationConfiguration": {"rules": []}}))
            }
            "TagResource" => {
                let r = self.arn_repo(ctx, input)?;
                let new = parse_tags(input.get("tags"))?;
                self.ecr
                    .update_repository(&r, |repo| {
                        for t in &new {
                            repo.tags.retain(|x| x.key != t.key);
                            repo.tags.push(t.clone());
                        }
                        if repo.tags.len() > 50 {
                            return Err(AwsError::client(
                                "TooManyTagsException",
                                "A repository can have at most 50 tags",
                            ));
                        }
                        Ok(())
                    })
                    .await?;
                Ok(json!({}))
            }
            "UntagResource" => {
                let r = self.arn_repo(ctx, input)?;
                let keys: Vec<String> = input
                    .get("tagKeys")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
                self.ecr
                    .update_repository(&r, |repo| {
                        repo.tags.retain(|t| !keys.contains(&t.key));
                        Ok(())
                    })
                    .await?;
                Ok(json!({}))
            }
            "ListTagsForResource" => {
                let r = self.arn_repo(ctx, input)?;
                let repo = self.ecr.repository(&r).await?.0;
                Ok(json!({"tags": tags_json(&repo.tags)}))
            }
            other => Err(AwsError::unknown_operation("ECR", other)),
        }
    }
}
