//! Bucket configuration sub-resources (`?cors`, `?policy`, `?lifecycle`, ...). They all work
//! the same way, so one table says where each is kept and what GET answers when it was never
//! set, and one generic get/put/delete serves every operation; what is left per operation is
//! the validation AWS does and the shape of its output.

use super::*;

/// A configuration sub-resource of a bucket.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SubResource {
    Accelerate,
    AclPolicy,
    CannedAcl,
    Cors,
    Encryption,
    Lifecycle,
    Logging,
    ObjectLock,
    OwnershipControls,
    Policy,
    PublicAccessBlock,
    Replication,
    RequestPayment,
    Tagging,
    Website,
}

/// How a sub-resource is stored and what a GET of an unset one answers.
struct Entry {
    resource: SubResource,
    /// The key in the bucket document's `configs`; the value is the XML s3s reads and writes
    /// (so every field AWS has survives the round trip), or plain text for the policy and the
    /// canned ACL.
    key: &'static str,
    /// AWS's 404 code and message for a GET of an unset sub-resource; `None` when GET answers
    /// a default instead.
    missing: Option<(&'static str, &'static str)>,
}

use SubResource as Sub;

#[rustfmt::skip]
const TABLE: &[Entry] = &[
    Entry { resource: Sub::Accelerate, key: "accelerate", missing: None },
    Entry { resource: Sub::AclPolicy, key: "acl-policy", missing: None },
    Entry { resource: Sub::CannedAcl, key: "canned-acl", missing: None },
    Entry { resource: Sub::Cors, key: "cors",
        missing: Some(("NoSuchCORSConfiguration", "The CORS configuration does not exist")) },
    Entry { resource: Sub::Encryption, key: "encryption", missing: None },
    Entry { resource: Sub::Lifecycle, key: "lifecycle",
        missing: Some(("NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist")) },
    Entry { resource: Sub::Logging, key: "logging", missing: None },
    Entry { resource: Sub::ObjectLock, key: "object-lock",
        missing: Some(("ObjectLockConfigurationNotFoundError", "Object Lock configuration does not exist for this bucket")) },
    Entry { resource: Sub::OwnershipControls, key: "ownership-controls",
        missing: Some(("OwnershipControlsNotFoundError", "The bucket ownership controls were not found")) },
    Entry { resource: Sub::Policy, key: "policy",
        missing: Some(("NoSuchBucketPolicy", "The bucket policy does not exist")) },
    Entry { resource: Sub::PublicAccessBlock, key: "public-access-block",
        missing: Some(("NoSuchPublicAccessBlockConfiguration", "The public access block configuration was not found")) },
    Entry { resource: Sub::Replication, key: "replication",
        missing: Some(("ReplicationConfigurationNotFoundError", "The replication configuration was not found")) },
    Entry { resource: Sub::RequestPayment, key: "request-payment", missing: None },
    Entry { resource: Sub::Tagging, key: "tagging", missing: Some(("NoSuchTagSet", "The TagSet does not exist")) },
    Entry { resource: Sub::Website, key: "website",
        missing: Some(("NoSuchWebsiteConfiguration", "The specified bucket does not have a website configuration")) },
];

impl SubResource {
    fn entry(self) -> &'static Entry {
        TABLE
            .iter()
            .find(|e| e.resource == self)
            .expect("every sub-resource has a table entry")
    }

    pub(super) fn key(self) -> &'static str {
        self.entry().key
    }

    /// The 404 a GET of this sub-resource answers when the bucket has none.
    fn not_found(self) -> s3s::S3Error {
        match self.entry().missing {
            Some((code, message)) => s3err(code, 404, message),
            None => internal(format!("{self:?} has a default and is never missing")),
        }
    }
}

