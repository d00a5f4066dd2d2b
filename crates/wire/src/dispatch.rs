//! The one entry point of the shared port: every request is classified by protocol and handed
//! to the service that owns it.
//!
//! 0. The gate ([`crate::auth`]): a `Host` that does not name this server is refused; so is a
//!    request without AWS authentication, as each surface refuses it.
//! 1. `/_codeyard/health` and `/_codeyard/model-violations`: the server's own endpoints (other
//!    `/_codeyard/<service>/...` paths go to the HTTP service that claims them).
//! 2. `X-Amz-Target: <prefix>.<Operation>`: awsJson1.1.
//! 3. A form-encoded POST with `Action=` (or a GET with `?Action=`): awsQuery (IAM, STS).
//! 4. Raw HTTP services in registration order (git under `/v1/repos/`, the registry under
//!    `/v2/`, S3 last, which takes everything else; a virtual-hosted S3 `Host`,
//!    `<bucket>.localhost`, goes to S3 whatever the path).

use crate::auth::{Anonymous, HostCheck, Unsigned, has_signature};
use crate::registry::{AuthMode, AwsService, Identity, Platform, Registry};
use crate::shapes::{check_output, json_to_xml, query_to_json, validate_input, xml_escape};
use crate::sigv4::{self, SigV4, VerifyError};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use codeyard_core::{AwsError, RequestContext, ids};
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Largest awsJson / awsQuery body accepted (CodeCommit PutFile carries up to 6 MB base64).
const MAX_API_BODY: usize = 64 * 1024 * 1024;

pub struct App {
    pub registry: Registry,
    pub platform: Platform,
    /// Model violations seen in strict mode (outputs that do not fit the model).
    pub violations: Mutex<Vec<String>>,
    pub version: &'static str,
    /// The host names this server answers to (DNS rebinding protection).
    pub hosts: HostCheck,
}

#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Json,
    Query,
}

pub async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let request_id = ids::request_id();
    let mut resp = route(&app, req, &request_id).await;
    let h = resp.headers_mut();
    let rid = HeaderValue::from_str(&request_id).expect("uuid is a header value");
    h.entry("x-amzn-requestid").or_insert(rid.clone());
    h.entry("x-amz-request-id").or_insert(rid);
    resp
}

