//! The EventBridge API (awsJson1.1, `AWSEvents.*`): the generated [`EventsApi`] trait
//! implemented over [`Events`]. Inputs arrive decoded into the model's types (the wire
//! validated them first); every operation not defined here answers UnknownOperationException.
//! Domain errors ([`EventsError`]) become AWS's codes at this edge.

use crate::error::{EventsError, invalid};
use crate::model;
use crate::pattern::Pattern;
use crate::rules::{EntryFailure, Events, PutEventEntry, PutEventResult, RuleSpec, bus_name};
use codeyard_api::events::*;
use codeyard_api::{Timestamp, Unit};
use codeyard_core::{AwsError, AwsResult, RequestContext};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct EventsService {
    pub events: Arc<Events>,
    pub hub: Arc<codeyard_core::Hub>,
}

#[codeyard_api::service]
impl EventsApi for EventsService {
    async fn put_rule(&self, ctx: &RequestContext, input: PutRuleInput) -> AwsResult<PutRuleOutput> {
        let spec = RuleSpec {
            name: input.name,
            bus: bus_name(input.event_bus_name.as_deref()),
            event_pattern: input.event_pattern,
            schedule_expression: input.schedule_expression,
            state: input.state,
            description: input.description,
            role_arn: input.role_arn,
            tags: tags_in(input.tags.unwrap_or_default()),
        };
        let arn = self.events.put_rule(&ctx.account, &ctx.region, spec).await?;
        Ok(PutRuleOutput { rule_arn: Some(arn) })
    }

    async fn describe_rule(&self, ctx: &RequestContext, input: DescribeRuleInput) -> AwsResult<DescribeRuleOutput> {
        let bus = bus_name(input.event_bus_name.as_deref());
        let r = self.events.get_rule(&ctx.account, &ctx.region, &bus, &input.name).await?;
        Ok(DescribeRuleOutput {
            name: Some(r.name),
            arn: Some(r.arn),
            event_pattern: r.event_pattern,
            schedule_expression: r.schedule_expression,
            state: Some(r.state.clone()),
            description: r.description,
            role_arn: r.role_arn,
            managed_by: None,
            event_bus_name: Some(r.bus),
            created_by: Some(r.created_by),
        })
    }

    async fn list_rules(&self, ctx: &RequestContext, input: ListRulesInput) -> AwsResult<ListRulesOutput> {
        let (a, r) = (ctx.account.as_str(), ctx.region.as_str());
        let bus = bus_name(input.event_bus_name.as_deref());
        self.events.require_bus(a, r, &bus).await?;
        let prefix = input.name_prefix.as_deref().unwrap_or("");
        let rules: Vec<model::Rule> =
            self.events.rules_on(a, r, &bus).await?.into_iter().filter(|x| x.name.starts_with(prefix)).collect();
        let (page, next_token) = paginate(rules, input.limit, input.next_token.as_deref(), |x| x.name.clone())?;
        Ok(ListRulesOutput { rules: Some(page.iter().map(rule_shape).collect()), next_token })
    }

    async fn delete_rule(&self, ctx: &RequestContext, input: DeleteRuleInput) -> AwsResult<DeleteRuleOutput> {
        let bus = bus_name(input.event_bus_name.as_deref());
        self.events.delete_rule(&ctx.account, &ctx.region, &bus, &input.name).await?;
        Ok(Unit {})
    }

    async fn enable_rule(&self, ctx: &RequestContext, input: EnableRuleInput) -> AwsResult<EnableRuleOutput> {
        let bus = bus_name(input.event_bus_name.as_deref());
        self.events.set_state(&ctx.account, &ctx.region, &bus, &input.name, true).await?;
        Ok(Unit {})
    }

    async fn disable_rule(&self, ctx: &RequestContext, input: DisableRuleInput) -> AwsResult<DisableRuleOutput> {
        let bus = bus_name(input.event_bus_name.as_deref());
        self.events.set_state(&ctx.account, &ctx.region, &bus, &input.name, false).await?;
        Ok(Unit {})
    }

