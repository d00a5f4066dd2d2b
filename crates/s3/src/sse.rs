//! Server-side encryption: which kind an object gets, and SSE-KMS's calls to KMS.
//!
//! An object is SSE-S3 (`AES256`) unless the request (`x-amz-server-side-encryption: aws:kms`)
//! or the bucket's default encryption asks for SSE-KMS. An SSE-KMS object carries a data key
//! that KMS generated and sealed under the object's KMS key ([`KmsSealed`]), bound to S3's
//! encryption context (`aws:s3:arn`: the object's ARN, or the bucket's with an S3 Bucket Key)
//! plus any pairs the caller gave. As on AWS, S3 asks KMS *as the caller* and with
//! `kms:ViaService` = `s3.<region>.amazonaws.com`:
//!
//! * writing (PutObject, CopyObject's destination, CreateMultipartUpload) needs
//!   `kms:GenerateDataKey` on the key;
//! * reading the bytes (GetObject, CopyObject's and UploadPartCopy's source, UploadPart and
//!   CompleteMultipartUpload of an SSE-KMS upload) needs `kms:Decrypt`; HeadObject needs none.
//!
//! So a key policy, a disabled key or a role without the KMS statement fails here as it does
//! on AWS (`AccessDenied`, `KMS.DisabledException`, `KMS.NotFoundException`). The object's
//! bytes themselves are kept as written on the local disk: the data key decides who reads them,
//! not a cipher.

use crate::engine::s3err;
pub use crate::meta::KmsSealed;
use crate::meta::{BucketDoc, StoredHeaders, bucket_arn, object_arn};
use base64::Engine as _;
use codeyard_core::{AwsError, Hub, RequestContext};
use s3s::S3Result;
use s3s::dto::{ServerSideEncryption, ServerSideEncryptionConfiguration};
use std::collections::BTreeMap;

/// The encryption a write asks for in its headers.
#[derive(Clone, Debug, PartialEq)]
pub enum Requested {
    /// No `x-amz-server-side-encryption`: the bucket's default.
    BucketDefault,
    Aes256,
    Kms {
        /// `x-amz-server-side-encryption-aws-kms-key-id`; `None` is the AWS managed `aws/s3`.
        key_id: Option<String>,
        /// `x-amz-server-side-encryption-context`, decoded.
        context: BTreeMap<String, String>,
        bucket_key_enabled: Option<bool>,
    },
}

const AWS_MANAGED_KEY: &str = "alias/aws/s3";

fn invalid(message: impl Into<String>) -> s3s::S3Error {
    s3err("InvalidArgument", 400, message)
}

/// The encryption headers of a PutObject-like request, checked as S3 checks them.
pub fn requested(
    algorithm: Option<&ServerSideEncryption>,
    key_id: Option<&str>,
    context: Option<&str>,
    bucket_key_enabled: Option<bool>,
) -> S3Result<Requested> {
    let kms_headers = key_id.is_some() || context.is_some();
    match algorithm.map(|a| a.as_str()) {
        None | Some(ServerSideEncryption::AES256) if kms_headers => Err(invalid(
            "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
        )),
        None => Ok(Requested::BucketDefault),
        Some(ServerSideEncryption::AES256) => Ok(Requested::Aes256),
        Some(ServerSideEncryption::AWS_KMS) => Ok(Requested::Kms {
            key_id: key_id.filter(|k| !k.is_empty()).map(str::to_string),
            context: context.map(decode_context).transpose()?.unwrap_or_default(),
            bucket_key_enabled,
        }),
        Some(ServerSideEncryption::AWS_KMS_DSSE) => Err(invalid(
            "codeyard does not implement dual-layer server-side encryption (aws:kms:dsse); use aws:kms or AES256",
        )),
        Some(_) => Err(invalid("The encryption method specified is not supported")),
    }
}