async fn route(app: &Arc<App>, req: Request, request_id: &str) -> Response {
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok());
    if !app.hosts.allows(host) {
        return foreign_host(&req, host.unwrap_or(""), request_id);
    }
    let path = req.uri().path().to_string();
    if let Some(rest @ ("health" | "model-violations")) = path.strip_prefix("/_codeyard/") {
        return internal(app, rest);
    }
    let query = req.uri().query().map(str::to_string);
    let sig = sigv4::parse(req.headers(), query.as_deref());
    let endpoint = endpoint_of(req.headers(), &app.platform.config.public_endpoint);

    if let Some(target) = req.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).map(str::to_string) {
        return aws_api(app, req, Protocol::Json, Some(target), sig, endpoint, request_id).await;
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let query_action = query.as_deref().is_some_and(|q| q.starts_with("Action=") || q.contains("&Action="));
    let query_scope = sig.as_ref().is_some_and(|s| s.service == "iam" || s.service == "sts");
    if req.uri().path() == "/" && ((req.method() == http::Method::POST && is_form && !sig.as_ref().is_some_and(|s| s.service == "s3")) || (query_action && query_scope)) {
        return aws_api(app, req, Protocol::Query, None, sig, endpoint, request_id).await;
    }

    let (mut parts, body) = req.into_parts();
    if let Some(axum::extract::ConnectInfo(addr)) = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().cloned() {
        parts.extensions.insert(crate::auth::ClientAddr(addr));
    }
    let signed = has_signature(&parts.headers, query.as_deref());
    // Open mode cannot verify a presigned query: a POST carrying one from a web page on another
    // site (an HTML form needs no preflight) could be forged. Presigned GETs and preflighted PUTs
    // from web apps stay possible.
    if signed
        && app.platform.auth.mode == AuthMode::Open
        && parts.method == http::Method::POST
        && sig.as_ref().is_some_and(|s| s.presigned)
        && let Some(origin) = parts.headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && !app.hosts.allows(Some(origin.split("://").nth(1).unwrap_or(origin)))
    {
        let message = format!("a presigned POST sent by a web page from {origin} is refused: --auth open cannot verify its signature");
        return xml_error(&AwsError::new(403, "AccessDenied", message), request_id);
    }
    // A virtual-hosted S3 request (`<bucket>.localhost`) is S3's whatever its path says.
    let bucket_host = parts.headers.get(header::HOST).and_then(|v| v.to_str().ok()).and_then(|h| app.hosts.s3_host(h)).is_some_and(|h| h.bucket().is_some());
    for s in &app.registry.http {
        if if bucket_host { s.name() == "s3" } else { s.claims(&parts) } {
            if !signed {
                match s.unsigned(&parts).await {
                    Unsigned::Answer(resp) => return resp,
                    Unsigned::Handle => {
                        parts.extensions.insert(Anonymous);
                    }
                }
            }
            let identity = match &sig {
                Some(sig) if signed => app.platform.auth.identify_open(&sig.access_key).await,
                // Unsigned: the account is the default one (a local registry's repositories),
                // the caller nobody: never mistake it for the account's root.
                _ => Identity { arn: "anonymous".into(), access_key: String::new(), ..app.platform.auth.identify_open("").await },
            };
            let ctx = RequestContext {
                account: identity.account,
                region: sig.as_ref().map(|s| s.region.clone()).unwrap_or_else(|| codeyard_core::DEFAULT_REGION.into()),
                access_key: identity.access_key,
                caller_arn: identity.arn,
                request_id: request_id.to_string(),
                endpoint,
                source_ip: parts.extensions.get::<crate::auth::ClientAddr>().map(|a| a.0.ip()),
            };
            return s.handle(ctx, http::Request::from_parts(parts, body)).await;
        }
    }
    xml_error(&AwsError::client("InvalidRequest", format!("codeyard has no service for {} {}", parts.method, parts.uri.path())), request_id)
}

/// A request whose `Host` names some other server: a page that rebound its DNS name to this
/// machine, or a client pointed at a name codeyard was not told about.
fn foreign_host(req: &Request, host: &str, request_id: &str) -> Response {
    let message = format!(
        "codeyard does not serve the host '{host}': it answers to localhost, loopback addresses, its bind address and the --public-endpoint host"
    );
    if req.headers().contains_key("x-amz-target") {
        json_error(&AwsError::new(403, "AccessDeniedException", message))
    } else if req.method() == http::Method::POST
        && req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        query_error(&AwsError::new(403, "AccessDenied", message), "", request_id)
    } else {
        xml_error(&AwsError::new(403, "AccessDenied", message), request_id)
    }
}

/// The base URL the client used (`http://<Host header>`), so URLs handed back work as typed.
fn endpoint_of(headers: &http::HeaderMap, default: &str) -> String {
    match headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
        Some(host) if !host.is_empty() => format!("http://{host}"),
        _ => default.to_string(),
    }
}

fn internal(app: &Arc<App>, rest: &str) -> Response {
    match rest {
        "health" => {
            let mut services = serde_json::Map::new();
            for s in &app.registry.aws {
                services.insert(s.model_name().to_string(), json!("running"));
            }
            for s in &app.registry.http {
                services.insert(s.name().to_string(), json!("running"));
            }
            let body = json!({
                "status": "ok",
                "version": app.version,
                "services": services,
                "modelViolations": app.violations.lock().unwrap().len(),
            });
            json_response(StatusCode::OK, &body, "application/json")
        }
        "model-violations" => {
            let v = app.violations.lock().unwrap().clone();
            json_response(StatusCode::OK, &json!(v), "application/json")
        }
        _ => unreachable!("only health and model-violations are routed here"),
    }
}

fn json_response(status: StatusCode, body: &Value, content_type: &str) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_string()))
        .expect("response builds")
}

