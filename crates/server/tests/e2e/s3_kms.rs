//! S3 with SSE-KMS: objects written under a KMS key (by request header or bucket default) need
//! `kms:GenerateDataKey` to write and `kms:Decrypt` to read, as the caller, through S3
//! (`kms:ViaService`); a disabled or missing key fails as on AWS. aws-sdk-rust and the aws CLI.

use crate::common::*;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};

/// S3 on every bucket and object; KMS actions as given.
fn s3_and_kms(kms_actions: &[&str]) -> String {
    let mut statements: Vec<(&[&str], &[&str])> = vec![(&["s3:*"], &["*"])];
    if !kms_actions.is_empty() {
        statements.push((kms_actions, &["*"]));
    }
    allow_policy(&statements)
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &str) -> Result<aws_sdk_s3::operation::put_object::PutObjectOutput, String> {
    s3.put_object().bucket(bucket).key(key).body(ByteStream::from(body.as_bytes().to_vec())).send().await.map_err(|e| error_code(&e))
}

/// PutObject with `aws:kms` under `key` (`None`: the AWS managed aws/s3).
async fn put_kms(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &str, kms_key: Option<&str>) -> Result<aws_sdk_s3::operation::put_object::PutObjectOutput, String> {
    let put = s3.put_object().bucket(bucket).key(key).body(ByteStream::from(body.as_bytes().to_vec()));
    put.server_side_encryption(ServerSideEncryption::AwsKms).set_ssekms_key_id(kms_key.map(str::to_string)).send().await.map_err(|e| error_code(&e))
}

