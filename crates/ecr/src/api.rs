//! The ECR API (awsJson1.1, `AmazonEC2ContainerRegistry_V20150921.`): the generated
//! [`EcrApi`] trait implemented over [`Ecr`]. Inputs arrive decoded into the model's types
//! (the wire validated them first); every operation not defined here answers
//! UnknownOperationException. Errors are [`EcrError`]s, given ECR's codes at this edge.

use crate::domain::{self, Ecr, EcrError, ImageView, PutError, RepoRef, repository_arn};
use crate::lifecycle;
use crate::manifest;
use base64::Engine;
use bytes::Bytes;
use codeyard_api::ecr::*;
use codeyard_api::Timestamp;
use codeyard_core::arn::Arn;
use codeyard_core::time::now;
use codeyard_core::{AwsError, AwsResult, RequestContext};
use codeyard_wire::shapes::{Problem, ProblemKind, validation_message};
use serde_json::Value;
use std::sync::Arc;

pub struct EcrService {
    pub ecr: Arc<Ecr>,
}

/// AWS's part size hint for InitiateLayerUpload.
const PART_SIZE: i64 = 10 * 1024 * 1024;

/// ListImages, DescribeImages and DescribeRepositories return at most this many by default.
const DEFAULT_MAX_RESULTS: usize = 1000;

const REPOSITORY_NAME_PATTERN: &str = "(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*";

fn valid_repository_name(name: &str) -> bool {
    static RE: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(&format!("^{REPOSITORY_NAME_PATTERN}$")).expect("name regex"));
    (2..=256).contains(&name.len()) && RE.is_match(name)
}

/// InvalidParameterException, ECR's answer to a parameter it refuses.
fn invalid(m: impl Into<String>) -> AwsError {
    EcrError::Invalid(m.into()).into()
}

/// The repository an input names, in the registry it names (or the caller's).
fn repo_ref(ctx: &RequestContext, registry_id: &Option<String>, name: &str) -> RepoRef {
    RepoRef::new(registry_id.as_deref().unwrap_or(&ctx.account), &ctx.region, name)
}

#[codeyard_api::service]
impl EcrApi for EcrService {
    /// The IAM data's requests, with the repository policy of the repository each names.
    async fn access_requests(&self, ctx: &RequestContext, operation: &str, input: &Value) -> AwsResult<Vec<codeyard_core::AccessRequest>> {
        let requests = codeyard_api::access::access_requests("ecr", ctx, operation, input);
        Ok(crate::authz::with_repository_policies(&self.ecr, requests).await)
    }

    /// ECR answers pattern violations (a bad repository name) with InvalidParameterException,
    /// and other constraint violations with the generic ValidationException.
    fn validation_error(&self, _operation: &str, problems: &[Problem]) -> AwsError {
        match problems.iter().find(|p| p.kind == ProblemKind::Pattern) {
            Some(p) => invalid(format!(
                "Invalid parameter at '{}' failed to satisfy constraint: 'must satisfy regular expression '{}''",
                p.member,
                p.message.rsplit("pattern: ").next().unwrap_or_default()
            )),
            None => AwsError::validation(validation_message(problems)),
        }
    }

    async fn create_repository(&self, ctx: &RequestContext, input: CreateRepositoryInput) -> AwsResult<CreateRepositoryOutput> {
        let r = repo_ref(ctx, &input.registry_id, &input.repository_name);
        if !valid_repository_name(&r.name) {
            return Err(invalid(format!(
                "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '{REPOSITORY_NAME_PATTERN}''"
            )));
        }
        // KMS without a key is the AWS managed alias/aws/ecr, as ECR answers it.
        let encryption = match input.encryption_configuration {
            Some(mut given) => {
                if given.encryption_type.as_str().starts_with("KMS") {
                    given.kms_key.get_or_insert_with(|| codeyard_core::arn::arn("kms", &r.region, &r.account, "alias/aws/ecr"));
                } else {
                    given.kms_key = None;
                }
                given
            }
            None => EncryptionConfiguration { encryption_type: EncryptionType::Aes256, kms_key: None },
        };
        let repo = domain::Repository {
            name: r.name.clone(),
            account: r.account.clone(),
            region: r.region.clone(),
            arn: repository_arn(&r.account, &r.region, &r.name),
            created_at: now(),
            tag_mutability: input.image_tag_mutability.as_ref().map_or("MUTABLE", |m| m.as_str()).to_string(),
            mutability_exclusions: input.image_tag_mutability_exclusion_filters,
            scan_on_push: input.image_scanning_configuration.and_then(|c| c.scan_on_push).unwrap_or(false),
            encryption,
            tags: tags_in(input.tags.unwrap_or_default())?,
            policy: None,
            lifecycle_policy: None,
            lifecycle_evaluated_at: None,
        };
        let repo = self.ecr.create_repository(repo).await?;
        Ok(CreateRepositoryOutput { repository: Some(repository_shape(ctx, &repo)?) })
    }

