//! S3 end to end: aws-sdk-rust for the API surface, the aws CLI for `s3 cp/sync/ls/rm`,
//! Terraform for the bucket resources, a `kill -9` in the middle of an upload, and the object
//! store other services use through the hub.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::*;
use crate::common::error_code as code;
use crate::common::*;
use std::time::Duration;

/// PutBucketVersioning of `bucket` to `status`.
async fn set_versioning(c: &aws_sdk_s3::Client, bucket: &str, status: BucketVersioningStatus) {
    let config = VersioningConfiguration::builder().status(status).build();
    c.put_bucket_versioning().bucket(bucket).versioning_configuration(config).send().await.unwrap();
}

fn status<E, R: std::fmt::Debug>(e: &aws_sdk_s3::error::SdkError<E, R>) -> u16
where
    R: HasStatus,
{
    e.raw_response().map(|r| r.status_code()).unwrap_or(0)
}

trait HasStatus {
    fn status_code(&self) -> u16;
}
impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

async fn body_bytes(o: aws_sdk_s3::operation::get_object::GetObjectOutput) -> Vec<u8> {
    o.body.collect().await.unwrap().into_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn buckets_and_their_sub_resources() {
    let (_t, c) = TestServer::with(s3_client_for).await;
    make_bucket(&c, "alpha-bucket").await;

    let e = c.create_bucket().bucket("alpha-bucket").send().await.unwrap_err();
    assert_eq!(code(&e), "BucketAlreadyOwnedByYou");
    let e = c.create_bucket().bucket("Bad_Name").send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidBucketName");

    let head = c.head_bucket().bucket("alpha-bucket").send().await.unwrap();
    assert_eq!(head.bucket_region(), Some("eu-west-1"));
    let e = c.head_bucket().bucket("missing-bucket").send().await.unwrap_err();
    assert_eq!(status(&e), 404);
    let loc = c.get_bucket_location().bucket("alpha-bucket").send().await.unwrap();
    assert_eq!(loc.location_constraint(), Some(&BucketLocationConstraint::EuWest1));
    let list = c.list_buckets().send().await.unwrap();
    assert_eq!(list.buckets().iter().filter_map(|b| b.name()).collect::<Vec<_>>(), vec!["alpha-bucket"]);

    // Absent configurations answer exactly what Terraform's provider expects.
    let b = "alpha-bucket";
    assert_eq!(code(&c.get_bucket_policy().bucket(b).send().await.unwrap_err()), "NoSuchBucketPolicy");
    assert_eq!(code(&c.get_bucket_cors().bucket(b).send().await.unwrap_err()), "NoSuchCORSConfiguration");
    assert_eq!(code(&c.get_bucket_website().bucket(b).send().await.unwrap_err()), "NoSuchWebsiteConfiguration");
    assert_eq!(code(&c.get_bucket_lifecycle_configuration().bucket(b).send().await.unwrap_err()), "NoSuchLifecycleConfiguration");
    assert_eq!(code(&c.get_bucket_replication().bucket(b).send().await.unwrap_err()), "ReplicationConfigurationNotFoundError");
    assert_eq!(code(&c.get_object_lock_configuration().bucket(b).send().await.unwrap_err()), "ObjectLockConfigurationNotFoundError");
    assert_eq!(code(&c.get_bucket_tagging().bucket(b).send().await.unwrap_err()), "NoSuchTagSet");
    assert_eq!(code(&c.get_public_access_block().bucket(b).send().await.unwrap_err()), "NoSuchPublicAccessBlockConfiguration");
    assert_eq!(code(&c.get_bucket_ownership_controls().bucket(b).send().await.unwrap_err()), "OwnershipControlsNotFoundError");
    let enc = c.get_bucket_encryption().bucket(b).send().await.unwrap();
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(rule.apply_server_side_encryption_by_default().unwrap().sse_algorithm(), &ServerSideEncryption::Aes256);
    assert!(c.get_bucket_versioning().bucket(b).send().await.unwrap().status().is_none());
    assert!(c.get_bucket_logging().bucket(b).send().await.unwrap().logging_enabled().is_none());
    assert!(c.get_bucket_accelerate_configuration().bucket(b).send().await.unwrap().status().is_none());
    assert_eq!(c.get_bucket_request_payment().bucket(b).send().await.unwrap().payer(), Some(&Payer::BucketOwner));
    let acl = c.get_bucket_acl().bucket(b).send().await.unwrap();
    assert_eq!(acl.grants()[0].permission(), Some(&Permission::FullControl));

    // Put, read back, delete.
    let tags = Tagging::builder().tag_set(Tag::builder().key("team").value("ci").build().unwrap()).build().unwrap();
    c.put_bucket_tagging().bucket(b).tagging(tags).send().await.unwrap();
    let got = c.get_bucket_tagging().bucket(b).send().await.unwrap();
    assert_eq!(got.tag_set()[0].value(), "ci");
    c.delete_bucket_tagging().bucket(b).send().await.unwrap();
    assert_eq!(code(&c.get_bucket_tagging().bucket(b).send().await.unwrap_err()), "NoSuchTagSet");

    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::alpha-bucket/*"}]}"#;
    c.put_bucket_policy().bucket(b).policy(policy).send().await.unwrap();
    assert_eq!(c.get_bucket_policy().bucket(b).send().await.unwrap().policy(), Some(policy));
    let e = c.put_bucket_policy().bucket(b).policy("not json").send().await.unwrap_err();
    assert_eq!(code(&e), "MalformedPolicy");
    c.delete_bucket_policy().bucket(b).send().await.unwrap();
    assert_eq!(code(&c.get_bucket_policy().bucket(b).send().await.unwrap_err()), "NoSuchBucketPolicy");

    let cors = CorsConfiguration::builder()
        .cors_rules(CorsRule::builder().allowed_methods("GET").allowed_origins("*").max_age_seconds(300).build().unwrap())
        .build()
        .unwrap();
    c.put_bucket_cors().bucket(b).cors_configuration(cors).send().await.unwrap();
    let got = c.get_bucket_cors().bucket(b).send().await.unwrap();
    assert_eq!(got.cors_rules()[0].max_age_seconds(), Some(300));
    c.delete_bucket_cors().bucket(b).send().await.unwrap();

    let lc = BucketLifecycleConfiguration::builder()
        .rules(
            LifecycleRule::builder()
                .id("tmp")
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix("tmp/").build())
                .expiration(LifecycleExpiration::builder().days(3).build())
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    c.put_bucket_lifecycle_configuration().bucket(b).lifecycle_configuration(lc).send().await.unwrap();
    let got = c.get_bucket_lifecycle_configuration().bucket(b).send().await.unwrap();
    assert_eq!(got.rules()[0].expiration().unwrap().days(), Some(3));
    assert_eq!(got.rules()[0].filter().unwrap().prefix(), Some("tmp/"));

    let pab = PublicAccessBlockConfiguration::builder().block_public_acls(true).restrict_public_buckets(true).build();
    c.put_public_access_block().bucket(b).public_access_block_configuration(pab).send().await.unwrap();
    let got = c.get_public_access_block().bucket(b).send().await.unwrap();
    assert_eq!(got.public_access_block_configuration().unwrap().block_public_acls(), Some(true));
    c.delete_public_access_block().bucket(b).send().await.unwrap();

    let oc = OwnershipControls::builder()
        .rules(OwnershipControlsRule::builder().object_ownership(ObjectOwnership::BucketOwnerEnforced).build().unwrap())
        .build()
        .unwrap();
    c.put_bucket_ownership_controls().bucket(b).ownership_controls(oc).send().await.unwrap();
    let got = c.get_bucket_ownership_controls().bucket(b).send().await.unwrap();
    assert_eq!(got.ownership_controls().unwrap().rules()[0].object_ownership(), &ObjectOwnership::BucketOwnerEnforced);

    let web = WebsiteConfiguration::builder().index_document(IndexDocument::builder().suffix("index.html").build().unwrap()).build();
    c.put_bucket_website().bucket(b).website_configuration(web).send().await.unwrap();
    assert_eq!(c.get_bucket_website().bucket(b).send().await.unwrap().index_document().unwrap().suffix(), "index.html");

    let sse = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::AwsKms).kms_master_key_id("alias/x").build().unwrap())
                .build(),
        )
        .build()
        .unwrap();
    c.put_bucket_encryption().bucket(b).server_side_encryption_configuration(sse).send().await.unwrap();
    let got = c.get_bucket_encryption().bucket(b).send().await.unwrap();
    let d = got.server_side_encryption_configuration().unwrap().rules()[0].apply_server_side_encryption_by_default().unwrap().clone();
    assert_eq!(d.kms_master_key_id(), Some("alias/x"));
    // Writes now go through that key, which does not exist (s3_kms has the rest).
    let err = c.put_object().bucket(b).key("x").body(ByteStream::from_static(b"x")).send().await.unwrap_err();
    assert_eq!(code(&err), "KMS.NotFoundException");
    c.delete_bucket_encryption().bucket(b).send().await.unwrap();

    // A bucket with an object cannot go; an empty one can, and is then gone.
    c.put_object().bucket(b).key("x").body(ByteStream::from_static(b"x")).send().await.unwrap();
    assert_eq!(code(&c.delete_bucket().bucket(b).send().await.unwrap_err()), "BucketNotEmpty");
    c.delete_object().bucket(b).key("x").send().await.unwrap();
    c.delete_bucket().bucket(b).send().await.unwrap();
    assert_eq!(status(&c.head_bucket().bucket(b).send().await.unwrap_err()), 404);
    assert_eq!(code(&c.get_bucket_tagging().bucket(b).send().await.unwrap_err()), "NoSuchBucket");
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_read_write_copy_list_and_conditions() {
    let (_t, c) = TestServer::with(s3_client_for).await;
    make_bucket(&c, "objects").await;
    let b = "objects";

    let put = c
        .put_object()
        .bucket(b)
        .key("dir/hello.txt")
        .body(ByteStream::from_static(b"hello world"))
        .content_type("text/plain")
        .metadata("purpose", "test")
        .tagging("a=1&b=2")
        .send()
        .await
        .unwrap();
    assert_eq!(put.e_tag(), Some("\"5eb63bbbe01eeed093cb22bb8f5acdc3\""));
    assert!(put.version_id().is_none());

    let got = c.get_object().bucket(b).key("dir/hello.txt").send().await.unwrap();
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(got.metadata().unwrap().get("purpose").map(String::as_str), Some("test"));
    assert_eq!(got.content_length(), Some(11));
    assert_eq!(got.tag_count(), Some(2));
    assert_eq!(body_bytes(got).await, b"hello world");

    // Ranges.
    let r = c.get_object().bucket(b).key("dir/hello.txt").range("bytes=6-").send().await.unwrap();
    assert_eq!(r.content_range(), Some("bytes 6-10/11"));
    assert_eq!(body_bytes(r).await, b"world");
    let r = c.get_object().bucket(b).key("dir/hello.txt").range("bytes=-3").send().await.unwrap();
    assert_eq!(body_bytes(r).await, b"rld");
    let e = c.get_object().bucket(b).key("dir/hello.txt").range("bytes=50-60").send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidRange");

    // Conditions.
    let etag = "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"";
    let e = c.get_object().bucket(b).key("dir/hello.txt").if_none_match(etag).send().await.unwrap_err();
    assert_eq!(status(&e), 304);
    let e = c.get_object().bucket(b).key("dir/hello.txt").if_match("\"nope\"").send().await.unwrap_err();
    assert_eq!(code(&e), "PreconditionFailed");
    c.get_object().bucket(b).key("dir/hello.txt").if_match(etag).send().await.unwrap();
    let past = aws_sdk_s3::primitives::DateTime::from_secs(1_000_000);
    let future = aws_sdk_s3::primitives::DateTime::from_secs(4_000_000_000);
    assert_eq!(status(&c.get_object().bucket(b).key("dir/hello.txt").if_modified_since(future).send().await.unwrap_err()), 304);
    c.get_object().bucket(b).key("dir/hello.txt").if_modified_since(past).send().await.unwrap();
    let e = c.get_object().bucket(b).key("dir/hello.txt").if_unmodified_since(past).send().await.unwrap_err();
    assert_eq!(code(&e), "PreconditionFailed");
    let e = c.put_object().bucket(b).key("dir/hello.txt").if_none_match("*").body(ByteStream::from_static(b"x")).send().await.unwrap_err();
    assert_eq!(code(&e), "PreconditionFailed");

    // Errors.
    let e = c.get_object().bucket(b).key("missing").send().await.unwrap_err();
    assert_eq!(code(&e), "NoSuchKey");
    let e = c.get_object().bucket("no-such-bucket").key("k").send().await.unwrap_err();
    assert_eq!(code(&e), "NoSuchBucket");
    let e = c.put_object().bucket(b).key("k".repeat(1025)).body(ByteStream::from_static(b"x")).send().await.unwrap_err();
    assert_eq!(code(&e), "KeyTooLongError");
    let e = c.put_object().bucket(b).key("md5").content_md5("1B2M2Y8AsgTpgAmY7PhCfg==").body(ByteStream::from_static(b"x")).send().await.unwrap_err();
    assert_eq!(code(&e), "BadDigest");
    let head = c.head_object().bucket(b).key("missing").send().await.unwrap_err();
    assert_eq!(status(&head), 404);

    // Checksums: computed, checked and returned.
    let put = c.put_object().bucket(b).key("sum").checksum_algorithm(ChecksumAlgorithm::Sha256).body(ByteStream::from_static(b"checksummed")).send().await.unwrap();
    let sha = put.checksum_sha256().unwrap().to_string();
    let head = c.head_object().bucket(b).key("sum").checksum_mode(ChecksumMode::Enabled).send().await.unwrap();
    assert_eq!(head.checksum_sha256(), Some(sha.as_str()));
    let put = c.put_object().bucket(b).key("crc").checksum_crc32("AAAAAA==").body(ByteStream::from_static(b"abc")).send().await;
    assert_eq!(code(&put.unwrap_err()), "BadDigest");
    let put = c.put_object().bucket(b).key("crc").checksum_algorithm(ChecksumAlgorithm::Crc32C).body(ByteStream::from_static(b"abc")).send().await.unwrap();
    assert!(put.checksum_crc32_c().is_some());

    // Copy with COPY and REPLACE directives.
    let cp = c.copy_object().bucket(b).key("copy1").copy_source("objects/dir/hello.txt").send().await.unwrap();
    assert_eq!(cp.copy_object_result().unwrap().e_tag(), Some(etag));
    let h = c.head_object().bucket(b).key("copy1").send().await.unwrap();
    assert_eq!(h.content_type(), Some("text/plain"));
    assert_eq!(h.metadata().unwrap().get("purpose").map(String::as_str), Some("test"));
    c.copy_object()
        .bucket(b)
        .key("copy2")
        .copy_source("objects/dir/hello.txt")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("application/json")
        .metadata("other", "x")
        .send()
        .await
        .unwrap();
    let h = c.head_object().bucket(b).key("copy2").send().await.unwrap();
    assert_eq!(h.content_type(), Some("application/json"));
    assert!(h.metadata().unwrap().get("purpose").is_none());
    let e = c.copy_object().bucket(b).key("dir/hello.txt").copy_source("objects/dir/hello.txt").send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidRequest");

    // Tagging.
    let tags = c.get_object_tagging().bucket(b).key("dir/hello.txt").send().await.unwrap();
    assert_eq!(tags.tag_set().len(), 2);
    c.put_object_tagging()
        .bucket(b)
        .key("dir/hello.txt")
        .tagging(Tagging::builder().tag_set(Tag::builder().key("k").value("v").build().unwrap()).build().unwrap())
        .send()
        .await
        .unwrap();
    let tags = c.get_object_tagging().bucket(b).key("dir/hello.txt").send().await.unwrap();
    assert_eq!(tags.tag_set()[0].key(), "k");
    c.delete_object_tagging().bucket(b).key("dir/hello.txt").send().await.unwrap();
    assert!(c.get_object_tagging().bucket(b).key("dir/hello.txt").send().await.unwrap().tag_set().is_empty());

    // Listings: prefix, delimiter, pagination; v1 and v2.
    for k in ["a/1", "a/2", "a/b/3", "b/4", "c"] {
        c.put_object().bucket(b).key(k).body(ByteStream::from_static(b"z")).send().await.unwrap();
    }
    let l = c.list_objects_v2().bucket(b).delimiter("/").send().await.unwrap();
    let keys: Vec<_> = l.contents().iter().filter_map(|o| o.key()).collect();
    let cps: Vec<_> = l.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    assert_eq!(keys, vec!["c", "copy1", "copy2", "crc", "sum"]);
    assert_eq!(cps, vec!["a/", "b/", "dir/"]);
    let l = c.list_objects_v2().bucket(b).prefix("a/").delimiter("/").send().await.unwrap();
    assert_eq!(l.contents().iter().filter_map(|o| o.key()).collect::<Vec<_>>(), vec!["a/1", "a/2"]);
    assert_eq!(l.common_prefixes()[0].prefix(), Some("a/b/"));
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let page = c.list_objects_v2().bucket(b).max_keys(3).set_continuation_token(token.clone()).send().await.unwrap();
        all.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        if !page.is_truncated().unwrap_or(false) {
            break;
        }
        token = page.next_continuation_token().map(str::to_string);
    }
    assert_eq!(all.len(), 10, "{all:?}");
    let v1 = c.list_objects().bucket(b).prefix("a/").send().await.unwrap();
    assert_eq!(v1.contents().len(), 3);
    let l = c.list_objects_v2().bucket(b).start_after("copy2").max_keys(1).send().await.unwrap();
    assert_eq!(l.contents()[0].key(), Some("crc"));

    // DeleteObjects.
    let del = Delete::builder()
        .objects(ObjectIdentifier::builder().key("a/1").build().unwrap())
        .objects(ObjectIdentifier::builder().key("a/2").build().unwrap())
        .objects(ObjectIdentifier::builder().key("never-existed").build().unwrap())
        .build()
        .unwrap();
    let out = c.delete_objects().bucket(b).delete(del).send().await.unwrap();
    assert_eq!(out.deleted().len(), 3);
    let l = c.list_objects_v2().bucket(b).prefix("a/").send().await.unwrap();
    assert_eq!(l.key_count(), Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_uploads() {
    let (_t, c) = TestServer::with(s3_client_for).await;
    make_bucket(&c, "multi").await;
    let b = "multi";
    let part1: Vec<u8> = (0..5 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let part2 = b"tail bytes".to_vec();

    let up = c.create_multipart_upload().bucket(b).key("big.bin").content_type("application/x-test").send().await.unwrap();
    let id = up.upload_id().unwrap().to_string();
    let p1 = c.upload_part().bucket(b).key("big.bin").upload_id(&id).part_number(1).body(ByteStream::from(part1.clone())).send().await.unwrap();
    let p2 = c.upload_part().bucket(b).key("big.bin").upload_id(&id).part_number(2).body(ByteStream::from(part2.clone())).send().await.unwrap();
    let uploads = c.list_multipart_uploads().bucket(b).send().await.unwrap();
    assert_eq!(uploads.uploads()[0].upload_id(), Some(id.as_str()));
    let parts = c.list_parts().bucket(b).key("big.bin").upload_id(&id).send().await.unwrap();
    assert_eq!(parts.parts().iter().map(|p| p.size().unwrap()).collect::<Vec<_>>(), vec![5 * 1024 * 1024, 10]);

    let bad = CompletedMultipartUpload::builder().parts(CompletedPart::builder().part_number(1).e_tag("\"0000\"").build()).build();
    let e = c.complete_multipart_upload().bucket(b).key("big.bin").upload_id(&id).multipart_upload(bad).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidPart");

    let done = CompletedMultipartUpload::builder()
        .parts(CompletedPart::builder().part_number(1).e_tag(p1.e_tag().unwrap()).build())
        .parts(CompletedPart::builder().part_number(2).e_tag(p2.e_tag().unwrap()).build())
        .build();
    let out = c.complete_multipart_upload().bucket(b).key("big.bin").upload_id(&id).multipart_upload(done).send().await.unwrap();
    // ETag: MD5 of the parts' MD5s, then the part count.
    let mut md5s = Vec::new();
    for e in [p1.e_tag().unwrap(), p2.e_tag().unwrap()] {
        md5s.extend(hex_decode(e.trim_matches('"')));
    }
    let expected = format!("\"{:x}-2\"", md5_digest(&md5s));
    assert_eq!(out.e_tag(), Some(expected.as_str()));
    let got = c.get_object().bucket(b).key("big.bin").send().await.unwrap();
    assert_eq!(got.content_type(), Some("application/x-test"));
    assert_eq!(got.parts_count(), Some(2));
    let bytes = body_bytes(got).await;
    assert_eq!(bytes.len(), part1.len() + part2.len());
    assert!(bytes[..part1.len()] == part1[..] && bytes[part1.len()..] == part2[..]);
    // A range across the part boundary.
    let r = c.get_object().bucket(b).key("big.bin").range(format!("bytes={}-{}", part1.len() - 2, part1.len() + 3)).send().await.unwrap();
    let mut want = part1[part1.len() - 2..].to_vec();
    want.extend(&part2[..4]);
    assert_eq!(body_bytes(r).await, want);
    let e = c.list_parts().bucket(b).key("big.bin").upload_id(&id).send().await.unwrap_err();
    assert_eq!(code(&e), "NoSuchUpload");

    // UploadPartCopy with a range, and abort.
    let up = c.create_multipart_upload().bucket(b).key("copied").send().await.unwrap();
    let id2 = up.upload_id().unwrap().to_string();
    let pc = c.upload_part_copy().bucket(b).key("copied").upload_id(&id2).part_number(1).copy_source("multi/big.bin").copy_source_range("bytes=0-99").send().await.unwrap();
    assert!(pc.copy_part_result().unwrap().e_tag().is_some());
    let parts = c.list_parts().bucket(b).key("copied").upload_id(&id2).send().await.unwrap();
    assert_eq!(parts.parts()[0].size(), Some(100));
    c.abort_multipart_upload().bucket(b).key("copied").upload_id(&id2).send().await.unwrap();
    let e = c.upload_part().bucket(b).key("copied").upload_id(&id2).part_number(2).body(ByteStream::from_static(b"x")).send().await.unwrap_err();
    assert_eq!(code(&e), "NoSuchUpload");
    assert!(c.list_multipart_uploads().bucket(b).send().await.unwrap().uploads().is_empty());
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn md5_digest(data: &[u8]) -> md5_impl::Digest {
    md5_impl::compute(data)
}

/// A tiny MD5 (RFC 1321) so the test checks the ETag arithmetic independently of the server.
mod md5_impl {
    pub struct Digest(pub [u8; 16]);
    impl std::fmt::LowerHex for Digest {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            for b in self.0 {
                write!(f, "{b:02x}")?;
            }
            Ok(())
        }
    }
    pub fn compute(input: &[u8]) -> Digest {
        let s: [u32; 64] = [
            7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16,
            23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
        ];
        let k: Vec<u32> = (0..64).map(|i| ((i as f64 + 1.0).sin().abs() * 4294967296.0) as u32).collect();
        let (mut a0, mut b0, mut c0, mut d0) = (0x67452301u32, 0xefcdab89u32, 0x98badcfeu32, 0x10325476u32);
        let mut msg = input.to_vec();
        let bits = (input.len() as u64).wrapping_mul(8);
        msg.push(0x80);
        while msg.len() % 64 != 56 {
            msg.push(0);
        }
        msg.extend(bits.to_le_bytes());
        for chunk in msg.chunks(64) {
            let m: Vec<u32> = chunk.chunks(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect();
            let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
            for i in 0..64 {
                let (f, g) = match i / 16 {
                    0 => ((b & c) | (!b & d), i),
                    1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                    2 => (b ^ c ^ d, (3 * i + 5) % 16),
                    _ => (c ^ (b | !d), (7 * i) % 16),
                };
                let f2 = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
                a = d;
                d = c;
                c = b;
                b = b.wrapping_add(f2.rotate_left(s[i]));
            }
            a0 = a0.wrapping_add(a);
            b0 = b0.wrapping_add(b);
            c0 = c0.wrapping_add(c);
            d0 = d0.wrapping_add(d);
        }
        let mut out = [0u8; 16];
        for (i, v) in [a0, b0, c0, d0].iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        Digest(out)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn versioned_buckets_keep_every_version() {
    let (_t, c) = TestServer::with(s3_client_for).await;
    make_bucket(&c, "versioned").await;
    let b = "versioned";
    c.put_object().bucket(b).key("k").body(ByteStream::from_static(b"before versioning")).send().await.unwrap();
    set_versioning(&c, b, BucketVersioningStatus::Enabled).await;
    assert_eq!(c.get_bucket_versioning().bucket(b).send().await.unwrap().status(), Some(&BucketVersioningStatus::Enabled));
    let v1 = c.put_object().bucket(b).key("k").body(ByteStream::from_static(b"one")).send().await.unwrap().version_id().unwrap().to_string();
    let v2 = c.put_object().bucket(b).key("k").body(ByteStream::from_static(b"two")).send().await.unwrap().version_id().unwrap().to_string();
    assert_ne!(v1, v2);
    assert_eq!(body_bytes(c.get_object().bucket(b).key("k").send().await.unwrap()).await, b"two");
    assert_eq!(body_bytes(c.get_object().bucket(b).key("k").version_id(&v1).send().await.unwrap()).await, b"one");
    assert_eq!(body_bytes(c.get_object().bucket(b).key("k").version_id("null").send().await.unwrap()).await, b"before versioning");

    let del = c.delete_object().bucket(b).key("k").send().await.unwrap();
    assert_eq!(del.delete_marker(), Some(true));
    let marker = del.version_id().unwrap().to_string();
    let e = c.get_object().bucket(b).key("k").send().await.unwrap_err();
    assert_eq!(code(&e), "NoSuchKey");
    let raw = e.raw_response().unwrap();
    assert_eq!(raw.headers().get("x-amz-delete-marker"), Some("true"));
    assert_eq!(raw.headers().get("x-amz-version-id"), Some(marker.as_str()));
    assert!(c.list_objects_v2().bucket(b).send().await.unwrap().contents().is_empty());
    let vs = c.list_object_versions().bucket(b).send().await.unwrap();
    assert_eq!(vs.versions().len(), 3);
    assert_eq!(vs.delete_markers().len(), 1);
    assert_eq!(vs.delete_markers()[0].is_latest(), Some(true));
    assert_eq!(vs.versions()[0].version_id(), Some(v2.as_str()));
    assert_eq!(vs.versions()[2].version_id(), Some("null"));

    // Removing the marker brings the newest version back.
    c.delete_object().bucket(b).key("k").version_id(&marker).send().await.unwrap();
    assert_eq!(body_bytes(c.get_object().bucket(b).key("k").send().await.unwrap()).await, b"two");
    c.delete_object().bucket(b).key("k").version_id(&v2).send().await.unwrap();
    assert_eq!(body_bytes(c.get_object().bucket(b).key("k").send().await.unwrap()).await, b"one");
    let e = c.get_object().bucket(b).key("k").version_id(&v2).send().await.unwrap_err();
    assert_eq!(code(&e), "NoSuchVersion");

    // Suspended: new writes are the "null" version, replacing the old null version.
    set_versioning(&c, b, BucketVersioningStatus::Suspended).await;
    let put = c.put_object().bucket(b).key("k").body(ByteStream::from_static(b"suspended")).send().await.unwrap();
    assert!(put.version_id().is_none());
    let vs = c.list_object_versions().bucket(b).send().await.unwrap();
    let ids: Vec<_> = vs.versions().iter().filter_map(|v| v.version_id()).collect();
    assert_eq!(ids, vec!["null", v1.as_str()]);
    assert_eq!(code(&c.delete_bucket().bucket(b).send().await.unwrap_err()), "BucketNotEmpty");
}

#[tokio::test(flavor = "multi_thread")]
async fn presigned_get_and_put() {
    use aws_sdk_s3::presigning::PresigningConfig;
    let (_t, c) = TestServer::with(s3_client_for).await;
    make_bucket(&c, "presigned").await;
    let cfg = PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let put = c.put_object().bucket("presigned").key("up.txt").presigned(cfg.clone()).await.unwrap();
    let http = reqwest::Client::new();
    let r = http.put(put.uri()).body("via presigned PUT").send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let get = c.get_object().bucket("presigned").key("up.txt").presigned(cfg).await.unwrap();
    let r = http.get(get.uri()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "via presigned PUT");
}

/// A server in `--auth enforce` with one access key, AKIDCODEYARD / s3cr3t.
async fn enforcing_server(dir: &tempfile::TempDir) -> TestServer {
    TestServer::start_in(dir.path().to_path_buf(), |o| {
        o.auth = codeyard_server::AuthMode::Enforce;
        o.access_keys = vec![codeyard_server::AccessKey { id: "AKIDCODEYARD".into(), secret: "s3cr3t".into(), account: "111122223333".into() }];
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn enforce_mode_verifies_signatures() {
    use aws_sdk_s3::presigning::PresigningConfig;
    let dir = tempfile::tempdir().unwrap();
    let t = enforcing_server(&dir).await;
    let conf = |key: &str, secret: &str| {
        let key = key.to_string();
        let secret = secret.to_string();
        let t = &t;
        async move { aws_sdk_s3::config::Builder::from(&t.sdk_config_with(&key, &secret).await).force_path_style(true).build() }
    };
    let good = aws_sdk_s3::Client::from_conf(conf("AKIDCODEYARD", "s3cr3t").await);
    make_bucket(&good, "secured").await;
    good.put_object().bucket("secured").key("k").body(ByteStream::from_static(b"v")).send().await.unwrap();
    assert_eq!(body_bytes(good.get_object().bucket("secured").key("k").send().await.unwrap()).await, b"v");
    let listed = good.list_buckets().send().await.unwrap();
    assert_eq!(listed.buckets().len(), 1);

    let wrong = aws_sdk_s3::Client::from_conf(conf("AKIDCODEYARD", "wrong").await);
    assert_eq!(code(&wrong.get_object().bucket("secured").key("k").send().await.unwrap_err()), "SignatureDoesNotMatch");
    let unknown = aws_sdk_s3::Client::from_conf(conf("AKIDUNKNOWN", "x").await);
    assert_eq!(code(&unknown.list_buckets().send().await.unwrap_err()), "InvalidAccessKeyId");
    let r = reqwest::get(format!("{}/secured/k", t.endpoint)).await.unwrap();
    assert_eq!(r.status(), 403);

    let url = good.get_object().bucket("secured").key("k").presigned(PresigningConfig::expires_in(Duration::from_secs(60)).unwrap()).await.unwrap();
    assert_eq!(reqwest::get(url.uri()).await.unwrap().text().await.unwrap(), "v");
    // Same length, one hex digit changed.
    let uri = url.uri().to_string();
    let at = uri.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let flipped = if &uri[at..at + 1] == "0" { "1" } else { "0" };
    let tampered = format!("{}{}{}", &uri[..at], flipped, &uri[at + 1..]);
    assert_eq!(reqwest::get(tampered).await.unwrap().status(), 403);
    t.assert_no_model_violations();
}

fn sha256_file(p: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum").arg(p).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_cli_cp_sync_ls_rm_round_trip() {
    let t = TestServer::start().await;
    let ep = t.endpoint.clone();
    let work = tempfile::tempdir().unwrap();
    let (ok, _, err) = aws_cli(&ep, &["s3", "mb", "s3://cli-bucket"]);
    assert!(ok, "{err}");

    // 100 MB: the CLI uploads it in 8 MB parts.
    let big = work.path().join("big.bin");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&big).unwrap();
        let mut block = vec![0u8; 1024 * 1024];
        for i in 0..100u32 {
            for (j, b) in block.iter_mut().enumerate() {
                *b = ((j as u32).wrapping_mul(31).wrapping_add(i * 7) % 256) as u8;
            }
            f.write_all(&block).unwrap();
        }
    }
    let (ok, _, err) = aws_cli(&ep, &["s3", "cp", big.to_str().unwrap(), "s3://cli-bucket/big/big.bin"]);
    assert!(ok, "{err}");
    let head = aws_cli_json(&ep, &["s3api", "head-object", "--bucket", "cli-bucket", "--key", "big/big.bin"]);
    assert_eq!(head["ContentLength"], 100 * 1024 * 1024);
    assert!(head["ETag"].as_str().unwrap().contains('-'), "multipart ETag: {head}");
    let back = work.path().join("big.back");
    let (ok, _, err) = aws_cli(&ep, &["s3", "cp", "s3://cli-bucket/big/big.bin", back.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(sha256_file(&big), sha256_file(&back));

    // 1,000 small files in a tree.
    let tree = work.path().join("tree");
    for i in 0..1000 {
        let d = tree.join(format!("d{}", i % 10)).join(format!("e{}", i % 7));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("f{i}.txt")), format!("file {i} {}", "x".repeat(i % 97))).unwrap();
    }
    let (ok, _, err) = aws_cli(&ep, &["s3", "sync", tree.to_str().unwrap(), "s3://cli-bucket/tree"]);
    assert!(ok, "{err}");
    let (ok, out, err) = aws_cli(&ep, &["s3", "ls", "--recursive", "s3://cli-bucket/tree/"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1000);
    let (ok, out, _) = aws_cli(&ep, &["s3", "ls", "s3://cli-bucket/tree/"]);
    assert!(ok);
    assert_eq!(out.lines().filter(|l| l.contains("PRE d")).count(), 10);
    // A second sync has nothing to do.
    let (ok, out, err) = aws_cli(&ep, &["s3", "sync", tree.to_str().unwrap(), "s3://cli-bucket/tree"]);
    assert!(ok, "{err}");
    assert!(out.trim().is_empty(), "second sync uploaded again: {out}");
    let down = work.path().join("down");
    let (ok, _, err) = aws_cli(&ep, &["s3", "sync", "s3://cli-bucket/tree", down.to_str().unwrap()]);
    assert!(ok, "{err}");
    let sums = |root: &std::path::Path| {
        let out = std::process::Command::new("sh").arg("-c").arg("find . -type f | sort | xargs sha256sum").current_dir(root).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let (a, b) = (sums(&tree), sums(&down));
    assert_eq!(a.lines().count(), 1000);
    assert_eq!(a, b);

    let (ok, _, err) = aws_cli(&ep, &["s3", "rm", "--recursive", "s3://cli-bucket/"]);
    assert!(ok, "{err}");
    let (ok, out, _) = aws_cli(&ep, &["s3", "ls", "--recursive", "s3://cli-bucket/"]);
    assert!(ok);
    assert!(out.trim().is_empty());
    let (ok, _, err) = aws_cli(&ep, &["s3", "rb", "s3://cli-bucket"]);
    assert!(ok, "{err}");
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_bucket_with_sub_resources_and_object() {
    let (t, ws, c) = terraform_applied("s3", s3_client_for).await;
    let got = c.get_object().bucket("codeyard-tf-artifacts").key("docs/readme.txt").send().await.unwrap();
    assert!(got.version_id().is_some());
    assert_eq!(body_bytes(got).await, b"hello from terraform");
    let tags = c.get_bucket_tagging().bucket("codeyard-tf-artifacts").send().await.unwrap();
    assert_eq!(tags.tag_set().len(), 2);
    // aws_s3_object with kms_key_id reads back the same key (the plan after apply was empty).
    let sealed = c.get_object().bucket("codeyard-tf-artifacts").key("docs/sealed.txt").send().await.unwrap();
    assert_eq!(sealed.server_side_encryption().map(|s| s.as_str()), Some("aws:kms"));
    assert!(sealed.ssekms_key_id().is_some_and(|k| k.starts_with("arn:aws:kms:")), "{:?}", sealed.ssekms_key_id());
    assert_eq!(body_bytes(sealed).await, b"under a kms key");
    terraform_destroy(ws.path(), &t.endpoint, &[]);
    assert!(c.list_buckets().send().await.unwrap().buckets().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_upload_leaves_no_partial_object_and_no_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let proc1 = ServerProcess::spawn(dir.path(), &[]);
    let ep = proc1.endpoint.clone();
    let (ok, _, err) = aws_cli(&ep, &["s3api", "create-bucket", "--bucket", "crash", "--create-bucket-configuration", "LocationConstraint=eu-west-1"]);
    assert!(ok, "{err}");
    let (ok, _, err) = aws_cli(&ep, &["s3api", "put-object", "--bucket", "crash", "--key", "kept", "--body", "/etc/hostname"]);
    assert!(ok, "{err}");

    // A 64 MiB upload that stalls after 24 MiB (past the single-put buffer, so the server is
    // streaming into a staging file); then the server dies.
    use tokio::io::AsyncWriteExt;
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", proc1.port)).await.unwrap();
    // Signed as open mode accepts it (any key, any signature): unsigned requests are refused.
    let auth = "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=0\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD";
    let head = format!("PUT /crash/partial HTTP/1.1\r\nHost: localhost:{}\r\n{auth}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n", proc1.port, 64u64 << 20);
    sock.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..24 {
        sock.write_all(&chunk).await.unwrap();
    }
    sock.flush().await.unwrap();
    // Wait until the server is demonstrably mid-write: a staging file (the kept object's small
    // body is in the state store, not a file).
    let blob_dir = dir.path().join("s3/blobs");
    let mut waited = 0;
    while std::fs::read_dir(&blob_dir).unwrap().count() < 1 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert!(std::fs::read_dir(&blob_dir).unwrap().count() >= 1, "the upload never reached the disk");
    proc1.kill9();
    drop(sock);

    let proc2 = ServerProcess::spawn(dir.path(), &[]);
    let ep = proc2.endpoint.clone();
    let (ok, _, _) = aws_cli(&ep, &["s3api", "head-object", "--bucket", "crash", "--key", "partial"]);
    assert!(!ok, "a partial upload became visible");
    let l = aws_cli_json(&ep, &["s3api", "list-objects-v2", "--bucket", "crash"]);
    assert_eq!(l["Contents"].as_array().unwrap().len(), 1);
    assert_eq!(l["Contents"][0]["Key"], "kept");
    // No blob file on disk (the kept object's body is in the store): the interrupted write's
    // staging file is gone, and the kept object is whole.
    let blobs: Vec<_> = std::fs::read_dir(dir.path().join("s3/blobs")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(blobs.is_empty(), "{blobs:?}");
    let got = dir.path().join("kept.out");
    let (ok, _, err) = aws_cli(&ep, &["s3api", "get-object", "--bucket", "crash", "--key", "kept", got.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read("/etc/hostname").unwrap());
    let (ok, _, err) = aws_cli(&ep, &["s3api", "put-object", "--bucket", "crash", "--key", "after", "--body", "/etc/hostname"]);
    assert!(ok, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hub_object_store_for_other_services() {
    let (t, c) = TestServer::with(s3_client_for).await;
    make_bucket(&c, "artifacts").await;
    c.put_bucket_versioning()
        .bucket("artifacts")
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .unwrap();
    let platform = &t.server.as_ref().unwrap().platform;
    let objects = platform.hub.objects().unwrap();
    let ctx = platform.internal_context(ACCOUNT, REGION);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("in.zip");
    std::fs::write(&src, b"zip bytes v1").unwrap();
    let opts = codeyard_core::hub::PutObjectOptions { content_type: Some("application/zip".into()), ..Default::default() };
    let v1 = objects.put_object_file(&ctx, "artifacts", "p/in.zip", &src, opts.clone()).await.unwrap();
    std::fs::write(&src, b"zip bytes v2").unwrap();
    let v2 = objects.put_object_file(&ctx, "artifacts", "p/in.zip", &src, opts).await.unwrap();
    assert_ne!(v1.version_id, v2.version_id);
    assert_eq!(v1.size, 12);
    let dest = work.path().join("out/v1.zip");
    let got = objects.get_object_to_file(&ctx, "artifacts", "p/in.zip", v1.version_id.as_deref(), &dest).await.unwrap();
    assert_eq!(got.etag, v1.etag);
    assert_eq!(std::fs::read(&dest).unwrap(), b"zip bytes v1");
    assert!(objects.head_object(&ctx, "artifacts", "p/missing", None).await.unwrap().is_none());
    assert!(objects.bucket_exists(&ctx, "artifacts").await.unwrap());
    assert!(!objects.bucket_exists(&ctx, "nope-bucket").await.unwrap());
    let e = objects.put_object_file(&ctx, "nope-bucket", "k", &src, Default::default()).await.unwrap_err();
    assert_eq!(e.code, "NoSuchBucket");
    // And what the hub wrote is plain S3 to clients.
    let h = c.head_object().bucket("artifacts").key("p/in.zip").send().await.unwrap();
    assert_eq!(h.content_type(), Some("application/zip"));
    assert_eq!(h.version_id(), v2.version_id.as_deref());
}

#[tokio::test(flavor = "multi_thread")]
async fn unimplemented_operations_answer_a_4xx_naming_them() {
    let (_t, c) = TestServer::with(s3_client_for).await;
    make_bucket(&c, "unimpl").await;
    c.put_object().bucket("unimpl").key("k").body(ByteStream::from_static(b"v")).send().await.unwrap();
    let e = c.get_object_attributes().bucket("unimpl").key("k").object_attributes(ObjectAttributes::Etag).send().await.unwrap_err();
    assert_eq!(status(&e), 400);
    assert_eq!(code(&e), "UnknownOperationException");
    assert!(e.message().unwrap_or("").contains("GetObjectAttributes"), "{e:?}");
}

/// Sends a request to 127.0.0.1 with the Host the SDK addressed (`<bucket>.localhost:<port>`,
/// which this machine's resolver does not resolve), after signing: the signature covers that
/// Host, as it would on a machine where the name resolves.
#[derive(Debug)]
struct ToLoopback(String);

impl aws_sdk_s3::config::Intercept for ToLoopback {
    fn name(&self) -> &'static str {
        "ToLoopback"
    }
    fn modify_before_transmit(
        &self,
        ctx: &mut aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut<'_>,
        _rc: &aws_sdk_s3::config::RuntimeComponents,
        _cfg: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        let req = ctx.request_mut();
        let uri = req.uri().to_string();
        let rest = uri.strip_prefix("http://").ok_or("not http")?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let authority = authority.to_string();
        req.headers_mut().insert("host", authority);
        req.set_uri(format!("http://{}{}", self.0, if path.is_empty() { "/" } else { path }))?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn virtual_hosted_style_requests_reach_their_bucket_with_signatures_verified() {
    let dir = tempfile::tempdir().unwrap();
    let t = enforcing_server(&dir).await;
    let port: u16 = t.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let loopback = format!("127.0.0.1:{port}");
    // Virtual-hosted addressing (the SDK's default): the bucket goes into the Host.
    let client = |endpoint: String, secret: &'static str| {
        let t = &t;
        let loopback = loopback.clone();
        async move {
            let conf = t.sdk_config_with("AKIDCODEYARD", secret).await;
            let conf = aws_sdk_s3::config::Builder::from(&conf).endpoint_url(endpoint).force_path_style(false).interceptor(ToLoopback(loopback)).build();
            aws_sdk_s3::Client::from_conf(conf)
        }
    };
    let forms = [
        (format!("http://localhost:{port}"), "vh-plain"),
        (format!("http://s3.localhost:{port}"), "vh-s3"),
        (format!("http://s3.eu-west-1.localhost:{port}"), "vh.regional"),
    ];
    for (endpoint, bucket) in &forms {
        let c = client(endpoint.clone(), "s3cr3t").await;
        make_bucket(&c, bucket).await;
        // `v2/...` would be the registry's path in path style: under a bucket Host it is a key.
        for key in ["dir/k.txt", "v2/index.txt"] {
            c.put_object().bucket(*bucket).key(key).body(ByteStream::from_static(b"hosted")).send().await.unwrap();
            let got = c.get_object().bucket(*bucket).key(key).send().await.unwrap();
            assert_eq!(body_bytes(got).await, b"hosted", "{endpoint} {key}");
        }
        let listed = c.list_objects_v2().bucket(*bucket).send().await.unwrap();
        let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(keys, ["dir/k.txt", "v2/index.txt"], "{endpoint}");
        let wrong = client(endpoint.clone(), "wrong").await;
        let e = wrong.get_object().bucket(*bucket).key("dir/k.txt").send().await.unwrap_err();
        assert_eq!(code(&e), "SignatureDoesNotMatch", "{endpoint}");
    }
    // The same objects, path style.
    let path_style = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&t.sdk_config_with("AKIDCODEYARD", "s3cr3t").await).force_path_style(true).build());
    let got = path_style.get_object().bucket("vh.regional").key("v2/index.txt").send().await.unwrap();
    assert_eq!(body_bytes(got).await, b"hosted");

    // The Host check takes these forms and nothing else under localhost.
    let http = reqwest::Client::new();
    let health = format!("{}/_codeyard/health", t.endpoint);
    for (host, allowed) in [
        (format!("vh-plain.localhost:{port}"), true),
        (format!("vh-plain.s3.eu-west-1.localhost:{port}"), true),
        (format!("s3.localhost:{port}"), true),
        (format!("x.localhost:{port}"), false),
        (format!("bad_name.localhost:{port}"), false),
        (format!("vh-plain.localhost.evil.example:{port}"), false),
    ] {
        let r = http.get(&health).header("host", &host).send().await.unwrap();
        assert_eq!(r.status() == 200, allowed, "{host}: {}", r.status());
    }
    t.assert_no_model_violations();
}

/// `aws_s3_bucket_notification { eventbridge = true }`: object changes reach a rule on the
/// default bus in AWS's shape, one event per change, and nothing before it is switched on.
#[tokio::test(flavor = "multi_thread")]
async fn eventbridge_notifications_deliver_object_created_and_deleted() {
    use aws_sdk_eventbridge::types::Target;
    let (t, c) = TestServer::with(s3_client_for).await;
    let eb = aws_sdk_eventbridge::Client::new(&t.sdk_config().await);
    make_bucket(&c, "noisy-bucket").await;
    let pattern = r#"{"source":["aws.s3"],"detail-type":["Object Created","Object Deleted"],"detail":{"bucket":{"name":["noisy-bucket"]}}}"#;
    eb.put_rule().name("s3-changes").event_pattern(pattern).send().await.unwrap();
    let target = Target::builder().id("q").arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:q")).build().unwrap();
    eb.put_targets().rule("s3-changes").targets(target).send().await.unwrap();

    // Off by default: an empty configuration, and no event.
    let got = c.get_bucket_notification_configuration().bucket("noisy-bucket").send().await.unwrap();
    assert!(got.event_bridge_configuration().is_none());
    c.put_object().bucket("noisy-bucket").key("before").body(ByteStream::from_static(b"x")).send().await.unwrap();
    // Destinations codeyard cannot deliver to are refused and change nothing.
    let sqs = NotificationConfiguration::builder()
        .queue_configurations(QueueConfiguration::builder().queue_arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:q")).events(Event::from("s3:ObjectCreated:*")).build().unwrap())
        .build();
    let e = c.put_bucket_notification_configuration().bucket("noisy-bucket").notification_configuration(sqs).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidArgument");

    let on = NotificationConfiguration::builder().event_bridge_configuration(EventBridgeConfiguration::builder().build()).build();
    c.put_bucket_notification_configuration().bucket("noisy-bucket").notification_configuration(on).send().await.unwrap();
    let got = c.get_bucket_notification_configuration().bucket("noisy-bucket").send().await.unwrap();
    assert!(got.event_bridge_configuration().is_some());

    c.put_object().bucket("noisy-bucket").key("docs/a.txt").body(ByteStream::from_static(b"hello")).send().await.unwrap();
    c.copy_object().bucket("noisy-bucket").key("docs/b.txt").copy_source("noisy-bucket/docs/a.txt").send().await.unwrap();
    let up = c.create_multipart_upload().bucket("noisy-bucket").key("big").send().await.unwrap();
    let part = c.upload_part().bucket("noisy-bucket").key("big").upload_id(up.upload_id().unwrap()).part_number(1).body(ByteStream::from_static(b"part")).send().await.unwrap();
    let done = CompletedMultipartUpload::builder().parts(CompletedPart::builder().part_number(1).e_tag(part.e_tag().unwrap()).build()).build();
    c.complete_multipart_upload().bucket("noisy-bucket").key("big").upload_id(up.upload_id().unwrap()).multipart_upload(done).send().await.unwrap();
    c.delete_object().bucket("noisy-bucket").key("docs/a.txt").send().await.unwrap();

    // Every event published so far is matched and delivered: exactly these four, none for the
    // object written before the configuration.
    events_idle(&t.endpoint).await;
    let body: serde_json::Value = reqwest::get(format!("{}/_codeyard/events/deliveries?rule=s3-changes", t.endpoint)).await.unwrap().json().await.unwrap();
    let events: Vec<serde_json::Value> = body["deliveries"].as_array().cloned().unwrap_or_default().into_iter().map(|d| d["input"].clone()).collect();
    let mut seen: Vec<(String, String, String)> = events
        .iter()
        .map(|e| (e["detail-type"].as_str().unwrap().to_string(), e["detail"]["object"]["key"].as_str().unwrap().to_string(), e["detail"]["reason"].as_str().unwrap().to_string()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("Object Created".into(), "big".into(), "CompleteMultipartUpload".into()),
            ("Object Created".into(), "docs/a.txt".into(), "PutObject".into()),
            ("Object Created".into(), "docs/b.txt".into(), "CopyObject".into()),
            ("Object Deleted".into(), "docs/a.txt".into(), "DeleteObject".into()),
        ],
        "{events:#?}"
    );
    let created = events.iter().find(|e| e["detail"]["reason"] == "PutObject").unwrap();
    assert_eq!(created["source"], "aws.s3");
    assert_eq!(created["account"], ACCOUNT);
    assert_eq!(created["region"], REGION);
    assert_eq!(created["resources"], serde_json::json!(["arn:aws:s3:::noisy-bucket"]));
    let d = &created["detail"];
    assert_eq!(d["version"], "0");
    assert_eq!(d["bucket"]["name"], "noisy-bucket");
    assert_eq!(d["object"]["size"], 5);
    assert_eq!(d["object"]["etag"], "5d41402abc4b2a76b9719d911017c592");
    assert!(d["object"]["sequencer"].as_str().is_some_and(|s| s.len() == 16), "{d}");
    assert_eq!(d["requester"], ACCOUNT);
    assert!(d["request-id"].as_str().is_some_and(|r| !r.is_empty()));
    let deleted = events.iter().find(|e| e["detail-type"] == "Object Deleted").unwrap();
    assert_eq!(deleted["detail"]["deletion-type"], "Permanently Deleted");
    assert!(deleted["detail"]["object"].get("size").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_bucket_notification_to_eventbridge() {
    let (t, ws, c) = terraform_applied("s3_notifications", s3_client_for).await;
    let got = c.get_bucket_notification_configuration().bucket("tf-notify-bucket").send().await.unwrap();
    assert!(got.event_bridge_configuration().is_some());
    terraform_destroy(ws.path(), &t.endpoint, &[]);
    assert!(c.list_buckets().send().await.unwrap().buckets().is_empty());
}
