//! The CloudWatch Logs API: the generated [`LogsApi`] trait implemented over
//! [`crate::store::Logs`]. Inputs arrive decoded into the model's types (the wire validated
//! them first); every operation not defined here answers UnknownOperationException.

use crate::filter::FilterPattern;
use crate::store::{Event, LogGroup, Logs, LogsError, LogsScope, Scope, StreamMeta};
use codeyard_api::Unit;
use codeyard_api::logs::*;
use codeyard_core::{AwsError, AwsResult, RequestContext};
use codeyard_wire::shapes::{Problem, validation_message};

pub struct LogsService {
    pub logs: Logs,
}

/// GetLogEvents and FilterLogEvents return at most this many events by default.
const DEFAULT_EVENTS_LIMIT: usize = 10_000;
/// DescribeLogGroups and DescribeLogStreams return at most this many by default.
const DEFAULT_DESCRIBE_LIMIT: usize = 50;

fn scope(ctx: &RequestContext) -> Scope<'_> {
    Scope::of(ctx)
}

/// InvalidParameterException, CloudWatch Logs' answer to a request it refuses.
fn invalid(message: impl Into<String>) -> AwsError {
    LogsError::Invalid(message.into()).into()
}

fn limit_or(limit: Option<i32>, default: usize) -> usize {
    limit.map_or(default, |l| l.max(0) as usize)
}

#[codeyard_api::service]
impl LogsApi for LogsService {
    /// CloudWatch Logs answers constraint violations with InvalidParameterException.
    fn validation_error(&self, _operation: &str, problems: &[Problem]) -> AwsError {
        invalid(validation_message(problems))
    }

    async fn create_log_group(&self, ctx: &RequestContext, input: CreateLogGroupInput) -> AwsResult<CreateLogGroupOutput> {
        let tags = input.tags.unwrap_or_default();
        self.logs.create_group(scope(ctx), &input.log_group_name, input.kms_key_id, input.log_group_class, tags).await?;
        Ok(Unit {})
    }

    async fn delete_log_group(&self, ctx: &RequestContext, input: DeleteLogGroupInput) -> AwsResult<DeleteLogGroupOutput> {
        self.logs.delete_group(scope(ctx), &input.log_group_name).await?;
        Ok(Unit {})
    }

    async fn describe_log_groups(&self, ctx: &RequestContext, input: DescribeLogGroupsInput) -> AwsResult<DescribeLogGroupsOutput> {
        let s = scope(ctx);
        let limit = limit_or(input.limit, DEFAULT_DESCRIBE_LIMIT);
        let prefix = input.log_group_name_prefix.as_deref().unwrap_or("");
        if !prefix.is_empty() && input.log_group_name_pattern.is_some() {
            return Err(invalid("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters."));
        }
        let after = input.next_token.as_deref();
        let class = input.log_group_class.as_ref();
        let mut groups: Vec<LogGroup> = match (&input.log_group_name_pattern, class) {
            // A range scan: only the page is read.
            (None, None) => self.logs.list_groups(s, prefix, after, limit + 1).await?,
            (pattern, class) => {
                let needle = pattern.as_deref().unwrap_or_default().to_lowercase();
                self.logs
                    .all_groups(s)
                    .await?
                    .into_iter()
                    .filter(|g| g.name.to_lowercase().contains(&needle))
                    .filter(|g| class.is_none_or(|c| g.class == *c))
                    .filter(|g| after.is_none_or(|a| g.name.as_str() > a))
                    .take(limit + 1)
                    .collect()
            }
        };
        let next_token = if groups.len() > limit {
            groups.truncate(limit);
            groups.last().map(|g| g.name.clone())
        } else {
            None
        };
        let mut log_groups = Vec::new();
        for g in &groups {
            let stored = self.logs.group_stored_bytes(s, &g.name).await?;
            log_groups.push(group_shape(s, g, stored));
        }
        Ok(DescribeLogGroupsOutput { log_groups: Some(log_groups), next_token })
    }

    async fn put_retention_policy(&self, ctx: &RequestContext, input: PutRetentionPolicyInput) -> AwsResult<PutRetentionPolicyOutput> {
        self.logs.set_retention(scope(ctx), &input.log_group_name, Some(input.retention_in_days.into())).await?;
        Ok(Unit {})
    }

    async fn delete_retention_policy(&self, ctx: &RequestContext, input: DeleteRetentionPolicyInput) -> AwsResult<DeleteRetentionPolicyOutput> {
        self.logs.set_retention(scope(ctx), &input.log_group_name, None).await?;
        Ok(Unit {})
    }

