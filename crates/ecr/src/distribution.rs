//! The OCI Distribution API (`/v2/...`) on the shared port: what docker, podman, buildah and
//! skopeo push to and pull from. Repositories are ECR's (a push to an unknown name answers
//! NAME_UNKNOWN, as ECR does); images pushed here are ECR images.
//!
//! Registry URLs carry no region, so a repository is looked up by name in the caller's account:
//! the region of the authorization token when there is one, else the region that has it.
//!
//! Auth: `Basic AWS:<token>` (or `Bearer <token>`) with a token from GetAuthorizationToken. Under
//! `--auth enforce` a request without a valid token gets 401 and a `WWW-Authenticate: Basic`
//! challenge; in open mode only the version check (`GET /v2/`) challenges, so clients holding
//! credentials present them, and anything else passes without. A request with a token is authorized by IAM as the
//! principal that asked for the token, with the repository policy (`crate::authz`); a denial
//! answers 403 `DENIED`.

use crate::authz::{self, RegistryRoute};
use crate::domain::{Ecr, PutError, Reference, RepoRef, TokenRecord};
use crate::manifest;
use async_trait::async_trait;
use axum::body::Body;
use base64::Engine;
use codeyard_core::{AwsError, RequestContext};
use codeyard_wire::{AuthMode, HttpService};
use futures::StreamExt;
use http::{HeaderMap, Method, Response, StatusCode, header};
use http_body_util::BodyExt;
use regex::Regex;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

/// Largest manifest accepted (ECR's limit is 4 MiB).
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

pub struct Distribution {
    pub ecr: Arc<Ecr>,
    pub auth: AuthMode,
    /// For IAM (`Hub::authorize`).
    pub hub: Arc<codeyard_core::Hub>,
}

static ROUTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^/v2/(?P<name>[a-z0-9]+(?:[._/-][a-z0-9]+|__)*(?:[._/-]+[a-z0-9]+)*)/(?:manifests/(?P<reference>[^/]+)|blobs/uploads/(?P<upload>[^/]*)|blobs/(?P<digest>[^/]+)|tags/(?P<tags>list)|referrers/(?P<referrer>[^/]+))$")
        .expect("route regex")
});

type Resp = Response<Body>;

fn base(status: StatusCode) -> http::response::Builder {
    Response::builder()
        .status(status)
        .header("Docker-Distribution-API-Version", "registry/2.0")
}

fn oci_error(status: StatusCode, code: &str, message: impl Into<String>) -> Resp {
    let body = json!({"errors": [{"code": code, "message": message.into(), "detail": {}}]});
    base(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("response builds")
}

fn internal(e: AwsError) -> Resp {
    tracing::error!(error = %e, "registry request failed");
    oci_error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.message)
}

fn json_resp(status: StatusCode, v: &Value, content_type: &str) -> Resp {
    base(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(v.to_string()))
        .expect("response builds")
}