async fn aws_api(
    app: &Arc<App>,
    req: Request,
    protocol: Protocol,
    target: Option<String>,
    sig: Option<SigV4>,
    endpoint: String,
    request_id: &str,
) -> Response {
    let fail = |e: AwsError| match protocol {
        Protocol::Json => json_error(&e),
        Protocol::Query => query_error(&e, "", request_id),
    };
    let (parts, body) = req.into_parts();
    let bytes = match http_body_util::Limited::new(body, MAX_API_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return fail(AwsError::new(413, "RequestEntityTooLarge", "request body is too large")),
    };

    // Who is calling.
    let identity = match authenticate(app, &parts, sig.as_ref(), &bytes, protocol).await {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    let region = sig.as_ref().map(|s| s.region.clone()).unwrap_or_else(|| codeyard_core::DEFAULT_REGION.into());
    let ctx = RequestContext {
        account: identity.account,
        region,
        access_key: identity.access_key,
        caller_arn: identity.arn,
        request_id: request_id.to_string(),
        endpoint,
        source_ip: parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip()),
    };

    match protocol {
        Protocol::Json => {
            let target = target.unwrap_or_default();
            let Some((prefix, op)) = target.split_once('.') else {
                return json_error(&AwsError::client("UnknownOperationException", format!("malformed X-Amz-Target '{target}'")));
            };
            let Some(service) = app.registry.by_target_prefix(prefix) else {
                return json_error(&AwsError::client(
                    "UnknownOperationException",
                    format!("codeyard does not serve the API with target prefix '{prefix}' (operation {op})"),
                ));
            };
            let input: Value = if bytes.is_empty() {
                json!({})
            } else {
                match serde_json::from_slice(&bytes) {
                    Ok(v @ Value::Object(_)) => v,
                    Ok(_) => return json_error(&AwsError::client("SerializationException", "the request body must be a JSON object")),
                    Err(e) => return json_error(&AwsError::client("SerializationException", format!("malformed JSON request body: {e}"))),
                }
            };
            match invoke(app, service, &ctx, op, input).await {
                Ok(out) => json_response(StatusCode::OK, &out, "application/x-amz-json-1.1"),
                Err(e) => json_error(&e),
            }
        }
        Protocol::Query => {
            let mut params: BTreeMap<String, String> = BTreeMap::new();
            if let Some(q) = parts.uri.query() {
                params.extend(url::form_urlencoded::parse(q.as_bytes()).into_owned());
            }
            params.extend(url::form_urlencoded::parse(&bytes).into_owned());
            let action = params.get("Action").cloned().unwrap_or_default();
            let service = app.registry.query_service(sig.as_ref().map(|s| s.service.as_str()), params.get("Version").map(String::as_str));
            let Some(service) = service else {
                return query_error(&AwsError::client("InvalidAction", format!("codeyard has no query API for action '{action}'")), "", request_id);
            };
            let model = service.model();
            let ns = model.xml_namespace();
            if action.is_empty() {
                return query_error(&AwsError::client("MissingAction", "the request names no Action"), &ns, request_id);
            }
            if model.operation(&action).is_none() {
                return query_error(&AwsError::client("InvalidAction", format!("Could not find operation {action} for version {}", model.api_version())), &ns, request_id);
            }
            let input = query_to_json(model, &action, &params);
            match invoke(app, service, &ctx, &action, input).await {
                Ok(out) => {
                    let mut xml = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{ns}\">");
                    if let (Some(wrapper), Some(shape)) = (model.result_wrapper(&action), model.output_shape(&action)) {
                        xml.push_str(&format!("<{wrapper}>"));
                        json_to_xml(model, shape, &out, &mut xml);
                        xml.push_str(&format!("</{wrapper}>"));
                    }
                    xml.push_str(&format!("<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"));
                    Response::builder()
                        .status(200)
                        .header(header::CONTENT_TYPE, "text/xml")
                        .body(Body::from(xml))
                        .expect("response builds")
                }
                Err(e) => query_error(&e, &ns, request_id),
            }
        }
    }
}

impl App {
    /// Runs one awsJson/awsQuery operation in-process as `ctx`, exactly as a request from the
    /// wire would be (model validation, IAM authorization, strict-model checks): the web
    /// console's way to the services. `model` is the service's model name (`codepipeline`).
    pub async fn call(self: &Arc<Self>, model: &str, ctx: &RequestContext, op: &str, input: Value) -> Result<Value, AwsError> {
        let Some(service) = self.registry.by_model(model).cloned() else {
            return Err(AwsError::client("UnknownOperationException", format!("codeyard does not serve the API '{model}' (operation {op})")));
        };
        invoke(self, &service, ctx, op, input).await
    }

