//! codeyard-wire: AWS's wire protocols at the edge, and nothing about any one service.
//!
//! * [`models`]: botocore's service models, embedded.
//! * [`shapes`]: validation, awsQuery decoding/encoding and output checks driven by the models.
//! * [`sigv4`]: credential scopes and signature verification.
//! * [`registry`]: the traits services implement ([`AwsService`], [`HttpService`]) and the
//!   [`Platform`] they are built on.
//! * [`auth`]: the Host check and the refusal of unauthenticated requests.
//! * [`dispatch`]: the single axum handler that classifies and routes every request.
//! * [`vhost`]: S3's virtual-hosted-style host names (`<bucket>.localhost`, ...).

pub mod auth;
pub mod dispatch;
pub mod models;
pub mod registry;
pub mod shapes;
pub mod sigv4;
pub mod vhost;

pub use auth::{Anonymous, ClientAddr, HostCheck, Unsigned};
pub use dispatch::{App, json_error, query_error, xml_error};
pub use registry::{AccessKey, AuthMode, Authenticator, AwsService, HttpService, Identity, Platform, Registry, ServerConfig};

/// Reads a string member of an input value ("" when absent).
pub fn str_of<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v.get(key).and_then(|x| x.as_str()).unwrap_or("")
}

/// Reads an optional string member.
pub fn opt_str(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key).and_then(|x| x.as_str()).map(str::to_string)
}
