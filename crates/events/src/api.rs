//! The EventBridge API (awsJson1.1, `AWSEvents.*`): a thin adapter from the model's JSON
//! shapes to [`Events`] and back.

use crate::model::*;
use crate::pattern::Pattern;
use crate::rules::{Events, PutEventEntry, PutEventResult, RuleSpec, bus_name};
use async_trait::async_trait;
use codeyard_core::{AwsError, AwsResult, RequestContext, time};
use codeyard_wire::{AwsService, opt_str, str_of};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct EventsApi {
    pub events: Arc<Events>,
}

const OPERATIONS: &[&str] = &[
    "PutRule",
    "DescribeRule",
    "ListRules",
    "DeleteRule",
    "EnableRule",
    "DisableRule",
    "PutTargets",
    "ListTargetsByRule",
    "RemoveTargets",
    "ListRuleNamesByTarget",
    "PutEvents",
    "TestEventPattern",
    "CreateEventBus",
    "DescribeEventBus",
    "ListEventBuses",
    "DeleteEventBus",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
];

#[async_trait]
impl AwsService for EventsApi {
    fn model_name(&self) -> &'static str {
        "events"
    }
    fn implemented(&self) -> &'static [&'static str] {
        OPERATIONS
    }
    async fn call(&self, ctx: &RequestContext, op: &str, input: Value) -> AwsResult<Value> {
        let (a, r) = (ctx.account.as_str(), ctx.region.as_str());
        let ev = &self.events;
        let bus = bus_name(input.get("EventBusName").and_then(Value::as_str));
        match op {
            "PutRule" => {
                let spec = RuleSpec {
                    name: str_of(&input, "Name").to_string(),
                    bus,
                    event_pattern: opt_str(&input, "EventPattern"),
                    schedule_expression: opt_str(&input, "ScheduleExpression"),
                    state: opt_str(&input, "State"),
                    description: opt_str(&input, "Description"),
                    role_arn: opt_str(&input, "RoleArn"),
                    tags: tags_in(&input["Tags"]),
                };
                let arn = ev.put_rule(a, r, spec).await?;
                Ok(json!({"RuleArn": arn}))
            }
            "DescribeRule" => {
                let rule = ev.get_rule(a, r, &bus, str_of(&input, "Name")).await?;
                let mut out = rule_json(&rule);
                out.insert("CreatedBy".into(), json!(rule.created_by));
                Ok(Value::Object(out))
            }
            "ListRules" => {
                ev.require_bus(a, r, &bus).await?;
                let prefix = str_of(&input, "NamePrefix");
                let rules: Vec<Rule> = ev
                    .rules_on(a, r, &bus)
                    .await?
                    .into_iter()
                    .filter(|x| x.name.starts_with(prefix))
                    .collect();
                let (page, next) = paginate(rules, &input, |x| x.name.clone())?;
                let list: Vec<Value> = page.iter().map(|x| Value::Object(rule_json(x))).collect();
                Ok(with_token(json!({"Rules": list}), next))
            }
            "DeleteRule" => {
                ev.delete_rule(a, r, &bus, str_of(&input, "Name")).await?;
                Ok(json!({}))
            }
            "EnableRule" | "DisableRule" => {
                ev.set_state(a, r, &bus, str_of(&input, "Name"), op == "EnableRule")
                    .await?;
                Ok(json!({}))
            }
            "PutTargets" => {
                let targets = input["Targets"].as_array().cloned().unwrap_or_default();
                let failed = ev
                    .put_targets(a, r, &bus, str_of(&input, "Rule"), targets)
                    .await?;
                let entries: Vec<Value> =
                    failed.iter().map(|(id, code, msg)| json!({"TargetId": id, "ErrorCode": code, "ErrorMessage": msg})).collect();
                Ok(json!({"FailedEntryCount": entries.len(), "FailedEntries": entries}))
            }
            "ListTargetsByRule" => {
                let name = str_of(&input, "Rule");
                let rule = ev.get_rule(a, r, &bus, name).await.map_err(|_| {
                    AwsError::client(
                        "ResourceNotFoundException",
                        format!("Rule {name} does not exist."),
                    )
                })?;
                let (page, next) = paginate(rule.targets, &input, |t| {
                    target_str(t, "Id").unwrap_or("").to_string()
                })?;
                Ok(with_token(json!({"Targets": page}), next))
            }
            "RemoveTargets" => {
                let ids: Vec<String> = input["Ids"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                ev.remove_targets(a, r, &bus, str_of(&input, "Rule"), &ids)
                    .await?;
                Ok(json!({"FailedEntryCount": 0, "FailedEntries": []}))
            }
            "ListRuleNamesByTarget" => {
                ev.require_bus(a, r, &bus).await?;
                let target = str_of(&input, "TargetArn");
                let names: Vec<String> = ev
                    .rules_on(a, r, &bus)
                    .await?
                    .into_iter()
                    .filter(|x| {
                        x.targets
                            .iter()
                            .any(|t| target_str(t, "Arn") == Some(target))
                    })
                    .map(|x| x.name)
                    .collect();
                let (page, next) = paginate(names, &input, |n| n.clone())?;
                Ok(with_token(json!({"RuleNames": page}), next))
            }
            "PutEvents" => {
                let entries: Vec<PutEventEntry> = input["Entries"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| PutEventEntry {
                        source: opt_str(e, "Source"),
                        detail_type: opt_str(e, "DetailType"),
                        detail: opt_str(e, "Detail"),
                        resources: e["Resources"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect(),
                        time: e.get("Time").and_then(time::parse_json),
                        bus: bus_name(e.get("EventBusName").and_then(Value::as_str)),
                    })
                    .collect();
                let results = ev.put_events(a, r, entries).await?;
                let failed = results
                    .iter()
                    .filter(|x| matches!(x, PutEventResult::Failed(..)))
                    .count();
                let out: Vec<Value> = results
                    .into_iter()
                    .map(|x| match x {
                        PutEventResult::Ok(id) => json!({"EventId": id}),
                        PutEventResult::Failed(code, msg) => {
                            json!({"ErrorCode": code, "ErrorMessage": msg})
                        }
                    })
                    .collect();
                Ok(json!({"FailedEntryCount": failed, "Entries": out}))
            }
            "TestEventPattern" => {
                let pattern = Pattern::parse(str_of(&input, "EventPattern"))
                    .map_err(|e| AwsError::client("InvalidEventPatternException", e.message()))?;
                let event: Value = match serde_json::from_str(str_of(&input, "Event")) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => return Err(AwsError::validation("Parameter Event is not valid.")),
                };
                Ok(json!({"Result": pattern.matches(&event)}))
            }
            "CreateEventBus" => {
                let name = str_of(&input, "Name");
                let mut extra = BTreeMap::new();
                for k in ["KmsKeyIdentifier", "DeadLetterConfig", "LogConfig"] {
                    if let Some(v) = input.get(k) {
                        extra.insert(k.to_string(), v.clone());
                    }
                }
                let b = ev
                    .create_bus(
                        a,
                        r,
                        name,
                        opt_str(&input, "Description"),
                        tags_in(&input["Tags"]),
                        extra,
                    )
                    .await?;
                let mut out = json!({"EventBusArn": b.arn});
                if let Some(d) = &b.description {
                    out["Description"] = json!(d);
                }
                for (k, v) in &b.extra {
                    out[k] = v.clone();
                }
                Ok(out)
            }
            "DescribeEventBus" => {
                let name = bus_name(input.get("Name").and_then(Value::as_str));
                let b = ev.require_bus(a, r, &name).await?;
                let mut out = bus_json(&b);
                for (k, v) in &b.extra {
                    out.insert(k.clone(), v.clone());
                }
                Ok(Value::Object(out))
            }
            "ListEventBuses" => {
                let prefix = str_of(&input, "NamePrefix");
                let buses: Vec<EventBus> = ev
                    .list_buses(a, r)
                    .await?
                    .into_iter()
                    .filter(|b| b.name.starts_with(prefix))
                    .collect();
                let (page, next) = paginate(buses, &input, |b| b.name.clone())?;
                let list: Vec<Value> = page.iter().map(|b| Value::Object(bus_json(b))).collect();
                Ok(with_token(json!({"EventBuses": list}), next))
            }
            "DeleteEventBus" => {
                ev.delete_bus(a, r, str_of(&input, "Name")).await?;
                Ok(json!({}))
            }
            "TagResource" => {
                ev.change_tags(
                    a,
                    r,
                    str_of(&input, "ResourceARN"),
                    tags_in(&input["Tags"]),
                    Vec::new(),
                )
                .await?;
                Ok(json!({}))
            }
            "UntagResource" => {
                let keys: Vec<String> = input["TagKeys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                ev.change_tags(a, r, str_of(&input, "ResourceARN"), BTreeMap::new(), keys)
                    .await?;
                Ok(json!({}))
            }
            "ListTagsForResource" => {
                let tags = ev.tags(a, r, str_of(&input, "ResourceARN")).await?;
                Ok(json!({"Tags": tags_out(&tags)}))
            }
            other => Err(AwsError::unknown_operation("EventBridge", other)),
        }
    }
}

fn tags_in(v: &Value) -> BTreeMap<String, String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                t.get("Key")?.as_str()?.to_string(),
                t.get("Value")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

fn tags_out(tags: &BTreeMap<String, String>) -> Vec<Value> {
    tags.iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect()
}

fn rule_json(r: &Rule) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("Name".into(), json!(r.name));
    m.insert("Arn".into(), json!(r.arn));
    if let Some(p) = &r.event_pattern {
        m.insert("EventPattern".into(), json!(p));
    }
    if let Some(s) = &r.schedule_expression {
        m.insert("ScheduleExpression".into(), json!(s));
    }
    m.insert("State".into(), json!(r.state));
    if let Some(d) = &r.description {
        m.insert("Description".into(), json!(d));
    }
    if let Some(role) = &r.role_arn {
        m.insert("RoleArn".into(), json!(role));
    }
    m.insert("EventBusName".into(), json!(r.bus));
    m
}

