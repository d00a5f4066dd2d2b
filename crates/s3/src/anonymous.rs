//! S3 requests without credentials (see `codeyard_wire::auth`): AWS serves them only where a
//! bucket policy or ACL makes a read public, and answers CORS preflights (`OPTIONS`) from the
//! bucket's CORS configuration. Everything else is `AccessDenied` (403), in open and enforce
//! mode alike. The decisions themselves are `codeyard_policy::s3_public` (pure); this module
//! gathers what S3 stores.

use crate::engine::Engine;
use crate::meta::BucketDoc;
use axum::body::Body;
use codeyard_policy::s3_public::{PublicReadInputs, anonymous_read_allowed};
use codeyard_wire::Unsigned;
use s3s::dto::CORSConfiguration;

fn xml(status: u16, body: String) -> http::Response<Body> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(Body::from(body))
        .expect("response builds")
}

fn access_denied() -> Unsigned {
    Unsigned::Answer(xml(
        403,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>".into(),
    ))
}

/// `/bucket/key` of a path-style request, the key percent-decoded.
fn bucket_and_key(path: &str) -> (String, Option<String>) {
    let p = path.trim_start_matches('/');
    let (b, k) = match p.split_once('/') {
        Some((b, k)) => (b, Some(k)),
        None => (p, None),
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .to_string()
    };
    (decode(b), k.filter(|k| !k.is_empty()).map(decode))
}

/// Query parameters an anonymous read may carry: listing parameters for a bucket, response
/// header overrides for an object. Any other (`?acl`, `?policy`, `?uploads`) is another
/// operation, never public here.
fn read_only_query(query: Option<&str>, object: bool) -> bool {
    let Some(q) = query else { return true };
    url::form_urlencoded::parse(q.as_bytes()).all(|(k, _)| {
        if object {
            k.starts_with("response-") || k == "partNumber"
        } else {
            matches!(
                k.as_ref(),
                "prefix"
                    | "delimiter"
                    | "max-keys"
                    | "marker"
                    | "list-type"
                    | "continuation-token"
                    | "start-after"
                    | "encoding-type"
                    | "fetch-owner"
            )
        }
    })
}

pub async fn unsigned(
    engine: &Engine,
    hosts: &crate::VirtualHosts,
    parts: &http::request::Parts,
) -> Unsigned {
    let (bucket, key) = match parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| hosts.bucket(h))
    {
        // Virtual-hosted style: the bucket is the Host's, the whole path is the key.
        Some(bucket) => {
            let (_, key) = bucket_and_key(&format!("/{bucket}{}", parts.uri.path()));
            (bucket, key)
        }
        None => bucket_and_key(parts.uri.path()),
    };
    if parts.method == http::Method::OPTIONS {
        return Unsigned::Answer(preflight(engine, parts, &bucket, key.is_some()).await);
    }
    let is_read = parts.method == http::Method::GET || parts.method == http::Method::HEAD;
    if bucket.is_empty() || !is_read || !read_only_query(parts.uri.query(), key.is_some()) {
        return access_denied();
    }
    let Ok(b) = engine.bucket(&bucket).await else {
        return access_denied();
    };
    let text = |name: &str| {
        b.configs.get(name).cloned()
    };
    let (policy, canned, grants) = (text("policy"), text("canned-acl"), text("acl-policy"));
    let object_acl = match &key {
        Some(k) => engine
            .get_version(&bucket, k, None)
            .await
            .ok()
            .and_then(|o| o.headers.acl),
        None => None,
    };
    let inputs = PublicReadInputs {
        bucket_policy: policy.as_deref(),
        bucket_canned_acl: canned.as_deref(),
        bucket_acl_grants: grants.as_deref(),
        object_canned_acl: object_acl.as_deref(),
    };
    let (action, resource) = match &key {
        Some(k) => ("s3:GetObject", format!("arn:aws:s3:::{bucket}/{k}")),
        None => ("s3:ListBucket", format!("arn:aws:s3:::{bucket}")),
    };
    let prefix = parts.uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "prefix")
            .map(|(_, v)| v.into_owned())
    });
    let source_ip = parts.extensions.get::<codeyard_wire::ClientAddr>().map(|a| a.0.ip().to_string());
    // As for signed requests (the authorizer): the port stands in for S3's HTTPS endpoint.
    let mut context = vec![("aws:SecureTransport", "true")];
    if let Some(ip) = source_ip.as_deref() {
        context.push(("aws:SourceIp", ip));
    }
    if let Some(p) = prefix.as_deref() {
        context.push(("s3:prefix", p));
    }
    if anonymous_read_allowed(action, &resource, &inputs, &context) {
        Unsigned::Handle
    } else {
        access_denied()
    }
}