    /// [`App::call`] with the output decoded into `O` (the operation's generated output
    /// shape); an answer that does not decode becomes the caller's own error, `unreadable(e)`.
    pub async fn call_typed<O: serde::de::DeserializeOwned, E: From<AwsError>>(
        self: &Arc<Self>,
        model: &str,
        ctx: &RequestContext,
        op: &str,
        input: Value,
        unreadable: impl FnOnce(serde_json::Error) -> E,
    ) -> Result<O, E> {
        let out = self.call(model, ctx, op, input).await?;
        serde_json::from_value(out).map_err(unreadable)
    }

    /// Authenticates a request to one of the server's own signed endpoints
    /// (`/_codeyard/export/terraform`) exactly as an awsJson call is: the Host check, a SigV4
    /// signature in every mode (verified under `--auth enforce`), and answers the caller's
    /// context (region from the credential scope, endpoint from the Host header).
    pub async fn authenticate_request(self: &Arc<Self>, parts: &http::request::Parts, body: &[u8]) -> Result<RequestContext, AwsError> {
        let host = parts.headers.get(header::HOST).and_then(|v| v.to_str().ok());
        if !self.hosts.allows(host) {
            let message = format!("codeyard does not serve the host '{}'", host.unwrap_or(""));
            return Err(AwsError::new(403, "AccessDeniedException", message));
        }
        let sig = sigv4::parse(&parts.headers, parts.uri.query());
        let identity = authenticate(self, parts, sig.as_ref(), body, Protocol::Json).await?;
        Ok(RequestContext {
            account: identity.account,
            region: sig.map(|s| s.region).unwrap_or_else(|| codeyard_core::DEFAULT_REGION.into()),
            access_key: identity.access_key,
            caller_arn: identity.arn,
            request_id: ids::request_id(),
            endpoint: endpoint_of(&parts.headers, &self.platform.config.public_endpoint),
            source_ip: parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip()),
        })
    }
}

/// Validates, calls and (in strict mode) checks one operation.
async fn invoke(app: &Arc<App>, service: &Arc<dyn AwsService>, ctx: &RequestContext, op: &str, input: Value) -> Result<Value, AwsError> {
    let model = service.model();
    if model.operation(op).is_none() || !service.implemented().contains(&op) {
        let name = model.metadata("serviceId").unwrap_or(model.name);
        return Err(AwsError::unknown_operation(name, op));
    }
    let problems = validate_input(model, op, &input);
    if !problems.is_empty() {
        if problems.iter().any(|p| p.kind == crate::shapes::ProblemKind::Type) {
            let first = problems.iter().find(|p| p.kind == crate::shapes::ProblemKind::Type).unwrap();
            return Err(AwsError::client("SerializationException", first.message.clone()));
        }
        return Err(service.validation_error(op, &problems));
    }
    // IAM: every action the call needs, on every resource it names (crate codeyard_core::authz).
    if app.platform.hub.iam_mode() != codeyard_core::IamMode::Off {
        for request in service.access_requests(ctx, op, &input).await? {
            if let Err(denied) = app.platform.hub.authorize(ctx, &request).await {
                return Err(denied.to_error(service.access_denied_code()));
            }
        }
    }
    let started = std::time::Instant::now();
    let result = service.call(ctx, op, input).await;
    tracing::debug!(service = model.name, op, ms = started.elapsed().as_millis() as u64, ok = result.is_ok(), "call");
    match &result {
        Ok(out) if app.platform.config.strict_models => {
            let v = check_output(model, op, out);
            if !v.is_empty() {
                tracing::error!(service = model.name, op, ?v, "output does not fit the model");
                app.violations.lock().unwrap().extend(v.into_iter().map(|s| format!("{}.{s}", model.name)));
            }
        }
        Err(e) if e.status >= 500 => tracing::error!(service = model.name, op, error = %e, "operation failed"),
        _ => {}
    }
    result
}

