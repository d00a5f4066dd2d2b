//! The S3 REST API: s3s's [`S3`] trait mapped onto the [`Engine`]. Thin: it turns s3s DTOs into
//! engine calls and engine results into DTOs; checks that belong to the protocol (conditional
//! requests, ranges, Content-MD5 and checksums, URL encoding of listings) live here.
//!
//! One module per concern: [`buckets`], [`config`] (the configuration sub-resources, one
//! table and one generic get/put/delete), [`objects`], [`listings`], [`multipart`],
//! [`tagging`], [`acl`], and [`checksums`] for request bodies. The `S3` impl at the end of
//! this file is the routing table from each operation to its handler, and the list of
//! implemented operations comes from the same table ([`IMPLEMENTED`]).

mod acl;
mod buckets;
mod checksums;
mod config;
mod listings;
mod multipart;
mod notifications;
mod objects;
mod tagging;

use crate::blobs::BlobError;
use crate::body::ObjectBody;
use crate::engine::{Engine, Listed, Notice, internal, s3err, validate_key};
use crate::meta::*;
use checksums::*;
use crate::sse::{self, sse_out};
use codeyard_core::RequestContext;
use config::SubResource;
use objects::*;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tagging::*;

/// Trailing headers of an aws-chunked body that codeyard decoded itself (open mode): s3s
/// only decodes aws-chunked bodies of requests it authenticated.
#[derive(Clone, Default)]
pub struct OpenTrailers(pub Arc<Mutex<Option<http::HeaderMap>>>);

pub struct Api {
    pub engine: Arc<Engine>,
    /// KMS for SSE-KMS objects ([`crate::sse`]).
    pub hub: Arc<codeyard_core::Hub>,
}

pub(super) type R<T> = S3Result<S3Response<T>>;

pub(super) fn ok<T>(t: T) -> R<T> {
    Ok(S3Response::new(t))
}

pub(super) fn ctx_of<T>(req: &S3Request<T>) -> RequestContext {
    req.extensions
        .get::<RequestContext>()
        .cloned()
        .unwrap_or_else(|| {
            RequestContext::internal(
                codeyard_core::DEFAULT_ACCOUNT,
                codeyard_core::DEFAULT_REGION,
                "",
            )
        })
}

pub(super) fn ts(ms: i64) -> Timestamp {
    Timestamp::from(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64))
}

