//! codeyard-s3: Amazon S3 on the shared port (path-style, `http://localhost:4566/<bucket>/<key>`)
//! and the object store other services keep artifacts in.
//!
//! Layers, outside in:
//!
//! * [`S3Http`] is the [`HttpService`] the server registers last: it takes every request no
//!   other surface claimed and hands it to s3s, which speaks the REST-XML protocol (routing,
//!   XML, headers, SigV4 verification, error bodies). Bodies stream both ways.
//!   Authentication: with `--auth enforce` s3s verifies SigV4 (header and presigned) against
//!   `platform.auth` ([`PlatformAuth`]). In open mode any key is accepted, so the adapter
//!   removes the signature before s3s sees it and decodes `aws-chunked` bodies itself
//!   ([`chunked`]).
//! * [`api::Api`] implements s3s's `S3` trait: DTOs in, DTOs out, protocol-level checks; one
//!   module per concern behind one routing table, and one table (plus one generic
//!   get/put/delete) for the bucket configuration sub-resources.
//! * [`engine::Engine`] is the domain: buckets, versions and delete markers, listings,
//!   multipart uploads, over metadata in the state store ([`meta`]) and bytes in
//!   [`blobs::BlobStore`] (object_store: the local filesystem under `<data_dir>/s3`, or an
//!   S3-compatible service with `CODEYARD_S3_BACKEND=s3://bucket[/prefix]`).
//! * [`HubObjects`] is the same engine as [`ObjectStoreApi`] for CodePipeline and CodeBuild.
//! * IAM ([`authz`]): s3s's access hook authorizes every request as its caller, with the bucket
//!   policy; [`HubObjects`] authorizes the context each service hands it.
//!
//! Durability: bytes first (unique blob, fsync, rename), then the metadata commit that makes
//! them visible; start-up removes blobs nothing references (see [`engine`]).

mod anonymous;
pub mod api;
pub mod authz;
pub mod blobs;
mod body;
pub mod chunked;
pub mod engine;
mod hub_objects;
pub mod meta;
pub mod sse;

pub use hub_objects::HubObjects;

use async_trait::async_trait;
use axum::body::Body;
use codeyard_core::RequestContext;
use codeyard_wire::{AuthMode, Authenticator, HttpService, Platform, Registry};
use engine::Engine;
use futures::TryStreamExt;
use std::sync::Arc;

/// The S3 operations [`api::Api`] implements, by AWS's names (`ListObjectsV2`), in order:
/// derived from the routing table in `api` (s3s's method names are AWS's in snake_case); every
/// other operation answers `UnknownOperationException` (400).
pub fn implemented_operations() -> &'static [&'static str] {
    static NAMES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
        let mut names: Vec<&'static str> = api::IMPLEMENTED
            .iter()
            .map(|op| &*String::leak(pascal_case(op)))
            .collect();
        names.sort_unstable();
        names
    });
    &NAMES
}

fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .flat_map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
        })
        .collect()
}

/// Registers S3 (last among the HTTP services) and the object store on the hub.
pub async fn register(registry: &mut Registry, platform: &Platform) -> anyhow::Result<()> {
    let engine = Arc::new(Engine::open(&platform.config.data_dir, platform.store.clone())?);
    let removed = engine.collect_garbage().await?;
    if removed > 0 {
        tracing::info!(
            removed,
            "removed unreferenced S3 blobs left by interrupted writes"
        );
    }
    let mut builder = s3s::service::S3ServiceBuilder::new(api::Api {
        engine: engine.clone(),
        hub: platform.hub.clone(),
    });
    // s3s runs its access hook only with an auth provider. In open mode no signature reaches
    // s3s (the adapter strips them), so the provider is never asked there; the hook still
    // authorizes every request as the caller the wire identified (`authz`).
    builder.set_auth(PlatformAuth {
        auth: platform.auth.clone(),
    });
    let hosts = VirtualHosts {
        public_host: codeyard_wire::vhost::endpoint_host(&platform.config.public_endpoint),
    };
    builder.set_host(hosts.clone());
    builder.set_access(authz::IamAccess {
        engine: engine.clone(),
        hub: platform.hub.clone(),
        signatures_required: platform.config.auth == AuthMode::Enforce,
    });
    registry.add_http(Arc::new(S3Http {
        service: builder.build(),
        mode: platform.config.auth,
        engine: engine.clone(),
        hosts,
    }));
    platform.hub.set_objects(Arc::new(HubObjects {
        engine,
        hub: platform.hub.clone(),
    }));
    Ok(())
}