async fn read(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<String, String> {
    let o = s3.get_object().bucket(bucket).key(key).send().await.map_err(|e| error_code(&e))?;
    Ok(String::from_utf8(o.body.collect().await.unwrap().to_vec()).unwrap())
}

/// A server, its root's S3 and KMS clients, `bucket`, and a customer managed key's ARN.
async fn server_with_bucket_and_key(bucket: &str) -> (TestServer, aws_sdk_s3::Client, aws_sdk_kms::Client, String) {
    let t = TestServer::start().await;
    let root = t.sdk_config().await;
    let (s3, kms) = (s3_client_for(&root), aws_sdk_kms::Client::new(&root));
    make_bucket(&s3, bucket).await;
    let key = kms.create_key().send().await.unwrap().key_metadata().unwrap().arn().unwrap().to_string();
    (t, s3, kms, key)
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_kms_objects_need_the_key_to_write_and_read() {
    let (t, s3, kms, key) = server_with_bucket_and_key("sealed").await;

    // The request names the key: the answer says aws:kms and the key's ARN, as HEAD and GET do.
    let out = put_kms(&s3, "sealed", "a.txt", "under kms", Some(&key)).await.unwrap();
    assert_eq!(out.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    assert_eq!(out.ssekms_key_id(), Some(key.as_str()));
    let head = s3.head_object().bucket("sealed").key("a.txt").send().await.unwrap();
    assert_eq!(head.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    assert_eq!(head.ssekms_key_id(), Some(key.as_str()));
    assert_eq!(read(&s3, "sealed", "a.txt").await.unwrap(), "under kms");
    // An object without KMS stays SSE-S3.
    let plain = put(&s3, "sealed", "plain.txt", "aes").await.unwrap();
    assert_eq!(plain.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    assert_eq!(plain.ssekms_key_id(), None);

    // A role with S3 but no KMS permission may put plain objects, not KMS ones, and may HEAD
    // the KMS object (no KMS call) but not GET it.
    let s3_only = RoleSession::start(&t, "s3-only", &s3_and_kms(&[])).await;
    let as_s3_only = s3_client_for(&s3_only.conf);
    put(&as_s3_only, "sealed", "ok.txt", "plain").await.unwrap();
    let err = as_s3_only
        .put_object()
        .bucket("sealed")
        .key("b.txt")
        .body(ByteStream::from_static(b"x"))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(&key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "AccessDenied");
    let msg = err.into_service_error().meta().message().unwrap_or_default().to_string();
    assert!(msg.contains("kms:GenerateDataKey"), "{msg}");
    as_s3_only.head_object().bucket("sealed").key("a.txt").send().await.unwrap();
    assert_eq!(read(&as_s3_only, "sealed", "a.txt").await.unwrap_err(), "AccessDenied");
    assert_eq!(read(&as_s3_only, "sealed", "plain.txt").await.unwrap(), "aes");
    // Nothing was written by the refused put.
    assert_eq!(error_code(&s3.head_object().bucket("sealed").key("b.txt").send().await.unwrap_err()), "NotFound");

    // GenerateDataKey writes, Decrypt reads: each action is its own.
    let writer = RoleSession::start(&t, "kms-writer", &s3_and_kms(&["kms:GenerateDataKey"])).await;
    let as_writer = s3_client_for(&writer.conf);
    put_kms(&as_writer, "sealed", "w.txt", "written by the writer", Some(&key)).await.unwrap();
    assert_eq!(read(&as_writer, "sealed", "w.txt").await.unwrap_err(), "AccessDenied");
    let reader = RoleSession::start(&t, "kms-reader", &s3_and_kms(&["kms:Decrypt"])).await;
    assert_eq!(read(&s3_client_for(&reader.conf), "sealed", "w.txt").await.unwrap(), "written by the writer");

    // A disabled key: writes and reads are KMS.DisabledException; enabled again, both work.
    kms.disable_key().key_id(&key).send().await.unwrap();
    assert_eq!(read(&s3, "sealed", "a.txt").await.unwrap_err(), "KMS.DisabledException");
    assert_eq!(put_kms(&s3, "sealed", "c.txt", "x", Some(&key)).await.unwrap_err(), "KMS.DisabledException");
    kms.enable_key().key_id(&key).send().await.unwrap();
    assert_eq!(read(&s3, "sealed", "a.txt").await.unwrap(), "under kms");

    // A key that does not exist; a key id without aws:kms.
    assert_eq!(put_kms(&s3, "sealed", "d.txt", "x", Some("alias/none")).await.unwrap_err(), "KMS.NotFoundException");
    let err = s3.put_object().bucket("sealed").key("d.txt").body(ByteStream::from_static(b"x")).ssekms_key_id(&key).send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidArgument");

    // aws:kms without a key id: the AWS managed aws/s3 key, created on first use; its policy
    // lets everyone in the account use it through S3, so the S3-only role may.
    let managed = put_kms(&s3, "sealed", "m.txt", "managed", None).await.unwrap();
    let managed_arn = managed.ssekms_key_id().unwrap().to_string();
    let alias = kms.describe_key().key_id("alias/aws/s3").send().await.unwrap();
    assert_eq!(alias.key_metadata().unwrap().arn(), Some(managed_arn.as_str()));
    assert_eq!(alias.key_metadata().unwrap().key_manager().map(|m| m.as_str()), Some("AWS"));
    assert_eq!(read(&as_s3_only, "sealed", "m.txt").await.unwrap(), "managed");

    // CopyObject: the source needs Decrypt, the copy gets the destination's encryption (here
    // the request's none: SSE-S3), not the source's.
    let copied = s3.copy_object().bucket("sealed").key("copy.txt").copy_source("sealed/a.txt").send().await.unwrap();
    assert_eq!(copied.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    assert_eq!(read(&as_s3_only, "sealed", "copy.txt").await.unwrap(), "under kms");
    let err = as_s3_only.copy_object().bucket("sealed").key("copy2.txt").copy_source("sealed/a.txt").send().await.unwrap_err();
    assert_eq!(error_code(&err), "AccessDenied");
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn bucket_default_kms_applies_to_puts_uploads_and_the_cli() {
    let (t, s3, _, key) = server_with_bucket_and_key("defaulted").await;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::AwsKms).kms_master_key_id(&key).build().unwrap())
        .bucket_key_enabled(true)
        .build();
    let config = ServerSideEncryptionConfiguration::builder().rules(rule).build().unwrap();
    s3.put_bucket_encryption().bucket("defaulted").server_side_encryption_configuration(config).send().await.unwrap();

    let out = put(&s3, "defaulted", "x.txt", "by default").await.unwrap();
    assert_eq!(out.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    assert_eq!(out.ssekms_key_id(), Some(key.as_str()));
    assert_eq!(out.bucket_key_enabled(), Some(true));
    // An explicit AES256 request wins over the default.
    let aes = s3.put_object().bucket("defaulted").key("aes.txt").body(ByteStream::from_static(b"a")).server_side_encryption(ServerSideEncryption::Aes256).send().await.unwrap();
    assert_eq!(aes.server_side_encryption(), Some(&ServerSideEncryption::Aes256));

    // Multipart: the upload takes the default's key; each part and the completion need Decrypt.
    let up = s3.create_multipart_upload().bucket("defaulted").key("big.bin").send().await.unwrap();
    assert_eq!(up.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    assert_eq!(up.ssekms_key_id(), Some(key.as_str()));
    let id = up.upload_id().unwrap();
    let part = s3.upload_part().bucket("defaulted").key("big.bin").upload_id(id).part_number(1).body(ByteStream::from(vec![7u8; 1024])).send().await.unwrap();
    assert_eq!(part.ssekms_key_id(), Some(key.as_str()));
    let writer = RoleSession::start(&t, "mp-writer", &s3_and_kms(&["kms:GenerateDataKey"])).await;
    let as_writer = s3_client_for(&writer.conf);
    let err = as_writer.upload_part().bucket("defaulted").key("big.bin").upload_id(id).part_number(2).body(ByteStream::from(vec![8u8; 10])).send().await.unwrap_err();
    assert_eq!(error_code(&err), "AccessDenied");
    let parts = CompletedMultipartUpload::builder().parts(CompletedPart::builder().part_number(1).e_tag(part.e_tag().unwrap()).build()).build();
    let done = s3.complete_multipart_upload().bucket("defaulted").key("big.bin").upload_id(id).multipart_upload(parts).send().await.unwrap();
    assert_eq!(done.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    let head = s3.head_object().bucket("defaulted").key("big.bin").send().await.unwrap();
    assert_eq!((head.ssekms_key_id(), head.bucket_key_enabled(), head.content_length()), (Some(key.as_str()), Some(true), Some(1024)));

    // The aws CLI (s3 cp through the default; s3api reports the key).
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("f.txt");
    std::fs::write(&file, "from the cli").unwrap();
    let (ok, _, err) = aws_cli(&t.endpoint, &["s3", "cp", file.to_str().unwrap(), "s3://defaulted/cli.txt"]);
    assert!(ok, "{err}");
    let v = aws_cli_json(&t.endpoint, &["s3api", "head-object", "--bucket", "defaulted", "--key", "cli.txt"]);
    assert_eq!(v["ServerSideEncryption"], "aws:kms");
    assert_eq!(v["SSEKMSKeyId"], key.as_str());
    let (ok, _, err) = aws_cli(&t.endpoint, &["s3", "cp", "s3://defaulted/cli.txt", work.path().join("back.txt").to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read_to_string(work.path().join("back.txt")).unwrap(), "from the cli");
    t.assert_no_model_violations();
}
