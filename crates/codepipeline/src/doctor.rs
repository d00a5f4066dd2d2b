//! The seed's trap: a pipeline whose CodeCommit source does not poll
//! (`PollForSourceChanges=false`) and that no enabled EventBridge rule targets never starts on a
//! push. Said where the user sees it: a warning in the server log a few seconds after
//! CreatePipeline / UpdatePipeline (time for Terraform to create the rule), and
//! [`cli_doctor`], which asks a running server over its APIs.

use crate::engine::Engine;
use crate::model::PipelineDeclaration;
use crate::poller;
use codeyard_store::StateStoreExt;
use codeyard_wire::sigv4;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How long after a create/update the server looks for a rule.
pub const WARN_DELAY: Duration = Duration::from_secs(10);

/// Source actions that neither poll nor are started by anything but a rule.
pub fn silent_sources(decl: &PipelineDeclaration) -> Vec<String> {
    let Some(first) = decl.stages.first() else {
        return Vec::new();
    };
    first
        .actions
        .iter()
        .filter(|a| {
            a.action_type_id.provider == "CodeCommit" && !poller::polls(decl.pipeline_type(), a)
        })
        .map(|a| a.name.clone())
        .collect()
}

pub fn finding(pipeline: &str, actions: &[String]) -> String {
    format!(
        "pipeline '{pipeline}': CodeCommit source action(s) {} have PollForSourceChanges=false and no enabled EventBridge rule targets the pipeline, so a push will never start it. Add an aws_cloudwatch_event_rule on \"CodeCommit Repository State Change\" with the pipeline as target, or set PollForSourceChanges=true",
        actions.join(", ")
    )
}

/// Whether an enabled EventBridge rule has a target naming `arn`. Reads the events crate's rule
/// documents (`events/<account>/<region>/rules`: `state`, `targets[].Arn`, as PutRule and
/// PutTargets stored them).
pub(crate) async fn rule_targets(engine: &Engine, account: &str, region: &str, arn: &str) -> bool {
    let namespace = format!("events/{account}/{region}/rules");
    let Ok(rules) = engine.platform.store.scan(&namespace, "").collect().await else {
        return false;
    };
    rules.iter().any(|d| {
        let enabled = d
            .value
            .get("state")
            .and_then(Value::as_str)
            .is_some_and(|s| s != "DISABLED");
        let targets = d
            .value
            .get("targets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        enabled
            && targets
                .clone()
                .any(|t| t.get("Arn").and_then(Value::as_str) == Some(arn))
    })
}

/// Checks a pipeline for the trap after [`WARN_DELAY`] and warns in the server log.
pub fn warn_later(engine: Arc<Engine>, account: String, region: String, name: String) {
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(WARN_DELAY) => {}
            _ = engine.platform.shutdown.cancelled() => return,
        }
        let Ok(Some((pipe, _))) = engine.pipeline(&account, &region, &name).await else {
            return;
        };
        let silent = silent_sources(&pipe.declaration);
        if silent.is_empty() {
            return;
        }
        if !rule_targets(&engine, &account, &region, &pipe.arn).await {
            tracing::warn!(pipeline = %name, "codeyard doctor: {}", finding(&name, &silent));
        }
    });
}

/// A tiny awsJson client for the doctor: signs with the environment's credentials (any key is
/// accepted by a server in open mode).
struct Client {
    http: reqwest::Client,
    endpoint: String,
    region: String,
    key: String,
    secret: String,
}

