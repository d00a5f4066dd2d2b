//! Stored documents and where they live in the state store.
//!
//! * `events/<acct>/<region>/buses`      custom buses by name (and `default` once tagged)
//! * `events/<acct>/<region>/rules`      rules by `<bus>|<name>`, targets embedded
//! * `events/<acct>/<region>/schedules`  scheduled rules by `<bus>|<name>` (last fire time)
//! * `events/<acct>/<region>/deliveries` recent delivery records, a ring per rule

use codeyard_core::arn::arn;
use serde::{Deserialize, Serialize};
pub use codeyard_api::events::{DeadLetterConfig, LogConfig, RuleState, Target};
use serde_json::Value;
use std::collections::BTreeMap;

pub const DEFAULT_BUS: &str = "default";
/// Durable queue of (rule, target, event) deliveries waiting to be made.
pub const DELIVERY_QUEUE: &str = "events.delivery";
/// How many delivery records are kept per rule.
pub const DELIVERY_LOG_SIZE: i64 = 100;

pub fn ns(account: &str, region: &str, kind: &str) -> String {
    format!("events/{account}/{region}/{kind}")
}

pub fn rule_key(bus: &str, name: &str) -> String {
    format!("{bus}|{name}")
}

pub fn bus_arn(region: &str, account: &str, bus: &str) -> String {
    arn("events", region, account, &format!("event-bus/{bus}"))
}

/// Rules on the default bus are `rule/<name>`; on other buses `rule/<bus>/<name>`.
pub fn rule_arn(region: &str, account: &str, bus: &str, name: &str) -> String {
    if bus == DEFAULT_BUS {
        arn("events", region, account, &format!("rule/{name}"))
    } else {
        arn("events", region, account, &format!("rule/{bus}/{name}"))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventBus {
    pub name: String,
    pub arn: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub created_ms: i64,
    pub modified_ms: i64,
    /// The optional members given at creation, echoed by DescribeEventBus.
    #[serde(default, rename = "extra")]
    pub options: BusOptions,
}

/// CreateEventBus's optional members, kept as given (stored under `extra` in AWS's names).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct BusOptions {
    pub kms_key_identifier: Option<String>,
    pub dead_letter_config: Option<DeadLetterConfig>,
    pub log_config: Option<LogConfig>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    pub bus: String,
    pub arn: String,
    #[serde(default)]
    pub event_pattern: Option<String>,
    #[serde(default)]
    pub schedule_expression: Option<String>,
    pub state: RuleState,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub role_arn: Option<String>,
    pub created_by: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Targets as PutTargets gave them.
    #[serde(default)]
    pub targets: Vec<Target>,
    pub created_ms: i64,
}

impl Rule {
    pub fn enabled(&self) -> bool {
        self.state != RuleState::Disabled
    }
}

/// A scheduled rule's clock.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScheduleDoc {
    pub bus: String,
    pub rule: String,
    pub expression: String,
    /// Rates count periods from here (the rule's creation or last schedule change).
    pub anchor_ms: i64,
    pub last_fired_ms: i64,
}

/// One delivery (rule, target, event) waiting on the durable queue.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeliveryItem {
    pub account: String,
    pub region: String,
    pub bus: String,
    pub rule: String,
    pub rule_arn: String,
    pub target: Target,
    pub event: Value,
    pub ingestion_time: String,
}

/// What happened to one delivery attempt, kept for `codeyard events` and
/// `GET /_codeyard/events/deliveries`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DeliveryRecord {
    pub seq: i64,
    pub time: String,
    pub account: String,
    pub region: String,
    pub bus: String,
    pub rule: String,
    pub target_id: String,
    pub target_arn: String,
    pub event_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub status: DeliveryStatus,
    /// What the target reported (an execution id) or why it failed.
    pub detail: String,
    /// The exact body delivered to the target.
    pub input: Value,
}

/// How one delivery attempt ended.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Delivered,
    /// Failed, and tried again later.
    Retrying,
    /// Failed for good.
    Failed,
}

impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Failed => "failed",
        })
    }
}