    async fn put_targets(&self, ctx: &RequestContext, input: PutTargetsInput) -> AwsResult<PutTargetsOutput> {
        let bus = bus_name(input.event_bus_name.as_deref());
        let targets = input.targets;
        // Naming a role for EventBridge to invoke a target with is passing it (iam:PassRole).
        for role in targets.iter().filter_map(|t| t.role_arn.as_deref()).filter(|r| !r.is_empty()) {
            self.hub
                .authorize(ctx, &codeyard_core::AccessRequest::pass_role(role, "events.amazonaws.com"))
                .await
                .map_err(|d| d.to_error("AccessDeniedException"))?;
        }
        let rejected = self.events.put_targets(&ctx.account, &ctx.region, &bus, &input.rule, targets).await?;
        let failed_entries: Vec<PutTargetsResultEntry> = rejected
            .into_iter()
            .map(|t| PutTargetsResultEntry {
                target_id: Some(t.id),
                error_code: Some("ValidationException".into()),
                error_message: Some(t.reason),
            })
            .collect();
        Ok(PutTargetsOutput { failed_entry_count: Some(failed_entries.len() as i32), failed_entries: Some(failed_entries) })
    }

    async fn list_targets_by_rule(&self, ctx: &RequestContext, input: ListTargetsByRuleInput) -> AwsResult<ListTargetsByRuleOutput> {
        let bus = bus_name(input.event_bus_name.as_deref());
        let name = input.rule.as_str();
        // ListTargetsByRule's message names no bus, unlike the other rule operations'.
        let rule = self
            .events
            .get_rule(&ctx.account, &ctx.region, &bus, name)
            .await
            .map_err(|_| AwsError::client("ResourceNotFoundException", format!("Rule {name} does not exist.")))?;
        let (targets, next_token) = paginate(rule.targets, input.limit, input.next_token.as_deref(), |t| t.id.clone())?;
        Ok(ListTargetsByRuleOutput { targets: Some(targets), next_token })
    }

    async fn remove_targets(&self, ctx: &RequestContext, input: RemoveTargetsInput) -> AwsResult<RemoveTargetsOutput> {
        let bus = bus_name(input.event_bus_name.as_deref());
        self.events.remove_targets(&ctx.account, &ctx.region, &bus, &input.rule, &input.ids).await?;
        Ok(RemoveTargetsOutput { failed_entry_count: Some(0), failed_entries: Some(Vec::new()) })
    }

    async fn list_rule_names_by_target(
        &self,
        ctx: &RequestContext,
        input: ListRuleNamesByTargetInput,
    ) -> AwsResult<ListRuleNamesByTargetOutput> {
        let (a, r) = (ctx.account.as_str(), ctx.region.as_str());
        let bus = bus_name(input.event_bus_name.as_deref());
        self.events.require_bus(a, r, &bus).await?;
        let target = input.target_arn.as_str();
        let names: Vec<String> = self
            .events
            .rules_on(a, r, &bus)
            .await?
            .into_iter()
            .filter(|x| x.targets.iter().any(|t| t.arn == target))
            .map(|x| x.name)
            .collect();
        let (page, next_token) = paginate(names, input.limit, input.next_token.as_deref(), |n| n.clone())?;
        Ok(ListRuleNamesByTargetOutput { rule_names: Some(page), next_token })
    }

