//! The S3 REST API: s3s's [`S3`] trait mapped onto the [`Engine`]. Thin: it turns s3s DTOs into
//! engine calls and engine results into DTOs; checks that belong to the protocol (conditional
//! requests, ranges, Content-MD5 and checksums, URL encoding of listings) live here.

use crate::blobs::BlobError;
use crate::body::ObjectBody;
use crate::engine::{Engine, Listed, internal, s3err, validate_key};
use crate::meta::*;
use codeyard_core::RequestContext;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Trailing headers of an aws-chunked body that codeyard decoded itself (open mode): s3s
/// only decodes aws-chunked bodies of requests it authenticated.
#[derive(Clone, Default)]
pub struct OpenTrailers(pub Arc<Mutex<Option<http::HeaderMap>>>);

pub struct Api {
    pub engine: Arc<Engine>,
}

type R<T> = S3Result<S3Response<T>>;

fn ok<T>(t: T) -> R<T> {
    Ok(S3Response::new(t))
}

fn ctx_of<T>(req: &S3Request<T>) -> RequestContext {
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

fn ts(ms: i64) -> Timestamp {
    Timestamp::from(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64))
}

fn ts_secs(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

fn etag(v: &str) -> ETag {
    ETag::Strong(v.to_string())
}

fn owner(account: &str) -> Owner {
    use sha2::Digest;
    Owner {
        display_name: Some("codeyard".into()),
        id: Some(hex::encode(sha2::Sha256::digest(account.as_bytes()))),
    }
}

fn malformed_xml() -> s3s::S3Error {
    s3err(
        "MalformedXML",
        400,
        "The XML you provided was not well-formed or did not validate against our published schema",
    )
}

fn version_out(v: &str) -> Option<String> {
    (v != "null").then(|| v.to_string())
}

/// Keys in listings are URL-encoded when the client asked for `encoding-type=url` (the aws
/// CLI always does).
fn enc(s: String, url: bool) -> String {
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

fn blob_error(e: BlobError) -> s3s::S3Error {
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

const ALGORITHMS: [&str; 5] = ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"];

fn checksum_value(c: &Checksum, algo: &str) -> Option<String> {
    match algo {
        "CRC32" => c.checksum_crc32.clone(),
        "CRC32C" => c.checksum_crc32c.clone(),
        "SHA1" => c.checksum_sha1.clone(),
        "SHA256" => c.checksum_sha256.clone(),
        "CRC64NVME" => c.checksum_crc64nvme.clone(),
        _ => None,
    }
}

fn checksum_with(algo: &str, value: String) -> Checksum {
    let mut c = Checksum::default();
    match algo {
        "CRC32" => c.checksum_crc32 = Some(value),
        "CRC32C" => c.checksum_crc32c = Some(value),
        "SHA1" => c.checksum_sha1 = Some(value),
        "SHA256" => c.checksum_sha256 = Some(value),
        "CRC64NVME" => c.checksum_crc64nvme = Some(value),
        _ => {}
    }
    c
}

fn hasher_for(algo: Option<&str>) -> s3s::checksum::ChecksumHasher {
    use s3s::crypto::Checksum as _;
    let mut h = s3s::checksum::ChecksumHasher::default();
    match algo {
        Some("CRC32") => h.crc32 = Some(s3s::crypto::Crc32::new()),
        Some("CRC32C") => h.crc32c = Some(s3s::crypto::Crc32c::new()),
        Some("SHA1") => h.sha1 = Some(s3s::crypto::Sha1::new()),
        Some("SHA256") => h.sha256 = Some(s3s::crypto::Sha256::new()),
        Some("CRC64NVME") => h.crc64nvme = Some(s3s::crypto::Crc64Nvme::new()),
        _ => {}
    }
    h
}

/// What the client says about the checksum of its body: the algorithm, and the value when it
/// sent it as a header (a trailer's value is only known after the body).
struct ChecksumClaim {
    algorithm: Option<String>,
    header_value: Option<String>,
    in_trailer: bool,
}

fn checksum_claim(
    headers: &http::HeaderMap,
    declared: Option<&ChecksumAlgorithm>,
    provided: &Checksum,
) -> ChecksumClaim {
    for a in ALGORITHMS {
        if let Some(v) = checksum_value(provided, a) {
            return ChecksumClaim {
                algorithm: Some(a.into()),
                header_value: Some(v),
                in_trailer: false,
            };
        }
    }
    if let Some(t) = headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()) {
        let t = t.trim().to_ascii_lowercase();
        if let Some(a) = t.strip_prefix("x-amz-checksum-") {
            return ChecksumClaim {
                algorithm: Some(a.to_ascii_uppercase()),
                header_value: None,
                in_trailer: true,
            };
        }
    }
    ChecksumClaim {
        algorithm: declared.map(|a| a.as_str().to_ascii_uppercase()),
        header_value: None,
        in_trailer: false,
    }
}

fn trailer_value<T>(req: &S3Request<T>, algo: &str) -> Option<String> {
    let name = format!("x-amz-checksum-{}", algo.to_ascii_lowercase());
    if let Some(t) = &req.trailing_headers {
        if let Some(v) = t
            .read(|h| {
                h.get(&name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            })
            .flatten()
        {
            return Some(v);
        }
    }
    let open = req.extensions.get::<OpenTrailers>()?;
    let guard = open.0.lock().ok()?;
    guard
        .as_ref()?
        .get(&name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The body written to a fresh blob, with Content-Length, Content-MD5 and checksum checks.
/// On a failed check the blob is removed and AWS's error returned.
async fn receive<T>(
    engine: &Engine,
    req: &S3Request<T>,
    body: Option<StreamingBlob>,
    content_length: Option<i64>,
    content_md5: Option<&str>,
    claim: &ChecksumClaim,
) -> S3Result<(crate::blobs::Written, Option<(String, String)>)> {
    let hasher = hasher_for(claim.algorithm.as_deref());
    let written = match body {
        Some(b) => engine.blobs.write(b, hasher).await.map_err(blob_error)?,
        None => engine
            .blobs
            .write(
                futures::stream::empty::<Result<bytes::Bytes, std::io::Error>>(),
                hasher,
            )
            .await
            .map_err(blob_error)?,
    };
    let fail = |e: s3s::S3Error| async {
        engine
            .blobs
            .delete(std::slice::from_ref(&written.blob))
            .await;
        Err(e)
    };
    if let Some(n) = content_length {
        if n >= 0 && n as u64 != written.blob.size {
            return fail(s3err("IncompleteBody", 400, "You did not provide the number of bytes specified by the Content-Length HTTP header")).await;
        }
    }
    if let Some(md5) = content_md5 {
        use base64::Engine as _;
        let ours = base64::engine::general_purpose::STANDARD.encode(written.md5);
        if md5.trim() != ours {
            let decodes = base64::engine::general_purpose::STANDARD
                .decode(md5.trim())
                .is_ok_and(|d| d.len() == 16);
            let e = if decodes {
                s3err(
                    "BadDigest",
                    400,
                    "The Content-MD5 you specified did not match what we received.",
                )
            } else {
                s3err(
                    "InvalidDigest",
                    400,
                    "The Content-MD5 you specified was invalid.",
                )
            };
            return fail(e).await;
        }
    }
    let mut stored = None;
    if let Some(algo) = &claim.algorithm {
        let ours = checksum_value(&written.checksum, algo);
        let theirs = if claim.in_trailer {
            trailer_value(req, algo)
        } else {
            claim.header_value.clone()
        };
        if let (Some(ours), Some(theirs)) = (&ours, &theirs) {
            if ours != theirs {
                return fail(s3err(
                    "BadDigest",
                    400,
                    format!("The {algo} you specified did not match the calculated checksum."),
                ))
                .await;
            }
        }
        stored = ours.map(|v| (algo.clone(), v));
    }
    Ok((written, stored))
}

fn stored_headers(
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<&Timestamp>,
    website_redirect_location: Option<String>,
    storage_class: Option<&StorageClass>,
    acl: Option<&ObjectCannedACL>,
) -> StoredHeaders {
    StoredHeaders {
        content_type,
        // aws-chunked is transfer framing, not the object's encoding.
        content_encoding: content_encoding
            .map(|e| {
                e.split(',')
                    .map(str::trim)
                    .filter(|p| !p.eq_ignore_ascii_case("aws-chunked"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|e| !e.is_empty()),
        content_disposition,
        content_language,
        cache_control,
        expires: expires.map(|t| {
            let mut buf = Vec::new();
            let _ = t.format(TimestampFormat::HttpDate, &mut buf);
            String::from_utf8_lossy(&buf).to_string()
        }),
        website_redirect_location,
        storage_class: storage_class
            .map(|s| s.as_str().to_string())
            .filter(|s| s != "STANDARD"),
        acl: acl.map(|a| a.as_str().to_string()),
    }
}

fn parse_tagging_header(h: Option<&str>) -> S3Result<Vec<(String, String)>> {
    let Some(h) = h else { return Ok(Vec::new()) };
    let tags: Vec<(String, String)> = url::form_urlencoded::parse(h.as_bytes())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    validate_tags(&tags)?;
    Ok(tags)
}

fn validate_tags(tags: &[(String, String)]) -> S3Result<()> {
    if tags.len() > 10 {
        return Err(s3err(
            "InvalidTag",
            400,
            "Object tags cannot be greater than 10",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(s3err(
                "InvalidTag",
                400,
                "The TagKey you have provided is invalid",
            ));
        }
        if !seen.insert(k) {
            return Err(s3err(
                "InvalidTag",
                400,
                "Cannot provide multiple Tags with the same key",
            ));
        }
    }
    Ok(())
}

fn tag_set(tags: &[(String, String)]) -> TagSet {
    tags.iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

fn from_tag_set(t: &TagSet) -> Vec<(String, String)> {
    t.iter()
        .map(|t| {
            (
                t.key.clone().unwrap_or_default(),
                t.value.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// RFC 7232 evaluation order, as S3 does it: If-Match, then If-Unmodified-Since (ignored when
/// If-Match is present), If-None-Match, then If-Modified-Since (ignored when If-None-Match
/// is present). `not_modified` is the error for a failed If-None-Match/If-Modified-Since
/// (304 for GET/HEAD, 412 for copy sources).
fn check_conditions(
    o: &ObjectDoc,
    if_match: Option<&ETagCondition>,
    if_unmodified_since: Option<&Timestamp>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    not_modified_is_412: bool,
) -> S3Result<()> {
    let lm = o.last_modified_ms / 1000;
    let matches = |c: &ETagCondition| match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value().trim_matches('"') == o.etag,
    };
    let failed = || {
        s3err(
            "PreconditionFailed",
            412,
            "At least one of the pre-conditions you specified did not hold",
        )
    };
    let not_modified = || {
        if not_modified_is_412 {
            return failed();
        }
        // A 304 still names the representation it refers to.
        let mut e = s3err("NotModified", 304, "Not Modified");
        let mut h = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", o.etag)) {
            h.insert(http::header::ETAG, v);
        }
        let mut buf = Vec::new();
        if ts(o.last_modified_ms)
            .format(TimestampFormat::HttpDate, &mut buf)
            .is_ok()
        {
            if let Ok(v) = http::HeaderValue::from_bytes(&buf) {
                h.insert(http::header::LAST_MODIFIED, v);
            }
        }
        e.set_headers(h);
        e
    };
    if let Some(c) = if_match {
        if !matches(c) {
            return Err(failed());
        }
    } else if let Some(t) = if_unmodified_since {
        if lm > ts_secs(t) {
            return Err(failed());
        }
    }
    if let Some(c) = if_none_match {
        if matches(c) {
            return Err(not_modified());
        }
    } else if let Some(t) = if_modified_since {
        if lm <= ts_secs(t) {
            return Err(not_modified());
        }
    }
    Ok(())
}

macro_rules! headers_out {
    ($out:ident, $o:expr) => {
        $out.content_type = $o
            .headers
            .content_type
            .clone()
            .or_else(|| Some("binary/octet-stream".into()));
        $out.content_encoding = $o.headers.content_encoding.clone();
        $out.content_disposition = $o.headers.content_disposition.clone();
        $out.content_language = $o.headers.content_language.clone();
        $out.cache_control = $o.headers.cache_control.clone();
        $out.expires = $o
            .headers
            .expires
            .as_deref()
            .and_then(|e| Timestamp::parse(TimestampFormat::HttpDate, e).ok());
        $out.website_redirect_location = $o.headers.website_redirect_location.clone();
        $out.storage_class = $o.headers.storage_class.clone().map(StorageClass::from);
        $out.e_tag = Some(etag(&$o.etag));
        $out.last_modified = Some(ts($o.last_modified_ms));
        $out.metadata = if $o.metadata.is_empty() {
            None
        } else {
            Some($o.metadata.clone().into_iter().collect())
        };
        $out.version_id = version_out(&$o.version_id);
        $out.parts_count = $o.parts_count;
        $out.accept_ranges = Some("bytes".into());
        $out.server_side_encryption = Some(ServerSideEncryption::from_static(
            ServerSideEncryption::AES256,
        ));
    };
}

fn range_of(
    o: &ObjectDoc,
    range: Option<&Range>,
    part_number: Option<i32>,
) -> S3Result<Option<std::ops::Range<u64>>> {
    if let Some(n) = part_number {
        // Part N of a multipart object is the range its blob covers.
        if o.parts_count.is_none() {
            return if n == 1 {
                Ok(None)
            } else {
                Err(s3err(
                    "InvalidPartNumber",
                    416,
                    "The requested partnumber is not satisfiable",
                ))
            };
        }
        let idx = (n as usize)
            .checked_sub(1)
            .filter(|i| *i < o.blobs.len())
            .ok_or_else(|| {
                s3err(
                    "InvalidPartNumber",
                    416,
                    "The requested partnumber is not satisfiable",
                )
            })?;
        let start: u64 = o.blobs[..idx].iter().map(|b| b.size).sum();
        return Ok(Some(start..start + o.blobs[idx].size));
    }
    match range {
        None => Ok(None),
        Some(r) => match r.check(o.size) {
            Ok(r) => Ok(Some(r)),
            Err(_) => Err(s3err(
                "InvalidRange",
                416,
                "The requested range is not satisfiable",
            )),
        },
    }
}

fn checksum_out(o: &ObjectDoc, whole: bool) -> Checksum {
    match (&o.checksum, whole) {
        (Some((a, v)), true) => {
            let mut c = checksum_with(a, v.clone());
            c.checksum_type = Some(ChecksumType::from_static(ChecksumType::FULL_OBJECT));
            c
        }
        _ => Checksum::default(),
    }
}

impl Api {
    /// Sub-resource configurations are stored as the XML s3s reads and writes them (so every
    /// field AWS has survives the round trip), inside the bucket document.
    async fn get_cfg<T: for<'x> s3s::xml::DeserializeContent<'x>>(
        &self,
        bucket: &str,
        name: &str,
    ) -> S3Result<Option<T>> {
        let b = self.engine.bucket(bucket).await?;
        let Some(xml) = b.configs.get(name).and_then(|v| v.as_str()) else {
            return Ok(None);
        };
        let mut d = s3s::xml::Deserializer::new(xml.as_bytes());
        let v = d
            .named_element("C", |d| d.content())
            .map_err(|e| internal(format!("stored {name}: {e:?}")))?;
        Ok(Some(v))
    }

    async fn put_cfg<T: s3s::xml::SerializeContent>(
        &self,
        bucket: &str,
        name: &str,
        value: &T,
    ) -> S3Result<()> {
        let mut buf = Vec::new();
        s3s::xml::Serializer::new(&mut buf)
            .content("C", value)
            .map_err(|e| internal(format!("{e:?}")))?;
        let xml = String::from_utf8(buf).map_err(internal)?;
        self.engine
            .set_config(bucket, name, Some(serde_json::Value::String(xml)))
            .await
    }

    async fn get_text(&self, bucket: &str, name: &str) -> S3Result<Option<String>> {
        let b = self.engine.bucket(bucket).await?;
        Ok(b.configs
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string))
    }

    async fn put_text(&self, bucket: &str, name: &str, value: &str) -> S3Result<()> {
        self.engine
            .set_config(
                bucket,
                name,
                Some(serde_json::Value::String(value.to_string())),
            )
            .await
    }

    async fn del_cfg(&self, bucket: &str, name: &str) -> S3Result<()> {
        self.engine.set_config(bucket, name, None).await
    }

    async fn copy_source(&self, src: &CopySource) -> S3Result<ObjectDoc> {
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

    async fn write_copy(
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

    fn grants(&self, account: &str, acl: Option<&str>) -> Grants {
        let me = owner(account);
        let mut grants = vec![Grant {
            grantee: Some(Grantee {
                display_name: me.display_name.clone(),
                id: me.id.clone(),
                type_: Type::from_static(Type::CANONICAL_USER),
                email_address: None,
                uri: None,
            }),
            permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
        }];
        let group = |uri: &str, perm: &'static str| Grant {
            grantee: Some(Grantee {
                display_name: None,
                id: None,
                type_: Type::from_static(Type::GROUP),
                email_address: None,
                uri: Some(uri.into()),
            }),
            permission: Some(Permission::from_static(perm)),
        };
        const ALL: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
        const AUTH: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
        match acl {
            Some("public-read") => grants.push(group(ALL, Permission::READ)),
            Some("public-read-write") => {
                grants.push(group(ALL, Permission::READ));
                grants.push(group(ALL, Permission::WRITE));
            }
            Some("authenticated-read") => grants.push(group(AUTH, Permission::READ)),
            _ => {}
        }
        grants
    }
}

#[async_trait::async_trait]
impl S3 for Api {
    // ---- buckets -------------------------------------------------------------------------

    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> R<CreateBucketOutput> {
        let ctx = ctx_of(&req);
        let i = req.input;
        let region = i
            .create_bucket_configuration
            .as_ref()
            .and_then(|c| c.location_constraint.as_ref())
            .map(|l| l.as_str().to_string())
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| ctx.region.clone());
        let region = if region == "EU" {
            "eu-west-1".to_string()
        } else {
            region
        };
        self.engine
            .create_bucket(
                &i.bucket,
                &ctx.account,
                &region,
                i.acl.map(|a| a.as_str().to_string()),
            )
            .await?;
        if i.object_lock_enabled_for_bucket == Some(true) {
            self.engine.set_versioning(&i.bucket, "Enabled").await?;
            let cfg = ObjectLockConfiguration {
                object_lock_enabled: Some(ObjectLockEnabled::from_static(
                    ObjectLockEnabled::ENABLED,
                )),
                rule: None,
            };
            self.put_cfg(&i.bucket, "object-lock", &cfg).await?;
        }
        if let Some(o) = i.object_ownership {
            let cfg = OwnershipControls {
                rules: vec![OwnershipControlsRule {
                    object_ownership: o,
                }],
            };
            self.put_cfg(&i.bucket, "ownership-controls", &cfg).await?;
        }
        ok(CreateBucketOutput {
            location: Some(format!("/{}", i.bucket)),
            ..Default::default()
        })
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> R<HeadBucketOutput> {
        let b = self.engine.bucket(&req.input.bucket).await?;
        ok(HeadBucketOutput {
            bucket_region: Some(b.region),
            ..Default::default()
        })
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> R<DeleteBucketOutput> {
        self.engine.delete_bucket(&req.input.bucket).await?;
        ok(DeleteBucketOutput {})
    }

    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> R<ListBucketsOutput> {
        let ctx = ctx_of(&req);
        let prefix = req.input.prefix.clone().unwrap_or_default();
        let buckets: Vec<Bucket> = self
            .engine
            .list_buckets(&ctx.account)
            .await?
            .into_iter()
            .filter(|b| b.name.starts_with(&prefix))
            .filter(|b| {
                req.input
                    .bucket_region
                    .as_ref()
                    .is_none_or(|r| *r == b.region)
            })
            .map(|b| Bucket {
                name: Some(b.name),
                creation_date: Some(ts(b.created_ms)),
                bucket_region: Some(b.region),
            })
            .collect();
        ok(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(owner(&ctx.account)),
            prefix: req.input.prefix,
            continuation_token: None,
        })
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> R<GetBucketLocationOutput> {
        let b = self.engine.bucket(&req.input.bucket).await?;
        // us-east-1 is the empty LocationConstraint, as in AWS.
        let lc = (b.region != "us-east-1").then(|| BucketLocationConstraint::from(b.region));
        ok(GetBucketLocationOutput {
            location_constraint: lc,
        })
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> R<PutBucketVersioningOutput> {
        let status = req
            .input
            .versioning_configuration
            .status
            .as_ref()
            .map(|s| s.as_str().to_string())
            .ok_or_else(malformed_xml)?;
        self.engine
            .set_versioning(&req.input.bucket, &status)
            .await?;
        ok(PutBucketVersioningOutput {})
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> R<GetBucketVersioningOutput> {
        let b = self.engine.bucket(&req.input.bucket).await?;
        ok(GetBucketVersioningOutput {
            status: b.versioning.map(BucketVersioningStatus::from),
            mfa_delete: None,
        })
    }

    async fn put_bucket_tagging(
        &self,
        req: S3Request<PutBucketTaggingInput>,
    ) -> R<PutBucketTaggingOutput> {
        let tags = from_tag_set(&req.input.tagging.tag_set);
        if tags.len() > 50 {
            return Err(s3err(
                "BadRequest",
                400,
                "Bucket tag count cannot be greater than 50",
            ));
        }
        validate_tags(&tags[..tags.len().min(10)])?;
        self.put_cfg(&req.input.bucket, "tagging", &req.input.tagging)
            .await?;
        ok(PutBucketTaggingOutput {})
    }

    async fn get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> R<GetBucketTaggingOutput> {
        match self
            .get_cfg::<Tagging>(&req.input.bucket, "tagging")
            .await?
        {
            Some(t) if !t.tag_set.is_empty() => ok(GetBucketTaggingOutput { tag_set: t.tag_set }),
            _ => Err(s3err("NoSuchTagSet", 404, "The TagSet does not exist")),
        }
    }

    async fn delete_bucket_tagging(
        &self,
        req: S3Request<DeleteBucketTaggingInput>,
    ) -> R<DeleteBucketTaggingOutput> {
        self.del_cfg(&req.input.bucket, "tagging").await?;
        Ok(S3Response::with_status(
            DeleteBucketTaggingOutput {},
            http::StatusCode::NO_CONTENT,
        ))
    }

    async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> R<PutBucketPolicyOutput> {
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
        self.put_text(&req.input.bucket, "policy", &req.input.policy)
            .await?;
        Ok(S3Response::with_status(
            PutBucketPolicyOutput {},
            http::StatusCode::NO_CONTENT,
        ))
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> R<GetBucketPolicyOutput> {
        match self.get_text(&req.input.bucket, "policy").await? {
            Some(p) => ok(GetBucketPolicyOutput { policy: Some(p) }),
            None => Err(s3err(
                "NoSuchBucketPolicy",
                404,
                "The bucket policy does not exist",
            )),
        }
    }

    async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> R<DeleteBucketPolicyOutput> {
        self.del_cfg(&req.input.bucket, "policy").await?;
        Ok(S3Response::with_status(
            DeleteBucketPolicyOutput {},
            http::StatusCode::NO_CONTENT,
        ))
    }

    async fn put_bucket_cors(&self, req: S3Request<PutBucketCorsInput>) -> R<PutBucketCorsOutput> {
        self.put_cfg(&req.input.bucket, "cors", &req.input.cors_configuration)
            .await?;
        ok(PutBucketCorsOutput {})
    }

    async fn get_bucket_cors(&self, req: S3Request<GetBucketCorsInput>) -> R<GetBucketCorsOutput> {
        match self
            .get_cfg::<CORSConfiguration>(&req.input.bucket, "cors")
            .await?
        {
            Some(c) => ok(GetBucketCorsOutput {
                cors_rules: Some(c.cors_rules),
            }),
            None => Err(s3err(
                "NoSuchCORSConfiguration",
                404,
                "The CORS configuration does not exist",
            )),
        }
    }

    async fn delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> R<DeleteBucketCorsOutput> {
        self.del_cfg(&req.input.bucket, "cors").await?;
        Ok(S3Response::with_status(
            DeleteBucketCorsOutput {},
            http::StatusCode::NO_CONTENT,
        ))
    }

    async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> R<PutBucketLifecycleConfigurationOutput> {
        let cfg = req
            .input
            .lifecycle_configuration
            .ok_or_else(malformed_xml)?;
        self.put_cfg(&req.input.bucket, "lifecycle", &cfg).await?;
        ok(PutBucketLifecycleConfigurationOutput {
            transition_default_minimum_object_size: Some(
                TransitionDefaultMinimumObjectSize::from_static(
                    TransitionDefaultMinimumObjectSize::ALL_STORAGE_CLASSES_128K,
                ),
            ),
        })
    }

    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> R<GetBucketLifecycleConfigurationOutput> {
        match self
            .get_cfg::<BucketLifecycleConfiguration>(&req.input.bucket, "lifecycle")
            .await?
        {
            Some(c) => ok(GetBucketLifecycleConfigurationOutput {
                rules: Some(c.rules),
                transition_default_minimum_object_size: Some(
                    TransitionDefaultMinimumObjectSize::from_static(
                        TransitionDefaultMinimumObjectSize::ALL_STORAGE_CLASSES_128K,
                    ),
                ),
            }),
            None => Err(s3err(
                "NoSuchLifecycleConfiguration",
                404,
                "The lifecycle configuration does not exist",
            )),
        }
    }

    async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> R<DeleteBucketLifecycleOutput> {
        self.del_cfg(&req.input.bucket, "lifecycle").await?;
        Ok(S3Response::with_status(
            DeleteBucketLifecycleOutput {},
            http::StatusCode::NO_CONTENT,
        ))
    }

    async fn put_bucket_encryption(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> R<PutBucketEncryptionOutput> {
        self.put_cfg(
            &req.input.bucket,
            "encryption",
            &req.input.server_side_encryption_configuration,
        )
        .await?;
        ok(PutBucketEncryptionOutput {})
    }

    async fn get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> R<GetBucketEncryptionOutput> {
        // Every bucket is encrypted with SSE-S3 unless configured otherwise (AWS since 2023).
        let cfg = self
            .get_cfg::<ServerSideEncryptionConfiguration>(&req.input.bucket, "encryption")
            .await?
            .unwrap_or_else(|| ServerSideEncryptionConfiguration {
                rules: vec![ServerSideEncryptionRule {
                    apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
                        sse_algorithm: ServerSideEncryption::from_static(
                            ServerSideEncryption::AES256,
                        ),
                        kms_master_key_id: None,
                    }),
                    bucket_key_enabled: Some(false),
                    ..Default::default()
                }],
            });
        ok(GetBucketEncryptionOutput {
            server_side_encryption_configuration: Some(cfg),
        })
    }

    async fn delete_bucket_encryption(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> R<DeleteBucketEncryptionOutput> {
        self.del_cfg(&req.input.bucket, "encryption").await?;
        Ok(S3Response::with_status(
            DeleteBucketEncryptionOutput {},
            http::StatusCode::NO_CONTENT,
        ))
    }

    async fn put_bucket_website(
        &self,
        req: S3Request<PutBucketWebsiteInput>,
    ) -> R<PutBucketWebsiteOutput> {
        self.put_cfg(
            &req.input.bucket,
            "website",
            &req.input.website_configuration,
        )
        .await?;
        ok(PutBucketWebsiteOutput {})
    }

    async fn get_bucket_website(
        &self,
        req: S3Request<GetBucketWebsiteInput>,
    ) -> R<GetBucketWebsiteOutput> {
        match self
            .get_cfg::<WebsiteConfiguration>(&req.input.bucket, "website")
            .await?
        {
            Some(w) => ok(GetBucketWebsiteOutput {
                error_document: w.error_document,
                index_document: w.index_document,
                redirect_all_requests_to: w.redirect_all_requests_to,
                routing_rules: w.routing_rules,
            }),
            None => Err(s3err(
                "NoSuchWebsiteConfiguration",
                404,
                "The specified bucket does not have a website configuration",
            )),
        }
    }

    async fn delete_bucket_website(
        &self,
        req: S3Request<DeleteBucketWebsiteInput>,
    ) -> R<DeleteBucketWebsiteOutput> {
        self.del_cfg(&req.input.bucket, "website").await?;
        Ok(S3Response::with_status(
            DeleteBucketWebsiteOutput {},
            http::StatusCode::NO_CONTENT,
        ))
    }

    async fn put_bucket_logging(
        &self,
        req: S3Request<PutBucketLoggingInput>,
    ) -> R<PutBucketLoggingOutput> {
        self.put_cfg(
            &req.input.bucket,
            "logging",
            &req.input.bucket_logging_status,
        )
        .await?;
        ok(PutBucketLoggingOutput {})
    }

    async fn get_bucket_logging(
        &self,
        req: S3Request<GetBucketLoggingInput>,
    ) -> R<GetBucketLoggingOutput> {
        let s = self
            .get_cfg::<BucketLoggingStatus>(&req.input.bucket, "logging")
            .await?;
        ok(GetBucketLoggingOutput {
            logging_enabled: s.and_then(|s| s.logging_enabled),
        })
    }

    async fn put_bucket_accelerate_configuration(
        &self,
        req: S3Request<PutBucketAccelerateConfigurationInput>,
    ) -> R<PutBucketAccelerateConfigurationOutput> {
        self.put_cfg(
            &req.input.bucket,
            "accelerate",
            &req.input.accelerate_configuration,
        )
        .await?;
        ok(PutBucketAccelerateConfigurationOutput {})
    }

    async fn get_bucket_accelerate_configuration(
        &self,
        req: S3Request<GetBucketAccelerateConfigurationInput>,
    ) -> R<GetBucketAccelerateConfigurationOutput> {
        let c = self
            .get_cfg::<AccelerateConfiguration>(&req.input.bucket, "accelerate")
            .await?;
        ok(GetBucketAccelerateConfigurationOutput {
            status: c.and_then(|c| c.status),
            request_charged: None,
        })
    }

    async fn put_bucket_request_payment(
        &self,
        req: S3Request<PutBucketRequestPaymentInput>,
    ) -> R<PutBucketRequestPaymentOutput> {
        self.put_cfg(
            &req.input.bucket,
            "request-payment",
            &req.input.request_payment_configuration,
        )
        .await?;
        ok(PutBucketRequestPaymentOutput {})
    }

    async fn get_bucket_request_payment(
        &self,
        req: S3Request<GetBucketRequestPaymentInput>,
    ) -> R<GetBucketRequestPaymentOutput> {
        let c = self
            .get_cfg::<RequestPaymentConfiguration>(&req.input.bucket, "request-payment")
            .await?;
        ok(GetBucketRequestPaymentOutput {
            payer: Some(
                c.map(|c| c.payer)
                    .unwrap_or_else(|| Payer::from_static(Payer::BUCKET_OWNER)),
            ),
        })
    }

    async fn put_bucket_replication(
        &self,
        req: S3Request<PutBucketReplicationInput>,
    ) -> R<PutBucketReplicationOutput> {
        let b = self.engine.bucket(&req.input.bucket).await?;
        if b.versioning.as_deref() != Some("Enabled") {
            return Err(s3err(
                "InvalidRequest",
                400,
                "Versioning must be 'Enabled' on the bucket to apply a replication configuration",
            ));
        }
        self.put_cfg(
            &req.input.bucket,
            "replication",
            &req.input.replication_configuration,
        )
        .await?;
        ok(PutBucketReplicationOutput {})
    }

    async fn get_bucket_replication(
        &self,
        req: S3Request<GetBucketReplicationInput>,
    ) -> R<GetBucketReplicationOutput> {
        match self
            .get_cfg::<ReplicationConfiguration>(&req.input.bucket, "replication")
            .await?
        {
            Some(c) => ok(GetBucketReplicationOutput {
                replication_configuration: Some(c),
            }),
            None => Err(s3err(
                "ReplicationConfigurationNotFoundError",
                404,
                "The replication configuration was not found",
            )),
        }
    }

    async fn delete_bucket_replication(
        &self,
        req: S3Request<DeleteBucketReplicationInput>,
    ) -> R<DeleteBucketReplicationOutput> {
        self.del_cfg(&req.input.bucket, "replication").await?;
        Ok(S3Response::with_status(
            DeleteBucketReplicationOutput {},
            http::StatusCode::NO_CONTENT,
        ))
    }

    async fn put_object_lock_configuration(
        &self,
        req: S3Request<PutObjectLockConfigurationInput>,
    ) -> R<PutObjectLockConfigurationOutput> {
        let cfg = req
            .input
            .object_lock_configuration
            .ok_or_else(malformed_xml)?;
        let b = self.engine.bucket(&req.input.bucket).await?;
        if b.versioning.as_deref() != Some("Enabled") {
            return Err(s3err(
                "InvalidBucketState",
                409,
                "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
            ));
        }
        self.put_cfg(&req.input.bucket, "object-lock", &cfg).await?;
        ok(PutObjectLockConfigurationOutput {
            request_charged: None,
        })
    }

    async fn get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> R<GetObjectLockConfigurationOutput> {
        match self
            .get_cfg::<ObjectLockConfiguration>(&req.input.bucket, "object-lock")
            .await?
        {
            Some(c) => ok(GetObjectLockConfigurationOutput {
                object_lock_configuration: Some(c),
            }),
            None => Err(s3err(
                "ObjectLockConfigurationNotFoundError",
                404,
                "Object Lock configuration does not exist for this bucket",
            )),
        }
    }

    async fn put_public_access_block(
        &self,
        req: S3Request<PutPublicAccessBlockInput>,
    ) -> R<PutPublicAccessBlockOutput> {
        self.put_cfg(
            &req.input.bucket,
            "public-access-block",
            &req.input.public_access_block_configuration,
        )
        .await?;
        ok(PutPublicAccessBlockOutput {})
    }

    async fn get_public_access_block(
        &self,
        req: S3Request<GetPublicAccessBlockInput>,
    ) -> R<GetPublicAccessBlockOutput> {
        match self
            .get_cfg::<PublicAccessBlockConfiguration>(&req.input.bucket, "public-access-block")
            .await?
        {
            Some(c) => ok(GetPublicAccessBlockOutput {
                public_access_block_configuration: Some(c),
            }),
            None => Err(s3err(
                "NoSuchPublicAccessBlockConfiguration",
                404,
                "The public access block configuration was not found",
            )),
        }
    }

    async fn delete_public_access_block(
        &self,
        req: S3Request<DeletePublicAccessBlockInput>,
    ) -> R<DeletePublicAccessBlockOutput> {
        self.del_cfg(&req.input.bucket, "public-access-block")
            .await?;
        Ok(S3Response::with_status(
            DeletePublicAccessBlockOutput {},
            http::StatusCode::NO_CONTENT,
        ))
    }

    async fn put_bucket_ownership_controls(
        &self,
        req: S3Request<PutBucketOwnershipControlsInput>,
    ) -> R<PutBucketOwnershipControlsOutput> {
        self.put_cfg(
            &req.input.bucket,
            "ownership-controls",
            &req.input.ownership_controls,
        )
        .await?;
        ok(PutBucketOwnershipControlsOutput {})
    }

    async fn get_bucket_ownership_controls(
        &self,
        req: S3Request<GetBucketOwnershipControlsInput>,
    ) -> R<GetBucketOwnershipControlsOutput> {
        match self
            .get_cfg::<OwnershipControls>(&req.input.bucket, "ownership-controls")
            .await?
        {
            Some(c) => ok(GetBucketOwnershipControlsOutput {
                ownership_controls: Some(c),
            }),
            None => Err(s3err(
                "OwnershipControlsNotFoundError",
                404,
                "The bucket ownership controls were not found",
            )),
        }
    }

    async fn delete_bucket_ownership_controls(
        &self,
        req: S3Request<DeleteBucketOwnershipControlsInput>,
    ) -> R<DeleteBucketOwnershipControlsOutput> {
        self.del_cfg(&req.input.bucket, "ownership-controls")
            .await?;
        Ok(S3Response::with_status(
            DeleteBucketOwnershipControlsOutput {},
            http::StatusCode::NO_CONTENT,
        ))
    }

    async fn put_bucket_acl(&self, req: S3Request<PutBucketAclInput>) -> R<PutBucketAclOutput> {
        let i = req.input;
        if let Some(policy) = &i.access_control_policy {
            self.put_cfg(&i.bucket, "acl-policy", policy).await?;
            self.del_cfg(&i.bucket, "canned-acl").await?;
        } else {
            let acl = i
                .acl
                .map(|a| a.as_str().to_string())
                .unwrap_or_else(|| "private".into());
            self.put_text(&i.bucket, "canned-acl", &acl).await?;
            self.del_cfg(&i.bucket, "acl-policy").await?;
        }
        ok(PutBucketAclOutput {})
    }

    async fn get_bucket_acl(&self, req: S3Request<GetBucketAclInput>) -> R<GetBucketAclOutput> {
        let b = self.engine.bucket(&req.input.bucket).await?;
        if let Some(p) = self
            .get_cfg::<AccessControlPolicy>(&req.input.bucket, "acl-policy")
            .await?
        {
            return ok(GetBucketAclOutput {
                grants: p.grants,
                owner: p.owner.or_else(|| Some(owner(&b.account))),
            });
        }
        let acl = b.configs.get("canned-acl").and_then(|v| v.as_str());
        ok(GetBucketAclOutput {
            grants: Some(self.grants(&b.account, acl)),
            owner: Some(owner(&b.account)),
        })
    }

    // ---- objects -------------------------------------------------------------------------

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> R<PutObjectOutput> {
        validate_key(&req.input.key)?;
        let b = self.engine.bucket(&req.input.bucket).await?;
        let i = &req.input;
        if i.if_none_match.is_some() || i.if_match.is_some() {
            // Conditional writes: If-None-Match (`*` or an ETag) and If-Match, all 412 when
            // they fail; If-Match on a missing key is NoSuchKey.
            match self.engine.get_version(&b.name, &i.key, None).await.ok() {
                Some(cur) => check_conditions(
                    &cur,
                    i.if_match.as_ref(),
                    None,
                    i.if_none_match.as_ref(),
                    None,
                    true,
                )?,
                None if i.if_match.is_some() => {
                    return Err(s3err("NoSuchKey", 404, "The specified key does not exist."));
                }
                None => {}
            }
        }
        let provided = Checksum {
            checksum_crc32: i.checksum_crc32.clone(),
            checksum_crc32c: i.checksum_crc32c.clone(),
            checksum_sha1: i.checksum_sha1.clone(),
            checksum_sha256: i.checksum_sha256.clone(),
            checksum_crc64nvme: i.checksum_crc64nvme.clone(),
            checksum_type: None,
        };
        let claim = checksum_claim(&req.headers, i.checksum_algorithm.as_ref(), &provided);
        let tags = parse_tagging_header(i.tagging.as_deref())?;
        let headers = stored_headers(
            i.content_type.clone(),
            i.content_encoding.clone(),
            i.content_disposition.clone(),
            i.content_language.clone(),
            i.cache_control.clone(),
            i.expires.as_ref(),
            i.website_redirect_location.clone(),
            i.storage_class.as_ref(),
            i.acl.as_ref(),
        );
        let metadata: BTreeMap<String, String> =
            i.metadata.clone().unwrap_or_default().into_iter().collect();
        let (content_length, content_md5) = (i.content_length, i.content_md5.clone());
        let mut req = req;
        let body = req.input.body.take();
        let (written, checksum) = receive(
            &self.engine,
            &req,
            body,
            content_length,
            content_md5.as_deref(),
            &claim,
        )
        .await?;
        let doc = ObjectDoc {
            key: req.input.key.clone(),
            blobs: vec![written.blob.clone()],
            size: written.blob.size,
            etag: hex::encode(written.md5),
            last_modified_ms: now_ms(),
            headers,
            metadata,
            tags,
            checksum: checksum.clone(),
            ..Default::default()
        };
        let stored = match self
            .engine
            .commit_version(&b.name, doc, codeyard_store::Batch::new())
            .await
        {
            Ok(s) => s,
            Err(e) => {
                self.engine.blobs.delete(&[written.blob]).await;
                return Err(e);
            }
        };
        let c = checksum
            .map(|(a, v)| checksum_with(&a, v))
            .unwrap_or_default();
        ok(PutObjectOutput {
            e_tag: Some(etag(&stored.etag)),
            version_id: version_out(&stored.version_id),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            checksum_crc64nvme: c.checksum_crc64nvme,
            checksum_type: stored
                .checksum
                .as_ref()
                .map(|_| ChecksumType::from_static(ChecksumType::FULL_OBJECT)),
            server_side_encryption: Some(ServerSideEncryption::from_static(
                ServerSideEncryption::AES256,
            )),
            ..Default::default()
        })
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> R<GetObjectOutput> {
        let i = req.input;
        let o = self
            .engine
            .get_version(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        check_conditions(
            &o,
            i.if_match.as_ref(),
            i.if_unmodified_since.as_ref(),
            i.if_none_match.as_ref(),
            i.if_modified_since.as_ref(),
            false,
        )?;
        let range = range_of(&o, i.range.as_ref(), i.part_number)?;
        let whole = range.is_none();
        let r = range.clone().unwrap_or(0..o.size);
        let len = r.end - r.start;
        let body = ObjectBody::new(self.engine.blobs.read(&o.blobs, r.clone()), len);
        let mut out = GetObjectOutput::default();
        headers_out!(out, o);
        let c = if i.checksum_mode.is_some() {
            checksum_out(&o, whole)
        } else {
            Checksum::default()
        };
        out.checksum_crc32 = c.checksum_crc32;
        out.checksum_crc32c = c.checksum_crc32c;
        out.checksum_sha1 = c.checksum_sha1;
        out.checksum_sha256 = c.checksum_sha256;
        out.checksum_crc64nvme = c.checksum_crc64nvme;
        out.checksum_type = c.checksum_type;
        out.content_length = Some(len as i64);
        if !whole {
            out.content_range = Some(format!(
                "bytes {}-{}/{}",
                r.start,
                r.end.saturating_sub(1),
                o.size
            ));
        }
        out.tag_count = (!o.tags.is_empty()).then_some(o.tags.len() as i32);
        out.body = Some(StreamingBlob::new(body));
        if let Some(v) = i.response_content_type {
            out.content_type = Some(v);
        }
        if let Some(v) = i.response_content_disposition {
            out.content_disposition = Some(v);
        }
        if let Some(v) = i.response_content_encoding {
            out.content_encoding = Some(v);
        }
        if let Some(v) = i.response_content_language {
            out.content_language = Some(v);
        }
        if let Some(v) = i.response_cache_control {
            out.cache_control = Some(v);
        }
        if let Some(v) = i.response_expires {
            out.expires = Some(v);
        }
        ok(out)
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> R<HeadObjectOutput> {
        let i = req.input;
        let o = self
            .engine
            .get_version(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        check_conditions(
            &o,
            i.if_match.as_ref(),
            i.if_unmodified_since.as_ref(),
            i.if_none_match.as_ref(),
            i.if_modified_since.as_ref(),
            false,
        )?;
        let range = range_of(&o, i.range.as_ref(), i.part_number)?;
        let mut out = HeadObjectOutput::default();
        headers_out!(out, o);
        let whole = range.is_none();
        let c = if i.checksum_mode.is_some() {
            checksum_out(&o, whole)
        } else {
            Checksum::default()
        };
        out.checksum_crc32 = c.checksum_crc32;
        out.checksum_crc32c = c.checksum_crc32c;
        out.checksum_sha1 = c.checksum_sha1;
        out.checksum_sha256 = c.checksum_sha256;
        out.checksum_crc64nvme = c.checksum_crc64nvme;
        out.checksum_type = c.checksum_type;
        match range {
            Some(r) => {
                out.content_length = Some((r.end - r.start) as i64);
                out.content_range = Some(format!(
                    "bytes {}-{}/{}",
                    r.start,
                    r.end.saturating_sub(1),
                    o.size
                ));
            }
            None => out.content_length = Some(o.size as i64),
        }
        let mut headers = http::HeaderMap::new();
        if !o.tags.is_empty() {
            headers.insert("x-amz-tagging-count", http::HeaderValue::from(o.tags.len()));
        }
        Ok(S3Response::with_headers(out, headers))
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> R<DeleteObjectOutput> {
        let i = req.input;
        if let Some(m) = &i.if_match {
            let cur = self.engine.get_version(&i.bucket, &i.key, None).await?;
            check_conditions(&cur, Some(m), None, None, None, true)?;
        }
        let d = self
            .engine
            .delete_object(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        Ok(S3Response::with_status(
            DeleteObjectOutput {
                delete_marker: d.delete_marker.then_some(true),
                // Deleting in a versioned bucket names the version ("null" included), as AWS does.
                version_id: d.version_id,
                request_charged: None,
            },
            http::StatusCode::NO_CONTENT,
        ))
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> R<DeleteObjectsOutput> {
        let i = req.input;
        self.engine.bucket(&i.bucket).await?;
        if i.delete.objects.len() > 1000 {
            return Err(malformed_xml());
        }
        let quiet = i.delete.quiet == Some(true);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for o in i.delete.objects {
            match self
                .engine
                .delete_object(&i.bucket, &o.key, o.version_id.as_deref())
                .await
            {
                Ok(d) => {
                    if !quiet {
                        let (version_id, marker_version) = match (&o.version_id, d.delete_marker) {
                            (Some(v), _) => (Some(v.clone()), None),
                            (None, true) => (None, d.version_id.clone()),
                            (None, false) => (None, None),
                        };
                        deleted.push(DeletedObject {
                            key: Some(o.key),
                            version_id,
                            delete_marker: d.delete_marker.then_some(true),
                            delete_marker_version_id: marker_version.or_else(|| {
                                if d.delete_marker {
                                    o.version_id.clone()
                                } else {
                                    None
                                }
                            }),
                        });
                    }
                }
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_string()),
                    key: Some(o.key),
                    message: e.message().map(str::to_string),
                    version_id: o.version_id,
                }),
            }
        }
        ok(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            request_charged: None,
        })
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> R<CopyObjectOutput> {
        let i = req.input;
        validate_key(&i.key)?;
        self.engine.bucket(&i.bucket).await?;
        let src = self.copy_source(&i.copy_source).await?;
        check_conditions(
            &src,
            i.copy_source_if_match.as_ref(),
            i.copy_source_if_unmodified_since.as_ref(),
            i.copy_source_if_none_match.as_ref(),
            i.copy_source_if_modified_since.as_ref(),
            true,
        )?;
        let replace = i
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == "REPLACE");
        let replace_tags = i
            .tagging_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == "REPLACE");
        let (src_bucket, src_key) = match &i.copy_source {
            CopySource::Bucket { bucket, key, .. } => (bucket.to_string(), key.to_string()),
            _ => unreachable!("rejected by copy_source"),
        };
        if src_bucket == i.bucket
            && src_key == i.key
            && !replace
            && i.storage_class.is_none()
            && i.website_redirect_location.is_none()
            && i.server_side_encryption.is_none()
        {
            return Err(s3err(
                "InvalidRequest",
                400,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
            ));
        }
        let algo = i
            .checksum_algorithm
            .as_ref()
            .map(|a| a.as_str().to_ascii_uppercase())
            .or_else(|| src.checksum.as_ref().map(|c| c.0.clone()));
        let written = self.write_copy(&src, None, algo.as_deref()).await?;
        let (headers, metadata) = if replace {
            (
                stored_headers(
                    i.content_type.clone(),
                    i.content_encoding.clone(),
                    i.content_disposition.clone(),
                    i.content_language.clone(),
                    i.cache_control.clone(),
                    i.expires.as_ref(),
                    i.website_redirect_location.clone(),
                    i.storage_class.as_ref(),
                    i.acl.as_ref(),
                ),
                i.metadata.clone().unwrap_or_default().into_iter().collect(),
            )
        } else {
            let mut h = src.headers.clone();
            if let Some(sc) = &i.storage_class {
                h.storage_class = Some(sc.as_str().to_string()).filter(|s| s != "STANDARD");
            }
            if let Some(w) = &i.website_redirect_location {
                h.website_redirect_location = Some(w.clone());
            }
            (h, src.metadata.clone())
        };
        let tags = if replace_tags {
            parse_tagging_header(i.tagging.as_deref())?
        } else {
            src.tags.clone()
        };
        let checksum = algo
            .as_ref()
            .and_then(|a| checksum_value(&written.checksum, a).map(|v| (a.clone(), v)));
        let doc = ObjectDoc {
            key: i.key.clone(),
            blobs: vec![written.blob.clone()],
            size: written.blob.size,
            etag: hex::encode(written.md5),
            last_modified_ms: now_ms(),
            headers,
            metadata,
            tags,
            checksum: checksum.clone(),
            ..Default::default()
        };
        let stored = match self
            .engine
            .commit_version(&i.bucket, doc, codeyard_store::Batch::new())
            .await
        {
            Ok(s) => s,
            Err(e) => {
                self.engine.blobs.delete(&[written.blob]).await;
                return Err(e);
            }
        };
        let c = checksum
            .map(|(a, v)| checksum_with(&a, v))
            .unwrap_or_default();
        ok(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag(&stored.etag)),
                last_modified: Some(ts(stored.last_modified_ms)),
                checksum_crc32: c.checksum_crc32,
                checksum_crc32c: c.checksum_crc32c,
                checksum_sha1: c.checksum_sha1,
                checksum_sha256: c.checksum_sha256,
                checksum_crc64nvme: c.checksum_crc64nvme,
                checksum_type: stored
                    .checksum
                    .as_ref()
                    .map(|_| ChecksumType::from_static(ChecksumType::FULL_OBJECT)),
            }),
            copy_source_version_id: version_out(&src.version_id),
            version_id: version_out(&stored.version_id),
            server_side_encryption: Some(ServerSideEncryption::from_static(
                ServerSideEncryption::AES256,
            )),
            ..Default::default()
        })
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> R<ListObjectsV2Output> {
        use base64::Engine as _;
        let i = req.input;
        let url = i
            .encoding_type
            .as_ref()
            .is_some_and(|e| e.as_str() == "url");
        let max = i.max_keys.unwrap_or(1000).clamp(0, 1000) as usize;
        let prefix = i.prefix.clone().unwrap_or_default();
        let token_key = match &i.continuation_token {
            Some(t) => Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        s3err(
                            "InvalidArgument",
                            400,
                            "The continuation token provided is incorrect",
                        )
                    })?,
            ),
            None => None,
        };
        let start = match (&token_key, &i.start_after) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(s)) => Some(s.clone()),
            _ => None,
        };
        let l = self
            .engine
            .list_objects(
                &i.bucket,
                &prefix,
                i.delimiter.as_deref(),
                start.as_deref(),
                max,
            )
            .await?;
        let ctx_owner = i.fetch_owner.unwrap_or(false);
        let mut contents = Vec::new();
        let mut cps = Vec::new();
        let account = if ctx_owner {
            Some(self.engine.bucket(&i.bucket).await?.account)
        } else {
            None
        };
        for e in l.entries {
            match e {
                Listed::Object(o) => contents.push(Object {
                    key: Some(enc(o.key, url)),
                    e_tag: Some(etag(&o.etag)),
                    last_modified: Some(ts(o.last_modified_ms)),
                    size: Some(o.size as i64),
                    storage_class: Some(ObjectStorageClass::from(
                        o.headers.storage_class.unwrap_or_else(|| "STANDARD".into()),
                    )),
                    owner: account.as_deref().map(owner),
                    checksum_algorithm: o.checksum.map(|(a, _)| vec![ChecksumAlgorithm::from(a)]),
                    ..Default::default()
                }),
                Listed::Prefix(p) => cps.push(CommonPrefix {
                    prefix: Some(enc(p, url)),
                }),
            }
        }
        let key_count = (contents.len() + cps.len()) as i32;
        ok(ListObjectsV2Output {
            name: Some(i.bucket),
            prefix: Some(enc(prefix, url)),
            max_keys: Some(max as i32),
            key_count: Some(key_count),
            continuation_token: i.continuation_token,
            is_truncated: Some(l.truncated),
            next_continuation_token: if l.truncated {
                l.last
                    .map(|k| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(k))
            } else {
                None
            },
            contents: (!contents.is_empty()).then_some(contents),
            common_prefixes: (!cps.is_empty()).then_some(cps),
            delimiter: i.delimiter.filter(|d| !d.is_empty()).map(|d| enc(d, url)),
            encoding_type: i.encoding_type,
            start_after: i.start_after.map(|s| enc(s, url)),
            request_charged: None,
        })
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> R<ListObjectsOutput> {
        let i = req.input;
        let url = i
            .encoding_type
            .as_ref()
            .is_some_and(|e| e.as_str() == "url");
        let max = i.max_keys.unwrap_or(1000).clamp(0, 1000) as usize;
        let prefix = i.prefix.clone().unwrap_or_default();
        let l = self
            .engine
            .list_objects(
                &i.bucket,
                &prefix,
                i.delimiter.as_deref(),
                i.marker.as_deref(),
                max,
            )
            .await?;
        let account = self.engine.bucket(&i.bucket).await?.account;
        let mut contents = Vec::new();
        let mut cps = Vec::new();
        for e in l.entries {
            match e {
                Listed::Object(o) => contents.push(Object {
                    key: Some(enc(o.key, url)),
                    e_tag: Some(etag(&o.etag)),
                    last_modified: Some(ts(o.last_modified_ms)),
                    size: Some(o.size as i64),
                    storage_class: Some(ObjectStorageClass::from(
                        o.headers.storage_class.unwrap_or_else(|| "STANDARD".into()),
                    )),
                    owner: Some(owner(&account)),
                    ..Default::default()
                }),
                Listed::Prefix(p) => cps.push(CommonPrefix {
                    prefix: Some(enc(p, url)),
                }),
            }
        }
        ok(ListObjectsOutput {
            name: Some(i.bucket),
            prefix: Some(prefix),
            marker: Some(enc(i.marker.unwrap_or_default(), url)),
            max_keys: Some(max as i32),
            is_truncated: Some(l.truncated),
            next_marker: if l.truncated && i.delimiter.is_some() {
                l.last.map(|k| enc(k, url))
            } else {
                None
            },
            contents: (!contents.is_empty()).then_some(contents),
            common_prefixes: (!cps.is_empty()).then_some(cps),
            delimiter: i.delimiter.filter(|d| !d.is_empty()).map(|d| enc(d, url)),
            encoding_type: i.encoding_type,
            request_charged: None,
        })
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> R<ListObjectVersionsOutput> {
        let i = req.input;
        let url = i
            .encoding_type
            .as_ref()
            .is_some_and(|e| e.as_str() == "url");
        let max = i.max_keys.unwrap_or(1000).clamp(0, 1000) as usize;
        let prefix = i.prefix.clone().unwrap_or_default();
        let account = self.engine.bucket(&i.bucket).await?.account;
        let (l, _) = self
            .engine
            .list_versions(
                &i.bucket,
                &prefix,
                i.delimiter.as_deref(),
                i.key_marker.as_deref(),
                i.version_id_marker.as_deref(),
                max,
            )
            .await?;
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        let mut cps = Vec::new();
        let mut last_key: Option<String> = i
            .key_marker
            .clone()
            .filter(|_| i.version_id_marker.is_some());
        let mut next_version: Option<String> = None;
        for e in l.entries {
            match e {
                Listed::Object(o) => {
                    let is_latest = last_key.as_deref() != Some(o.key.as_str());
                    last_key = Some(o.key.clone());
                    next_version = Some(o.version_id.clone());
                    if o.delete_marker {
                        markers.push(DeleteMarkerEntry {
                            is_latest: Some(is_latest),
                            key: Some(enc(o.key, url)),
                            last_modified: Some(ts(o.last_modified_ms)),
                            owner: Some(owner(&account)),
                            version_id: Some(o.version_id),
                        });
                    } else {
                        versions.push(ObjectVersion {
                            is_latest: Some(is_latest),
                            key: Some(enc(o.key, url)),
                            last_modified: Some(ts(o.last_modified_ms)),
                            owner: Some(owner(&account)),
                            version_id: Some(o.version_id),
                            e_tag: Some(etag(&o.etag)),
                            size: Some(o.size as i64),
                            storage_class: Some(ObjectVersionStorageClass::from_static(
                                ObjectVersionStorageClass::STANDARD,
                            )),
                            checksum_algorithm: o
                                .checksum
                                .map(|(a, _)| vec![ChecksumAlgorithm::from(a)]),
                            ..Default::default()
                        });
                    }
                }
                Listed::Prefix(p) => {
                    next_version = None;
                    cps.push(CommonPrefix {
                        prefix: Some(enc(p, url)),
                    })
                }
            }
        }
        ok(ListObjectVersionsOutput {
            name: Some(i.bucket),
            prefix: Some(enc(prefix, url)),
            key_marker: Some(enc(i.key_marker.unwrap_or_default(), url)),
            version_id_marker: Some(i.version_id_marker.unwrap_or_default()),
            max_keys: Some(max as i32),
            is_truncated: Some(l.truncated),
            next_key_marker: if l.truncated {
                l.last.map(|k| enc(k, url))
            } else {
                None
            },
            next_version_id_marker: if l.truncated { next_version } else { None },
            versions: (!versions.is_empty()).then_some(versions),
            delete_markers: (!markers.is_empty()).then_some(markers),
            common_prefixes: (!cps.is_empty()).then_some(cps),
            delimiter: i.delimiter.filter(|d| !d.is_empty()).map(|d| enc(d, url)),
            encoding_type: i.encoding_type,
            request_charged: None,
        })
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> R<GetObjectTaggingOutput> {
        let i = req.input;
        let o = self
            .engine
            .get_version(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        ok(GetObjectTaggingOutput {
            tag_set: tag_set(&o.tags),
            version_id: version_out(&o.version_id),
        })
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> R<PutObjectTaggingOutput> {
        let i = req.input;
        let tags = from_tag_set(&i.tagging.tag_set);
        validate_tags(&tags)?;
        let o = self
            .engine
            .set_tags(&i.bucket, &i.key, i.version_id.as_deref(), tags)
            .await?;
        ok(PutObjectTaggingOutput {
            version_id: version_out(&o.version_id),
        })
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> R<DeleteObjectTaggingOutput> {
        let i = req.input;
        let o = self
            .engine
            .set_tags(&i.bucket, &i.key, i.version_id.as_deref(), Vec::new())
            .await?;
        Ok(S3Response::with_status(
            DeleteObjectTaggingOutput {
                version_id: version_out(&o.version_id),
            },
            http::StatusCode::NO_CONTENT,
        ))
    }

    async fn get_object_acl(&self, req: S3Request<GetObjectAclInput>) -> R<GetObjectAclOutput> {
        let i = req.input;
        let b = self.engine.bucket(&i.bucket).await?;
        let o = self
            .engine
            .get_version(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        ok(GetObjectAclOutput {
            grants: Some(self.grants(&b.account, o.headers.acl.as_deref())),
            owner: Some(owner(&b.account)),
            request_charged: None,
        })
    }

    async fn put_object_acl(&self, req: S3Request<PutObjectAclInput>) -> R<PutObjectAclOutput> {
        let i = req.input;
        // The grant itself is not enforced (codeyard has no anonymous access); the object
        // must exist, as in AWS.
        self.engine
            .get_version(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        ok(PutObjectAclOutput {
            request_charged: None,
        })
    }

    // ---- multipart -----------------------------------------------------------------------

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> R<CreateMultipartUploadOutput> {
        let i = req.input;
        validate_key(&i.key)?;
        let tags = parse_tagging_header(i.tagging.as_deref())?;
        let upload = UploadDoc {
            upload_id: uuid::Uuid::new_v4().simple().to_string(),
            key: i.key.clone(),
            initiated_ms: now_ms(),
            headers: stored_headers(
                i.content_type.clone(),
                i.content_encoding.clone(),
                i.content_disposition.clone(),
                i.content_language.clone(),
                i.cache_control.clone(),
                i.expires.as_ref(),
                i.website_redirect_location.clone(),
                i.storage_class.as_ref(),
                i.acl.as_ref(),
            ),
            metadata: i.metadata.clone().unwrap_or_default().into_iter().collect(),
            tags,
            checksum_algorithm: i
                .checksum_algorithm
                .as_ref()
                .map(|a| a.as_str().to_ascii_uppercase()),
        };
        self.engine.create_upload(&i.bucket, &upload).await?;
        ok(CreateMultipartUploadOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(upload.upload_id),
            checksum_algorithm: i.checksum_algorithm,
            checksum_type: upload
                .checksum_algorithm
                .as_ref()
                .map(|_| ChecksumType::from_static(ChecksumType::COMPOSITE)),
            server_side_encryption: Some(ServerSideEncryption::from_static(
                ServerSideEncryption::AES256,
            )),
            ..Default::default()
        })
    }

    async fn upload_part(&self, mut req: S3Request<UploadPartInput>) -> R<UploadPartOutput> {
        let (bucket, key, upload_id, number) = (
            req.input.bucket.clone(),
            req.input.key.clone(),
            req.input.upload_id.clone(),
            req.input.part_number,
        );
        if !(1..=10_000).contains(&number) {
            return Err(s3err(
                "InvalidArgument",
                400,
                "Part number must be an integer between 1 and 10000, inclusive",
            ));
        }
        self.engine.upload(&bucket, &key, &upload_id).await?;
        let i = &req.input;
        let provided = Checksum {
            checksum_crc32: i.checksum_crc32.clone(),
            checksum_crc32c: i.checksum_crc32c.clone(),
            checksum_sha1: i.checksum_sha1.clone(),
            checksum_sha256: i.checksum_sha256.clone(),
            checksum_crc64nvme: i.checksum_crc64nvme.clone(),
            checksum_type: None,
        };
        let claim = checksum_claim(&req.headers, i.checksum_algorithm.as_ref(), &provided);
        let (content_length, content_md5) = (i.content_length, i.content_md5.clone());
        let body = req.input.body.take();
        let (written, checksum) = receive(
            &self.engine,
            &req,
            body,
            content_length,
            content_md5.as_deref(),
            &claim,
        )
        .await?;
        let part = PartDoc {
            number,
            blob: written.blob.clone(),
            etag: hex::encode(written.md5),
            last_modified_ms: now_ms(),
            checksum: checksum.clone(),
        };
        if let Err(e) = self
            .engine
            .put_part(&bucket, &key, &upload_id, part.clone())
            .await
        {
            self.engine.blobs.delete(&[written.blob]).await;
            return Err(e);
        }
        let c = checksum
            .map(|(a, v)| checksum_with(&a, v))
            .unwrap_or_default();
        ok(UploadPartOutput {
            e_tag: Some(etag(&part.etag)),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            checksum_crc64nvme: c.checksum_crc64nvme,
            server_side_encryption: Some(ServerSideEncryption::from_static(
                ServerSideEncryption::AES256,
            )),
            ..Default::default()
        })
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> R<UploadPartCopyOutput> {
        let i = req.input;
        if !(1..=10_000).contains(&i.part_number) {
            return Err(s3err(
                "InvalidArgument",
                400,
                "Part number must be an integer between 1 and 10000, inclusive",
            ));
        }
        let upload = self.engine.upload(&i.bucket, &i.key, &i.upload_id).await?;
        let src = self.copy_source(&i.copy_source).await?;
        check_conditions(
            &src,
            i.copy_source_if_match.as_ref(),
            i.copy_source_if_unmodified_since.as_ref(),
            i.copy_source_if_none_match.as_ref(),
            i.copy_source_if_modified_since.as_ref(),
            true,
        )?;
        let range = match &i.copy_source_range {
            Some(r) => {
                let parsed = Range::parse(r).map_err(|_| s3err("InvalidArgument", 400, "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"))?;
                // A copy range must lie inside the source (no clamping, unlike GET).
                let beyond =
                    matches!(parsed, Range::Int { last: Some(last), .. } if last >= src.size);
                if beyond {
                    return Err(s3err(
                        "InvalidRange",
                        416,
                        format!(
                            "Range specified is not valid for source object of size: {}",
                            src.size
                        ),
                    ));
                }
                Some(parsed.check(src.size).map_err(|_| {
                    s3err(
                        "InvalidRange",
                        416,
                        "The requested range is not satisfiable",
                    )
                })?)
            }
            None => None,
        };
        let written = self
            .write_copy(&src, range, upload.checksum_algorithm.as_deref())
            .await?;
        let checksum = upload
            .checksum_algorithm
            .as_ref()
            .and_then(|a| checksum_value(&written.checksum, a).map(|v| (a.clone(), v)));
        let part = PartDoc {
            number: i.part_number,
            blob: written.blob.clone(),
            etag: hex::encode(written.md5),
            last_modified_ms: now_ms(),
            checksum: checksum.clone(),
        };
        if let Err(e) = self
            .engine
            .put_part(&i.bucket, &i.key, &i.upload_id, part.clone())
            .await
        {
            self.engine.blobs.delete(&[written.blob]).await;
            return Err(e);
        }
        let c = checksum
            .map(|(a, v)| checksum_with(&a, v))
            .unwrap_or_default();
        ok(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(etag(&part.etag)),
                last_modified: Some(ts(part.last_modified_ms)),
                checksum_crc32: c.checksum_crc32,
                checksum_crc32c: c.checksum_crc32c,
                checksum_sha1: c.checksum_sha1,
                checksum_sha256: c.checksum_sha256,
                checksum_crc64nvme: c.checksum_crc64nvme,
            }),
            copy_source_version_id: version_out(&src.version_id),
            ..Default::default()
        })
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> R<CompleteMultipartUploadOutput> {
        let ctx = ctx_of(&req);
        let i = req.input;
        let listed: Vec<(i32, String)> = i
            .multipart_upload
            .as_ref()
            .and_then(|m| m.parts.as_ref())
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        (
                            p.part_number.unwrap_or(0),
                            p.e_tag
                                .as_ref()
                                .map(|e| e.value().to_string())
                                .unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let o = self
            .engine
            .complete_upload(&i.bucket, &i.key, &i.upload_id, &listed)
            .await?;
        ok(CompleteMultipartUploadOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            e_tag: Some(etag(&o.etag)),
            location: Some(format!("{}/{}/{}", ctx.endpoint, i.bucket, i.key)),
            version_id: version_out(&o.version_id),
            server_side_encryption: Some(ServerSideEncryption::from_static(
                ServerSideEncryption::AES256,
            )),
            ..Default::default()
        })
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> R<AbortMultipartUploadOutput> {
        let i = req.input;
        self.engine
            .abort_upload(&i.bucket, &i.key, &i.upload_id)
            .await?;
        Ok(S3Response::with_status(
            AbortMultipartUploadOutput {
                request_charged: None,
            },
            http::StatusCode::NO_CONTENT,
        ))
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> R<ListPartsOutput> {
        let i = req.input;
        let upload = self.engine.upload(&i.bucket, &i.key, &i.upload_id).await?;
        let account = self.engine.bucket(&i.bucket).await?.account;
        let max = i.max_parts.unwrap_or(1000).clamp(0, 1000) as usize;
        let marker = i.part_number_marker.unwrap_or(0);
        let all: Vec<PartDoc> = self
            .engine
            .parts(&i.upload_id)
            .await?
            .into_iter()
            .filter(|p| p.number > marker)
            .collect();
        let truncated = all.len() > max;
        let parts: Vec<Part> = all
            .iter()
            .take(max)
            .map(|p| {
                let c = p
                    .checksum
                    .clone()
                    .map(|(a, v)| checksum_with(&a, v))
                    .unwrap_or_default();
                Part {
                    part_number: Some(p.number),
                    e_tag: Some(etag(&p.etag)),
                    size: Some(p.blob.size as i64),
                    last_modified: Some(ts(p.last_modified_ms)),
                    checksum_crc32: c.checksum_crc32,
                    checksum_crc32c: c.checksum_crc32c,
                    checksum_sha1: c.checksum_sha1,
                    checksum_sha256: c.checksum_sha256,
                    checksum_crc64nvme: c.checksum_crc64nvme,
                }
            })
            .collect();
        let next = if truncated {
            parts.last().and_then(|p| p.part_number)
        } else {
            None
        };
        ok(ListPartsOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(i.upload_id),
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            part_number_marker: i.part_number_marker,
            next_part_number_marker: next,
            parts: (!parts.is_empty()).then_some(parts),
            owner: Some(owner(&account)),
            initiator: Some(Initiator {
                id: owner(&account).id,
                display_name: Some("codeyard".into()),
            }),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            checksum_algorithm: upload.checksum_algorithm.map(ChecksumAlgorithm::from),
            ..Default::default()
        })
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> R<ListMultipartUploadsOutput> {
        let i = req.input;
        let url = i
            .encoding_type
            .as_ref()
            .is_some_and(|e| e.as_str() == "url");
        let account = self.engine.bucket(&i.bucket).await?.account;
        let prefix = i.prefix.clone().unwrap_or_default();
        let max = i.max_uploads.unwrap_or(1000).clamp(0, 1000) as usize;
        let mut uploads: Vec<UploadDoc> = self.engine.list_uploads(&i.bucket, &prefix).await?;
        if let Some(km) = &i.key_marker {
            let um = i.upload_id_marker.clone().unwrap_or_default();
            uploads.retain(|u| {
                u.key.as_str() > km.as_str()
                    || (u.key == *km && !um.is_empty() && u.upload_id.as_str() > um.as_str())
            });
        }
        let truncated = uploads.len() > max;
        uploads.truncate(max);
        let next_key = if truncated {
            uploads.last().map(|u| u.key.clone())
        } else {
            None
        };
        let next_id = if truncated {
            uploads.last().map(|u| u.upload_id.clone())
        } else {
            None
        };
        let list: Vec<MultipartUpload> = uploads
            .into_iter()
            .map(|u| MultipartUpload {
                key: Some(enc(u.key, url)),
                upload_id: Some(u.upload_id),
                initiated: Some(ts(u.initiated_ms)),
                owner: Some(owner(&account)),
                initiator: Some(Initiator {
                    id: owner(&account).id,
                    display_name: Some("codeyard".into()),
                }),
                storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                checksum_algorithm: u.checksum_algorithm.map(ChecksumAlgorithm::from),
                ..Default::default()
            })
            .collect();
        ok(ListMultipartUploadsOutput {
            bucket: Some(i.bucket),
            prefix: Some(enc(prefix, url)),
            key_marker: Some(i.key_marker.unwrap_or_default()),
            upload_id_marker: Some(i.upload_id_marker.unwrap_or_default()),
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: next_key,
            next_upload_id_marker: next_id,
            uploads: (!list.is_empty()).then_some(list),
            delimiter: i.delimiter,
            encoding_type: i.encoding_type,
            ..Default::default()
        })
    }
}