fn cors_forbidden(message: &str, method: &str, object: bool) -> http::Response<Body> {
    let kind = if object { "OBJECT" } else { "BUCKET" };
    xml(
        403,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessForbidden</Code><Message>{message}</Message><Method>{method}</Method><ResourceType>{kind}</ResourceType></Error>"
        ),
    )
}

fn cors_config(b: &BucketDoc) -> Option<CORSConfiguration> {
    b.config("cors").ok().flatten()
}

/// Origins and headers in CORS rules take one `*` wildcard; header names are case-insensitive.
fn cors_match(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let (p, v) = if ignore_case {
        (pattern.to_ascii_lowercase(), value.to_ascii_lowercase())
    } else {
        (pattern.to_string(), value.to_string())
    };
    match p.split_once('*') {
        Some((pre, post)) => {
            v.len() >= pre.len() + post.len() && v.starts_with(pre) && v.ends_with(post)
        }
        None => p == v,
    }
}

/// Answers a CORS preflight as S3 does: 200 with the `Access-Control-Allow-*` headers of the
/// first rule that allows the origin, method and headers; otherwise 403.
async fn preflight(
    engine: &Engine,
    parts: &http::request::Parts,
    bucket: &str,
    object: bool,
) -> http::Response<Body> {
    let header = |n: &str| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (Some(origin), Some(method)) = (header("origin"), header("access-control-request-method"))
    else {
        return xml(
            400,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>BadRequest</Code><Message>Insufficient information. Origin request header needed.</Message></Error>".into(),
        );
    };
    let requested: Vec<String> = header("access-control-request-headers")
        .map(|h| {
            h.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let config = match engine.bucket(bucket).await {
        Ok(b) => cors_config(&b),
        Err(_) => None,
    };
    let Some(config) = config else {
        return cors_forbidden(
            "CORSResponse: CORS is not enabled for this bucket.",
            &method,
            object,
        );
    };
    let rule = config.cors_rules.iter().find(|r| {
        r.allowed_origins
            .iter()
            .any(|o| cors_match(o, &origin, false))
            && r.allowed_methods.iter().any(|m| m == &method)
            && requested.iter().all(|h| {
                r.allowed_headers
                    .iter()
                    .flatten()
                    .any(|a| cors_match(a, h, true))
            })
    });
    let Some(rule) = rule else {
        return cors_forbidden(
            "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
            &method,
            object,
        );
    };
    let any_origin = rule.allowed_origins.iter().any(|o| o == "*");
    let mut resp = http::Response::builder()
        .status(200)
        .header(
            "access-control-allow-origin",
            if any_origin { "*" } else { origin.as_str() },
        )
        .header(
            "access-control-allow-methods",
            rule.allowed_methods.join(", "),
        )
        .header(
            "vary",
            "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
        );
    if !any_origin {
        resp = resp.header("access-control-allow-credentials", "true");
    }
    if !requested.is_empty() {
        resp = resp.header("access-control-allow-headers", requested.join(", "));
    }
    if let Some(expose) = rule.expose_headers.as_ref().filter(|e| !e.is_empty()) {
        resp = resp.header("access-control-expose-headers", expose.join(", "));
    }
    if let Some(age) = rule.max_age_seconds {
        resp = resp.header("access-control-max-age", age.to_string());
    }
    resp.body(Body::empty()).expect("response builds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries() {
        assert_eq!(
            bucket_and_key("/b/a%20b/c"),
            ("b".into(), Some("a b/c".into()))
        );
        assert_eq!(bucket_and_key("/b"), ("b".into(), None));
        assert_eq!(bucket_and_key("/b/"), ("b".into(), None));
        assert!(read_only_query(Some("list-type=2&prefix=a"), false));
        assert!(!read_only_query(Some("acl"), false));
        assert!(!read_only_query(Some("policy"), false));
        assert!(read_only_query(
            Some("response-content-type=text/plain"),
            true
        ));
        assert!(!read_only_query(Some("tagging"), true));
        assert!(cors_match(
            "https://*.example.com",
            "https://app.example.com",
            false
        ));
        assert!(!cors_match(
            "https://*.example.com",
            "https://example.org",
            false
        ));
        assert!(cors_match("Content-*", "content-type", true));
    }
}