impl Api {
    /// The stored sub-resource, if the bucket has it.
    pub(super) async fn config<T: for<'x> s3s::xml::DeserializeContent<'x>>(
        &self,
        bucket: &str,
        r: SubResource,
    ) -> S3Result<Option<T>> {
        self.engine.bucket(bucket).await?.config(r.key()).map_err(internal)
    }

    /// The stored sub-resource, or AWS's 404 for it.
    pub(super) async fn required_config<T: for<'x> s3s::xml::DeserializeContent<'x>>(
        &self,
        bucket: &str,
        r: SubResource,
    ) -> S3Result<T> {
        self.config(bucket, r).await?.ok_or_else(|| r.not_found())
    }

    pub(super) async fn store_config<T: s3s::xml::SerializeContent>(
        &self,
        bucket: &str,
        r: SubResource,
        value: &T,
    ) -> S3Result<()> {
        let mut buf = Vec::new();
        s3s::xml::Serializer::new(&mut buf)
            .content("C", value)
            .map_err(|e| internal(format!("{e:?}")))?;
        let xml = String::from_utf8(buf).map_err(internal)?;
        self.store_text(bucket, r, &xml).await
    }

    pub(super) async fn config_text(
        &self,
        bucket: &str,
        r: SubResource,
    ) -> S3Result<Option<String>> {
        let b = self.engine.bucket(bucket).await?;
        Ok(b.configs.get(r.key()).cloned())
    }

    pub(super) async fn store_text(
        &self,
        bucket: &str,
        r: SubResource,
        value: &str,
    ) -> S3Result<()> {
        self.engine.set_config(bucket, r.key(), Some(value.to_string())).await
    }

    pub(super) async fn remove_config(&self, bucket: &str, r: SubResource) -> S3Result<()> {
        self.engine.set_config(bucket, r.key(), None).await
    }

    /// The whole of a plain PUT: store the configuration, answer 200 with an empty output.
    async fn put<T: s3s::xml::SerializeContent, O: Default>(
        &self,
        bucket: &str,
        r: SubResource,
        value: &T,
    ) -> R<O> {
        self.store_config(bucket, r, value).await?;
        ok(O::default())
    }

    /// The whole of every DELETE: remove the configuration, answer 204.
    async fn delete<O: Default>(&self, bucket: &str, r: SubResource) -> R<O> {
        self.remove_config(bucket, r).await?;
        Ok(S3Response::with_status(
            O::default(),
            http::StatusCode::NO_CONTENT,
        ))
    }
}

/// Operations that are the generic PUT of the input member named.
macro_rules! plain_puts {
    ($($op:ident($input:ty) -> $output:ty: $resource:ident from $member:ident;)*) => {$(
        pub(super) async fn $op(api: &Api, req: S3Request<$input>) -> R<$output> {
            api.put(&req.input.bucket, Sub::$resource, &req.input.$member).await
        }
    )*};
}

/// Operations that are the generic DELETE.
macro_rules! deletes {
    ($($op:ident($input:ty) -> $output:ty: $resource:ident;)*) => {$(
        pub(super) async fn $op(api: &Api, req: S3Request<$input>) -> R<$output> {
            api.delete(&req.input.bucket, Sub::$resource).await
        }
    )*};
}

#[rustfmt::skip]
plain_puts! {
    put_bucket_accelerate_configuration(PutBucketAccelerateConfigurationInput) -> PutBucketAccelerateConfigurationOutput: Accelerate from accelerate_configuration;
    put_bucket_cors(PutBucketCorsInput) -> PutBucketCorsOutput: Cors from cors_configuration;
    put_bucket_encryption(PutBucketEncryptionInput) -> PutBucketEncryptionOutput: Encryption from server_side_encryption_configuration;
    put_bucket_logging(PutBucketLoggingInput) -> PutBucketLoggingOutput: Logging from bucket_logging_status;
    put_bucket_ownership_controls(PutBucketOwnershipControlsInput) -> PutBucketOwnershipControlsOutput: OwnershipControls from ownership_controls;
    put_bucket_request_payment(PutBucketRequestPaymentInput) -> PutBucketRequestPaymentOutput: RequestPayment from request_payment_configuration;
    put_bucket_website(PutBucketWebsiteInput) -> PutBucketWebsiteOutput: Website from website_configuration;
    put_public_access_block(PutPublicAccessBlockInput) -> PutPublicAccessBlockOutput: PublicAccessBlock from public_access_block_configuration;
}