/// Virtual-hosted-style addressing for s3s: the bucket of a `<bucket>.localhost` (and the other
/// forms of [`codeyard_wire::vhost`]) Host; every other host is path style.
#[derive(Clone)]
pub(crate) struct VirtualHosts {
    public_host: Option<String>,
}

impl VirtualHosts {
    pub(crate) fn bucket(&self, host_header: &str) -> Option<String> {
        let host = codeyard_wire::auth::host_name(host_header);
        codeyard_wire::vhost::s3_host(&host, self.public_host.as_deref())
            .and_then(|h| h.bucket().map(str::to_string))
    }
}

impl s3s::host::S3Host for VirtualHosts {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> s3s::S3Result<s3s::host::VirtualHost<'a>> {
        let vh = s3s::host::VirtualHost::new(host);
        Ok(match self.bucket(host) {
            Some(bucket) => vh.with_bucket(bucket),
            None => vh,
        })
    }
}

/// s3s's secret lookup, answered by the server's authenticator (configured keys, then keys
/// issued by STS).
struct PlatformAuth {
    auth: Arc<Authenticator>,
}

#[async_trait]
impl s3s::auth::S3Auth for PlatformAuth {
    async fn get_secret_key(&self, access_key: &str) -> s3s::S3Result<s3s::auth::SecretKey> {
        match self.auth.lookup(access_key).await {
            Some((secret, _)) => Ok(s3s::auth::SecretKey::from(secret)),
            None => Err(s3s::s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}

pub struct S3Http {
    service: s3s::service::S3Service,
    mode: AuthMode,
    engine: Arc<Engine>,
    hosts: VirtualHosts,
}

/// Query parameters of a presigned URL (SigV4 and SigV2).
const PRESIGN_PARAMS: [&str; 10] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "AWSAccessKeyId",
    "Signature",
    "Expires",
];

/// Open mode: drops the signature (so s3s treats the request as trusted and unsigned) and
/// decodes an aws-chunked body, keeping its trailers for the checksum check.
fn open_mode_request(parts: &mut http::request::Parts, body: Body) -> s3s::Body {
    parts.headers.remove(http::header::AUTHORIZATION);
    if let Some(q) = parts.uri.query() {
        if q.contains("X-Amz-Signature=") || q.contains("Signature=") {
            let kept: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| !PRESIGN_PARAMS.contains(&k.as_ref()))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let mut pq = parts.uri.path().to_string();
            if !kept.is_empty() {
                // Keep valueless sub-resources (`?uploads`) valueless.
                let encoded: Vec<String> = kept
                    .iter()
                    .map(|(k, v)| {
                        let k =
                            url::form_urlencoded::byte_serialize(k.as_bytes()).collect::<String>();
                        if v.is_empty() {
                            k
                        } else {
                            format!(
                                "{k}={}",
                                url::form_urlencoded::byte_serialize(v.as_bytes())
                                    .collect::<String>()
                            )
                        }
                    })
                    .collect();
                pq = format!("{pq}?{}", encoded.join("&"));
            }
            if let Ok(uri) = pq.parse() {
                parts.uri = uri;
            }
        }
    }
    let streaming = parts
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("STREAMING-"));
    parts.headers.remove("x-amz-content-sha256");
    if !streaming {
        return s3s::Body::http_body_unsync(body);
    }
    if let Some(len) = parts.headers.get("x-amz-decoded-content-length").cloned() {
        parts.headers.insert(http::header::CONTENT_LENGTH, len);
    }
    if let Some(ce) = parts
        .headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    {
        let rest: Vec<&str> = ce
            .split(',')
            .map(str::trim)
            .filter(|p| !p.eq_ignore_ascii_case("aws-chunked") && !p.is_empty())
            .collect();
        if rest.is_empty() {
            parts.headers.remove(http::header::CONTENT_ENCODING);
        } else if let Ok(v) = http::HeaderValue::from_str(&rest.join(",")) {
            parts.headers.insert(http::header::CONTENT_ENCODING, v);
        }
    }
    let trailers = api::OpenTrailers::default();
    parts.extensions.insert(trailers.clone());
    let raw = body
        .into_data_stream()
        .map_err(|e| Box::new(e) as body::StdError);
    let decoded = chunked::decode(raw, trailers);
    s3s::Body::from(
        Box::pin(body::ObjectBody::unknown_length(Box::pin(decoded))) as s3s::stream::DynByteStream,
    )
}