    async fn put_events(&self, ctx: &RequestContext, input: PutEventsInput) -> AwsResult<PutEventsOutput> {
        let entries: Vec<PutEventEntry> = input
            .entries
            .into_iter()
            .map(|e| PutEventEntry {
                source: e.source,
                detail_type: e.detail_type,
                detail: e.detail,
                resources: e.resources.unwrap_or_default(),
                time: e.time.map(|t| t.0),
                bus: bus_name(e.event_bus_name.as_deref()),
            })
            .collect();
        let results = self.events.put_events(&ctx.account, &ctx.region, entries).await?;
        let failed = results.iter().filter(|x| matches!(x, PutEventResult::Failed(..))).count();
        let entries = results
            .into_iter()
            .map(|x| match x {
                PutEventResult::Ok(id) => PutEventsResultEntry { event_id: Some(id), ..Default::default() },
                PutEventResult::Failed(f) => {
                    let (code, message) = entry_failure(f);
                    PutEventsResultEntry { event_id: None, error_code: Some(code.into()), error_message: Some(message) }
                }
            })
            .collect();
        Ok(PutEventsOutput { failed_entry_count: Some(failed as i32), entries: Some(entries) })
    }

    async fn test_event_pattern(&self, _ctx: &RequestContext, input: TestEventPatternInput) -> AwsResult<TestEventPatternOutput> {
        let pattern = Pattern::parse(&input.event_pattern).map_err(|e| EventsError::InvalidPattern(e.message()))?;
        let event: Value = match serde_json::from_str(&input.event) {
            Ok(v @ Value::Object(_)) => v,
            _ => return Err(invalid("Parameter Event is not valid.").into()),
        };
        Ok(TestEventPatternOutput { result: Some(pattern.matches(&event)) })
    }

    async fn create_event_bus(&self, ctx: &RequestContext, input: CreateEventBusInput) -> AwsResult<CreateEventBusOutput> {
        let options = model::BusOptions {
            kms_key_identifier: input.kms_key_identifier,
            dead_letter_config: input.dead_letter_config,
            log_config: input.log_config,
        };
        let tags = tags_in(input.tags.unwrap_or_default());
        let b = self.events.create_bus(&ctx.account, &ctx.region, &input.name, input.description, tags, options).await?;
        Ok(CreateEventBusOutput {
            event_bus_arn: Some(b.arn),
            description: b.description,
            kms_key_identifier: b.options.kms_key_identifier,
            dead_letter_config: b.options.dead_letter_config,
            log_config: b.options.log_config,
        })
    }

    async fn describe_event_bus(&self, ctx: &RequestContext, input: DescribeEventBusInput) -> AwsResult<DescribeEventBusOutput> {
        let name = bus_name(input.name.as_deref());
        let b = self.events.require_bus(&ctx.account, &ctx.region, &name).await?;
        let shape = bus_shape(&b);
        Ok(DescribeEventBusOutput {
            name: shape.name,
            arn: shape.arn,
            description: shape.description,
            kms_key_identifier: b.options.kms_key_identifier,
            dead_letter_config: b.options.dead_letter_config,
            policy: None,
            log_config: b.options.log_config,
            creation_time: shape.creation_time,
            last_modified_time: shape.last_modified_time,
        })
    }

    async fn list_event_buses(&self, ctx: &RequestContext, input: ListEventBusesInput) -> AwsResult<ListEventBusesOutput> {
        let prefix = input.name_prefix.as_deref().unwrap_or("");
        let buses: Vec<model::EventBus> =
            self.events.list_buses(&ctx.account, &ctx.region).await?.into_iter().filter(|b| b.name.starts_with(prefix)).collect();
        let (page, next_token) = paginate(buses, input.limit, input.next_token.as_deref(), |b| b.name.clone())?;
        Ok(ListEventBusesOutput { event_buses: Some(page.iter().map(bus_shape).collect()), next_token })
    }

    async fn delete_event_bus(&self, ctx: &RequestContext, input: DeleteEventBusInput) -> AwsResult<DeleteEventBusOutput> {
        self.events.delete_bus(&ctx.account, &ctx.region, &input.name).await?;
        Ok(Unit {})
    }

    async fn tag_resource(&self, ctx: &RequestContext, input: TagResourceInput) -> AwsResult<TagResourceOutput> {
        self.events.change_tags(&ctx.account, &ctx.region, &input.resource_arn, tags_in(input.tags), Vec::new()).await?;
        Ok(Default::default())
    }

