//! S3's virtual-hosted-style host names: which `Host` headers address S3 (and which bucket).
//!
//! Under a base host (`localhost`, and the `--public-endpoint` host when it is a name), these
//! and only these forms are S3 (`<bucket>` a valid bucket name, `<region>` a region name):
//!
//! | Host | meaning |
//! |---|---|
//! | `<bucket>.<base>` | the bucket, virtual-hosted style (what SDKs and Terraform send with only `AWS_ENDPOINT_URL` set) |
//! | `<bucket>.s3.<base>`, `<bucket>.s3.<region>.<base>` | the bucket, AWS's endpoint spelling |
//! | `s3.<base>`, `s3.<region>.<base>` | the S3 endpoint itself, path style |
//!
//! The Host check (`auth::HostCheck`) accepts exactly these subdomains of a base host
//! (so a name some other party controls is still refused), and the dispatcher hands a request
//! for a bucket host straight to S3, whatever its path (`/v2/...` is then an object key, not
//! the registry).

/// What a host name says about S3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum S3Host {
    /// `s3.<base>` or `s3.<region>.<base>`: S3 itself, path style.
    Endpoint { region: Option<String> },
    /// A bucket, virtual-hosted style.
    Bucket { bucket: String, region: Option<String> },
}

impl S3Host {
    pub fn bucket(&self) -> Option<&str> {
        match self {
            S3Host::Bucket { bucket, .. } => Some(bucket),
            S3Host::Endpoint { .. } => None,
        }
    }
}

/// The host name of a `--public-endpoint` URL (`http://devbox.lan:4566` -> `devbox.lan`).
pub fn endpoint_host(public_endpoint: &str) -> Option<String> {
    let authority = public_endpoint.split("://").nth(1).unwrap_or(public_endpoint).split('/').next().unwrap_or("");
    let h = host_name(authority);
    (!h.is_empty()).then_some(h)
}

/// `host` (already [`host_name`]: lower case, no port) as one of the
/// S3 forms above under `localhost` or `public_host`; None for anything else, the bare base
/// hosts included.
pub fn s3_host(host: &str, public_host: Option<&str>) -> Option<S3Host> {
    let bases = std::iter::once("localhost").chain(public_host.filter(|p| *p != "localhost" && p.parse::<std::net::IpAddr>().is_err()));
    for base in bases {
        if let Some(sub) = host.strip_suffix(base).and_then(|s| s.strip_suffix('.')) {
            return parse_sub(sub);
        }
    }
    None
}

/// The labels in front of the base host.
fn parse_sub(sub: &str) -> Option<S3Host> {
    if sub == "s3" {
        return Some(S3Host::Endpoint { region: None });
    }
    if let Some(region) = sub.strip_prefix("s3.").filter(|r| is_region(r)) {
        return Some(S3Host::Endpoint { region: Some(region.to_string()) });
    }
    let (bucket, region) = match sub.rsplit_once(".s3.") {
        Some((b, r)) if is_region(r) => (b, Some(r.to_string())),
        _ => (sub.strip_suffix(".s3").unwrap_or(sub), None),
    };
    is_bucket_name(bucket).then(|| S3Host::Bucket { bucket: bucket.to_string(), region })
}

/// AWS's region names: `eu-west-1`, `us-gov-west-1`, `ap-southeast-3`.
fn is_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

/// S3's naming rules for general purpose buckets (3-63 characters of `a-z0-9.-`, starting and
/// ending with a letter or digit, no `..`, not an IPv4 address).
fn is_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err()
}

/// The host part of a `Host` header or URL authority, lower-case, without port or trailing dot.
pub fn host_name(authority: &str) -> String {
    let a = authority.trim().to_ascii_lowercase();
    let host = if let Some(rest) = a.strip_prefix('[') {
        rest.split(']').next().unwrap_or("").to_string()
    } else if a.matches(':').count() > 1 {
        a // a bare IPv6 address
    } else {
        a.split(':').next().unwrap_or("").to_string()
    };
    host.trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(b: &str, r: Option<&str>) -> Option<S3Host> {
        Some(S3Host::Bucket { bucket: b.into(), region: r.map(str::to_string) })
    }

    #[test]
    fn the_forms_and_nothing_else() {
        let table: &[(&str, Option<&str>, Option<S3Host>)] = &[
            ("my-bucket.localhost", None, bucket("my-bucket", None)),
            ("my.dotted.bucket.localhost", None, bucket("my.dotted.bucket", None)),
            ("my-bucket.s3.localhost", None, bucket("my-bucket", None)),
            ("my-bucket.s3.eu-west-1.localhost", None, bucket("my-bucket", Some("eu-west-1"))),
            ("my-bucket.s3.us-gov-west-1.localhost", None, bucket("my-bucket", Some("us-gov-west-1"))),
            ("s3.localhost", None, Some(S3Host::Endpoint { region: None })),
            ("s3.eu-west-1.localhost", None, Some(S3Host::Endpoint { region: Some("eu-west-1".into()) })),
            ("my-bucket.devbox.lan", Some("devbox.lan"), bucket("my-bucket", None)),
            ("my-bucket.s3.eu-west-1.devbox.lan", Some("devbox.lan"), bucket("my-bucket", Some("eu-west-1"))),
            ("localhost", None, None),
            ("devbox.lan", Some("devbox.lan"), None),
            ("my-bucket.devbox.lan", None, None),
            ("my-bucket.other.lan", Some("devbox.lan"), None),
            ("ab.localhost", None, None),
            ("-bad.localhost", None, None),
            ("bad-.localhost", None, None),
            ("a..b.localhost", None, None),
            ("under_score.localhost", None, None),
            ("192.168.1.1.localhost", None, None),
            ("evillocalhost", None, None),
            ("localhost.evil.example", None, None),
            ("x.127.0.0.1", Some("127.0.0.1"), None),
        ];
        for (host, public, want) in table {
            assert_eq!(&s3_host(host, *public), want, "{host} under {public:?}");
        }
        assert_eq!(endpoint_host("http://devbox.lan:4566/").as_deref(), Some("devbox.lan"));
    }
}