pub(super) fn ts_secs(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

pub(super) fn etag(v: &str) -> ETag {
    ETag::Strong(v.to_string())
}

pub(super) fn owner(account: &str) -> Owner {
    use sha2::Digest;
    Owner {
        display_name: Some("codeyard".into()),
        id: Some(hex::encode(sha2::Sha256::digest(account.as_bytes()))),
    }
}

/// Who started a multipart upload: the account, as its owner.
pub(super) fn initiator(account: &str) -> Initiator {
    Initiator {
        id: owner(account).id,
        display_name: Some("codeyard".into()),
    }
}

pub(super) fn malformed_xml() -> s3s::S3Error {
    s3err(
        "MalformedXML",
        400,
        "The XML you provided was not well-formed or did not validate against our published schema",
    )
}

pub(super) fn version_out(v: &str) -> Option<String> {
    (v != "null").then(|| v.to_string())
}

/// Keys in listings are URL-encoded when the client asked for `encoding-type=url` (the aws
/// CLI always does).
pub(super) fn enc(s: String, url: bool) -> String {
    if !url {
        return s;
    }
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(&s, SET).to_string()
}

pub(super) fn blob_error(e: BlobError) -> s3s::S3Error {
    match e {
        BlobError::Body(m) if m.contains("SignatureDoesNotMatch") => {
            s3err("SignatureDoesNotMatch", 403, m)
        }
        BlobError::Body(m) => s3err(
            "IncompleteBody",
            400,
            format!(
                "You did not provide the number of bytes specified by the Content-Length HTTP header: {m}"
            ),
        ),
        BlobError::Store(m) => internal(m),
    }
}

impl Api {
    pub(super) async fn copy_source(&self, src: &CopySource) -> S3Result<ObjectDoc> {
        match src {
            CopySource::Bucket {
                bucket,
                key,
                version_id,
            } => {
                self.engine
                    .get_version(bucket, key, version_id.as_deref())
                    .await
            }
            _ => Err(s3err(
                "NotImplemented",
                501,
                "Access point copy sources are not supported",
            )),
        }
    }

    pub(super) async fn write_copy(
        &self,
        o: &ObjectDoc,
        range: Option<std::ops::Range<u64>>,
        algo: Option<&str>,
    ) -> S3Result<crate::blobs::Written> {
        let r = range.unwrap_or(0..o.size);
        let stream = self.engine.blobs.read(&o.blobs, r);
        self.engine
            .blobs
            .write(stream, hasher_for(algo))
            .await
            .map_err(blob_error)
    }
}

/// The routing table: each operation of s3s's `S3` trait this API implements, and the handler
/// that answers it (`module::operation`). Operations not listed keep s3s's default, which
/// answers NotImplemented (rewritten to a 4xx by the adapter in lib.rs).
macro_rules! routes {
    ($($module:ident::$op:ident($input:ty) -> $output:ty;)*) => {
        #[async_trait::async_trait]
        impl S3 for Api {
            $(
                async fn $op(&self, req: S3Request<$input>) -> R<$output> {
                    $module::$op(self, req).await
                }
            )*
        }

        /// The operations [`Api`] implements, by their s3s method names (snake_case).
        pub const IMPLEMENTED: &[&str] = &[$(stringify!($op)),*];
    };
}

routes! {
    buckets::create_bucket(CreateBucketInput) -> CreateBucketOutput;
    notifications::put_bucket_notification_configuration(PutBucketNotificationConfigurationInput) -> PutBucketNotificationConfigurationOutput;
    notifications::get_bucket_notification_configuration(GetBucketNotificationConfigurationInput) -> GetBucketNotificationConfigurationOutput;
    buckets::head_bucket(HeadBucketInput) -> HeadBucketOutput;
    buckets::delete_bucket(DeleteBucketInput) -> DeleteBucketOutput;
    buckets::list_buckets(ListBucketsInput) -> ListBucketsOutput;
    buckets::get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput;
    buckets::put_bucket_versioning(PutBucketVersioningInput) -> PutBucketVersioningOutput;
    buckets::get_bucket_versioning(GetBucketVersioningInput) -> GetBucketVersioningOutput;
    config::put_bucket_tagging(PutBucketTaggingInput) -> PutBucketTaggingOutput;
    config::get_bucket_tagging(GetBucketTaggingInput) -> GetBucketTaggingOutput;
    config::delete_bucket_tagging(DeleteBucketTaggingInput) -> DeleteBucketTaggingOutput;
    config::put_bucket_policy(PutBucketPolicyInput) -> PutBucketPolicyOutput;
    config::get_bucket_policy(GetBucketPolicyInput) -> GetBucketPolicyOutput;
    config::delete_bucket_policy(DeleteBucketPolicyInput) -> DeleteBucketPolicyOutput;
    config::put_bucket_cors(PutBucketCorsInput) -> PutBucketCorsOutput;
    config::get_bucket_cors(GetBucketCorsInput) -> GetBucketCorsOutput;
    config::delete_bucket_cors(DeleteBucketCorsInput) -> DeleteBucketCorsOutput;
    config::put_bucket_lifecycle_configuration(PutBucketLifecycleConfigurationInput) -> PutBucketLifecycleConfigurationOutput;
    config::get_bucket_lifecycle_configuration(GetBucketLifecycleConfigurationInput) -> GetBucketLifecycleConfigurationOutput;
    config::delete_bucket_lifecycle(DeleteBucketLifecycleInput) -> DeleteBucketLifecycleOutput;
    config::put_bucket_encryption(PutBucketEncryptionInput) -> PutBucketEncryptionOutput;
    config::get_bucket_encryption(GetBucketEncryptionInput) -> GetBucketEncryptionOutput;
    config::delete_bucket_encryption(DeleteBucketEncryptionInput) -> DeleteBucketEncryptionOutput;
    config::put_bucket_website(PutBucketWebsiteInput) -> PutBucketWebsiteOutput;
    config::get_bucket_website(GetBucketWebsiteInput) -> GetBucketWebsiteOutput;
    config::delete_bucket_website(DeleteBucketWebsiteInput) -> DeleteBucketWebsiteOutput;
    config::put_bucket_logging(PutBucketLoggingInput) -> PutBucketLoggingOutput;
    config::get_bucket_logging(GetBucketLoggingInput) -> GetBucketLoggingOutput;
    config::put_bucket_accelerate_configuration(PutBucketAccelerateConfigurationInput) -> PutBucketAccelerateConfigurationOutput;
    config::get_bucket_accelerate_configuration(GetBucketAccelerateConfigurationInput) -> GetBucketAccelerateConfigurationOutput;
    config::put_bucket_request_payment(PutBucketRequestPaymentInput) -> PutBucketRequestPaymentOutput;
    config::get_bucket_request_payment(GetBucketRequestPaymentInput) -> GetBucketRequestPaymentOutput;
    config::put_bucket_replication(PutBucketReplicationInput) -> PutBucketReplicationOutput;
    config::get_bucket_replication(GetBucketReplicationInput) -> GetBucketReplicationOutput;
    config::delete_bucket_replication(DeleteBucketReplicationInput) -> DeleteBucketReplicationOutput;
    config::put_object_lock_configuration(PutObjectLockConfigurationInput) -> PutObjectLockConfigurationOutput;
    config::get_object_lock_configuration(GetObjectLockConfigurationInput) -> GetObjectLockConfigurationOutput;
    config::put_public_access_block(PutPublicAccessBlockInput) -> PutPublicAccessBlockOutput;
    config::get_public_access_block(GetPublicAccessBlockInput) -> GetPublicAccessBlockOutput;
    config::delete_public_access_block(DeletePublicAccessBlockInput) -> DeletePublicAccessBlockOutput;
    config::put_bucket_ownership_controls(PutBucketOwnershipControlsInput) -> PutBucketOwnershipControlsOutput;
    config::get_bucket_ownership_controls(GetBucketOwnershipControlsInput) -> GetBucketOwnershipControlsOutput;
    config::delete_bucket_ownership_controls(DeleteBucketOwnershipControlsInput) -> DeleteBucketOwnershipControlsOutput;
    acl::put_bucket_acl(PutBucketAclInput) -> PutBucketAclOutput;
    acl::get_bucket_acl(GetBucketAclInput) -> GetBucketAclOutput;
    objects::put_object(PutObjectInput) -> PutObjectOutput;
    objects::get_object(GetObjectInput) -> GetObjectOutput;
    objects::head_object(HeadObjectInput) -> HeadObjectOutput;
    objects::delete_object(DeleteObjectInput) -> DeleteObjectOutput;
    objects::delete_objects(DeleteObjectsInput) -> DeleteObjectsOutput;
    objects::copy_object(CopyObjectInput) -> CopyObjectOutput;
    listings::list_objects_v2(ListObjectsV2Input) -> ListObjectsV2Output;
    listings::list_objects(ListObjectsInput) -> ListObjectsOutput;
    listings::list_object_versions(ListObjectVersionsInput) -> ListObjectVersionsOutput;
    tagging::get_object_tagging(GetObjectTaggingInput) -> GetObjectTaggingOutput;
    tagging::put_object_tagging(PutObjectTaggingInput) -> PutObjectTaggingOutput;
    tagging::delete_object_tagging(DeleteObjectTaggingInput) -> DeleteObjectTaggingOutput;
    acl::get_object_acl(GetObjectAclInput) -> GetObjectAclOutput;
    acl::put_object_acl(PutObjectAclInput) -> PutObjectAclOutput;
    multipart::create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput;
    multipart::upload_part(UploadPartInput) -> UploadPartOutput;
    multipart::upload_part_copy(UploadPartCopyInput) -> UploadPartCopyOutput;
    multipart::complete_multipart_upload(CompleteMultipartUploadInput) -> CompleteMultipartUploadOutput;
    multipart::abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput;
    multipart::list_parts(ListPartsInput) -> ListPartsOutput;
    multipart::list_multipart_uploads(ListMultipartUploadsInput) -> ListMultipartUploadsOutput;
}