#[rustfmt::skip]
deletes! {
    delete_bucket_cors(DeleteBucketCorsInput) -> DeleteBucketCorsOutput: Cors;
    delete_bucket_encryption(DeleteBucketEncryptionInput) -> DeleteBucketEncryptionOutput: Encryption;
    delete_bucket_lifecycle(DeleteBucketLifecycleInput) -> DeleteBucketLifecycleOutput: Lifecycle;
    delete_bucket_ownership_controls(DeleteBucketOwnershipControlsInput) -> DeleteBucketOwnershipControlsOutput: OwnershipControls;
    delete_bucket_policy(DeleteBucketPolicyInput) -> DeleteBucketPolicyOutput: Policy;
    delete_bucket_replication(DeleteBucketReplicationInput) -> DeleteBucketReplicationOutput: Replication;
    delete_bucket_tagging(DeleteBucketTaggingInput) -> DeleteBucketTaggingOutput: Tagging;
    delete_bucket_website(DeleteBucketWebsiteInput) -> DeleteBucketWebsiteOutput: Website;
    delete_public_access_block(DeletePublicAccessBlockInput) -> DeletePublicAccessBlockOutput: PublicAccessBlock;
}

// ---- PUTs that validate first ------------------------------------------------------------

pub(super) async fn put_bucket_tagging(api: &Api, req: S3Request<PutBucketTaggingInput>) -> R<PutBucketTaggingOutput> {
    let tags = from_tag_set(&req.input.tagging.tag_set);
    if tags.len() > 50 {
        return Err(s3err(
            "BadRequest",
            400,
            "Bucket tag count cannot be greater than 50",
        ));
    }
    validate_tags(&tags[..tags.len().min(10)])?;
    api.put(&req.input.bucket, Sub::Tagging, &req.input.tagging)
        .await
}

pub(super) async fn put_bucket_policy(api: &Api, req: S3Request<PutBucketPolicyInput>) -> R<PutBucketPolicyOutput> {
    let parsed: Result<serde_json::Value, _> = serde_json::from_str(&req.input.policy);
    if !parsed
        .as_ref()
        .is_ok_and(|v| v.is_object() && v.get("Statement").is_some())
    {
        return Err(s3err(
            "MalformedPolicy",
            400,
            "Policies must be valid JSON and the first byte must be '{'",
        ));
    }
    api.store_text(&req.input.bucket, Sub::Policy, &req.input.policy)
        .await?;
    Ok(S3Response::with_status(
        PutBucketPolicyOutput {},
        http::StatusCode::NO_CONTENT,
    ))
}

fn all_storage_classes_128k() -> Option<TransitionDefaultMinimumObjectSize> {
    Some(TransitionDefaultMinimumObjectSize::from_static(
        TransitionDefaultMinimumObjectSize::ALL_STORAGE_CLASSES_128K,
    ))
}

pub(super) async fn put_bucket_lifecycle_configuration(api: &Api, req: S3Request<PutBucketLifecycleConfigurationInput>) -> R<PutBucketLifecycleConfigurationOutput> {
    let cfg = req
        .input
        .lifecycle_configuration
        .ok_or_else(malformed_xml)?;
    api.store_config(&req.input.bucket, Sub::Lifecycle, &cfg)
        .await?;
    ok(PutBucketLifecycleConfigurationOutput {
        transition_default_minimum_object_size: all_storage_classes_128k(),
    })
}