    async fn describe_repositories(&self, ctx: &RequestContext, input: DescribeRepositoriesInput) -> AwsResult<DescribeRepositoriesOutput> {
        let account = input.registry_id.as_deref().unwrap_or(&ctx.account);
        let repos = match &input.repository_names {
            Some(names) => {
                let mut out = Vec::new();
                for n in names {
                    out.push(self.ecr.repository(&RepoRef::new(account, &ctx.region, n)).await?.0);
                }
                out
            }
            None => self.ecr.list_repositories(account, &ctx.region).await?,
        };
        let (items, next_token) = page(&repos, input.next_token.as_deref(), input.max_results)?;
        let repositories = items.iter().map(|r| repository_shape(ctx, r)).collect::<AwsResult<_>>()?;
        Ok(DescribeRepositoriesOutput { repositories: Some(repositories), next_token })
    }

    async fn delete_repository(&self, ctx: &RequestContext, input: DeleteRepositoryInput) -> AwsResult<DeleteRepositoryOutput> {
        let r = repo_ref(ctx, &input.registry_id, &input.repository_name);
        let repo = self.ecr.delete_repository(&r, input.force.unwrap_or(false)).await?;
        Ok(DeleteRepositoryOutput { repository: Some(repository_shape(ctx, &repo)?) })
    }

    async fn list_images(&self, ctx: &RequestContext, input: ListImagesInput) -> AwsResult<ListImagesOutput> {
        let r = self.existing(ctx, &input.registry_id, &input.repository_name).await?;
        let status = tag_status(&input.filter);
        let mut ids = Vec::new();
        for v in self.ecr.images(&r).await? {
            if v.tags.is_empty() {
                if status != TagStatus::Tagged {
                    ids.push(image_id(&v.image.digest, None));
                }
            } else if status != TagStatus::Untagged {
                ids.extend(v.tags.iter().map(|t| image_id(&v.image.digest, Some(t))));
            }
        }
        let (items, next_token) = page(&ids, input.next_token.as_deref(), input.max_results)?;
        Ok(ListImagesOutput { image_ids: Some(items), next_token })
    }

    async fn describe_images(&self, ctx: &RequestContext, input: DescribeImagesInput) -> AwsResult<DescribeImagesOutput> {
        let r = self.existing(ctx, &input.registry_id, &input.repository_name).await?;
        let views = self.ecr.images(&r).await?;
        let details: Vec<ImageDetail> = match &input.image_ids {
            Some(ids) => {
                let mut out = Vec::new();
                for id in ids {
                    match find(&views, id) {
                        Ok(v) => out.push(image_detail(&r, v)),
                        Err((ImageFailureCode::ImageNotFound | ImageFailureCode::ImageTagDoesNotMatchDigest, _)) => {
                            return Err(EcrError::ImageNotFound { repo: r.clone(), id: describe_id(id) }.into());
                        }
                        Err((_, reason)) => return Err(invalid(reason)),
                    }
                }
                out
            }
            None => {
                let status = tag_status(&input.filter);
                views
                    .iter()
                    .filter(|v| match status {
                        TagStatus::Tagged => !v.tags.is_empty(),
                        TagStatus::Untagged => v.tags.is_empty(),
                        _ => true,
                    })
                    .map(|v| image_detail(&r, v))
                    .collect()
            }
        };
        let (items, next_token) = page(&details, input.next_token.as_deref(), input.max_results)?;
        Ok(DescribeImagesOutput { image_details: Some(items), next_token })
    }