impl Client {
    async fn call(
        &self,
        service: &str,
        target: &str,
        body: Value,
    ) -> anyhow::Result<Result<Value, (String, String)>> {
        let body = body.to_string();
        let t = chrono::Utc::now();
        let amz_date = t.format("%Y%m%dT%H%M%SZ").to_string();
        let date = t.format("%Y%m%d").to_string();
        let url = url_parts(&self.endpoint);
        let mut headers = http::HeaderMap::new();
        headers.insert("host", url.parse()?);
        headers.insert("x-amz-date", amz_date.parse()?);
        headers.insert("x-amz-target", target.parse()?);
        headers.insert("content-type", "application/x-amz-json-1.1".parse()?);
        let sig = sigv4::SigV4 {
            access_key: self.key.clone(),
            date: date.clone(),
            region: self.region.clone(),
            service: service.into(),
            signed_headers: vec![
                "content-type".into(),
                "host".into(),
                "x-amz-date".into(),
                "x-amz-target".into(),
            ],
            signature: String::new(),
            amz_date: amz_date.clone(),
            presigned: false,
        };
        let payload_hash = sigv4::sha256_hex(body.as_bytes());
        let signature =
            sigv4::compute_signature(&sig, &self.secret, "POST", "/", "", &headers, &payload_hash);
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/{date}/{}/{service}/aws4_request, SignedHeaders={}, Signature={signature}",
            self.key,
            self.region,
            sig.signed_headers.join(";")
        );
        let resp = self
            .http
            .post(format!("{}/", self.endpoint.trim_end_matches('/')))
            .header("x-amz-date", amz_date)
            .header("x-amz-target", target)
            .header("content-type", "application/x-amz-json-1.1")
            .header("authorization", auth)
            .body(body)
            .send()
            .await?;
        let ok = resp.status().is_success();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if ok {
            Ok(Ok(v))
        } else {
            let code = v
                .get("__type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .rsplit('#')
                .next()
                .unwrap_or("")
                .to_string();
            Ok(Err((
                code,
                v.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            )))
        }
    }
}

fn url_parts(endpoint: &str) -> String {
    endpoint
        .split("://")
        .nth(1)
        .unwrap_or(endpoint)
        .trim_end_matches('/')
        .to_string()
}

/// `codeyard doctor`: lists pipelines that a push will never start, in the region of the
/// environment (`AWS_REGION`, `AWS_DEFAULT_REGION`, else us-east-1). Prints one line per
/// finding and returns the exit code (0: nothing found, 1: findings, 2: could not check).
pub async fn cli_doctor(endpoint: &str) -> anyhow::Result<i32> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let region = env("AWS_REGION")
        .or(env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| codeyard_core::DEFAULT_REGION.into());
    let findings = doctor_report(endpoint, &region).await?;
    if findings.is_empty() {
        println!("codeyard doctor: no problems found in region {region}");
        return Ok(0);
    }
    for f in &findings {
        println!("WARNING {f}");
    }
    Ok(if findings.iter().any(|f| f.starts_with("could not")) {
        2
    } else {
        1
    })
}

/// The findings of [`cli_doctor`] for one region, asked over the server's APIs.
pub async fn doctor_report(endpoint: &str, region: &str) -> anyhow::Result<Vec<String>> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let client = Client {
        http: reqwest::Client::new(),
        endpoint: endpoint.to_string(),
        region: region.to_string(),
        key: env("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "test".into()),
        secret: env("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| "test".into()),
    };
    doctor_findings(&client).await
}

async fn doctor_findings(client: &Client) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    let mut names = Vec::new();
    loop {
        let body = match &token {
            Some(t) => json!({"nextToken": t}),
            None => json!({}),
        };
        let page = match client
            .call("codepipeline", "CodePipeline_20150709.ListPipelines", body)
            .await?
        {
            Ok(v) => v,
            Err((code, msg)) => anyhow::bail!("ListPipelines failed: {code}: {msg}"),
        };
        for p in page
            .get("pipelines")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            names.extend(p.get("name").and_then(Value::as_str).map(str::to_string));
        }
        token = page
            .get("nextToken")
            .and_then(Value::as_str)
            .map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    for name in names {
        let Ok(got) = client
            .call(
                "codepipeline",
                "CodePipeline_20150709.GetPipeline",
                json!({"name": name}),
            )
            .await?
        else {
            continue;
        };
        let Ok(decl) = serde_json::from_value::<PipelineDeclaration>(got["pipeline"].clone())
        else {
            continue;
        };
        let silent = silent_sources(&decl);
        if silent.is_empty() {
            continue;
        }
        let arn = got
            .pointer("/metadata/pipelineArn")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let rules = client
            .call(
                "events",
                "AWSEvents.ListRuleNamesByTarget",
                json!({"TargetArn": arn}),
            )
            .await?;
        let rules = match rules {
            Ok(v) => v,
            Err((code, msg)) => {
                out.push(format!(
                    "could not check the EventBridge rules of pipeline '{name}': {code}: {msg}"
                ));
                continue;
            }
        };
        let mut enabled = false;
        for rule in rules
            .get("RuleNames")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = client
                .call("events", "AWSEvents.DescribeRule", json!({"Name": rule}))
                .await?;
            if let Ok(r) = r
                && r.get("State").and_then(Value::as_str) == Some("ENABLED")
            {
                enabled = true;
            }
        }
        if !enabled {
            out.push(finding(&name, &silent));
        }
    }
    Ok(out)
}
