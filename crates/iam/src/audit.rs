//! The record of denials: every request IAM refused (`--iam enforce`) or would have refused
//! (`--iam audit`), with the statement that would have allowed it, for `codeyard doctor`.
//!
//! Storage: `iam/denials`, the last [`KEPT`] records in a ring of slots keyed by sequence
//! number modulo [`KEPT`] (a store counter numbers them), so recording is one write and the
//! record never grows. `GET /_codeyard/iam/denials` answers them as JSON, oldest first.

use async_trait::async_trait;
use axum::body::Body;
use codeyard_core::{AwsResult, IamMode, RequestContext};
use codeyard_policy::{Decision, Request};
use codeyard_store::{Batch, Expect, SharedStore, StateStoreExt};
use codeyard_wire::HttpService;
use serde::{Deserialize, Serialize};

const DENIALS_NS: &str = "iam/denials";
/// How many denials are kept.
pub const KEPT: i64 = 1000;
/// The path `codeyard doctor` reads.
pub const DENIALS_PATH: &str = "/_codeyard/iam/denials";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DenialRecord {
    pub seq: i64,
    pub time: String,
    pub principal: String,
    pub action: String,
    pub resource: String,
    pub message: String,
    /// The statement that would have allowed it (`None` for an explicit deny).
    pub suggested_statement: Option<serde_json::Value>,
    /// Whether the request was refused (`enforce`) or let through (`audit`).
    pub enforced: bool,
}

impl DenialRecord {
    pub fn new(req: &Request, decision: &Decision, message: &str, enforced: bool) -> Self {
        let resource = match decision {
            Decision::ImplicitDeny { resource, .. } | Decision::ExplicitDeny { resource, .. } => resource.clone(),
            Decision::Allow => "*".into(),
        };
        DenialRecord {
            seq: 0,
            time: codeyard_core::time::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            principal: req.principal.display().to_string(),
            action: req.action.clone(),
            resource,
            message: message.to_string(),
            suggested_statement: decision.suggested_statement(req),
            enforced,
        }
    }
}

#[derive(Clone)]
pub struct Denials {
    store: SharedStore,
}

impl Denials {
    pub fn new(store: SharedStore) -> Self {
        Denials { store }
    }

    pub async fn record(&self, mut r: DenialRecord) -> AwsResult<()> {
        r.seq = self.store.next_counter(DENIALS_NS).await?;
        let slot = format!("{:04}", r.seq % KEPT);
        self.store.commit(Batch::new().put(DENIALS_NS, slot, &r, Expect::Any)).await?;
        Ok(())
    }

    /// Oldest first.
    pub async fn list(&self) -> AwsResult<Vec<DenialRecord>> {
        let mut all: Vec<DenialRecord> = self.store.list_all_as(DENIALS_NS).await?;
        all.sort_by_key(|r| r.seq);
        Ok(all)
    }
}

/// `GET /_codeyard/iam/denials`: `{"mode": "audit", "denials": [...]}`.
pub struct DenialsEndpoint {
    pub denials: Denials,
    pub mode: IamMode,
}

#[async_trait]
impl HttpService for DenialsEndpoint {
    fn name(&self) -> &'static str {
        "iam-denials"
    }

    fn claims(&self, parts: &http::request::Parts) -> bool {
        parts.uri.path() == DENIALS_PATH
    }

    async fn handle(&self, _ctx: RequestContext, req: http::Request<Body>) -> http::Response<Body> {
        let json = |status: http::StatusCode, v: serde_json::Value| {
            http::Response::builder()
                .status(status)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string()))
                .expect("response builds")
        };
        if req.method() != http::Method::GET {
            return json(http::StatusCode::METHOD_NOT_ALLOWED, serde_json::json!({"message": "only GET"}));
        }
        match self.denials.list().await {
            Ok(list) => json(http::StatusCode::OK, serde_json::json!({"mode": self.mode.as_str(), "denials": list})),
            Err(e) => json(http::StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({"message": e.message})),
        }
    }
}
