//! The CloudWatch Logs API (awsJson1.1) as a thin adapter over [`crate::store::Logs`].

use crate::filter::FilterPattern;
use crate::store::{Event, LogGroup, Logs, Scope, StreamMeta, group_not_found, invalid};
use async_trait::async_trait;
use codeyard_core::{AwsError, AwsResult, RequestContext};
use codeyard_wire::shapes::{Problem, validation_message};
use codeyard_wire::{AwsService, opt_str, str_of};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub struct LogsService {
    pub logs: Logs,
}

const OPERATIONS: &[&str] = &[
    "CreateLogGroup",
    "DeleteLogGroup",
    "DescribeLogGroups",
    "PutRetentionPolicy",
    "DeleteRetentionPolicy",
    "CreateLogStream",
    "DeleteLogStream",
    "DescribeLogStreams",
    "PutLogEvents",
    "GetLogEvents",
    "FilterLogEvents",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "TagLogGroup",
    "UntagLogGroup",
    "ListTagsLogGroup",
];

/// GetLogEvents and FilterLogEvents return at most this many events by default.
const DEFAULT_EVENTS_LIMIT: usize = 10_000;

#[async_trait]
impl AwsService for LogsService {
    fn model_name(&self) -> &'static str {
        "logs"
    }
    fn implemented(&self) -> &'static [&'static str] {
        OPERATIONS
    }
    /// CloudWatch Logs answers constraint violations with InvalidParameterException.
    fn validation_error(&self, _operation: &str, problems: &[Problem]) -> AwsError {
        invalid(validation_message(problems))
    }
    async fn call(&self, ctx: &RequestContext, op: &str, input: Value) -> AwsResult<Value> {
        let s = Scope {
            account: &ctx.account,
            region: &ctx.region,
        };
        let logs = &self.logs;
        match op {
            "CreateLogGroup" => {
                let name = str_of(&input, "logGroupName");
                logs.create_group(
                    s,
                    name,
                    opt_str(&input, "kmsKeyId"),
                    opt_str(&input, "logGroupClass"),
                    tag_map(&input["tags"]),
                )
                .await?;
                Ok(json!({}))
            }
            "DeleteLogGroup" => {
                logs.delete_group(s, str_of(&input, "logGroupName")).await?;
                Ok(json!({}))
            }
            "DescribeLogGroups" => self.describe_groups(s, &input).await,
            "PutRetentionPolicy" => {
                logs.set_retention(
                    s,
                    str_of(&input, "logGroupName"),
                    Some(input["retentionInDays"].as_i64().unwrap_or(0)),
                )
                .await?;
                Ok(json!({}))
            }
            "DeleteRetentionPolicy" => {
                logs.set_retention(s, str_of(&input, "logGroupName"), None)
                    .await?;
                Ok(json!({}))
            }
            "CreateLogStream" => {
                logs.create_stream(
                    s,
                    str_of(&input, "logGroupName"),
                    str_of(&input, "logStreamName"),
                )
                .await?;
                Ok(json!({}))
            }
            "DeleteLogStream" => {
                logs.delete_stream(
                    s,
                    str_of(&input, "logGroupName"),
                    str_of(&input, "logStreamName"),
                )
                .await?;
                Ok(json!({}))
            }
            "DescribeLogStreams" => self.describe_streams(s, &input).await,
            "PutLogEvents" => {
                let events: Vec<(i64, String)> = input["logEvents"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        (
                            e["timestamp"].as_i64().unwrap_or(0),
                            str_of(e, "message").to_string(),
                        )
                    })
                    .collect();
                let (token, rejected) = logs
                    .put_events(
                        s,
                        str_of(&input, "logGroupName"),
                        str_of(&input, "logStreamName"),
                        events,
                    )
                    .await?;
                let mut out = json!({"nextSequenceToken": token});
                if !rejected.is_empty() {
                    let mut info = Map::new();
                    if let Some(i) = rejected.too_new_start {
                        info.insert("tooNewLogEventStartIndex".into(), json!(i));
                    }
                    if let Some(i) = rejected.too_old_end {
                        info.insert("tooOldLogEventEndIndex".into(), json!(i));
                    }
                    if let Some(i) = rejected.expired_end {
                        info.insert("expiredLogEventEndIndex".into(), json!(i));
                    }
                    out["rejectedLogEventsInfo"] = Value::Object(info);
                }
                Ok(out)
            }
            "GetLogEvents" => self.get_events(s, &input).await,
            "FilterLogEvents" => self.filter_events(s, &input).await,
            "TagResource" => {
                let (scope_owner, group) = group_of_arn(ctx, str_of(&input, "resourceArn"))?;
                logs.tag_group(scope_owner.scope(), &group, tag_map(&input["tags"]))
                    .await?;
                Ok(json!({}))
            }
            "UntagResource" => {
                let (scope_owner, group) = group_of_arn(ctx, str_of(&input, "resourceArn"))?;
                logs.untag_group(scope_owner.scope(), &group, &strings(&input["tagKeys"]))
                    .await?;
                Ok(json!({}))
            }
            "ListTagsForResource" => {
                let (scope_owner, group) = group_of_arn(ctx, str_of(&input, "resourceArn"))?;
                let g = logs.group(scope_owner.scope(), &group).await?;
                Ok(json!({"tags": g.tags}))
            }
            "TagLogGroup" => {
                logs.tag_group(s, str_of(&input, "logGroupName"), tag_map(&input["tags"]))
                    .await?;
                Ok(json!({}))
            }
            "UntagLogGroup" => {
                logs.untag_group(s, str_of(&input, "logGroupName"), &strings(&input["tags"]))
                    .await?;
                Ok(json!({}))
            }
            "ListTagsLogGroup" => {
                let g = logs.group(s, str_of(&input, "logGroupName")).await?;
                Ok(json!({"tags": g.tags}))
            }
            _ => Err(AwsError::unknown_operation("CloudWatch Logs", op)),
        }
    }
}