    async fn batch_get_image(&self, ctx: &RequestContext, input: BatchGetImageInput) -> AwsResult<BatchGetImageOutput> {
        let r = self.existing(ctx, &input.registry_id, &input.repository_name).await?;
        let views = self.ecr.images(&r).await?;
        let accepted = input.accepted_media_types.as_ref();
        let (mut images, mut failures) = (Vec::new(), Vec::new());
        for id in &input.image_ids {
            match find(&views, id) {
                Ok(v) => {
                    if accepted.is_some_and(|a| !a.contains(&v.image.media_type)) {
                        failures.push(image_failure(id, ImageFailureCode::ImageNotFound, "Requested image not found".into()));
                        continue;
                    }
                    let bytes = self.ecr.manifest_bytes(&v.image.digest).await?;
                    images.push(Image {
                        registry_id: Some(r.account.clone()),
                        repository_name: Some(r.name.clone()),
                        image_id: Some(image_id(&v.image.digest, id.image_tag.as_deref())),
                        image_manifest: Some(String::from_utf8_lossy(&bytes).into_owned()),
                        image_manifest_media_type: Some(v.image.media_type.clone()),
                    });
                }
                Err((code, reason)) => failures.push(image_failure(id, code, reason)),
            }
        }
        Ok(BatchGetImageOutput { images: Some(images), failures: Some(failures) })
    }

    async fn batch_delete_image(&self, ctx: &RequestContext, input: BatchDeleteImageInput) -> AwsResult<BatchDeleteImageOutput> {
        let r = self.existing(ctx, &input.registry_id, &input.repository_name).await?;
        let (mut deleted, mut failures) = (Vec::new(), Vec::new());
        for id in &input.image_ids {
            let views = self.ecr.images(&r).await?;
            let v = match find(&views, id) {
                Ok(v) => v.clone(),
                Err((code, reason)) => {
                    failures.push(image_failure(id, code, reason));
                    continue;
                }
            };
            // A tag alone removes the tag; the image goes with its last tag.
            if let (None, Some(tag)) = (&id.image_digest, &id.image_tag)
                && v.tags.len() > 1
            {
                self.ecr.untag(&r, tag).await?;
                deleted.push(image_id(&v.image.digest, Some(tag)));
                continue;
            }
            match self.ecr.delete_image(&r, &v.image.digest).await? {
                Ok(tags) if tags.is_empty() => deleted.push(image_id(&v.image.digest, None)),
                Ok(tags) => deleted.extend(tags.iter().map(|t| image_id(&v.image.digest, Some(t)))),
                Err((code, reason)) => failures.push(image_failure(id, ImageFailureCode::from(code.as_str()), reason)),
            }
        }
        Ok(BatchDeleteImageOutput { image_ids: Some(deleted), failures: Some(failures) })
    }

    async fn put_image(&self, ctx: &RequestContext, input: PutImageInput) -> AwsResult<PutImageOutput> {
        let r = self.existing(ctx, &input.registry_id, &input.repository_name).await?;
        let text = input.image_manifest;
        let tag = input.image_tag.as_deref();
        let bytes = Bytes::copy_from_slice(text.as_bytes());
        let digest = manifest::sha256_digest(&bytes);
        if tag.is_none() && self.ecr.image(&r, &digest).await?.is_some() {
            return Err(EcrError::ImageExists { repo: r.clone(), digest, tag: None }.into());
        }
        let declared = input.image_manifest_media_type.as_deref();
        let result = self.ecr.put_manifest(&r, bytes, declared, tag, input.image_digest.as_deref(), true).await;
        let (image, _) = result.map_err(|e| put_error_to_aws(&r, tag, &digest, e))?;
        Ok(PutImageOutput {
            image: Some(Image {
                registry_id: Some(r.account.clone()),
                repository_name: Some(r.name.clone()),
                image_id: Some(image_id(&image.digest, tag)),
                image_manifest: Some(text),
                image_manifest_media_type: Some(image.media_type),
            }),
        })
    }