fn query_map(uri: &http::Uri) -> HashMap<String, String> {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// The token a request carries (`Basic` password or `Bearer`).
fn token_of(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(b) = v.strip_prefix("Basic ") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        return raw.split_once(':').map(|(_, p)| p.to_string());
    }
    v.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

/// `bytes=a-b` / `bytes=a-`.
fn parse_range(v: &str) -> Option<(u64, Option<u64>)> {
    let r = v.strip_prefix("bytes=")?;
    let (a, b) = r.split_once('-')?;
    let start = a.trim().parse().ok()?;
    let end = if b.trim().is_empty() {
        None
    } else {
        Some(b.trim().parse().ok()?)
    };
    if end.is_some_and(|e| e < start) {
        return None;
    }
    Some((start, end))
}

fn upload_location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn upload_accepted(name: &str, id: &str, size: u64, status: StatusCode) -> Resp {
    base(status)
        .header(header::LOCATION, upload_location(name, id))
        .header("Docker-Upload-UUID", id)
        .header(header::RANGE, format!("0-{}", size.saturating_sub(1)))
        .header(header::CONTENT_LENGTH, "0")
        .body(Body::empty())
        .expect("response builds")
}

fn blob_created(name: &str, digest: &str) -> Resp {
    base(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{name}/blobs/{digest}"))
        .header("Docker-Content-Digest", digest)
        .header(header::CONTENT_LENGTH, "0")
        .body(Body::empty())
        .expect("response builds")
}

/// `n` and `last` paging with a `Link` header, as the distribution spec describes.
fn paged(
    items: Vec<String>,
    q: &HashMap<String, String>,
    path: &str,
) -> (Vec<String>, Option<String>) {
    let mut items: Vec<String> = items
        .into_iter()
        .filter(|t| q.get("last").is_none_or(|l| t.as_str() > l.as_str()))
        .collect();
    let n = q.get("n").and_then(|n| n.parse::<usize>().ok());
    let mut link = None;
    if let Some(n) = n
        && items.len() > n
    {
        items.truncate(n);
        if let Some(last) = items.last() {
            link = Some(format!("<{path}?n={n}&last={last}>; rel=\"next\""));
        }
    }
    (items, link)
}

impl Distribution {
    /// IAM for a request with a token, as the token's principal: 403 DENIED when refused.
    async fn permit(
        &self,
        wire: &RequestContext,
        token: &TokenRecord,
        repo: &RepoRef,
        method: &Method,
        route: RegistryRoute,
    ) -> Result<(), Resp> {
        let hub = &self.hub;
        if hub.iam_mode() == codeyard_core::IamMode::Off {
            return Ok(());
        }
        let ctx = authz::token_context(wire, token, &repo.region);
        for r in authz::registry_requests(
            &self.ecr,
            repo,
            authz::registry_actions(method, route),
            &ctx.account,
        )
        .await
        {
            hub.authorize(&ctx, &r)
                .await
                .map_err(|d| oci_error(StatusCode::FORBIDDEN, "DENIED", d.message))?;
        }
        Ok(())
    }

    /// The repository a registry name denotes, for this caller.
    async fn locate(
        &self,
        account: &str,
        region_hint: Option<&str>,
        name: &str,
    ) -> Result<RepoRef, Resp> {
        let regions = self
            .ecr
            .regions_with(account, name)
            .await
            .map_err(internal)?;
        let region = match region_hint {
            Some(h) if regions.iter().any(|r| r == h) => h.to_string(),
            _ => match regions.first() {
                Some(r) => r.clone(),
                None => {
                    return Err(oci_error(
                        StatusCode::NOT_FOUND,
                        "NAME_UNKNOWN",
                        format!(
                            "The repository with name '{name}' does not exist in the registry with id '{account}'"
                        ),
                    ));
                }
            },
        };
        Ok(RepoRef::new(account, &region, name))
    }

    async fn route(&self, ctx: RequestContext, req: http::Request<Body>) -> Resp {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_string();
        let q = query_map(&parts.uri);

        // Who is calling.
        let token = match token_of(&parts.headers) {
            Some(t) => self.ecr.check_token(&t).await.unwrap_or(None),
            None => None,
        };
        // Open mode serves tools that send no credentials (a local registry), but its version
        // check still challenges: podman, buildah and skopeo send the credentials they hold
        // (`docker login`, `aws ecr get-login-password`) only in answer to a challenge, and a
        // token is what lets IAM decide as the principal that asked for it.
        let ping = path == "/v2" || path == "/v2/";
        if token.is_none() && (self.auth == AuthMode::Enforce || ping) {
            return base(StatusCode::UNAUTHORIZED)
                .header(header::WWW_AUTHENTICATE, format!("Basic realm=\"{}\",service=\"ecr.amazonaws.com\"", ctx.endpoint))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json!({"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":{}}]}).to_string()))
                .expect("response builds");
        }
        // Garbage collection on demand (tests, operators); behind the same auth as pushes.
        if path == "/_codeyard/ecr/gc" && parts.method == Method::POST {
            let grace = q
                .get("graceSeconds")
                .and_then(|g| g.parse::<i64>().ok())
                .unwrap_or(3600);
            return match self
                .ecr
                .collect_garbage(chrono::Duration::seconds(grace))
                .await
            {
                Ok(n) => json_resp(
                    StatusCode::OK,
                    &json!({"deletedBlobs": n}),
                    "application/json",
                ),
                Err(e) => internal(e),
            };
        }

        let account = token
            .as_ref()
            .map(|t| t.account.clone())
            .unwrap_or(ctx.account.clone());
        let region_hint = token.as_ref().map(|t| t.region.clone());

        if path == "/v2" || path == "/v2/" {
            return json_resp(StatusCode::OK, &json!({}), "application/json");
        }
        if path == "/v2/_catalog" {
            if let Some(t) = &token {
                let ctx = authz::token_context(&ctx, t, &t.region);
                let arn = crate::domain::repository_arn(&account, &t.region, "*");
                let request = codeyard_core::AccessRequest::new("ecr:DescribeRepositories", arn);
                if let Err(d) = self.hub.authorize(&ctx, &request).await {
                    return oci_error(StatusCode::FORBIDDEN, "DENIED", d.message);
                }
            }
            return self.catalog(&account, &q).await;
        }
        let Some(caps) = ROUTE.captures(&path) else {
            return oci_error(
                StatusCode::NOT_FOUND,
                "NAME_INVALID",
                format!("invalid repository name or path {path}"),
            );
        };
        let name = caps["name"].to_string();
        let repo = match self.locate(&account, region_hint.as_deref(), &name).await {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        let m = &parts.method;
        if let Some(t) = &token
            && let Err(resp) = self
                .permit(&ctx, t, &repo, m, authz::route_of(&caps, &q))
                .await
        {
            return resp;
        }
        if let Some(reference) = caps.name("reference") {
            let reference = reference.as_str();
            return match *m {
                Method::GET | Method::HEAD => {
                    self.get_manifest(&repo, reference, *m == Method::HEAD)
                        .await
                }
                Method::PUT => {
                    self.put_manifest(&repo, reference, &parts.headers, body)
                        .await
                }
                Method::DELETE => self.delete_manifest(&repo, reference).await,
                _ => oci_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "UNSUPPORTED",
                    "method not allowed",
                ),
            };
        }
        if let Some(upload) = caps.name("upload") {
            let id = upload.as_str();
            return match (m.clone(), id.is_empty()) {
                (Method::POST, true) => {
                    self.start_upload(&account, &repo, &q, &parts.headers, body)
                        .await
                }
                (Method::PATCH, false) => self.patch_upload(&repo, id, &parts.headers, body).await,
                (Method::PUT, false) => self.put_upload(&repo, id, &q, body).await,
                (Method::GET, false) => self.upload_status(&repo, id).await,
                (Method::DELETE, false) => match self.ecr.upload(&repo, id).await {
                    Ok(Some(_)) => match self.ecr.cancel_upload(id).await {
                        Ok(()) => base(StatusCode::NO_CONTENT)
                            .body(Body::empty())
                            .expect("response builds"),
                        Err(e) => internal(e),
                    },
                    Ok(None) => oci_error(
                        StatusCode::NOT_FOUND,
                        "BLOB_UPLOAD_UNKNOWN",
                        "upload unknown",
                    ),
                    Err(e) => internal(e),
                },
                _ => oci_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "UNSUPPORTED",
                    "method not allowed",
                ),
            };
        }
        if let Some(digest) = caps.name("digest") {
            return match *m {
                Method::GET | Method::HEAD => {
                    self.get_blob(&repo, digest.as_str(), *m == Method::HEAD, &parts.headers)
                        .await
                }
                _ => oci_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "UNSUPPORTED",
                    "The operation is unsupported.",
                ),
            };
        }
        if caps.name("tags").is_some() {
            return match self.ecr.tags(&repo).await {
                Ok(tags) => {
                    let (tags, link) = paged(tags, &q, &format!("/v2/{name}/tags/list"));
                    let mut resp = json_resp(
                        StatusCode::OK,
                        &json!({"name": name, "tags": tags}),
                        "application/json",
                    );
                    if let Some(l) = link {
                        resp.headers_mut()
                            .insert(header::LINK, l.parse().expect("link header"));
                    }
                    resp
                }
                Err(e) => internal(e),
            };
        }
        if let Some(subject) = caps.name("referrer") {
            return self
                .referrers(&repo, subject.as_str(), q.get("artifactType"))
                .await;
        }
        oci_error(
            StatusCode::NOT_FOUND,
            "UNSUPPORTED",
            "unknown registry path",
        )
    }

    async fn catalog(&self, account: &str, q: &HashMap<String, String>) -> Resp {
        let mut names = Vec::new();
        let namespaces = match self.ecr.store.namespaces(&format!("ecr/{account}/")).await {
            Ok(n) => n,
            Err(e) => return internal(e.into()),
        };
        for ns in namespaces {
            let p: Vec<&str> = ns.splitn(4, '/').collect();
            if p.len() == 4 && p[3] == "repositories" {
                match self.ecr.list_repositories(account, p[2]).await {
                    Ok(repos) => names.extend(repos.into_iter().map(|r| r.name)),
                    Err(e) => return internal(e),
                }
            }
        }
        names.sort();
        names.dedup();
        let (names, link) = paged(names, q, "/v2/_catalog");
        let mut resp = json_resp(
            StatusCode::OK,
            &json!({"repositories": names}),
            "application/json",
        );
        if let Some(l) = link {
            resp.headers_mut()
                .insert(header::LINK, l.parse().expect("link header"));
        }
        resp
    }

    async fn get_manifest(&self, repo: &RepoRef, reference: &str, head: bool) -> Resp {
        let image = match self.ecr.resolve(repo, &Reference::parse(reference)).await {
            Ok(Some(i)) => i,
            Ok(None) => {
                return oci_error(
                    StatusCode::NOT_FOUND,
                    "MANIFEST_UNKNOWN",
                    format!(
                        "Requested image not found: {reference} in repository {}",
                        repo.name
                    ),
                );
            }
            Err(e) => return internal(e),
        };
        let builder = base(StatusCode::OK)
            .header(header::CONTENT_TYPE, &image.media_type)
            .header("Docker-Content-Digest", &image.digest)
            .header(header::ETAG, format!("\"{}\"", image.digest))
            .header(header::CONTENT_LENGTH, image.manifest_size);
        if head {
            return builder.body(Body::empty()).expect("response builds");
        }
        match self.ecr.manifest_bytes(&image.digest).await {
            Ok(b) => builder.body(Body::from(b)).expect("response builds"),
            Err(e) => internal(e),
        }
    }

    async fn put_manifest(
        &self,
        repo: &RepoRef,
        reference: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> Resp {
        let bytes = match http_body_util::Limited::new(body, MAX_MANIFEST)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return oci_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "MANIFEST_INVALID",
                    "manifest is too large",
                );
            }
        };
        let declared = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let (tag, expected) = match Reference::parse(reference) {
            Reference::Tag(t) => (Some(t), None),
            Reference::Digest(d) => (None, Some(d)),
        };
        match self
            .ecr
            .put_manifest(
                repo,
                bytes,
                declared,
                tag.as_deref(),
                expected.as_deref(),
                false,
            )
            .await
        {
            Ok((image, _)) => {
                let mut b = base(StatusCode::CREATED)
                    .header(
                        header::LOCATION,
                        format!("/v2/{}/manifests/{}", repo.name, image.digest),
                    )
                    .header("Docker-Content-Digest", &image.digest)
                    .header(header::CONTENT_LENGTH, "0");
                if let Some(s) = &image.subject {
                    b = b.header("OCI-Subject", s);
                }
                b.body(Body::empty()).expect("response builds")
            }
            Err(PutError::RepositoryNotFound) => oci_error(
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                format!("repository {} not found", repo.name),
            ),
            Err(PutError::Invalid(m)) => oci_error(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", m),
            Err(PutError::DigestMismatch(actual)) => oci_error(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                format!("the manifest's digest is {actual}, not {reference}"),
            ),
            Err(PutError::BlobsMissing(d)) => oci_error(
                StatusCode::BAD_REQUEST,
                "MANIFEST_BLOB_UNKNOWN",
                format!("blobs unknown to the repository: {}", d.join(", ")),
            ),
            Err(PutError::ManifestsMissing(d)) => oci_error(
                StatusCode::BAD_REQUEST,
                "MANIFEST_BLOB_UNKNOWN",
                format!("manifests unknown to the repository: {}", d.join(", ")),
            ),
            Err(PutError::TagImmutable(t)) => oci_error(
                StatusCode::BAD_REQUEST,
                "TAG_INVALID",
                format!(
                    "The image tag '{t}' already exists in the '{}' repository and cannot be overwritten because the repository is immutable.",
                    repo.name
                ),
            ),
            Err(PutError::AlreadyExists) => unreachable!("the registry accepts an identical push"),
            Err(PutError::Internal(e)) if e.status < 500 => {
                oci_error(StatusCode::CONFLICT, "UNKNOWN", e.message)
            }
            Err(PutError::Internal(e)) => internal(e),
        }
    }

    async fn delete_manifest(&self, repo: &RepoRef, reference: &str) -> Resp {
        let accepted = || {
            base(StatusCode::ACCEPTED)
                .header(header::CONTENT_LENGTH, "0")
                .body(Body::empty())
                .expect("response builds")
        };
        match Reference::parse(reference) {
            Reference::Tag(t) => match self.ecr.untag(repo, &t).await {
                Ok(true) => accepted(),
                Ok(false) => oci_error(
                    StatusCode::NOT_FOUND,
                    "MANIFEST_UNKNOWN",
                    format!("tag {t} not found"),
                ),
                Err(e) => internal(e),
            },
            Reference::Digest(d) => match self.ecr.delete_image(repo, &d).await {
                Ok(Ok(_)) => accepted(),
                Ok(Err((code, reason))) if code == "ImageNotFound" => {
                    oci_error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", reason)
                }
                Ok(Err((_, reason))) => oci_error(StatusCode::CONFLICT, "DENIED", reason),
                Err(e) => internal(e),
            },
        }
    }

    async fn get_blob(
        &self,
        repo: &RepoRef,
        digest: &str,
        head: bool,
        headers: &HeaderMap,
    ) -> Resp {
        if !manifest::valid_digest(digest) {
            return oci_error(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                format!("invalid digest {digest}"),
            );
        }
        let size = match self.ecr.blob_in_repo(repo, digest).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                return oci_error(
                    StatusCode::NOT_FOUND,
                    "BLOB_UNKNOWN",
                    format!("blob {digest} unknown to repository {}", repo.name),
                );
            }
            Err(e) => return internal(e),
        };
        let common = |status| {
            base(status)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header("Docker-Content-Digest", digest)
                .header(header::ACCEPT_RANGES, "bytes")
                .header(header::ETAG, format!("\"{digest}\""))
        };
        if head {
            return common(StatusCode::OK)
                .header(header::CONTENT_LENGTH, size)
                .body(Body::empty())
                .expect("response builds");
        }
        let range = headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_range);
        if let Some((start, _)) = range
            && start >= size
        {
            return base(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .body(Body::empty())
                .expect("response builds");
        }
        match self.ecr.blobs.open_read(digest, range).await {
            Ok(Some(r)) => {
                let len = r.range.end - r.range.start;
                let stream = r.stream.map(|c| c.map_err(std::io::Error::other));
                let mut b = common(if range.is_some() {
                    StatusCode::PARTIAL_CONTENT
                } else {
                    StatusCode::OK
                })
                .header(header::CONTENT_LENGTH, len);
                if range.is_some() {
                    b = b.header(
                        header::CONTENT_RANGE,
                        format!(
                            "bytes {}-{}/{}",
                            r.range.start,
                            r.range.end.saturating_sub(1),
                            r.total
                        ),
                    );
                }
                b.body(Body::from_stream(stream)).expect("response builds")
            }
            Ok(None) => oci_error(
                StatusCode::NOT_FOUND,
                "BLOB_UNKNOWN",
                format!("blob {digest} unknown"),
            ),
            Err(e) => internal(e),
        }
    }

    async fn start_upload(
        &self,
        account: &str,
        repo: &RepoRef,
        q: &HashMap<String, String>,
        headers: &HeaderMap,
        body: Body,
    ) -> Resp {
        // Cross-repository mount: link an existing blob of another repository (same account).
        if let Some(digest) = q.get("mount")
            && manifest::valid_digest(digest)
        {
            let from = match q.get("from") {
                Some(f) => self.locate(account, Some(&repo.region), f).await.ok(),
                None => None,
            };
            if let Some(from) = from {
                match self.ecr.blob_in_repo(&from, digest).await {
                    Ok(Some(size)) => {
                        return match self.ecr.add_layer(repo, digest, size).await {
                            Ok(()) => blob_created(&repo.name, digest),
                            Err(e) => internal(e),
                        };
                    }
                    Ok(None) => {}
                    Err(e) => return internal(e),
                }
            }
        }
        let id = match self.ecr.start_upload(repo).await {
            Ok(id) => id,
            Err(e) => return internal(e),
        };
        // Monolithic upload: POST ?digest= with the whole blob.
        if let Some(digest) = q.get("digest") {
            let has_body = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|l| l != "0")
                || headers.contains_key(header::TRANSFER_ENCODING);
            if has_body {
                return self.finish(repo, &id, digest, body).await;
            }
        }
        upload_accepted(&repo.name, &id, 0, StatusCode::ACCEPTED)
    }

    async fn known_upload(&self, repo: &RepoRef, id: &str) -> Result<u64, Resp> {
        match self.ecr.upload(repo, id).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(oci_error(
                    StatusCode::NOT_FOUND,
                    "BLOB_UPLOAD_UNKNOWN",
                    format!("upload {id} unknown"),
                ));
            }
            Err(e) => return Err(internal(e)),
        }
        match self.ecr.blobs.upload_size(id).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(oci_error(
                StatusCode::NOT_FOUND,
                "BLOB_UPLOAD_UNKNOWN",
                format!("upload {id} unknown"),
            )),
            Err(e) => Err(internal(e)),
        }
    }

    async fn patch_upload(
        &self,
        repo: &RepoRef,
        id: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> Resp {
        let have = match self.known_upload(repo, id).await {
            Ok(s) => s,
            Err(r) => return r,
        };
        if let Some(cr) = headers
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
        {
            let start = cr
                .trim_start_matches("bytes ")
                .split('-')
                .next()
                .and_then(|s| s.trim().parse::<u64>().ok());
            if start != Some(have) {
                return base(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::LOCATION, upload_location(&repo.name, id))
                    .header(header::RANGE, format!("0-{}", have.saturating_sub(1)))
                    .header("Docker-Upload-UUID", id)
                    .body(Body::empty())
                    .expect("response builds");
            }
        }
        match self.ecr.blobs.append(id, body.into_data_stream()).await {
            Ok(size) => upload_accepted(&repo.name, id, size, StatusCode::ACCEPTED),
            Err(e) if e.status < 500 => {
                oci_error(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", e.message)
            }
            Err(e) => internal(e),
        }
    }

    async fn put_upload(
        &self,
        repo: &RepoRef,
        id: &str,
        q: &HashMap<String, String>,
        body: Body,
    ) -> Resp {
        if let Err(r) = self.known_upload(repo, id).await {
            return r;
        }
        let Some(digest) = q.get("digest") else {
            return oci_error(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                "the digest parameter is required",
            );
        };
        self.finish(repo, id, digest, body).await
    }

    /// Appends the last bytes and moves the blob into place after checking its digest.
    async fn finish(&self, repo: &RepoRef, id: &str, digest: &str, body: Body) -> Resp {
        if !manifest::valid_digest(digest) {
            let _ = self.ecr.cancel_upload(id).await;
            return oci_error(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                format!("unsupported digest {digest}"),
            );
        }
        if let Err(e) = self.ecr.blobs.append(id, body.into_data_stream()).await {
            return if e.status < 500 {
                oci_error(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", e.message)
            } else {
                internal(e)
            };
        }
        match self.ecr.finish_upload(repo, id, digest).await {
            Ok(Ok(_)) => blob_created(&repo.name, digest),
            Ok(Err(actual)) => oci_error(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                format!("the uploaded content's digest is {actual}, not {digest}"),
            ),
            Err(e) => internal(e),
        }
    }

    async fn upload_status(&self, repo: &RepoRef, id: &str) -> Resp {
        match self.known_upload(repo, id).await {
            Ok(size) => upload_accepted(&repo.name, id, size, StatusCode::NO_CONTENT),
            Err(r) => r,
        }
    }

    async fn referrers(
        &self,
        repo: &RepoRef,
        subject: &str,
        artifact_type: Option<&String>,
    ) -> Resp {
        let images = match self.ecr.referrers(repo, subject).await {
            Ok(i) => i,
            Err(e) => return internal(e),
        };
        let manifests: Vec<Value> = images
            .iter()
            .filter(|i| artifact_type.is_none_or(|a| i.artifact_type.as_ref() == Some(a)))
            .map(|i| {
                let mut d =
                    json!({"mediaType": i.media_type, "digest": i.digest, "size": i.manifest_size});
                if let Some(a) = &i.artifact_type {
                    d["artifactType"] = json!(a);
                }
                if let Some(a) = &i.annotations {
                    d["annotations"] = json!(a);
                }
                d
            })
            .collect();
        let mut resp = json_resp(
            StatusCode::OK,
            &json!({"schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": manifests}),
            manifest::OCI_INDEX,
        );
        if artifact_type.is_some() {
            resp.headers_mut().insert(
                "OCI-Filters-Applied",
                "artifactType".parse().expect("header"),
            );
        }
        resp
    }
}

#[async_trait]
impl HttpService for Distribution {
    fn name(&self) -> &'static str {
        "ecr-registry"
    }

    fn claims(&self, parts: &http::request::Parts) -> bool {
        let p = parts.uri.path();
        p == "/v2" || p.starts_with("/v2/") || p.starts_with("/_codeyard/ecr/")
    }

    async fn handle(&self, ctx: RequestContext, req: http::Request<Body>) -> Resp {
        self.route(ctx, req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_split_names_with_slashes() {
        let c = ROUTE.captures("/v2/base/busybox/manifests/1").unwrap();
        assert_eq!(&c["name"], "base/busybox");
        assert_eq!(&c["reference"], "1");
        let c = ROUTE.captures("/v2/a/blobs/uploads/").unwrap();
        assert_eq!(c.name("upload").unwrap().as_str(), "");
        let c = ROUTE.captures("/v2/x/y/blobs/sha256:abc").unwrap();
        assert_eq!(&c["name"], "x/y");
        assert!(
            ROUTE
                .captures("/v2/x/tags/list")
                .unwrap()
                .name("tags")
                .is_some()
        );
        assert!(ROUTE.captures("/v2/UPPER/tags/list").is_none());
    }

    #[test]
    fn ranges_and_paging() {
        assert_eq!(parse_range("bytes=5-"), Some((5, None)));
        assert_eq!(parse_range("bytes=0-9"), Some((0, Some(9))));
        assert_eq!(parse_range("bytes=9-1"), None);
        let q: HashMap<String, String> = [
            ("n".to_string(), "2".to_string()),
            ("last".to_string(), "a".to_string()),
        ]
        .into();
        let (items, link) = paged(
            vec!["a".into(), "b".into(), "c".into(), "d".into()],
            &q,
            "/v2/r/tags/list",
        );
        assert_eq!(items, vec!["b", "c"]);
        assert_eq!(link.unwrap(), "</v2/r/tags/list?n=2&last=c>; rel=\"next\"");
    }
}