    async fn create_log_stream(&self, ctx: &RequestContext, input: CreateLogStreamInput) -> AwsResult<CreateLogStreamOutput> {
        self.logs.create_stream(scope(ctx), &input.log_group_name, &input.log_stream_name).await?;
        Ok(Unit {})
    }

    async fn delete_log_stream(&self, ctx: &RequestContext, input: DeleteLogStreamInput) -> AwsResult<DeleteLogStreamOutput> {
        self.logs.delete_stream(scope(ctx), &input.log_group_name, &input.log_stream_name).await?;
        Ok(Unit {})
    }

    async fn describe_log_streams(&self, ctx: &RequestContext, input: DescribeLogStreamsInput) -> AwsResult<DescribeLogStreamsOutput> {
        let s = scope(ctx);
        let group = group_name(&input.log_group_name, &input.log_group_identifier)?;
        let order_by_time = input.order_by == Some(OrderBy::LastEventTime);
        let prefix = input.log_stream_name_prefix.as_deref().unwrap_or("");
        if order_by_time && !prefix.is_empty() {
            return Err(invalid("Cannot order by LastEventTime with a logStreamNamePrefix."));
        }
        let limit = limit_or(input.limit, DEFAULT_DESCRIBE_LIMIT);
        let mut streams: Vec<StreamMeta> = self.logs.streams(s, &group).await?.into_iter().filter(|st| st.name.starts_with(prefix)).collect();
        if order_by_time {
            streams.sort_by(|a, b| {
                a.last_event_ms.unwrap_or(a.created_ms).cmp(&b.last_event_ms.unwrap_or(b.created_ms)).then(a.name.cmp(&b.name))
            });
        }
        if input.descending == Some(true) {
            streams.reverse();
        }
        let start = offset_token(input.next_token.as_deref())?;
        let log_streams = streams.iter().skip(start).take(limit).map(|st| stream_shape(s, &group, st)).collect();
        let next_token = (start + limit < streams.len()).then(|| format!("o/{}", start + limit));
        Ok(DescribeLogStreamsOutput { log_streams: Some(log_streams), next_token })
    }

    async fn put_log_events(&self, ctx: &RequestContext, input: PutLogEventsInput) -> AwsResult<PutLogEventsOutput> {
        let events = input.log_events.into_iter().map(|e| (e.timestamp, e.message)).collect();
        let (token, rejected) = self.logs.put_events(scope(ctx), &input.log_group_name, &input.log_stream_name, events).await?;
        let index = |i: Option<usize>| i.map(|i| i as i32);
        let rejected_log_events_info = (!rejected.is_empty()).then(|| RejectedLogEventsInfo {
            too_new_log_event_start_index: index(rejected.too_new_start),
            too_old_log_event_end_index: index(rejected.too_old_end),
            expired_log_event_end_index: index(rejected.expired_end),
        });
        Ok(PutLogEventsOutput { next_sequence_token: Some(token), rejected_log_events_info, rejected_entity_info: None })
    }

    async fn get_log_events(&self, ctx: &RequestContext, input: GetLogEventsInput) -> AwsResult<GetLogEventsOutput> {
        let s = scope(ctx);
        let group = group_name(&input.log_group_name, &input.log_group_identifier)?;
        self.logs.group(s, &group).await?;
        let stream = input.log_stream_name.as_str();
        // The stream must exist even when it has no events.
        if !self.logs.streams(s, &group).await?.iter().any(|st| st.name == stream) {
            return Err(LogsError::StreamNotFound.into());
        }
        let events = self.logs.stream_events(s, &group, stream).await?;
        // Events are sorted by timestamp: the time window is a contiguous range [lo, hi).
        let lo = input.start_time.map_or(0, |t| events.partition_point(|e| e.timestamp < t));
        let hi = input.end_time.map_or(events.len(), |t| events.partition_point(|e| e.timestamp < t)).max(lo);
        let limit = limit_or(input.limit, DEFAULT_EVENTS_LIMIT);
        let token = input.next_token.as_deref().map(parse_position_token).transpose()?;
        let forward = match &token {
            Some((direction, _)) => *direction == 'f',
            None => input.start_from_head.unwrap_or(false),
        };
        let (from, to) = if forward {
            let from = token.map_or(lo, |(_, p)| p).clamp(lo, hi);
            (from, (from + limit).min(hi))
        } else {
            let to = token.map_or(hi, |(_, p)| p).clamp(lo, hi);
            (to.saturating_sub(limit).max(lo), to)
        };
        let events = events[from..to]
            .iter()
            .map(|e| OutputLogEvent { timestamp: Some(e.timestamp), message: Some(e.message.clone()), ingestion_time: Some(e.ingestion) })
            .collect();
        Ok(GetLogEventsOutput {
            events: Some(events),
            next_forward_token: Some(format!("f/{to:056}/s")),
            next_backward_token: Some(format!("b/{from:056}/s")),
        })
    }