    async fn get_authorization_token(&self, ctx: &RequestContext, input: GetAuthorizationTokenInput) -> AwsResult<GetAuthorizationTokenOutput> {
        let registries = match input.registry_ids {
            Some(ids) if !ids.is_empty() => ids,
            _ => vec![ctx.account.clone()],
        };
        let mut data = Vec::new();
        for account in registries {
            let (token, expires) = self.ecr.issue_token(&account, &ctx.region, &ctx.caller_arn).await?;
            data.push(AuthorizationData {
                authorization_token: Some(base64::engine::general_purpose::STANDARD.encode(format!("AWS:{token}"))),
                expires_at: Some(Timestamp(expires)),
                proxy_endpoint: Some(format!("https://{account}.dkr.ecr.{}.amazonaws.com", ctx.region)),
            });
        }
        Ok(GetAuthorizationTokenOutput { authorization_data: Some(data) })
    }

    async fn get_download_url_for_layer(
        &self,
        ctx: &RequestContext,
        input: GetDownloadUrlForLayerInput,
    ) -> AwsResult<GetDownloadUrlForLayerOutput> {
        let r = self.existing(ctx, &input.registry_id, &input.repository_name).await?;
        let digest = input.layer_digest;
        if self.ecr.blob_in_repo(&r, &digest).await?.is_none() {
            return Err(EcrError::LayerNotFound { repo: r, digest }.into());
        }
        Ok(GetDownloadUrlForLayerOutput {
            download_url: Some(format!("{}/v2/{}/blobs/{digest}", ctx.endpoint.trim_end_matches('/'), r.name)),
            layer_digest: Some(digest),
        })
    }

    async fn batch_check_layer_availability(
        &self,
        ctx: &RequestContext,
        input: BatchCheckLayerAvailabilityInput,
    ) -> AwsResult<BatchCheckLayerAvailabilityOutput> {
        let r = self.existing(ctx, &input.registry_id, &input.repository_name).await?;
        let (mut layers, mut failures) = (Vec::new(), Vec::new());
        for d in input.layer_digests {
            let failure = |code, reason: &str| LayerFailure {
                layer_digest: Some(d.clone()),
                failure_code: Some(code),
                failure_reason: Some(reason.into()),
            };
            if !manifest::valid_digest(&d) {
                failures.push(failure(LayerFailureCode::InvalidLayerDigest, "Invalid layer digest"));
                continue;
            }
            match self.ecr.blob_in_repo(&r, &d).await? {
                Some(size) => layers.push(Layer {
                    layer_digest: Some(d),
                    layer_availability: Some(LayerAvailability::Available),
                    layer_size: Some(size as i64),
                    media_type: None,
                }),
                None => failures.push(failure(LayerFailureCode::MissingLayerDigest, "Could not find layer")),
            }
        }
        Ok(BatchCheckLayerAvailabilityOutput { layers: Some(layers), failures: Some(failures) })
    }

    async fn initiate_layer_upload(&self, ctx: &RequestContext, input: InitiateLayerUploadInput) -> AwsResult<InitiateLayerUploadOutput> {
        let r = self.existing(ctx, &input.registry_id, &input.repository_name).await?;
        let id = self.ecr.start_upload(&r).await?;
        Ok(InitiateLayerUploadOutput { upload_id: Some(id), part_size: Some(PART_SIZE) })
    }