async fn authenticate(app: &Arc<App>, parts: &http::request::Parts, sig: Option<&SigV4>, body: &[u8], protocol: Protocol) -> Result<Identity, AwsError> {
    let auth = &app.platform.auth;
    // Every mode wants a signature: an unsigned request is what a web page can send.
    let sig = sig.filter(|_| has_signature(&parts.headers, parts.uri.query()));
    let Some(sig) = sig else {
        return Err(match protocol {
            Protocol::Json => AwsError::new(403, "MissingAuthenticationTokenException", "Missing Authentication Token"),
            Protocol::Query => AwsError::new(403, "MissingAuthenticationToken", "Request is missing Authentication Token"),
        });
    };
    if auth.mode == AuthMode::Open {
        // Open mode cannot verify a signature, so a presigned query is only as good as its
        // sender: one a browser sent from another site (an Origin this server does not serve)
        // could be a forged form or link.
        if sig.presigned
            && let Some(origin) = parts.headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
            && !app.hosts.allows(Some(origin.split("://").nth(1).unwrap_or(origin)))
        {
            let code = if protocol == Protocol::Json { "AccessDeniedException" } else { "AccessDenied" };
            return Err(AwsError::new(
                403,
                code,
                format!("a presigned request sent by a web page from {origin} is refused: --auth open cannot verify its signature"),
            ));
        }
        return Ok(auth.identify_open(&sig.access_key).await);
    }
    let unknown_key = || match protocol {
        Protocol::Json => AwsError::client("UnrecognizedClientException", "The security token included in the request is invalid."),
        Protocol::Query => AwsError::new(403, "InvalidClientTokenId", "The security token included in the request is invalid."),
    };
    let Some((secret, identity)) = auth.lookup(&sig.access_key).await else { return Err(unknown_key()) };
    let payload_hash = parts
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| sigv4::sha256_hex(body));
    let query = parts.uri.query().unwrap_or("");
    match sigv4::verify(sig, &secret, parts, &payload_hash) {
        Ok(()) => {
            // Temporary keys are only valid together with the session token they were issued with.
            if let Some(expected) = auth.session_token_of(&sig.access_key).await {
                let presented = parts.headers.get("x-amz-security-token").and_then(|v| v.to_str().ok()).map(str::to_string).or_else(|| {
                    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "X-Amz-Security-Token").map(|(_, v)| v.into_owned())
                });
                if presented.as_deref() != Some(expected.as_str()) {
                    return Err(unknown_key());
                }
            }
            Ok(identity)
        }
        Err(VerifyError::Mismatch) => Err(match protocol {
            Protocol::Json => AwsError::client(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
            ),
            Protocol::Query => AwsError::new(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
            ),
        }),
        Err(VerifyError::Malformed(m)) => Err(AwsError::client("IncompleteSignature", m)),
    }
}

/// awsJson error: `{"__type": code, "message": ...}` and `x-amzn-ErrorType`.
pub fn json_error(e: &AwsError) -> Response {
    Response::builder()
        .status(e.status)
        .header(header::CONTENT_TYPE, "application/x-amz-json-1.1")
        .header("x-amzn-errortype", e.code.as_str())
        .body(Body::from(json!({"__type": e.code, "message": e.message}).to_string()))
        .expect("response builds")
}

/// awsQuery error: `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
pub fn query_error(e: &AwsError, ns: &str, request_id: &str) -> Response {
    let ty = if e.is_sender_fault() { "Sender" } else { "Receiver" };
    let xmlns = if ns.is_empty() { String::new() } else { format!(" xmlns=\"{ns}\"") };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse{xmlns}><Error><Type>{ty}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        xml_escape(&e.code),
        xml_escape(&e.message)
    );
    Response::builder().status(e.status).header(header::CONTENT_TYPE, "text/xml").body(Body::from(body)).expect("response builds")
}

/// rest-xml error: `<Error><Code/><Message/><RequestId/></Error>`.
pub fn xml_error(e: &AwsError, request_id: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>{request_id}</RequestId></Error>",
        xml_escape(&e.code),
        xml_escape(&e.message)
    );
    Response::builder().status(e.status).header(header::CONTENT_TYPE, "application/xml").body(Body::from(body)).expect("response builds")
}