/// Replication and Object Lock need a versioned bucket; each says so with its own error.
async fn require_versioning(
    api: &Api,
    bucket: &str,
    code: &str,
    status: u16,
    what: &str,
) -> S3Result<()> {
    let b = api.engine.bucket(bucket).await?;
    if b.versioning != Some(Versioning::Enabled) {
        return Err(s3err(
            code,
            status,
            format!("Versioning must be 'Enabled' on the bucket to apply a {what} configuration"),
        ));
    }
    Ok(())
}

pub(super) async fn put_bucket_replication(api: &Api, req: S3Request<PutBucketReplicationInput>) -> R<PutBucketReplicationOutput> {
    require_versioning(api, &req.input.bucket, "InvalidRequest", 400, "replication").await?;
    let i = &req.input;
    api.put(&i.bucket, Sub::Replication, &i.replication_configuration)
        .await
}

pub(super) async fn put_object_lock_configuration(api: &Api, req: S3Request<PutObjectLockConfigurationInput>) -> R<PutObjectLockConfigurationOutput> {
    let cfg = req
        .input
        .object_lock_configuration
        .ok_or_else(malformed_xml)?;
    require_versioning(
        api,
        &req.input.bucket,
        "InvalidBucketState",
        409,
        "Object Lock",
    )
    .await?;
    api.put(&req.input.bucket, Sub::ObjectLock, &cfg).await
}

// ---- GETs: the stored configuration (or its default) in the operation's output ------------

pub(super) async fn get_bucket_tagging(api: &Api, req: S3Request<GetBucketTaggingInput>) -> R<GetBucketTaggingOutput> {
    let t: Tagging = api.required_config(&req.input.bucket, Sub::Tagging).await?;
    if t.tag_set.is_empty() {
        return Err(SubResource::Tagging.not_found());
    }
    ok(GetBucketTaggingOutput { tag_set: t.tag_set })
}

pub(super) async fn get_bucket_policy(api: &Api, req: S3Request<GetBucketPolicyInput>) -> R<GetBucketPolicyOutput> {
    let policy = api.config_text(&req.input.bucket, Sub::Policy).await?;
    let policy = policy.ok_or_else(|| Sub::Policy.not_found())?;
    ok(GetBucketPolicyOutput {
        policy: Some(policy),
    })
}

/// The default encryption of a bucket that was never configured: SSE-S3 (AWS since 2023).
fn default_encryption() -> ServerSideEncryptionConfiguration {
    ServerSideEncryptionConfiguration {
        rules: vec![ServerSideEncryptionRule {
            apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
                sse_algorithm: ServerSideEncryption::from_static(ServerSideEncryption::AES256),
                kms_master_key_id: None,
            }),
            bucket_key_enabled: Some(false),
            ..Default::default()
        }],
    }
}

/// GETs that read one sub-resource and answer it in the operation's output: `required`
/// answers the sub-resource's "not found" error when it was never set, `optional` passes
/// `None` on (the output then says the default).
macro_rules! gets {
    ($($op:ident($input:ty) -> $output:ty: $how:ident $resource:ident, |$c:ident: $t:ty| $body:expr;)*) => {$(
        pub(super) async fn $op(api: &Api, req: S3Request<$input>) -> R<$output> {
            let $c: $t = gets!(@read $how, api, &req.input.bucket, $resource);
            ok($body)
        }
    )*};
    (@read required, $api:expr, $bucket:expr, $resource:ident) => {
        $api.required_config($bucket, Sub::$resource).await?
    };
    (@read optional, $api:expr, $bucket:expr, $resource:ident) => {
        $api.config($bucket, Sub::$resource).await?
    };
}