/// `x-amz-server-side-encryption-context`: base64 of a JSON object of strings.
fn decode_context(b64: &str) -> S3Result<BTreeMap<String, String>> {
    let bad = || {
        invalid("The header 'x-amz-server-side-encryption-context' shall be Base64-encoded UTF-8 string holding JSON which represents a string-string map")
    };
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

/// What SSE-KMS a write to `bucket` gets: the request's, else the bucket default's; `None`
/// for SSE-S3. Returns the key to use, the caller's context pairs and the Bucket Key setting.
/// The bucket's configuration is read only when the request leaves something to it (every
/// PutObject passes here).
fn kms_choice(requested: Requested, bucket: &BucketDoc) -> S3Result<Option<(String, BTreeMap<String, String>, bool)>> {
    Ok(match requested {
        Requested::Aes256 => None,
        Requested::Kms { key_id, context, bucket_key_enabled } => {
            let bucket_key = match bucket_key_enabled {
                Some(given) => given,
                None => bucket_default(bucket)?.is_some_and(|(_, bucket_key)| bucket_key),
            };
            Some((key_id.unwrap_or_else(|| AWS_MANAGED_KEY.into()), context, bucket_key))
        }
        Requested::BucketDefault => bucket_default(bucket)?.map(|(key, bucket_key)| (key, BTreeMap::new(), bucket_key)),
    })
}

/// The bucket's default encryption when it is SSE-KMS: its key (`aws/s3` when the rule names
/// none) and whether it uses an S3 Bucket Key.
fn bucket_default(bucket: &BucketDoc) -> S3Result<Option<(String, bool)>> {
    let c: Option<ServerSideEncryptionConfiguration> = bucket.config("encryption").map_err(crate::engine::internal)?;
    let Some(rule) = c.as_ref().and_then(|c| c.rules.first()) else { return Ok(None) };
    let Some(by_default) = &rule.apply_server_side_encryption_by_default else { return Ok(None) };
    if by_default.sse_algorithm.as_str() != ServerSideEncryption::AWS_KMS {
        return Ok(None);
    }
    let key = by_default.kms_master_key_id.clone().filter(|k| !k.is_empty()).unwrap_or_else(|| AWS_MANAGED_KEY.into());
    Ok(Some((key, rule.bucket_key_enabled.unwrap_or(false))))
}

fn via_s3(region: &str) -> String {
    format!("s3.{region}.amazonaws.com")
}

/// The data key of a write of `key` to `bucket` as `ctx`, when the write is SSE-KMS
/// (`kms:GenerateDataKey` as the caller); `None` for SSE-S3.
pub async fn seal(hub: &Hub, ctx: &RequestContext, bucket: &BucketDoc, key: &str, requested: Requested) -> S3Result<Option<KmsSealed>> {
    let Some((key_id, mut context, bucket_key_enabled)) = kms_choice(requested, bucket)? else {
        return Ok(None);
    };
    let arn = if bucket_key_enabled { bucket_arn(&bucket.name) } else { object_arn(&bucket.name, key) };
    context.insert("aws:s3:arn".into(), arn);
    let keys = hub.keys().map_err(kms_error)?;
    let out = keys
        .generate_data_key(ctx, &key_id, &context, Some(&via_s3(&bucket.region)))
        .await
        .map_err(kms_error)?;
    Ok(Some(KmsSealed {
        key_arn: out.key_arn,
        data_key: base64::engine::general_purpose::STANDARD.encode(out.bytes),
        context,
        bucket_key_enabled,
    }))
}

/// Whether `ctx` may read bytes sealed by `sealed` (`kms:Decrypt` as the caller); SSE-S3
/// (`None`) needs nothing.
pub async fn unseal(hub: &Hub, ctx: &RequestContext, sealed: Option<&KmsSealed>) -> S3Result<()> {
    let Some(sealed) = sealed else { return Ok(()) };
    // A bucket's KMS keys are in the bucket's region: the key's ARN names it.
    let region = sealed.key_arn.split(':').nth(3).filter(|r| !r.is_empty()).unwrap_or(&ctx.region);
    let blob = base64::engine::general_purpose::STANDARD
        .decode(&sealed.data_key)
        .map_err(|e| crate::engine::internal(format!("stored data key of {}: {e}", sealed.key_arn)))?;
    let keys = hub.keys().map_err(kms_error)?;
    keys.decrypt(ctx, &blob, &sealed.context, Some(&via_s3(region))).await.map_err(kms_error)?;
    Ok(())
}

/// KMS's answer as S3 passes it on: a denial is S3's 403 AccessDenied (with KMS's message,
/// which names the key and the action); the rest keep KMS's code behind `KMS.`, as 400s.
fn kms_error(e: AwsError) -> s3s::S3Error {
    match e.code.as_str() {
        "AccessDeniedException" => s3err("AccessDenied", 403, e.message),
        code if e.status >= 500 => crate::engine::internal(format!("KMS {code}: {}", e.message)),
        code => s3err(&format!("KMS.{code}"), 400, e.message),
    }
}

/// What an answer says of a stored object's (or upload's) encryption:
/// (`x-amz-server-side-encryption`, `...-aws-kms-key-id`, `...-bucket-key-enabled`).
pub fn described(headers: &StoredHeaders) -> (Option<ServerSideEncryption>, Option<String>, Option<bool>) {
    match &headers.kms {
        None => (Some(ServerSideEncryption::from_static(ServerSideEncryption::AES256)), None, None),
        Some(k) => (
            Some(ServerSideEncryption::from_static(ServerSideEncryption::AWS_KMS)),
            Some(k.key_arn.clone()),
            k.bucket_key_enabled.then_some(true),
        ),
    }
}

/// Sets the three encryption fields of an S3 output from stored headers.
macro_rules! sse_out {
    ($out:expr, $headers:expr) => {{
        let (algorithm, key, bucket_key) = $crate::sse::described($headers);
        $out.server_side_encryption = algorithm;
        $out.ssekms_key_id = key;
        $out.bucket_key_enabled = bucket_key;
    }};
}
pub(crate) use sse_out;

#[cfg(test)]
mod tests {
    use super::*;

    fn kms() -> ServerSideEncryption {
        ServerSideEncryption::from_static(ServerSideEncryption::AWS_KMS)
    }

    #[test]
    fn requested_headers_are_checked_as_s3_does() {
        assert_eq!(requested(None, None, None, None).unwrap(), Requested::BucketDefault);
        let aes = ServerSideEncryption::from_static(ServerSideEncryption::AES256);
        assert_eq!(requested(Some(&aes), None, None, None).unwrap(), Requested::Aes256);
        // A key id without aws:kms is refused, with AWS's words.
        let e = requested(None, Some("alias/k"), None, None).unwrap_err();
        assert_eq!(e.code().as_str(), "InvalidArgument");
        assert!(requested(Some(&aes), Some("alias/k"), None, None).is_err());
        let ctx = base64::engine::general_purpose::STANDARD.encode(r#"{"team":"web"}"#);
        match requested(Some(&kms()), Some("alias/k"), Some(&ctx), Some(true)).unwrap() {
            Requested::Kms { key_id, context, bucket_key_enabled } => {
                assert_eq!(key_id.as_deref(), Some("alias/k"));
                assert_eq!(context.get("team").map(String::as_str), Some("web"));
                assert_eq!(bucket_key_enabled, Some(true));
            }
            other => panic!("{other:?}"),
        }
        for bad in ["not base64!", "WyJhIl0=" /* ["a"] */] {
            assert_eq!(requested(Some(&kms()), None, Some(bad), None).unwrap_err().code().as_str(), "InvalidArgument");
        }
        let dsse = ServerSideEncryption::from_static(ServerSideEncryption::AWS_KMS_DSSE);
        assert!(requested(Some(&dsse), None, None, None).unwrap_err().message().unwrap().contains("aws:kms:dsse"));
    }

    /// A bucket whose default encryption is `algorithm` (with `key`), stored as PutBucketEncryption stores it.
    fn bucket_with_default(default: Option<(&'static str, Option<&str>, Option<bool>)>) -> BucketDoc {
        use s3s::dto::{ServerSideEncryptionByDefault, ServerSideEncryptionRule};
        let mut b = BucketDoc { name: "b".into(), region: "eu-west-1".into(), ..Default::default() };
        if let Some((algorithm, key, bucket_key)) = default {
            let c = ServerSideEncryptionConfiguration {
                rules: vec![ServerSideEncryptionRule {
                    apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
                        sse_algorithm: ServerSideEncryption::from_static(algorithm),
                        kms_master_key_id: key.map(str::to_string),
                    }),
                    bucket_key_enabled: bucket_key,
                    ..Default::default()
                }],
            };
            let mut buf = Vec::new();
            s3s::xml::Serializer::new(&mut buf).content("C", &c).unwrap();
            b.configs.insert("encryption".into(), String::from_utf8(buf).unwrap());
        }
        b
    }

    #[test]
    fn the_request_wins_over_the_bucket_default() {
        let b = bucket_with_default(Some((ServerSideEncryption::AWS_KMS, Some("alias/bucket"), Some(true))));
        let (key, _, bucket_key) = kms_choice(Requested::BucketDefault, &b).unwrap().unwrap();
        assert_eq!((key.as_str(), bucket_key), ("alias/bucket", true));
        assert_eq!(kms_choice(Requested::Aes256, &b).unwrap(), None);
        // aws:kms without a key id is the AWS managed key, not the bucket's.
        let asked = Requested::Kms { key_id: None, context: BTreeMap::new(), bucket_key_enabled: Some(false) };
        let (key, _, bucket_key) = kms_choice(asked, &b).unwrap().unwrap();
        assert_eq!((key.as_str(), bucket_key), ("alias/aws/s3", false));
        let aes = bucket_with_default(Some((ServerSideEncryption::AES256, None, None)));
        assert_eq!(kms_choice(Requested::BucketDefault, &aes).unwrap(), None);
        assert_eq!(kms_choice(Requested::BucketDefault, &bucket_with_default(None)).unwrap(), None);
        let no_key = bucket_with_default(Some((ServerSideEncryption::AWS_KMS, None, None)));
        let (key, _, _) = kms_choice(Requested::BucketDefault, &no_key).unwrap().unwrap();
        assert_eq!(key, "alias/aws/s3");
    }
}