fn bus_json(b: &EventBus) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("Name".into(), json!(b.name));
    m.insert("Arn".into(), json!(b.arn));
    if let Some(d) = &b.description {
        m.insert("Description".into(), json!(d));
    }
    if b.created_ms > 0 {
        m.insert(
            "CreationTime".into(),
            time::epoch_json(&time::from_epoch_millis(b.created_ms)),
        );
        m.insert(
            "LastModifiedTime".into(),
            time::epoch_json(&time::from_epoch_millis(b.modified_ms)),
        );
    }
    m
}

/// Pages a name-ordered list: `NextToken` is the last key returned, `Limit` at most 100.
fn paginate<T>(
    items: Vec<T>,
    input: &Value,
    key: impl Fn(&T) -> String,
) -> AwsResult<(Vec<T>, Option<String>)> {
    let limit = input
        .get("Limit")
        .and_then(Value::as_u64)
        .unwrap_or(100)
        .clamp(1, 100) as usize;
    let start = match input.get("NextToken").and_then(Value::as_str) {
        Some(tok) => {
            let after = String::from_utf8(
                decode_token(tok)
                    .ok_or_else(|| AwsError::validation("The NextToken provided is invalid."))?,
            )
            .map_err(|_| AwsError::validation("The NextToken provided is invalid."))?;
            items
                .iter()
                .position(|x| key(x) == after)
                .map(|i| i + 1)
                .unwrap_or(items.len())
        }
        None => 0,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    let next = (start + page.len() < total)
        .then(|| page.last().map(|x| encode_token(key(x).as_bytes())))
        .flatten();
    Ok((page, next))
}

fn with_token(mut v: Value, next: Option<String>) -> Value {
    if let Some(t) = next {
        v["NextToken"] = json!(t);
    }
    v
}

fn encode_token(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn decode_token(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
