//! The gate every request passes before any service sees it: the `Host` header must name this
//! server, and a request must carry AWS authentication.
//!
//! Why: codeyard listens on a port a browser can reach. Without these checks a web page the
//! user opens could POST an awsQuery form (`Action=CreateRole&...`, a "simple" request that
//! needs no CORS preflight) to `http://localhost:4566/`, or rebind its own DNS name to
//! 127.0.0.1 and read the answers. AWS refuses unauthenticated requests, and so does codeyard,
//! in every `--auth` mode:
//!
//! * awsJson / awsQuery without a SigV4 `Authorization` header or presigned query:
//!   `MissingAuthenticationToken` (403) in the protocol's error shape (the dispatcher).
//! * Raw HTTP surfaces decide per request through [`crate::HttpService::unsigned`]: S3 serves
//!   only reads a bucket policy or ACL makes public, and answers CORS preflights from the
//!   bucket's CORS configuration; git and the registry keep their own challenge (401, then
//!   credentials).
//! * `open` mode accepts any access key, but only on a signed request: a browser cannot send an
//!   `Authorization` header cross-origin without a preflight, which nothing here allows.
//!
//! The Host check (DNS rebinding): loopback names (`localhost`, `*.localhost`), loopback IPs,
//! the bind address, the `--public-endpoint` host, `*.amazonaws.com` (names an attacker cannot
//! point at this machine; users map them in /etc/hosts), and when bound to all interfaces any IP
//! literal (rebinding needs a DNS name, so an IP literal is always the machine the client
//! meant). A request without a Host header (HTTP/1.0 tools) cannot come from a browser and
//! passes.

use axum::body::Body;
use std::net::IpAddr;

/// Whether a request carries AWS authentication: a SigV4 (or, for S3, SigV2) `Authorization`
/// header, or a presigned query (`X-Amz-Algorithm` + `X-Amz-Signature`, or S3's legacy
/// `AWSAccessKeyId` + `Signature`).
pub fn has_signature(headers: &http::HeaderMap, query: Option<&str>) -> bool {
    if let Some(auth) = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && (auth.starts_with("AWS4-HMAC-SHA256 ") || auth.starts_with("AWS "))
    {
        return true;
    }
    let Some(q) = query else { return false };
    let names: Vec<String> = url::form_urlencoded::parse(q.as_bytes()).map(|(k, _)| k.into_owned()).collect();
    let has = |n: &str| names.iter().any(|k| k == n);
    (has("X-Amz-Algorithm") && has("X-Amz-Signature") && has("X-Amz-Credential")) || (has("AWSAccessKeyId") && has("Signature"))
}

/// What an HTTP surface does with a request that carries no AWS signature.
pub enum Unsigned {
    /// The surface handles it (git and the registry challenge for credentials themselves;
    /// S3 serves a public read as the anonymous principal).
    Handle,
    /// The answer, without calling the service (refused, or a CORS preflight answered).
    Answer(http::Response<Body>),
}

/// Put in a request's extensions when the gate let an unsigned request through as the
/// anonymous principal (a public S3 read), so the surface can tell it from a trusted one.
#[derive(Clone, Copy, Debug)]
pub struct Anonymous;

/// The client's address (`aws:SourceIp`), in a request's extensions for HTTP surfaces when the
/// server knows it.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// The host names this server answers to.
#[derive(Clone, Debug)]
pub struct HostCheck {
    bind: IpAddr,
    public_host: Option<String>,
}

pub use crate::vhost::host_name;

impl HostCheck {
    /// `public_endpoint`: the server's `--public-endpoint` URL (`http://localhost:4566`).
    pub fn new(bind: IpAddr, public_endpoint: &str) -> HostCheck {
        HostCheck { bind, public_host: crate::vhost::endpoint_host(public_endpoint) }
    }

    /// The S3 virtual-hosted form this `Host` header is (see [`crate::vhost`]).
    pub fn s3_host(&self, host_header: &str) -> Option<crate::vhost::S3Host> {
        crate::vhost::s3_host(&host_name(host_header), self.public_host.as_deref())
    }

    /// Whether a request with this `Host` header is for this server.
    pub fn allows(&self, host_header: Option<&str>) -> bool {
        let Some(header) = host_header else { return true };
        let host = host_name(header);
        // Subdomains of localhost and of the public host: S3's virtual-hosted forms only.
        if host == "localhost" || host.ends_with(".amazonaws.com") || self.s3_host(header).is_some() {
            return true;
        }
        if self.public_host.as_deref() == Some(host.as_str()) {
            return true;
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || ip == self.bind || self.bind.is_unspecified(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let loopback = HostCheck::new("127.0.0.1".parse().unwrap(), "http://localhost:4566");
        let lan = HostCheck::new("192.168.1.5".parse().unwrap(), "http://devbox.lan:4566");
        let any = HostCheck::new("0.0.0.0".parse().unwrap(), "http://localhost:4566");
        let table: &[(&HostCheck, Option<&str>, bool)] = &[
            (&loopback, Some("localhost:4566"), true),
            (&loopback, Some("LOCALHOST:4566"), true),
            (&loopback, Some("localhost."), true),
            (&loopback, Some("s3.localhost:4566"), true),
            (&loopback, Some("127.0.0.1:4566"), true),
            (&loopback, Some("127.1.2.3"), true),
            (&loopback, Some("[::1]:4566"), true),
            (&loopback, Some("000000000000.dkr.ecr.eu-west-1.amazonaws.com"), true),
            (&loopback, Some("evil.example:4566"), false),
            (&loopback, Some("localhost.evil.example"), false),
            (&loopback, Some("amazonaws.com.evil.example"), false),
            (&loopback, Some("192.168.1.5:4566"), false),
            (&loopback, None, true),
            (&lan, Some("192.168.1.5:4566"), true),
            (&lan, Some("devbox.lan:4566"), true),
            (&lan, Some("other.lan:4566"), false),
            (&any, Some("10.0.0.7:4566"), true),
            (&any, Some("attacker.example:4566"), false),
        ];
        for (check, host, want) in table {
            assert_eq!(check.allows(*host), *want, "{host:?} with {check:?}");
        }
    }

    #[test]
    fn signatures() {
        let mut h = http::HeaderMap::new();
        assert!(!has_signature(&h, None));
        assert!(!has_signature(&h, Some("Action=CreateRole&RoleName=x")));
        assert!(has_signature(&h, Some("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2F1%2Fr%2Fs3%2Faws4_request&X-Amz-Signature=00")));
        assert!(has_signature(&h, Some("AWSAccessKeyId=AK&Expires=1&Signature=x")));
        h.insert(http::header::AUTHORIZATION, "Basic dGVzdDp4".parse().unwrap());
        assert!(!has_signature(&h, None));
        h.insert(http::header::AUTHORIZATION, "AWS4-HMAC-SHA256 Credential=test/20240101/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=x".parse().unwrap());
        assert!(has_signature(&h, None));
    }
}
