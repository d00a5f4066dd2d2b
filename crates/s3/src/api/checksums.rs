//! Checksums of request bodies: which algorithm and value the client claims (header or
//! aws-chunked trailer), the blob written with Content-Length, Content-MD5 and checksum checks,
//! and the checksum fields of responses.

use super::*;

pub(super) const ALGORITHMS: [&str; 5] = ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"];

pub(super) fn checksum_value(c: &Checksum, algo: &str) -> Option<String> {
    match algo {
        "CRC32" => c.checksum_crc32.clone(),
        "CRC32C" => c.checksum_crc32c.clone(),
        "SHA1" => c.checksum_sha1.clone(),
        "SHA256" => c.checksum_sha256.clone(),
        "CRC64NVME" => c.checksum_crc64nvme.clone(),
        _ => None,
    }
}

/// The checksum members an S3 input carries (PutObject, UploadPart), as one [`Checksum`].
macro_rules! provided_checksum {
    ($i:expr) => {
        Checksum {
            checksum_crc32: $i.checksum_crc32.clone(),
            checksum_crc32c: $i.checksum_crc32c.clone(),
            checksum_sha1: $i.checksum_sha1.clone(),
            checksum_sha256: $i.checksum_sha256.clone(),
            checksum_crc64nvme: $i.checksum_crc64nvme.clone(),
            checksum_type: None,
        }
    };
}

/// Sets the five checksum members of an S3 output (or result) from a [`Checksum`].
macro_rules! set_checksums {
    ($out:expr, $c:expr) => {{
        let c: Checksum = $c;
        $out.checksum_crc32 = c.checksum_crc32;
        $out.checksum_crc32c = c.checksum_crc32c;
        $out.checksum_sha1 = c.checksum_sha1;
        $out.checksum_sha256 = c.checksum_sha256;
        $out.checksum_crc64nvme = c.checksum_crc64nvme;
    }};
}
/// The body of a PutObject or UploadPart request `req` (mutable) received into a blob, with its
/// checksum checks: [`receive`] with what the input claims.
macro_rules! receive_body {
    ($api:expr, $req:ident) => {{
        let i = &$req.input;
        let provided = provided_checksum!(i);
        let claim = checksum_claim(&$req.headers, i.checksum_algorithm.as_ref(), &provided);
        let (content_length, content_md5) = (i.content_length, i.content_md5.clone());
        let body = $req.input.body.take();
        receive(
            &$api.engine,
            &$req,
            body,
            content_length,
            content_md5.as_deref(),
            &claim,
        )
        .await?
    }};
}
pub(super) use {provided_checksum, receive_body, set_checksums};

/// (algorithm, value) of what `written` computed for `algo` (the request's or the upload's).
pub(super) fn written_checksum(
    written: &crate::blobs::Written,
    algo: Option<&String>,
) -> Option<(String, String)> {
    algo.and_then(|a| checksum_value(&written.checksum, a).map(|v| (a.clone(), v)))
}

/// A stored (algorithm, value) checksum as response members (none when there is none).
pub(super) fn checksum_dto(stored: Option<(String, String)>) -> Checksum {
    stored
        .map(|(a, v)| checksum_with(&a, v))
        .unwrap_or_default()
}

pub(super) fn checksum_with(algo: &str, value: String) -> Checksum {
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

pub(super) fn hasher_for(algo: Option<&str>) -> s3s::checksum::ChecksumHasher {
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
pub(super) struct ChecksumClaim {
    algorithm: Option<String>,
    header_value: Option<String>,
    in_trailer: bool,
}

pub(super) fn checksum_claim(
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

pub(super) fn trailer_value<T>(req: &S3Request<T>, algo: &str) -> Option<String> {
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
pub(super) async fn receive<T>(
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

pub(super) fn checksum_out(o: &ObjectDoc, whole: bool) -> Checksum {
    match (&o.checksum, whole) {
        (Some((a, v)), true) => {
            let mut c = checksum_with(a, v.clone());
            c.checksum_type = Some(ChecksumType::from_static(ChecksumType::FULL_OBJECT));
            c
        }
        _ => Checksum::default(),
    }
}
