//! Observability: "why did my pipeline not start?"
//!
//! `GET /_codeyard/events/deliveries[?rule=NAME][&bus=BUS]` answers the recent delivery
//! attempts (newest first) as JSON: `{"deliveries": [DeliveryRecord...]}`; each record carries
//! the exact body the target received. `GET /_codeyard/events/queues` answers the backlog of
//! the ingress and delivery queues. [`cli_events`] prints the deliveries for `codeyard events`.

use crate::delivery::recent_deliveries;
use crate::model::DeliveryRecord;
use async_trait::async_trait;
use axum::body::Body;
use codeyard_core::RequestContext;
use codeyard_wire::{HttpService, Platform};
use serde_json::json;

pub const PREFIX: &str = "/_codeyard/events/";

pub struct EventsHttp {
    pub platform: Platform,
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url_decode_pairs(query.unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn url_decode_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or(""),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(status: u16, body: serde_json::Value) -> http::Response<Body> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("response builds")
}

#[async_trait]
impl HttpService for EventsHttp {
    fn name(&self) -> &'static str {
        "events-observability"
    }
    fn claims(&self, parts: &http::request::Parts) -> bool {
        parts.uri.path().starts_with(PREFIX)
    }
    async fn handle(&self, _ctx: RequestContext, req: http::Request<Body>) -> http::Response<Body> {
        let path = req.uri().path().trim_start_matches(PREFIX);
        if req.method() == http::Method::GET && path == "queues" {
            // Backlog of the two durable queues (benchmarks and "is anything stuck?").
            let store = &self.platform.store;
            let ingress = store
                .queue_len(codeyard_core::hub::EVENTS_INGRESS_QUEUE)
                .await
                .unwrap_or(0);
            let delivery = store
                .queue_len(crate::model::DELIVERY_QUEUE)
                .await
                .unwrap_or(0);
            return respond(200, json!({"ingress": ingress, "delivery": delivery}));
        }
        if req.method() != http::Method::GET || path != "deliveries" {
            return respond(
                404,
                json!({"message": format!("no such endpoint: {} {}", req.method(), req.uri().path())}),
            );
        }
        let q = req.uri().query();
        let rule = query_param(q, "rule");
        let bus = query_param(q, "bus");
        match recent_deliveries(&self.platform, rule.as_deref(), bus.as_deref()).await {
            Ok(list) => respond(200, json!({"deliveries": list})),
            Err(e) => respond(500, json!({"message": e.message})),
        }
    }
}

/// Prints recent deliveries (newest first) from a running server: `codeyard events [--rule R]`.
pub async fn cli_events(endpoint: &str, rule: Option<&str>) -> anyhow::Result<()> {
    let mut url = format!("{}{PREFIX}deliveries", endpoint.trim_end_matches('/'));
    if let Some(r) = rule {
        url.push_str(&format!("?rule={r}"));
    }
    let body: serde_json::Value = reqwest::get(&url).await?.error_for_status()?.json().await?;
    let list: Vec<DeliveryRecord> = serde_json::from_value(body["deliveries"].clone())?;
    if list.is_empty() {
        println!(
            "no deliveries recorded{}",
            rule.map(|r| format!(" for rule {r}")).unwrap_or_default()
        );
        return Ok(());
    }
    for d in &list {
        println!(
            "{}  {:<9} rule {}/{} -> {} ({}) attempt {}  event {}\n    {}",
            d.time,
            d.status,
            d.bus,
            d.rule,
            d.target_id,
            d.target_arn,
            d.attempt,
            d.event_id,
            d.detail
        );
    }
    Ok(())
}