    async fn upload_layer_part(&self, ctx: &RequestContext, input: UploadLayerPartInput) -> AwsResult<UploadLayerPartOutput> {
        let r = self.existing(ctx, &input.registry_id, &input.repository_name).await?;
        let id = self.upload_for(&r, input.upload_id).await?;
        let blob = input.layer_part_blob.0;
        let first = u64::try_from(input.part_first_byte).unwrap_or(0);
        let last = u64::try_from(input.part_last_byte).unwrap_or(0);
        let have = self.ecr.blobs.upload_size(&id).await?.unwrap_or(0);
        if first != have || last + 1 != first + blob.len() as u64 {
            return Err(EcrError::PartOutOfOrder { first, last, have }.into());
        }
        let size =
            self.ecr.blobs.append(&id, futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(blob))])).await?;
        Ok(UploadLayerPartOutput {
            registry_id: Some(r.account),
            repository_name: Some(r.name),
            upload_id: Some(id),
            last_byte_received: Some(size.saturating_sub(1) as i64),
        })
    }

    async fn complete_layer_upload(&self, ctx: &RequestContext, input: CompleteLayerUploadInput) -> AwsResult<CompleteLayerUploadOutput> {
        let r = self.existing(ctx, &input.registry_id, &input.repository_name).await?;
        let id = self.upload_for(&r, input.upload_id).await?;
        let digest = input.layer_digests.into_iter().next().unwrap_or_default();
        if self.ecr.blobs.upload_size(&id).await?.unwrap_or(0) == 0 {
            return Err(EcrError::EmptyUpload(id).into());
        }
        if self.ecr.blob_in_repo(&r, &digest).await?.is_some() {
            self.ecr.cancel_upload(&id).await?;
            return Err(EcrError::LayerExists { repo: r, digest }.into());
        }
        match self.ecr.finish_upload(&r, &id, &digest).await? {
            Ok(_) => Ok(CompleteLayerUploadOutput {
                registry_id: Some(r.account),
                repository_name: Some(r.name),
                upload_id: Some(id),
                layer_digest: Some(digest),
            }),
            Err(actual) => Err(EcrError::LayerDigestMismatch { actual, given: digest }.into()),
        }
    }

    async fn put_lifecycle_policy(&self, ctx: &RequestContext, input: PutLifecyclePolicyInput) -> AwsResult<PutLifecyclePolicyOutput> {
        let r = repo_ref(ctx, &input.registry_id, &input.repository_name);
        let text = input.lifecycle_policy_text;
        lifecycle::validate(&text)
            .map_err(|m| invalid(format!("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: '{m}'")))?;
        let repo = self
            .ecr
            .update_repository(&r, |repo| {
                repo.lifecycle_policy = Some(text.clone());
                Ok(())
            })
            .await?;
        self.ecr.apply_lifecycle(&r).await?;
        Ok(PutLifecyclePolicyOutput {
            registry_id: Some(r.account),
            repository_name: Some(r.name),
            lifecycle_policy_text: repo.lifecycle_policy,
        })
    }

    async fn get_lifecycle_policy(&self, ctx: &RequestContext, input: GetLifecyclePolicyInput) -> AwsResult<GetLifecyclePolicyOutput> {
        let r = repo_ref(ctx, &input.registry_id, &input.repository_name);
        let repo = self.ecr.repository(&r).await?.0;
        lifecycle_shape(r, &repo)
    }

    async fn delete_lifecycle_policy(&self, ctx: &RequestContext, input: DeleteLifecyclePolicyInput) -> AwsResult<DeleteLifecyclePolicyOutput> {
        let r = repo_ref(ctx, &input.registry_id, &input.repository_name);
        let before = self.ecr.repository(&r).await?.0;
        if before.lifecycle_policy.is_none() {
            return Err(EcrError::LifecyclePolicyNotFound(r).into());
        }
        self.ecr
            .update_repository(&r, |repo| {
                repo.lifecycle_policy = None;
                Ok(())
            })
            .await?;
        // The answer shows the policy that was deleted.
        lifecycle_shape(r, &before)
    }

    async fn set_repository_policy(&self, ctx: &RequestContext, input: SetRepositoryPolicyInput) -> AwsResult<SetRepositoryPolicyOutput> {
        let r = repo_ref(ctx, &input.registry_id, &input.repository_name);
        let text = input.policy_text;
        let refused = || invalid("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'");
        let doc: Value = serde_json::from_str(&text).map_err(|_| refused())?;
        if doc.get("Statement").is_none() {
            return Err(refused());
        }
        self.ecr
            .update_repository(&r, |repo| {
                repo.policy = Some(text.clone());
                Ok(())
            })
            .await?;
        Ok(policy_shape(r, text))
    }

    async fn get_repository_policy(&self, ctx: &RequestContext, input: GetRepositoryPolicyInput) -> AwsResult<GetRepositoryPolicyOutput> {
        let r = repo_ref(ctx, &input.registry_id, &input.repository_name);
        let policy = self.ecr.repository(&r).await?.0.policy;
        let text = policy.ok_or_else(|| EcrError::RepositoryPolicyNotFound(r.clone()))?;
        Ok(policy_shape(r, text))
    }

    async fn delete_repository_policy(
        &self,
        ctx: &RequestContext,
        input: DeleteRepositoryPolicyInput,
    ) -> AwsResult<DeleteRepositoryPolicyOutput> {
        let r = repo_ref(ctx, &input.registry_id, &input.repository_name);
        let policy = self.ecr.repository(&r).await?.0.policy;
        let text = policy.ok_or_else(|| EcrError::RepositoryPolicyNotFound(r.clone()))?;
        self.ecr
            .update_repository(&r, |repo| {
                repo.policy = None;
                Ok(())
            })
            .await?;
        Ok(policy_shape(r, text))
    }

    async fn put_image_tag_mutability(&self, ctx: &RequestContext, input: PutImageTagMutabilityInput) -> AwsResult<PutImageTagMutabilityOutput> {
        let r = repo_ref(ctx, &input.registry_id, &input.repository_name);
        let value = input.image_tag_mutability.as_str().to_string();
        let filters = input.image_tag_mutability_exclusion_filters;
        let repo = self
            .ecr
            .update_repository(&r, |repo| {
                repo.tag_mutability = value.clone();
                repo.mutability_exclusions = filters.clone();
                Ok(())
            })
            .await?;
        Ok(PutImageTagMutabilityOutput {
            registry_id: Some(r.account),
            repository_name: Some(r.name),
            image_tag_mutability: Some(ImageTagMutability::from(repo.tag_mutability.as_str())),
            image_tag_mutability_exclusion_filters: repo.mutability_exclusions,
        })
    }

    async fn put_image_scanning_configuration(
        &self,
        ctx: &RequestContext,
        input: PutImageScanningConfigurationInput,
    ) -> AwsResult<PutImageScanningConfigurationOutput> {
        let r = repo_ref(ctx, &input.registry_id, &input.repository_name);
        let scan = input.image_scanning_configuration.scan_on_push.unwrap_or(false);
        self.ecr
            .update_repository(&r, |repo| {
                repo.scan_on_push = scan;
                Ok(())
            })
            .await?;
        Ok(PutImageScanningConfigurationOutput {
            registry_id: Some(r.account),
            repository_name: Some(r.name),
            image_scanning_configuration: Some(ImageScanningConfiguration { scan_on_push: Some(scan) }),
        })
    }

    async fn describe_registry(&self, ctx: &RequestContext, _input: DescribeRegistryInput) -> AwsResult<DescribeRegistryOutput> {
        Ok(DescribeRegistryOutput {
            registry_id: Some(ctx.account.clone()),
            replication_configuration: Some(ReplicationConfiguration { rules: Vec::new() }),
        })
    }

    async fn tag_resource(&self, ctx: &RequestContext, input: TagResourceInput) -> AwsResult<TagResourceOutput> {
        let r = arn_repo(ctx, &input.resource_arn)?;
        let new = tags_in(input.tags)?;
        self.ecr
            .update_repository(&r, |repo| {
                for t in &new {
                    repo.tags.retain(|x| x.key != t.key);
                    repo.tags.push(t.clone());
                }
                if repo.tags.len() > MAX_TAGS {
                    return Err(EcrError::TooManyTags.into());
                }
                Ok(())
            })
            .await?;
        Ok(Default::default())
    }

    async fn untag_resource(&self, ctx: &RequestContext, input: UntagResourceInput) -> AwsResult<UntagResourceOutput> {
        let r = arn_repo(ctx, &input.resource_arn)?;
        let keys = input.tag_keys;
        self.ecr
            .update_repository(&r, |repo| {
                repo.tags.retain(|t| !keys.contains(&t.key));
                Ok(())
            })
            .await?;
        Ok(Default::default())
    }

    async fn list_tags_for_resource(&self, ctx: &RequestContext, input: ListTagsForResourceInput) -> AwsResult<ListTagsForResourceOutput> {
        let r = arn_repo(ctx, &input.resource_arn)?;
        let repo = self.ecr.repository(&r).await?.0;
        let tags = repo.tags.into_iter().map(|t| Tag { key: t.key, value: t.value }).collect();
        Ok(ListTagsForResourceOutput { tags: Some(tags) })
    }
}