#[async_trait]
impl HttpService for S3Http {
    fn name(&self) -> &'static str {
        "s3"
    }

    fn api_coverage(&self) -> Option<(&'static str, &'static [&'static str])> {
        Some(("s3", implemented_operations()))
    }

    /// S3 is registered last and takes every request nobody else claimed.
    fn claims(&self, _parts: &http::request::Parts) -> bool {
        true
    }

    /// Unsigned: only public reads and CORS preflights ([`anonymous`]).
    async fn unsigned(&self, parts: &http::request::Parts) -> codeyard_wire::Unsigned {
        anonymous::unsigned(&self.engine, &self.hosts, parts).await
    }

    async fn handle(&self, ctx: RequestContext, req: http::Request<Body>) -> http::Response<Body> {
        let (mut parts, body) = req.into_parts();
        let body = match self.mode {
            AuthMode::Open => open_mode_request(&mut parts, body),
            AuthMode::Enforce => s3s::Body::http_body_unsync(body),
        };
        parts.extensions.insert(ctx);
        match self
            .service
            .call(http::Request::from_parts(parts, body))
            .await
        {
            Ok(resp) if resp.status() == http::StatusCode::NOT_IMPLEMENTED => {
                not_implemented_as_4xx(resp).await
            }
            Ok(resp) => resp.map(Body::new),
            Err(e) => {
                tracing::error!(error = ?e, "s3s failed to answer");
                http::Response::builder()
                    .status(500)
                    .header("content-type", "application/xml")
                    .body(Body::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>"))
                    .unwrap()
            }
        }
    }
}

/// s3s answers operations codeyard does not implement with 501 NotImplemented; codeyard's
/// rule is a 4xx `UnknownOperationException` for those (a 5xx would make clients retry), so
/// the answer is rewritten, keeping s3s's message (which names the operation).
async fn not_implemented_as_4xx(resp: http::Response<s3s::Body>) -> http::Response<Body> {
    use http_body_util::BodyExt;
    let (mut parts, body) = resp.into_parts();
    let text = match body.collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).to_string(),
        Err(_) => String::new(),
    };
    let message = text
        .split("<Message>")
        .nth(1)
        .and_then(|m| m.split("</Message>").next())
        .unwrap_or("This operation is not implemented by codeyard")
        .to_string();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>UnknownOperationException</Code><Message>{message}</Message></Error>"
    );
    parts.status = http::StatusCode::BAD_REQUEST;
    parts.headers.remove(http::header::CONTENT_LENGTH);
    parts.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    http::Response::from_parts(parts, Body::from(xml))
}

#[cfg(test)]
mod operation_names {
    #[test]
    fn names_come_from_the_routing_table_in_aws_spelling() {
        let names = super::implemented_operations();
        assert_eq!(names.len(), super::api::IMPLEMENTED.len());
        for n in [
            "ListObjectsV2",
            "GetBucketAcl",
            "PutBucketCors",
            "UploadPartCopy",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        assert!(
            names.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
    }
}