#[rustfmt::skip]
gets! {
    get_bucket_cors(GetBucketCorsInput) -> GetBucketCorsOutput: required Cors,
        |c: CORSConfiguration| GetBucketCorsOutput { cors_rules: Some(c.cors_rules) };
    get_bucket_lifecycle_configuration(GetBucketLifecycleConfigurationInput)
        -> GetBucketLifecycleConfigurationOutput: required Lifecycle,
        |c: BucketLifecycleConfiguration| GetBucketLifecycleConfigurationOutput {
            rules: Some(c.rules),
            transition_default_minimum_object_size: all_storage_classes_128k(),
        };
    get_bucket_website(GetBucketWebsiteInput) -> GetBucketWebsiteOutput: required Website,
        |w: WebsiteConfiguration| GetBucketWebsiteOutput {
            error_document: w.error_document,
            index_document: w.index_document,
            redirect_all_requests_to: w.redirect_all_requests_to,
            routing_rules: w.routing_rules,
        };
    get_bucket_replication(GetBucketReplicationInput) -> GetBucketReplicationOutput: required Replication,
        |c: ReplicationConfiguration| GetBucketReplicationOutput { replication_configuration: Some(c) };
    get_object_lock_configuration(GetObjectLockConfigurationInput)
        -> GetObjectLockConfigurationOutput: required ObjectLock,
        |c: ObjectLockConfiguration| GetObjectLockConfigurationOutput { object_lock_configuration: Some(c) };
    get_public_access_block(GetPublicAccessBlockInput) -> GetPublicAccessBlockOutput: required PublicAccessBlock,
        |c: PublicAccessBlockConfiguration| GetPublicAccessBlockOutput { public_access_block_configuration: Some(c) };
    get_bucket_ownership_controls(GetBucketOwnershipControlsInput)
        -> GetBucketOwnershipControlsOutput: required OwnershipControls,
        |c: OwnershipControls| GetBucketOwnershipControlsOutput { ownership_controls: Some(c) };
    get_bucket_encryption(GetBucketEncryptionInput) -> GetBucketEncryptionOutput: optional Encryption,
        |c: Option<ServerSideEncryptionConfiguration>| GetBucketEncryptionOutput { server_side_encryption_configuration: Some(c.unwrap_or_else(default_encryption)) };
    get_bucket_logging(GetBucketLoggingInput) -> GetBucketLoggingOutput: optional Logging,
        |s: Option<BucketLoggingStatus>| GetBucketLoggingOutput { logging_enabled: s.and_then(|s| s.logging_enabled) };
    get_bucket_accelerate_configuration(GetBucketAccelerateConfigurationInput)
        -> GetBucketAccelerateConfigurationOutput: optional Accelerate,
        |c: Option<AccelerateConfiguration>| GetBucketAccelerateConfigurationOutput {
            status: c.and_then(|c| c.status),
            request_charged: None,
        };
    get_bucket_request_payment(GetBucketRequestPaymentInput) -> GetBucketRequestPaymentOutput: optional RequestPayment,
        |c: Option<RequestPaymentConfiguration>| GetBucketRequestPaymentOutput {
            payer: Some(c.map(|c| c.payer).unwrap_or_else(|| Payer::from_static(Payer::BUCKET_OWNER))),
        };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sub_resource_has_one_entry_and_its_own_key() {
        let all = [
            Sub::Accelerate,
            Sub::AclPolicy,
            Sub::CannedAcl,
            Sub::Cors,
            Sub::Encryption,
            Sub::Lifecycle,
            Sub::Logging,
            Sub::ObjectLock,
            Sub::OwnershipControls,
            Sub::Policy,
            Sub::PublicAccessBlock,
            Sub::Replication,
            Sub::RequestPayment,
            Sub::Tagging,
            Sub::Website,
        ];
        assert_eq!(TABLE.len(), all.len());
        for r in all {
            assert_eq!(TABLE.iter().filter(|e| e.resource == r).count(), 1, "{r:?}");
        }
        let keys: std::collections::BTreeSet<_> = TABLE.iter().map(|e| e.key).collect();
        assert_eq!(keys.len(), TABLE.len());
    }
}