impl EcrService {
    /// The repository an input names, once it is known to exist (RepositoryNotFoundException
    /// otherwise).
    async fn existing(&self, ctx: &RequestContext, registry_id: &Option<String>, name: &str) -> AwsResult<RepoRef> {
        let r = repo_ref(ctx, registry_id, name);
        self.ecr.repository(&r).await?;
        Ok(r)
    }

    /// The upload an input names, which must be in progress.
    async fn upload_for(&self, r: &RepoRef, id: String) -> AwsResult<String> {
        if self.ecr.upload(r, &id).await?.is_none() {
            return Err(EcrError::UploadNotFound { repo: r.clone(), id }.into());
        }
        Ok(id)
    }
}

/// How many tags a repository may have.
const MAX_TAGS: usize = 50;

/// Tags as given, the last of a repeated key winning.
fn tags_in(given: Vec<Tag>) -> AwsResult<Vec<domain::Tag>> {
    let mut out: Vec<domain::Tag> = Vec::new();
    for t in given {
        out.retain(|x| x.key != t.key);
        out.push(domain::Tag { key: t.key, value: t.value });
    }
    if out.len() > MAX_TAGS {
        return Err(EcrError::TooManyTags.into());
    }
    Ok(out)
}

fn tag_status(filter: &Option<DescribeImagesFilter>) -> TagStatus {
    filter.as_ref().and_then(|f| f.tag_status.clone()).unwrap_or(TagStatus::Any)
}

