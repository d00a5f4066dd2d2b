//! Build logs: lines from the sandbox shipped to CloudWatch Logs as they are written, and
//! `codeyard logs <build-id>` reading them back over the public APIs.
//!
//! The pump batches what arrived every 200 ms (or every 1000 lines), masks secret values, and
//! ends when the sandbox's output ends (after teardown): the runner waits for it before it
//! marks the build COMPLETED, so a finished build's log is complete.

use crate::build::BuildRecord;
use codeyard_core::RequestContext;
use codeyard_wire::Platform;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// A line in the agent's own voice, as AWS prints them.
pub fn agent_line(msg: &str) -> String {
    let now = chrono::Utc::now();
    format!("[Container] {} {msg}", now.format("%Y/%m/%d %H:%M:%S%.6f"))
}

/// Values to replace by `***` in every line.
pub type Masks = Arc<Mutex<Vec<String>>>;

/// AWS access key ids (long-term `AKIA...`, temporary `ASIA...`), hidden wherever they appear.
static ACCESS_KEY_ID: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b").unwrap());

/// `line` with every value of `masks` (longest first) and every access key id replaced by `***`.
pub fn mask(line: String, masks: &Masks) -> String {
    let mut masks: Vec<String> = masks.lock().unwrap().iter().filter(|m| m.len() >= 4).cloned().collect();
    masks.sort_by_key(|m| std::cmp::Reverse(m.len()));
    let mut line = line;
    for m in &masks {
        if line.contains(m.as_str()) {
            line = line.replace(m.as_str(), "***");
        }
    }
    match ACCESS_KEY_ID.replace_all(&line, "***") {
        std::borrow::Cow::Owned(s) => s,
        std::borrow::Cow::Borrowed(_) => line,
    }
}

/// The build's log pump and the answer to creating its log stream.
pub struct Pump {
    pub task: tokio::task::JoinHandle<()>,
    /// `Err` with AWS's message when the service role may not create the group or stream (the
    /// build then fails in PROVISIONING, as on AWS); `Ok` otherwise (logs disabled included).
    pub stream: tokio::sync::oneshot::Receiver<Result<(), String>>,
}

/// Ships the sandbox's lines to the build's log stream, acting as `ctx` (the service role's
/// session): creates the stream first, then appends every batch.
pub fn spawn_pump(
    platform: &Platform,
    ctx: &RequestContext,
    b: &BuildRecord,
    rx: Option<mpsc::UnboundedReceiver<String>>,
    masks: Masks,
) -> Option<Pump> {
    let mut rx = rx?;
    let mut sink = if b.logs_enabled() {
        platform.hub.logs().ok()
    } else {
        None
    };
    let (group, stream) = (b.log_group.clone(), b.log_stream.clone());
    let (build_id, build_arn, role) = (b.id.clone(), b.arn.clone(), b.config.service_role.clone());
    let ctx = ctx.clone();
    let (ready, stream_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut answer = Ok(());
        if let Some(s) = &sink
            && let Err(e) = s.ensure_stream(&ctx, &group, &stream).await
        {
            tracing::warn!(build = %build_id, error = %e, "cannot create the build's log stream");
            if e.status == 403 {
                answer = Err(format!(
                    "Service role {role} does not allow AWS CodeBuild to create Amazon CloudWatch Logs log streams for build {build_arn}. Error message: {}",
                    e.message
                ));
            }
            sink = None;
        }
        let _ = ready.send(answer);
        let mut batch: Vec<(i64, String)> = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut open = true;
        while open {
            tokio::select! {
                line = rx.recv() => match line {
                    Some(l) => {
                        batch.push((chrono::Utc::now().timestamp_millis(), mask(l, &masks)));
                        if batch.len() < 1000 { continue; }
                    }
                    None => open = false,
                },
                _ = tick.tick() => {}
            }
            if batch.is_empty() {
                continue;
            }
            let events = std::mem::take(&mut batch);
            if let Some(s) = &sink
                && let Err(e) = s.append(&ctx, &group, &stream, events).await
            {
                tracing::warn!(build = %build_id, error = %e, "cannot append to the build's log");
            }
        }
    });
    Some(Pump { task, stream: stream_rx })
}

