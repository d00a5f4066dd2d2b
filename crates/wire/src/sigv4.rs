//! SigV4: reading the credential scope (who, which region, which service) from a request, and
//! verifying a signature when `--auth enforce` is on.
//!
//! Verification recomputes the canonical request from the signed headers, as described in
//! AWS's "Create a signed AWS API request" guide, and compares signatures in constant time.

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The parts of a SigV4 signature a request carries (header or presigned query).
#[derive(Clone, Debug, PartialEq)]
pub struct SigV4 {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// `X-Amz-Date` (header or query).
    pub amz_date: String,
    pub presigned: bool,
}

/// Reads the scope from `Authorization: AWS4-HMAC-SHA256 Credential=AK/20240101/eu-west-1/iam/aws4_request, SignedHeaders=a;b, Signature=...`
/// or from presigned query parameters.
pub fn parse(headers: &http::HeaderMap, query: Option<&str>) -> Option<SigV4> {
    if let Some(auth) = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let rest = auth.strip_prefix("AWS4-HMAC-SHA256")?.trim();
        let mut credential = None;
        let mut signed = None;
        let mut signature = None;
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = Some(v);
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = Some(v);
            }
        }
        let amz_date = headers.get("x-amz-date").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        return from_parts(credential?, signed.unwrap_or(""), signature.unwrap_or(""), amz_date, false);
    }
    let query = query?;
    if !query.contains("X-Amz-Credential") {
        return None;
    }
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone());
    from_parts(
        &get("X-Amz-Credential")?,
        &get("X-Amz-SignedHeaders").unwrap_or_default(),
        &get("X-Amz-Signature").unwrap_or_default(),
        get("X-Amz-Date").unwrap_or_default(),
        true,
    )
}

fn from_parts(credential: &str, signed: &str, signature: &str, amz_date: String, presigned: bool) -> Option<SigV4> {
    let mut it = credential.split('/');
    let access_key = it.next()?.to_string();
    let date = it.next()?.to_string();
    let region = it.next()?.to_string();
    let service = it.next()?.to_string();
    Some(SigV4 {
        access_key,
        date,
        region,
        service,
        signed_headers: signed.split(';').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        signature: signature.to_string(),
        amz_date,
        presigned,
    })
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("hmac key");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// The signing key for a date, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// HMAC-SHA256 of `string_to_sign` with the derived key, hex.
pub fn sign(secret: &str, date: &str, region: &str, service: &str, string_to_sign: &str) -> String {
    hex::encode(hmac(&signing_key(secret, date, region, service), string_to_sign.as_bytes()))
}

const URI_ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
const PATH_ENCODE: &AsciiSet = &URI_ENCODE.remove(b'/');

fn canonical_query(query: &str, drop_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .filter(|(k, _)| !(drop_signature && k == "X-Amz-Signature"))
        .map(|(k, v)| (utf8_percent_encode(&k, URI_ENCODE).to_string(), utf8_percent_encode(&v, URI_ENCODE).to_string()))
        .collect();
    pairs.sort();
    pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// The canonical URI: S3 encodes the path once as sent; other services encode each segment
/// of the (already encoded) path again.
fn canonical_uri(path: &str, service: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    if service == "s3" {
        path.to_string()
    } else {
        utf8_percent_encode(path, PATH_ENCODE).to_string()
    }
}

/// Why a signature was refused.
#[derive(Debug, PartialEq)]
pub enum VerifyError {
    Mismatch,
    Malformed(String),
}

/// Computes the signature a request with these parts must carry (the client side of
/// [`verify`]; codeyard's own commands sign with it).
pub fn compute_signature(
    sig: &SigV4,
    secret: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &http::HeaderMap,
    payload_hash: &str,
) -> String {
    let mut canonical_headers = String::new();
    for name in &sig.signed_headers {
        let values: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| v.to_str().unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical_headers.push_str(&format!("{}:{}\n", name, values.join(",")));
    }
    let canonical_request = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{}\n{payload_hash}",
        canonical_uri(path, &sig.service),
        canonical_query(query, sig.presigned),
        sig.signed_headers.join(";"),
    );
    let scope = format!("{}/{}/{}/aws4_request", sig.date, sig.region, sig.service);
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{}\n{scope}\n{}", sig.amz_date, sha256_hex(canonical_request.as_bytes()));
    sign(secret, &sig.date, &sig.region, &sig.service, &string_to_sign)
}

/// Verifies `sig` against the request's method, path, query and headers. `payload_hash` is the
/// hex SHA-256 of the body, or the `x-amz-content-sha256` value for streaming/unsigned payloads.
pub fn verify(sig: &SigV4, secret: &str, request: &http::request::Parts, payload_hash: &str) -> Result<(), VerifyError> {
    let headers = &request.headers;
    if sig.amz_date.len() < 8 {
        return Err(VerifyError::Malformed("missing X-Amz-Date".into()));
    }
    if let Some(name) = sig.signed_headers.iter().find(|n| headers.get(n.as_str()).is_none()) {
        return Err(VerifyError::Malformed(format!("signed header {name} is missing")));
    }
    let (path, query) = (request.uri.path(), request.uri.query().unwrap_or(""));
    let expected = compute_signature(sig, secret, request.method.as_str(), path, query, headers, payload_hash);
    if constant_time_eq(expected.as_bytes(), sig.signature.as_bytes()) { Ok(()) } else { Err(VerifyError::Mismatch) }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign as aws_sign};
    use aws_sigv4::sign::v4;
    use std::time::SystemTime;

    fn signed(secret_used: &str, body: &str) -> http::Request<String> {
        let creds = Credentials::new("AKIDTEST", secret_used, None, None, "test");
        let identity = creds.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-1")
            .name("iam")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let mut req = http::Request::builder()
            .method("POST")
            .uri("http://localhost:4566/")
            .header("host", "localhost:4566")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .unwrap();
        let signable = SignableRequest::new(
            "POST",
            "http://localhost:4566/",
            req.headers().iter().map(|(k, v)| (k.as_str(), v.to_str().unwrap())),
            SignableBody::Bytes(body.as_bytes()),
        )
        .unwrap();
        let (instructions, _) = aws_sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(&mut req);
        req
    }

    #[test]
    fn verifies_what_the_aws_signer_signs() {
        let body = "Action=GetRole&RoleName=r&Version=2010-05-08";
        let req = signed("s3cret", body);
        let sig = parse(req.headers(), None).unwrap();
        assert_eq!((sig.region.as_str(), sig.service.as_str(), sig.access_key.as_str()), ("eu-west-1", "iam", "AKIDTEST"));
        let hash = sha256_hex(body.as_bytes());
        let (parts, _) = req.into_parts();
        assert_eq!(verify(&sig, "s3cret", &parts, &hash), Ok(()));
        assert_eq!(verify(&sig, "wrong", &parts, &hash), Err(VerifyError::Mismatch));
        let tampered = sha256_hex(b"Action=DeleteRole&RoleName=r&Version=2010-05-08");
        assert_eq!(verify(&sig, "s3cret", &parts, &tampered), Err(VerifyError::Mismatch));
    }
}