pub fn repository_shape(ctx: &RequestContext, r: &domain::Repository) -> AwsResult<Repository> {
    Ok(Repository {
        repository_arn: Some(r.arn.clone()),
        registry_id: Some(r.account.clone()),
        repository_name: Some(r.name.clone()),
        repository_uri: Some(format!("{}/{}", ctx.host(), r.name)),
        created_at: Some(Timestamp(r.created_at)),
        image_tag_mutability: Some(ImageTagMutability::from(r.tag_mutability.as_str())),
        image_tag_mutability_exclusion_filters: r.mutability_exclusions.clone(),
        image_scanning_configuration: Some(ImageScanningConfiguration { scan_on_push: Some(r.scan_on_push) }),
        encryption_configuration: Some(r.encryption.clone()),
    })
}

fn image_id(digest: &str, tag: Option<&str>) -> ImageIdentifier {
    ImageIdentifier { image_digest: Some(digest.to_string()), image_tag: tag.map(str::to_string) }
}

/// A failure entry naming the ImageIdentifier exactly as the request gave it.
fn image_failure(id: &ImageIdentifier, code: ImageFailureCode, reason: String) -> ImageFailure {
    ImageFailure { image_id: Some(id.clone()), failure_code: Some(code), failure_reason: Some(reason) }
}

fn image_detail(r: &RepoRef, v: &ImageView) -> ImageDetail {
    ImageDetail {
        registry_id: Some(r.account.clone()),
        repository_name: Some(r.name.clone()),
        image_digest: Some(v.image.digest.clone()),
        image_tags: (!v.tags.is_empty()).then(|| v.tags.clone()),
        image_size_in_bytes: Some(v.image.size as i64),
        image_pushed_at: Some(Timestamp(v.image.pushed_at)),
        image_manifest_media_type: Some(v.image.media_type.clone()),
        artifact_media_type: v.image.artifact_type.clone(),
        subject_manifest_digest: v.image.subject.clone(),
        ..Default::default()
    }
}

/// An ImageIdentifier as ECR prints it in messages.
fn describe_id(id: &ImageIdentifier) -> String {
    format!(
        "{{imageDigest:'{}', imageTag:'{}'}}",
        id.image_digest.as_deref().unwrap_or("null"),
        id.image_tag.as_deref().unwrap_or("null")
    )
}

/// Finds the image an ImageIdentifier names, or the failure BatchGetImage/BatchDeleteImage report.
fn find<'a>(views: &'a [ImageView], id: &ImageIdentifier) -> Result<&'a ImageView, (ImageFailureCode, String)> {
    let digest = id.image_digest.as_deref();
    let tag = id.image_tag.as_deref();
    if digest.is_none() && tag.is_none() {
        return Err((ImageFailureCode::MissingDigestAndTag, "Invalid request parameters: both tag and digest cannot be null".into()));
    }
    if let Some(d) = digest
        && !manifest::valid_digest(d)
    {
        return Err((
            ImageFailureCode::InvalidImageDigest,
            "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'".into(),
        ));
    }
    let by_digest = digest.and_then(|d| views.iter().find(|v| v.image.digest == d));
    let by_tag = tag.and_then(|t| views.iter().find(|v| v.tags.iter().any(|x| x == t)));
    let mismatch =
        || (ImageFailureCode::ImageTagDoesNotMatchDigest, "Invalid request parameters: given tag does not map to the given digest".into());
    match (digest, tag, by_digest, by_tag) {
        (Some(_), Some(_), Some(a), Some(b)) if a.image.digest != b.image.digest => Err(mismatch()),
        (Some(_), Some(_), Some(_), None) => Err(mismatch()),
        (Some(_), _, Some(v), _) => Ok(v),
        (None, Some(_), _, Some(v)) => Ok(v),
        _ => Err((ImageFailureCode::ImageNotFound, "Requested image not found".into())),
    }
}