/// One awsJson call, SigV4-signed with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (default
/// `test`/`test`), so it works against a server in `--auth enforce` mode too.
async fn call(
    client: &reqwest::Client,
    endpoint: &str,
    region: &str,
    service: &str,
    target: &str,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    use codeyard_wire::sigv4;
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "test".into());
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "test".into());
    let token = std::env::var("AWS_SESSION_TOKEN").ok();
    let url = reqwest::Url::parse(endpoint)?;
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or("localhost")),
        None => url.host_str().unwrap_or("localhost").to_string(),
    };
    let now = chrono::Utc::now();
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let body = body.to_string();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "content-type",
        http::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    headers.insert("host", http::HeaderValue::from_str(&host)?);
    headers.insert("x-amz-date", http::HeaderValue::from_str(&amz_date)?);
    headers.insert("x-amz-target", http::HeaderValue::from_str(target)?);
    let mut signed = vec![
        "content-type".to_string(),
        "host".into(),
        "x-amz-date".into(),
        "x-amz-target".into(),
    ];
    if let Some(t) = &token {
        headers.insert("x-amz-security-token", http::HeaderValue::from_str(t)?);
        signed.push("x-amz-security-token".into());
    }
    let sig = sigv4::SigV4 {
        access_key: key.clone(),
        date: now.format("%Y%m%d").to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: signed.clone(),
        signature: String::new(),
        amz_date,
        presigned: false,
    };
    let signature = sigv4::compute_signature(
        &sig,
        &secret,
        "POST",
        "/",
        "",
        &headers,
        &sigv4::sha256_hex(body.as_bytes()),
    );
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={key}/{}/{region}/{service}/aws4_request, SignedHeaders={}, Signature={signature}",
        sig.date,
        signed.join(";")
    );
    headers.remove("host"); // reqwest sends the same Host itself
    let resp = client
        .post(url)
        .headers(headers)
        .header("authorization", auth)
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!(
            "{target}: {} {}",
            v["__type"].as_str().unwrap_or(""),
            v["message"].as_str().unwrap_or("")
        );
    }
    Ok(v)
}

/// Prints a build's log; with `follow`, keeps printing until the build completes.
/// The region comes from AWS_REGION / AWS_DEFAULT_REGION (default us-east-1).
pub async fn cli_logs(endpoint: &str, build_id: &str, follow: bool) -> anyhow::Result<()> {
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|_| "us-east-1".into());
    let endpoint = endpoint.trim_end_matches('/');
    let client = reqwest::Client::new();
    let mut token: Option<String> = None;
    loop {
        let builds = call(
            &client,
            endpoint,
            &region,
            "codebuild",
            "CodeBuild_20161006.BatchGetBuilds",
            serde_json::json!({"ids": [build_id]}),
        )
        .await?;
        let Some(build) = builds["builds"].get(0).cloned() else {
            anyhow::bail!("build {build_id} not found in {region}");
        };
        let complete = build["buildComplete"].as_bool().unwrap_or(false);
        let (group, stream) = (
            build["logs"]["groupName"].as_str().unwrap_or(""),
            build["logs"]["streamName"].as_str().unwrap_or(""),
        );
        if !group.is_empty() {
            loop {
                let mut req = serde_json::json!({"logGroupName": group, "logStreamName": stream, "startFromHead": true});
                if let Some(t) = &token {
                    req["nextToken"] = serde_json::json!(t);
                }
                let page = match call(
                    &client,
                    endpoint,
                    &region,
                    "logs",
                    "Logs_20140328.GetLogEvents",
                    req,
                )
                .await
                {
                    Ok(p) => p,
                    Err(_) if !complete => break, // the stream is created when the build starts
                    Err(e) => return Err(e),
                };
                let events = page["events"].as_array().cloned().unwrap_or_default();
                for e in &events {
                    println!("{}", e["message"].as_str().unwrap_or(""));
                }
                let next = page["nextForwardToken"].as_str().map(str::to_string);
                let same = next == token;
                token = next;
                if events.is_empty() || same {
                    break;
                }
            }
        }
        if !follow || complete {
            if complete {
                eprintln!(
                    "build {build_id}: {}",
                    build["buildStatus"].as_str().unwrap_or("")
                );
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_values_and_access_key_ids() {
        let masks: Masks = Arc::new(Mutex::new(vec!["secret".into(), "secret-longer".into(), "abc".into()]));
        assert_eq!(mask("echo secret-longer secret abc".into(), &masks), "echo *** *** abc");
        assert_eq!(
            mask("key=ASIAABCDEFGHIJKLMNOP id AKIA0123456789ABCDEF".into(), &masks),
            "key=*** id ***"
        );
        assert_eq!(mask("ASIASHORT stays".into(), &masks), "ASIASHORT stays");
    }
}