    async fn filter_log_events(&self, ctx: &RequestContext, input: FilterLogEventsInput) -> AwsResult<FilterLogEventsOutput> {
        let s = scope(ctx);
        let group = group_name(&input.log_group_name, &input.log_group_identifier)?;
        let names = input.log_stream_names.unwrap_or_default();
        let prefix = input.log_stream_name_prefix.as_deref().unwrap_or("");
        if !names.is_empty() && !prefix.is_empty() {
            return Err(invalid("logStreamNames and logStreamNamePrefix are mutually exclusive parameters."));
        }
        let pattern = FilterPattern::parse(input.filter_pattern.as_deref().unwrap_or(""))?;
        let streams: Vec<StreamMeta> = self
            .logs
            .streams(s, &group)
            .await?
            .into_iter()
            .filter(|st| if names.is_empty() { st.name.starts_with(prefix) } else { names.contains(&st.name) })
            .collect();
        let mut matched: Vec<(&str, usize, Event)> = Vec::new();
        for (i, st) in streams.iter().enumerate() {
            for e in self.logs.stream_events(s, &group, &st.name).await? {
                let in_window = input.start_time.is_none_or(|t| e.timestamp >= t) && input.end_time.is_none_or(|t| e.timestamp <= t);
                if in_window && pattern.matches(&e.message) {
                    matched.push((&st.name, i, e));
                }
            }
        }
        matched.sort_by_key(|(_, stream_index, e)| (e.timestamp, *stream_index, e.seq));
        let limit = limit_or(input.limit, DEFAULT_EVENTS_LIMIT);
        let start = offset_token(input.next_token.as_deref())?;
        let events = matched
            .iter()
            .skip(start)
            .take(limit)
            .map(|(name, i, e)| FilteredLogEvent {
                log_stream_name: Some(name.to_string()),
                timestamp: Some(e.timestamp),
                message: Some(e.message.clone()),
                ingestion_time: Some(e.ingestion),
                event_id: Some(format!("{:020}{:06}{:012}", e.timestamp.max(0), i, e.seq)),
            })
            .collect();
        let searched_log_streams = streams
            .iter()
            .map(|st| SearchedLogStream { log_stream_name: Some(st.name.clone()), searched_completely: Some(true) })
            .collect();
        let next_token = (start + limit < matched.len()).then(|| format!("o/{}", start + limit));
        Ok(FilterLogEventsOutput { events: Some(events), searched_log_streams: Some(searched_log_streams), next_token })
    }

    async fn tag_resource(&self, ctx: &RequestContext, input: TagResourceInput) -> AwsResult<TagResourceOutput> {
        let (owner, group) = group_of_arn(ctx, &input.resource_arn)?;
        self.logs.tag_group(owner.scope(), &group, input.tags).await?;
        Ok(Unit {})
    }

    async fn untag_resource(&self, ctx: &RequestContext, input: UntagResourceInput) -> AwsResult<UntagResourceOutput> {
        let (owner, group) = group_of_arn(ctx, &input.resource_arn)?;
        self.logs.untag_group(owner.scope(), &group, &input.tag_keys).await?;
        Ok(Unit {})
    }

    async fn list_tags_for_resource(&self, ctx: &RequestContext, input: ListTagsForResourceInput) -> AwsResult<ListTagsForResourceOutput> {
        let (owner, group) = group_of_arn(ctx, &input.resource_arn)?;
        let g = self.logs.group(owner.scope(), &group).await?;
        Ok(ListTagsForResourceOutput { tags: Some(g.tags) })
    }

    async fn tag_log_group(&self, ctx: &RequestContext, input: TagLogGroupInput) -> AwsResult<TagLogGroupOutput> {
        self.logs.tag_group(scope(ctx), &input.log_group_name, input.tags).await?;
        Ok(Unit {})
    }

    async fn untag_log_group(&self, ctx: &RequestContext, input: UntagLogGroupInput) -> AwsResult<UntagLogGroupOutput> {
        self.logs.untag_group(scope(ctx), &input.log_group_name, &input.tags).await?;
        Ok(Unit {})
    }