/// Get/DeleteLifecyclePolicy's answer: the policy, or LifecyclePolicyNotFoundException.
fn lifecycle_shape(r: RepoRef, repo: &domain::Repository) -> AwsResult<GetLifecyclePolicyOutput> {
    let Some(text) = repo.lifecycle_policy.clone() else {
        return Err(EcrError::LifecyclePolicyNotFound(r).into());
    };
    Ok(GetLifecyclePolicyOutput {
        registry_id: Some(r.account),
        repository_name: Some(r.name),
        lifecycle_policy_text: Some(text),
        last_evaluated_at: repo.lifecycle_evaluated_at.map(Timestamp),
    })
}

fn policy_shape(r: RepoRef, text: String) -> GetRepositoryPolicyOutput {
    GetRepositoryPolicyOutput { registry_id: Some(r.account), repository_name: Some(r.name), policy_text: Some(text) }
}

/// Offset-based paging over an already ordered list.
fn page<T: Clone>(items: &[T], next_token: Option<&str>, max_results: Option<i32>) -> AwsResult<(Vec<T>, Option<String>)> {
    let start = match next_token {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| invalid("Invalid parameter at 'nextToken' failed to satisfy constraint: 'invalid token'"))?,
        None => 0,
    };
    let max = max_results.and_then(|m| usize::try_from(m).ok()).unwrap_or(DEFAULT_MAX_RESULTS);
    let end = (start + max).min(items.len());
    let slice = items.get(start.min(items.len())..end).unwrap_or_default().to_vec();
    Ok((slice, (end < items.len()).then(|| end.to_string())))
}

/// The repository a tagging ARN names (`arn:aws:ecr:<region>:<account>:repository/<name>`).
fn arn_repo(ctx: &RequestContext, text: &str) -> AwsResult<RepoRef> {
    let arn = Arn::parse(text).filter(|a| a.service == "ecr" && a.resource.starts_with("repository/"));
    let Some(arn) = arn else {
        return Err(invalid(format!("Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN {text}'")));
    };
    let region = if arn.region.is_empty() { ctx.region.clone() } else { arn.region.clone() };
    Ok(RepoRef::new(&arn.account, &region, arn.resource_name()))
}

/// The ECR error for a refused manifest.
pub fn put_error_to_aws(r: &RepoRef, tag: Option<&str>, digest: &str, e: PutError) -> AwsError {
    match e {
        PutError::RepositoryNotFound => EcrError::RepositoryNotFound(r.clone()).into(),
        PutError::Invalid(m) => invalid(format!("Invalid parameter at 'ImageManifest' failed to satisfy constraint: '{m}'")),
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
            format!("Manifests with digests '{d:?}' referenced by the image do not exist in the repository with name '{}'", r.name),
        ),
        PutError::TagImmutable(t) => AwsError::client(
            "ImageTagAlreadyExistsException",
            format!(
                "The image tag '{t}' already exists in the '{}' repository and cannot be overwritten because the repository is immutable.",
                r.name
            ),
        ),
        PutError::AlreadyExists => {
            EcrError::ImageExists { repo: r.clone(), digest: digest.to_string(), tag: Some(tag.unwrap_or_default().to_string()) }.into()
        }
        PutError::Internal(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The operations the wire serves come from this impl block, and IAM can authorize each.
    #[test]
    fn implemented_operations_come_from_the_impl_and_have_iam_actions() {
        codeyard_api::assert_implemented(OPERATIONS, EcrService::IMPLEMENTED_METHODS, 26, &["PutImage", "DescribeRegistry"], &["CreatePullThroughCacheRule"]);
    }
}