    async fn untag_resource(&self, ctx: &RequestContext, input: UntagResourceInput) -> AwsResult<UntagResourceOutput> {
        self.events.change_tags(&ctx.account, &ctx.region, &input.resource_arn, BTreeMap::new(), input.tag_keys).await?;
        Ok(Default::default())
    }

    async fn list_tags_for_resource(&self, ctx: &RequestContext, input: ListTagsForResourceInput) -> AwsResult<ListTagsForResourceOutput> {
        let tags = self.events.tags(&ctx.account, &ctx.region, &input.resource_arn).await?;
        Ok(ListTagsForResourceOutput { tags: Some(tags.into_iter().map(|(key, value)| Tag { key, value }).collect()) })
    }
}

/// A refused PutEvents entry's ErrorCode and ErrorMessage, as EventBridge reports them.
fn entry_failure(f: EntryFailure) -> (&'static str, String) {
    match f {
        EntryFailure::Missing(names) => ("InvalidArgument", format!("Parameter(s) {} must be specified.", names.join(", "))),
        EntryFailure::MalformedDetail => ("MalformedDetail", "Detail is malformed.".into()),
        EntryFailure::BusNotFound(bus) => ("ResourceNotFoundException", format!("Event bus {bus} does not exist.")),
    }
}

fn tags_in(tags: Vec<Tag>) -> BTreeMap<String, String> {
    tags.into_iter().map(|t| (t.key, t.value)).collect()
}

fn rule_shape(r: &model::Rule) -> Rule {
    Rule {
        name: Some(r.name.clone()),
        arn: Some(r.arn.clone()),
        event_pattern: r.event_pattern.clone(),
        state: Some(r.state.clone()),
        description: r.description.clone(),
        schedule_expression: r.schedule_expression.clone(),
        role_arn: r.role_arn.clone(),
        managed_by: None,
        event_bus_name: Some(r.bus.clone()),
    }
}

fn bus_shape(b: &model::EventBus) -> EventBus {
    // The default bus was never created: it has no times.
    let created = b.created_ms > 0;
    EventBus {
        name: Some(b.name.clone()),
        arn: Some(b.arn.clone()),
        description: b.description.clone(),
        policy: None,
        creation_time: created.then(|| Timestamp::from_millis(b.created_ms)),
        last_modified_time: created.then(|| Timestamp::from_millis(b.modified_ms)),
    }
}

/// Pages a name-ordered list: `NextToken` is the last key returned, `Limit` at most 100.
fn paginate<T>(
    items: Vec<T>,
    limit: Option<i32>,
    next_token: Option<&str>,
    key: impl Fn(&T) -> String,
) -> AwsResult<(Vec<T>, Option<String>)> {
    let limit = limit.and_then(|l| usize::try_from(l).ok()).unwrap_or(100).clamp(1, 100);
    let start = match next_token {
        Some(tok) => {
            let bad = || AwsError::from(invalid("The NextToken provided is invalid."));
            let after = String::from_utf8(decode_token(tok).ok_or_else(bad)?).map_err(|_| bad())?;
            items.iter().position(|x| key(x) == after).map(|i| i + 1).unwrap_or(items.len())
        }
        None => 0,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    let next = (start + page.len() < total).then(|| page.last().map(|x| encode_token(key(x).as_bytes()))).flatten();
    Ok((page, next))
}

fn encode_token(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn decode_token(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The operations the wire serves come from this impl block, and IAM can authorize each.
    #[test]
    fn implemented_operations_come_from_the_impl_and_have_iam_actions() {
        let implemented = codeyard_api::implemented_operations(OPERATIONS, EventsService::IMPLEMENTED_METHODS);
        assert_eq!(implemented.len(), 19);
        assert!(implemented.contains(&"PutRule") && implemented.contains(&"ListTagsForResource"));
        assert!(!implemented.contains(&"CreateArchive"));
        for op in implemented {
            let info = EventsOperation::from_name(op).unwrap().info();
            assert!(!info.iam.is_empty(), "{op} has no IAM action");
        }
    }
}