impl LogsService {
    async fn describe_groups(&self, s: Scope<'_>, input: &Value) -> AwsResult<Value> {
        let limit = input["limit"].as_u64().unwrap_or(50) as usize;
        let prefix = str_of(input, "logGroupNamePrefix");
        let pattern = opt_str(input, "logGroupNamePattern");
        if !prefix.is_empty() && pattern.is_some() {
            return Err(invalid(
                "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
            ));
        }
        let after = opt_str(input, "nextToken");
        let class = opt_str(input, "logGroupClass");
        let mut groups: Vec<LogGroup> = if pattern.is_none() && class.is_none() {
            // A range scan: only the page is read.
            self.logs
                .list_groups(s, prefix, after.as_deref(), limit + 1)
                .await?
        } else {
            let needle = pattern.unwrap_or_default().to_lowercase();
            self.logs
                .all_groups(s)
                .await?
                .into_iter()
                .filter(|g| g.name.to_lowercase().contains(&needle))
                .filter(|g| class.as_ref().is_none_or(|c| &g.class == c))
                .filter(|g| after.as_ref().is_none_or(|a| g.name.as_str() > a.as_str()))
                .take(limit + 1)
                .collect()
        };
        let next = if groups.len() > limit {
            groups.truncate(limit);
            groups.last().map(|g| g.name.clone())
        } else {
            None
        };
        let mut list = Vec::new();
        for g in &groups {
            let stored = self.logs.group_stored_bytes(s, &g.name).await?;
            list.push(group_json(s, g, stored));
        }
        let mut out = json!({"logGroups": list});
        if let Some(n) = next {
            out["nextToken"] = json!(n);
        }
        Ok(out)
    }

    async fn describe_streams(&self, s: Scope<'_>, input: &Value) -> AwsResult<Value> {
        let group = group_name(input)?;
        let order_by_time = str_of(input, "orderBy") == "LastEventTime";
        let prefix = str_of(input, "logStreamNamePrefix");
        if order_by_time && !prefix.is_empty() {
            return Err(invalid(
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            ));
        }
        let descending = input["descending"].as_bool().unwrap_or(false);
        let limit = input["limit"].as_u64().unwrap_or(50) as usize;
        let mut streams: Vec<StreamMeta> = self
            .logs
            .streams(s, &group)
            .await?
            .into_iter()
            .filter(|st| st.name.starts_with(prefix))
            .collect();
        if order_by_time {
            streams.sort_by(|a, b| {
                a.last_event_ms
                    .unwrap_or(a.created_ms)
                    .cmp(&b.last_event_ms.unwrap_or(b.created_ms))
                    .then(a.name.cmp(&b.name))
            });
        }
        if descending {
            streams.reverse();
        }
        let start = offset_token(input)?;
        let page: Vec<&StreamMeta> = streams.iter().skip(start).take(limit).collect();
        let list: Vec<Value> = page.iter().map(|st| stream_json(s, &group, st)).collect();
        let mut out = json!({"logStreams": list});
        if start + limit < streams.len() {
            out["nextToken"] = json!(format!("o/{}", start + limit));
        }
        Ok(out)
    }

