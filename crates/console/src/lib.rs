//! codeyard's web console: server-rendered pages (minijinja templates embedded in the binary)
//! with a little JavaScript and server-sent events for live state, served on the API port.
//!
//! * `GET /` from a browser (no AWS authorization, `Accept: text/html`) redirects to
//!   `/_codeyard/console/`; every other request to `/` goes to the wire's dispatcher (S3).
//! * Every page calls the real APIs in-process through the registry ([`App::call`]): validated,
//!   authorized by IAM and model-checked exactly as a request from the wire. The caller is the
//!   account's root under `--auth open`, and under `--auth enforce` the identity whose access key
//!   and secret were given on the login form.
//! * Nothing a page can send by itself changes state: GETs only read; every POST carries the
//!   session's CSRF token, and a cross-site (`Sec-Fetch-Site`) or foreign-`Origin` POST is refused.

mod pages;
mod session;
mod views;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use codeyard_core::{AwsError, RequestContext};
use codeyard_wire::App;
use http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

pub use session::Session;

/// Where the console lives.
pub const PREFIX: &str = "/_codeyard/console";

/// The console's shared state.
pub struct Console {
    pub(crate) app: Arc<App>,
    pub(crate) templates: views::Templates,
    pub(crate) sessions: session::Sessions,
}

pub(crate) type Shared = Arc<Console>;

/// The console's routes, to be merged into the server's router (before its fallback).
pub fn router<S: Clone + Send + Sync + 'static>(app: Arc<App>) -> Router<S> {
    let sessions = session::Sessions::new(app.platform.store.clone());
    let console = Arc::new(Console { app, templates: views::Templates::new(), sessions });
    let p = |path: &str| format!("{PREFIX}{path}");
    Router::new()
        .route("/", any(root))
        .route(PREFIX, get(|| async { axum::response::Redirect::to(&format!("{PREFIX}/")) }))
        .route(&p("/"), get(pages::pipelines))
        .route(&p("/static/{file}"), get(views::asset))
        .route(&p("/login"), get(pages::login_form).post(pages::login))
        .route(&p("/logout"), post(pages::logout))
        .route(&p("/region"), post(pages::set_region))
        .route(&p("/pipelines/{name}"), get(pages::pipeline))
        .route(&p("/pipelines/{name}/live"), get(pages::pipeline_live))
        .route(&p("/pipelines/{name}/terraform"), get(pages::pipeline_terraform))
        .route(&p("/terraform"), get(pages::account_terraform))
        .route(&p("/pipelines/{name}/{action}"), post(pages::pipeline_action))
        .route(&p("/projects"), get(pages::projects))
        .route(&p("/projects/{name}"), get(pages::project))
        .route(&p("/builds/{id}"), get(pages::build))
        .route(&p("/builds/{id}/live"), get(pages::build_live))
        .route(&p("/repos"), get(pages::repos))
        .route(&p("/repos/{name}"), get(pages::repo))
        .route(&p("/images"), get(pages::images))
        .route(&p("/images/{*name}"), get(pages::image))
        .route(&p("/events"), get(pages::events))
        .route(&p("/events/test"), post(pages::test_pattern))
        .route(&p("/iam"), get(pages::roles))
        .route(&p("/activity"), get(pages::activity_page))
        .route(&p("/activity/live"), get(pages::activity_live))
        .route(&p("/s3"), get(pages::buckets))
        .route(&p("/s3/{bucket}"), get(pages::bucket))
        .route(&p("/s3/{bucket}/settings"), get(pages::bucket_settings))
        .route(&p("/download/{bucket}/{*key}"), get(pages::download))
        .with_state(console)
}

/// Whether a request to `/` is a person's browser opening the console rather than an AWS
/// client (signed ListBuckets, a presigned URL, an anonymous S3 request).
fn is_browser(req: &Request) -> bool {
    let headers = req.headers();
    let query = req.uri().query().unwrap_or("");
    req.method() == http::Method::GET
        && !headers.contains_key(header::AUTHORIZATION)
        && !headers.keys().any(|k| k.as_str().starts_with("x-amz-"))
        && !query.to_ascii_lowercase().contains("x-amz-")
        && headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

async fn root(State(c): State<Shared>, req: Request) -> Response {
    if is_browser(&req) && c.app.hosts.allows(req.headers().get(header::HOST).and_then(|v| v.to_str().ok())) {
        return axum::response::Redirect::to(&format!("{PREFIX}/")).into_response();
    }
    codeyard_wire::dispatch::handle(State(c.app.clone()), req).await
}

impl Console {
    /// Calls an API operation in-process as the session's identity, with typed output.
    pub(crate) async fn call<O: DeserializeOwned>(&self, s: &Session, model: &str, op: &str, input: serde_json::Value) -> Result<O, AwsError> {
        let unreadable = |e| AwsError::new(500, "InternalFailure", format!("{model} {op} answered a shape the console cannot read: {e}"));
        self.app.call_typed(model, &self.context(s), op, input, unreadable).await
    }

    pub(crate) fn context(&self, s: &Session) -> RequestContext {
        RequestContext {
            account: s.caller.account.clone(),
            region: s.region.clone(),
            access_key: s.caller.access_key.clone(),
            caller_arn: s.caller.arn.clone(),
            request_id: codeyard_core::ids::request_id(),
            endpoint: s.endpoint.clone(),
            source_ip: None,
        }
    }

    pub(crate) fn enforce(&self) -> bool {
        self.app.platform.auth.mode == codeyard_wire::AuthMode::Enforce
    }

    /// Renders a page with the common context (who, region, CSRF token, flash message).
    pub(crate) fn page<T: Serialize>(&self, s: &Session, template: &str, title: &str, data: T) -> Response {
        let common = self.common(s, title, s.flash.clone());
        match self.templates.render(template, &common, &data) {
            Ok(html) => html_response(StatusCode::OK, html, s.set_cookie.as_deref()),
            Err(e) => {
                tracing::error!(template, error = %e, "console template failed");
                html_response(StatusCode::INTERNAL_SERVER_ERROR, format!("<pre>template {template}: {}</pre>", views::escape(&e.to_string())), None)
            }
        }
    }

    pub(crate) fn common(&self, s: &Session, title: &str, flash: Option<String>) -> views::Common {
        views::Common {
            prefix: PREFIX,
            title: title.to_string(),
            caller: s.caller.arn.clone(),
            mode: if self.enforce() { "enforce" } else { "open" },
            region: s.region.clone(),
            csrf: s.csrf.clone(),
            flash,
            endpoint: s.endpoint.clone(),
        }
    }

    /// A page that failed on an API error: the error's code and message, as the API said them.
    pub(crate) fn error_page(&self, s: &Session, e: &AwsError) -> Response {
        let mut resp = self.page(s, "error.html", &e.code, serde_json::json!({"code": e.code, "message": e.message, "status": e.status}));
        *resp.status_mut() = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
        resp
    }
}

pub(crate) fn html_response(status: StatusCode, html: String, set_cookie: Option<&str>) -> Response {
    let mut b = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header("x-frame-options", "DENY")
        .header("content-security-policy", "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'");
    if let Some(c) = set_cookie {
        b = b.header(header::SET_COOKIE, c);
    }
    b.body(Body::from(html)).expect("response builds")
}

pub(crate) fn host_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|v| v.to_str().ok())
}