    async fn list_tags_log_group(&self, ctx: &RequestContext, input: ListTagsLogGroupInput) -> AwsResult<ListTagsLogGroupOutput> {
        let g = self.logs.group(scope(ctx), &input.log_group_name).await?;
        Ok(ListTagsLogGroupOutput { tags: Some(g.tags) })
    }
}

/// The group a request names by `logGroupName` or `logGroupIdentifier` (a name or an ARN).
fn group_name(name: &Option<String>, identifier: &Option<String>) -> AwsResult<String> {
    match (name, identifier) {
        (Some(_), Some(_)) => Err(invalid("LogGroup name and LogGroup ARN are mutually exclusive parameters.")),
        (Some(n), None) => Ok(n.clone()),
        (None, Some(id)) => match id.split_once(":log-group:") {
            Some((_, rest)) => Ok(rest.trim_end_matches(":*").to_string()),
            None => Ok(id.clone()),
        },
        (None, None) => Err(invalid("Should provide either name or identifier.")),
    }
}

/// The owner of an ARN-named resource, so that a group is looked up where the ARN says.
struct ArnOwner {
    account: String,
    region: String,
}

impl ArnOwner {
    fn scope(&self) -> Scope<'_> {
        Scope { account: &self.account, region: &self.region }
    }
}

/// `arn:aws:logs:<region>:<account>:log-group:<name>` with or without a trailing `:*`.
fn group_of_arn(ctx: &RequestContext, arn: &str) -> AwsResult<(ArnOwner, String)> {
    let parsed = codeyard_core::arn::Arn::parse(arn).filter(|a| a.service == "logs");
    let Some(a) = parsed else {
        return Err(invalid(format!("Invalid resource ARN: {arn}")));
    };
    let Some(name) = a.resource.strip_prefix("log-group:") else {
        return Err(AwsError::client("ResourceNotFoundException", format!("The specified resource does not exist: {arn}")));
    };
    let name = name.strip_suffix(":*").unwrap_or(name);
    if a.account != ctx.account {
        return Err(LogsError::GroupNotFound.into());
    }
    Ok((ArnOwner { account: a.account, region: a.region }, name.to_string()))
}

/// `o/<offset>` tokens of DescribeLogStreams and FilterLogEvents.
fn offset_token(token: Option<&str>) -> AwsResult<usize> {
    match token {
        None => Ok(0),
        Some(t) => t.strip_prefix("o/").and_then(|n| n.parse().ok()).ok_or_else(|| invalid("The specified nextToken is invalid.")),
    }
}

/// `f/<position>/s` or `b/<position>/s`, GetLogEvents' tokens.
fn parse_position_token(t: &str) -> AwsResult<(char, usize)> {
    let bad = || invalid("The specified nextToken is invalid.");
    let direction = match t.get(..2) {
        Some("f/") => 'f',
        Some("b/") => 'b',
        _ => return Err(bad()),
    };
    let position = t[2..].trim_end_matches("/s").parse().map_err(|_| bad())?;
    Ok((direction, position))
}

fn group_shape(s: Scope<'_>, g: &LogGroup, stored_bytes: i64) -> codeyard_api::logs::LogGroup {
    let arn = s.group_arn(&g.name);
    codeyard_api::logs::LogGroup {
        log_group_name: Some(g.name.clone()),
        creation_time: Some(g.created_ms),
        retention_in_days: g.retention_days.map(|d| d as i32),
        metric_filter_count: Some(0),
        arn: Some(format!("{arn}:*")),
        stored_bytes: Some(stored_bytes),
        kms_key_id: g.kms_key_id.clone(),
        log_group_class: Some(g.class.clone()),
        log_group_arn: Some(arn),
        ..Default::default()
    }
}

fn stream_shape(s: Scope<'_>, group: &str, st: &StreamMeta) -> LogStream {
    LogStream {
        log_stream_name: Some(st.name.clone()),
        creation_time: Some(st.created_ms),
        first_event_timestamp: st.first_event_ms,
        last_event_timestamp: st.last_event_ms,
        last_ingestion_time: st.last_ingestion_ms,
        upload_sequence_token: Some(format!("{:056}", st.event_count)),
        arn: Some(s.stream_arn(group, &st.name)),
        stored_bytes: Some(st.stored_bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The operations the wire serves come from this impl block, and IAM can authorize each.
    #[test]
    fn implemented_operations_come_from_the_impl_and_have_iam_actions() {
        codeyard_api::assert_implemented(OPERATIONS, LogsService::IMPLEMENTED_METHODS, 17, &["CreateLogGroup", "FilterLogEvents"], &["StartQuery"]);
    }
}