    async fn get_events(&self, s: Scope<'_>, input: &Value) -> AwsResult<Value> {
        let group = group_name(input)?;
        self.logs.group(s, &group).await?;
        let stream = str_of(input, "logStreamName");
        // The stream must exist even when it has no events.
        if !self
            .logs
            .streams(s, &group)
            .await?
            .iter()
            .any(|st| st.name == stream)
        {
            return Err(crate::store::stream_not_found());
        }
        let events = self.logs.stream_events(s, &group, stream).await?;
        let start_time = input["startTime"].as_i64();
        let end_time = input["endTime"].as_i64();
        // Events are sorted by timestamp: the time window is a contiguous range [lo, hi).
        let lo = start_time.map_or(0, |t| events.partition_point(|e| e.timestamp < t));
        let hi = end_time
            .map_or(events.len(), |t| {
                events.partition_point(|e| e.timestamp < t)
            })
            .max(lo);
        let limit = input["limit"]
            .as_u64()
            .map_or(DEFAULT_EVENTS_LIMIT, |l| l as usize);
        let token = opt_str(input, "nextToken")
            .map(|t| parse_position_token(&t))
            .transpose()?;
        let forward = match &token {
            Some((dir, _)) => *dir == 'f',
            None => input["startFromHead"].as_bool().unwrap_or(false),
        };
        let (from, to) = if forward {
            let from = token.map_or(lo, |(_, p)| p).clamp(lo, hi);
            (from, (from + limit).min(hi))
        } else {
            let to = token.map_or(hi, |(_, p)| p).clamp(lo, hi);
            (to.saturating_sub(limit).max(lo), to)
        };
        let list: Vec<Value> = events[from..to]
            .iter()
            .map(|e| json!({"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion}))
            .collect();
        Ok(json!({
            "events": list,
            "nextForwardToken": format!("f/{to:056}/s"),
            "nextBackwardToken": format!("b/{from:056}/s"),
        }))
    }

    async fn filter_events(&self, s: Scope<'_>, input: &Value) -> AwsResult<Value> {
        let group = group_name(input)?;
        let names = strings(&input["logStreamNames"]);
        let prefix = str_of(input, "logStreamNamePrefix");
        if !names.is_empty() && !prefix.is_empty() {
            return Err(invalid(
                "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.",
            ));
        }
        let pattern = FilterPattern::parse(str_of(input, "filterPattern"))?;
        let start_time = input["startTime"].as_i64();
        let end_time = input["endTime"].as_i64();
        let streams: Vec<StreamMeta> = self
            .logs
            .streams(s, &group)
            .await?
            .into_iter()
            .filter(|st| {
                if names.is_empty() {
                    st.name.starts_with(prefix)
                } else {
                    names.contains(&st.name)
                }
            })
            .collect();
        let mut matched: Vec<(String, usize, Event)> = Vec::new();
        for (i, st) in streams.iter().enumerate() {
            for e in self.logs.stream_events(s, &group, &st.name).await? {
                let in_window = start_time.is_none_or(|t| e.timestamp >= t)
                    && end_time.is_none_or(|t| e.timestamp <= t);
                if in_window && pattern.matches(&e.message) {
                    matched.push((st.name.clone(), i, e));
                }
            }
        }
        matched.sort_by_key(|(_, stream_index, e)| (e.timestamp, *stream_index, e.seq));
        let limit = input["limit"]
            .as_u64()
            .map_or(DEFAULT_EVENTS_LIMIT, |l| l as usize);
        let start = offset_token(input)?;
        let list: Vec<Value> = matched
            .iter()
            .skip(start)
            .take(limit)
            .map(|(name, i, e)| {
                json!({
                    "logStreamName": name,
                    "timestamp": e.timestamp,
                    "message": e.message,
                    "ingestionTime": e.ingestion,
                    "eventId": format!("{:020}{:06}{:012}", e.timestamp.max(0), i, e.seq),
                })
            })
            .collect();
        let searched: Vec<Value> = streams
            .iter()
            .map(|st| json!({"logStreamName": st.name, "searchedCompletely": true}))
            .collect();
        let mut out = json!({"events": list, "searchedLogStreams": searched});
        if start + limit < matched.len() {
            out["nextToken"] = json!(format!("o/{}", start + limit));
        }
        Ok(out)
    }
}

/// The group a request names by `logGroupName` or `logGroupIdentifier` (a name or an ARN).
fn group_name(input: &Value) -> AwsResult<String> {
    if let Some(n) = opt_str(input, "logGroupName") {
        if input.get("logGroupIdentifier").is_some() {
            return Err(invalid(
                "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
            ));
        }
        return Ok(n);
    }
    match opt_str(input, "logGroupIdentifier") {
        Some(id) => match id.split_once(":log-group:") {
            Some((_, rest)) => Ok(rest.trim_end_matches(":*").to_string()),
            None => Ok(id),
        },
        None => Err(invalid("Should provide either name or identifier.")),
    }
}

/// The owner of an ARN-named resource, so that a group is looked up where the ARN says.
struct ArnOwner {
    account: String,
    region: String,
}

impl ArnOwner {
    fn scope(&self) -> Scope<'_> {
        Scope {
            account: &self.account,
            region: &self.region,
        }
    }
}

/// `arn:aws:logs:<region>:<account>:log-group:<name>` with or without a trailing `:*`.
fn group_of_arn(ctx: &RequestContext, arn: &str) -> AwsResult<(ArnOwner, String)> {
    let parsed = codeyard_core::arn::Arn::parse(arn).filter(|a| a.service == "logs");
    let Some(a) = parsed else {
        return Err(invalid(format!("Invalid resource ARN: {arn}")));
    };
    let Some(name) = a.resource.strip_prefix("log-group:") else {
        return Err(AwsError::client(
            "ResourceNotFoundException",
            format!("The specified resource does not exist: {arn}"),
        ));
    };
    let name = name.strip_suffix(":*").unwrap_or(name);
    if a.account != ctx.account {
        return Err(group_not_found());
    }
    Ok((
        ArnOwner {
            account: a.account,
            region: a.region,
        },
        name.to_string(),
    ))
}

fn tag_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// `o/<offset>` tokens of DescribeLogStreams and FilterLogEvents.
fn offset_token(input: &Value) -> AwsResult<usize> {
    match opt_str(input, "nextToken") {
        None => Ok(0),
        Some(t) => t
            .strip_prefix("o/")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| invalid("The specified nextToken is invalid.")),
    }
}

/// `f/<position>/s` or `b/<position>/s`, GetLogEvents' tokens.
fn parse_position_token(t: &str) -> AwsResult<(char, usize)> {
    let bad = || invalid("The specified nextToken is invalid.");
    let dir = match t.get(..2) {
        Some("f/") => 'f',
        Some("b/") => 'b',
        _ => return Err(bad()),
    };
    let pos = t[2..].trim_end_matches("/s").parse().map_err(|_| bad())?;
    Ok((dir, pos))
}

fn group_json(s: Scope<'_>, g: &LogGroup, stored_bytes: i64) -> Value {
    let arn = s.group_arn(&g.name);
    let mut o = json!({
        "logGroupName": g.name,
        "creationTime": g.created_ms,
        "metricFilterCount": 0,
        "arn": format!("{arn}:*"),
        "storedBytes": stored_bytes,
        "logGroupClass": g.class,
        "logGroupArn": arn,
    });
    if let Some(d) = g.retention_days {
        o["retentionInDays"] = json!(d);
    }
    if let Some(k) = &g.kms_key_id {
        o["kmsKeyId"] = json!(k);
    }
    o
}

fn stream_json(s: Scope<'_>, group: &str, st: &StreamMeta) -> Value {
    let mut o = json!({
        "logStreamName": st.name,
        "creationTime": st.created_ms,
        "arn": format!("{}:log-stream:{}", s.group_arn(group), st.name),
        "storedBytes": st.stored_bytes,
        "uploadSequenceToken": format!("{:056}", st.event_count),
    });
    if let Some(t) = st.first_event_ms {
        o["firstEventTimestamp"] = json!(t);
    }
    if let Some(t) = st.last_event_ms {
        o["lastEventTimestamp"] = json!(t);
    }
    if let Some(t) = st.last_ingestion_ms {
        o["lastIngestionTime"] = json!(t);
    }
    o
}
