//! The container credentials endpoint builds in containers get their AWS credentials from,
//! as CodeBuild provides them: `AWS_CONTAINER_CREDENTIALS_FULL_URI` (on loopback: the
//! container shares the host's network) with `AWS_CONTAINER_AUTHORIZATION_TOKEN`, answered
//! with the JSON every SDK and the aws CLI read (`AccessKeyId`, `SecretAccessKey`, `Token`,
//! `Expiration`). No keys are put in the build's environment.
//!
//! The credentials are the project's service role's, issued by STS through the hub
//! (`CredentialIssuer::assume_role`), re-issued when fewer than 15 minutes are left. A build's
//! entry lives from PROVISIONING to the end of the build; the token is a random secret per build.

use crate::build::BuildRecord;
use async_trait::async_trait;
use axum::body::Body;
use codeyard_core::hub::Credentials;
use codeyard_core::{RequestContext, ids, time};
use codeyard_wire::{HttpService, Platform};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;

pub const PATH_PREFIX: &str = "/_codeyard/codebuild/credentials/";

struct Entry {
    token: String,
    build: BuildRecord,
    creds: Credentials,
}

/// What a build's environment gets to reach the endpoint.
pub struct Access {
    pub full_uri: String,
    pub token: String,
    /// Why the credentials are not the role's (no service role, ...), for the log.
    pub warning: Option<String>,
    /// Values to mask in the log (the role's secret key and session token).
    pub secrets: Vec<String>,
}

pub struct CredentialsEndpoint {
    platform: Platform,
    entries: Mutex<HashMap<String, Entry>>,
}

impl CredentialsEndpoint {
    pub fn new(platform: Platform) -> CredentialsEndpoint {
        CredentialsEndpoint {
            platform,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The loopback base URL of this server (the SDKs accept only loopback for plain HTTP).
    fn base_url(&self) -> String {
        let endpoint = self.platform.config.public_endpoint.trim_end_matches('/');
        let host_port = endpoint
            .trim_start_matches("http://")
            .trim_start_matches("https://");
        let port = host_port.rsplit_once(':').map(|(_, p)| p).unwrap_or("80");
        format!("http://127.0.0.1:{port}")
    }

    /// Issues the build's credentials and opens its entry.
    pub async fn open(&self, b: &BuildRecord) -> Access {
        let (creds, warning) = match crate::access::role_credentials(&self.platform, b).await {
            Ok(c) => (c, None),
            Err((id, secret, why)) => (
                Credentials {
                    access_key_id: id,
                    secret_access_key: secret,
                    session_token: None,
                    expiration: None,
                    account: b.account.clone(),
                    arn: format!("arn:aws:iam::{}:root", b.account),
                },
                Some(why),
            ),
        };
        let token = ids::hex(32);
        let mut secrets = vec![creds.access_key_id.clone(), creds.secret_access_key.clone()];
        secrets.extend(creds.session_token.clone());
        self.entries.lock().unwrap().insert(
            b.uuid.clone(),
            Entry {
                token: token.clone(),
                build: b.clone(),
                creds,
            },
        );
        Access {
            full_uri: format!("{}{PATH_PREFIX}{}", self.base_url(), b.uuid),
            token,
            warning,
            secrets,
        }
    }

    pub fn close(&self, build_uuid: &str) {
        self.entries.lock().unwrap().remove(build_uuid);
    }

    async fn answer(
        &self,
        build_uuid: &str,
        token: &str,
    ) -> Result<serde_json::Value, (u16, &'static str)> {
        let (build, creds) = {
            let entries = self.entries.lock().unwrap();
            let e = entries
                .get(build_uuid)
                .ok_or((404, "no running build has these credentials"))?;
            if e.token != token {
                return Err((403, "the authorization token is not this build's"));
            }
            (e.build.clone(), e.creds.clone())
        };
        let creds = match creds.expiration {
            Some(exp) if exp - time::now() < chrono::Duration::minutes(15) => {
                match crate::access::role_credentials(&self.platform, &build).await {
                    Ok(fresh) => {
                        if let Some(e) = self.entries.lock().unwrap().get_mut(build_uuid) {
                            e.creds = fresh.clone();
                        }
                        fresh
                    }
                    Err(_) => creds,
                }
            }
            _ => creds,
        };
        let expiration = creds
            .expiration
            .unwrap_or_else(|| time::now() + chrono::Duration::hours(12));
        Ok(json!({
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_access_key,
            "Token": creds.session_token.unwrap_or_default(),
            "Expiration": time::iso8601(&expiration),
            "RoleArn": build.config.service_role,
        }))
    }
}

/// The endpoint as an HTTP surface of the shared port.
pub struct Service(pub std::sync::Arc<CredentialsEndpoint>);

#[async_trait]
impl HttpService for Service {
    fn name(&self) -> &'static str {
        "codebuild-credentials"
    }

    fn claims(&self, parts: &http::request::Parts) -> bool {
        parts.uri.path().starts_with(PATH_PREFIX)
    }

    async fn handle(&self, _ctx: RequestContext, req: http::Request<Body>) -> http::Response<Body> {
        let id = req.uri().path()[PATH_PREFIX.len()..].to_string();
        let token = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
            .to_string();
        let (status, body) = match self.0.answer(&id, &token).await {
            Ok(v) => (200, v),
            Err((status, msg)) => (status, json!({"code": "AccessDenied", "message": msg})),
        };
        http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("response builds")
    }
}
