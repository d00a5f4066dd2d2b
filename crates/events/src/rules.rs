//! The domain: event buses, rules, targets, tags and publishing, on the state store.
//!
//! Every write takes the service's writer lock, commits to the store, then updates the
//! compiled-rule cache, so the cache never runs ahead of or behind the store.

use crate::cache::{RuleCache, stored_rules};
use crate::model::*;
use crate::pattern::Pattern;
use crate::schedule::Schedule;
use crate::transform;
use codeyard_core::hub::{BusEvent, EVENTS_INGRESS_QUEUE};
use crate::error::{EventsError, EventsResult, invalid};
use codeyard_core::{arn::Arn, time};
use codeyard_store::{Batch, Expect, SharedStore, StateStoreExt};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How many targets one rule may have (AWS's quota).
pub const MAX_TARGETS_PER_RULE: usize = 5;

pub struct Events {
    pub store: SharedStore,
    pub cache: RuleCache,
    writer: tokio::sync::Mutex<()>,
    /// Wakes the ingress worker when this process published events.
    pub ingress_ready: Arc<tokio::sync::Notify>,
}

fn rule_not_found(name: &str, bus: &str) -> EventsError {
    EventsError::RuleNotFound { rule: name.to_string(), bus: bus.to_string() }
}

/// A bus given by name or ARN, as the `EventBusNameOrArn` members allow.
pub fn bus_name(given: Option<&str>) -> String {
    match given {
        None | Some("") => DEFAULT_BUS.to_string(),
        Some(s) if s.starts_with("arn:") => s
            .rsplit_once("event-bus/")
            .map(|(_, n)| n.to_string())
            .unwrap_or_else(|| s.to_string()),
        Some(s) => s.to_string(),
    }
}

/// What PutRule sets.
#[derive(Clone, Debug, Default)]
pub struct RuleSpec {
    pub name: String,
    pub bus: String,
    pub event_pattern: Option<String>,
    pub schedule_expression: Option<String>,
    pub state: Option<RuleState>,
    pub description: Option<String>,
    pub role_arn: Option<String>,
    pub tags: BTreeMap<String, String>,
}

pub struct PutEventEntry {
    pub source: Option<String>,
    pub detail_type: Option<String>,
    pub detail: Option<String>,
    pub resources: Vec<String>,
    pub time: Option<time::Timestamp>,
    pub bus: String,
}

/// The outcome of one PutEvents entry: the event's id, or why the entry was refused.
pub enum PutEventResult {
    Ok(String),
    Failed(EntryFailure),
}

/// Why one PutEvents entry was refused (the API edge gives each its ErrorCode).
pub enum EntryFailure {
    /// Source, DetailType or Detail absent (the names of the missing ones).
    Missing(Vec<&'static str>),
    /// Detail is not a JSON object.
    MalformedDetail,
    BusNotFound(String),
}

/// A PutTargets entry refused on its own, the others still applied.
pub struct RejectedTarget {
    pub id: String,
    pub reason: String,
}

fn ms_now() -> i64 {
    time::now().timestamp_millis()
}

pub fn event_time(t: &time::Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Events {
    pub fn new(store: SharedStore) -> Events {
        Events {
            cache: RuleCache::new(store.clone()),
            store,
            writer: Default::default(),
            ingress_ready: Arc::new(tokio::sync::Notify::new()),
        }
    }

    // ------------------------------------------------------------------------------ buses

    pub async fn get_bus(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> EventsResult<Option<EventBus>> {
        let stored = self
            .store
            .get_as::<EventBus>(&ns(account, region, "buses"), name)
            .await?
            .map(|(b, _)| b);
        if stored.is_none() && name == DEFAULT_BUS {
            return Ok(Some(EventBus {
                name: DEFAULT_BUS.into(),
                arn: bus_arn(region, account, DEFAULT_BUS),
                description: None,
                tags: BTreeMap::new(),
                created_ms: 0,
                modified_ms: 0,
                options: BusOptions::default(),
            }));
        }
        Ok(stored)
    }

    pub async fn require_bus(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> EventsResult<EventBus> {
        self.get_bus(account, region, name)
            .await?
            .ok_or_else(|| EventsError::BusNotFound(name.to_string()))
    }

    pub async fn create_bus(
        &self,
        account: &str,
        region: &str,
        name: &str,
        description: Option<String>,
        tags: BTreeMap<String, String>,
        options: BusOptions,
    ) -> EventsResult<EventBus> {
        let _w = self.writer.lock().await;
        if name == DEFAULT_BUS || self.get_bus(account, region, name).await?.is_some() {
            return Err(EventsError::BusExists(name.to_string()));
        }
        if name.starts_with("aws.") {
            return Err(invalid(format!("Event source {name} does not exist.")));
        }
        let now = ms_now();
        let bus = EventBus {
            name: name.into(),
            arn: bus_arn(region, account, name),
            description,
            tags,
            created_ms: now,
            modified_ms: now,
            options,
        };
        self.store
            .commit(Batch::new().put(ns(account, region, "buses"), name, &bus, Expect::Absent))
            .await
            .map_err(|_| EventsError::BusExists(name.to_string()))?;
        Ok(bus)
    }

    pub async fn list_buses(&self, account: &str, region: &str) -> EventsResult<Vec<EventBus>> {
        let mut out: Vec<EventBus> = self
            .store
            .list_all_as(&ns(account, region, "buses"))
            .await?;
        if !out.iter().any(|b| b.name == DEFAULT_BUS) {
            out.push(self.get_bus(account, region, DEFAULT_BUS).await?.unwrap());
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Deletes a custom bus and the rules on it. Deleting a missing bus succeeds, as on AWS.
    pub async fn delete_bus(&self, account: &str, region: &str, name: &str) -> EventsResult<()> {
        if name == DEFAULT_BUS {
            return Err(invalid("Cannot delete event bus default."));
        }
        let _w = self.writer.lock().await;
        let rules = self.rules_on(account, region, name).await?;
        let mut batch = Batch::new().delete(ns(account, region, "buses"), name, Expect::Any);
        for r in &rules {
            batch = batch
                .delete(
                    ns(account, region, "rules"),
                    rule_key(name, &r.name),
                    Expect::Any,
                )
                .delete(
                    ns(account, region, "schedules"),
                    rule_key(name, &r.name),
                    Expect::Any,
                );
        }
        self.store.commit(batch).await?;
        self.cache.drop_bus(account, region, name).await;
        Ok(())
    }

    // ------------------------------------------------------------------------------ rules

    pub async fn rules_on(&self, account: &str, region: &str, bus: &str) -> EventsResult<Vec<Rule>> {
        Ok(stored_rules(&self.store, account, region, bus).await?)
    }

    async fn load_rule(
        &self,
        account: &str,
        region: &str,
        bus: &str,
        name: &str,
    ) -> EventsResult<Option<(Rule, i64)>> {
        Ok(self
            .store
            .get_as::<Rule>(&ns(account, region, "rules"), &rule_key(bus, name))
            .await?)
    }

    pub async fn get_rule(
        &self,
        account: &str,
        region: &str,
        bus: &str,
        name: &str,
    ) -> EventsResult<Rule> {
        self.load_rule(account, region, bus, name)
            .await?
            .map(|(r, _)| r)
            .ok_or_else(|| rule_not_found(name, bus))
    }

    /// Creates or replaces a rule; returns its ARN.
    pub async fn put_rule(&self, account: &str, region: &str, spec: RuleSpec) -> EventsResult<String> {
        let schedule = match spec.schedule_expression.as_deref() {
            Some(s) if !s.is_empty() => Some(Schedule::parse(s).map_err(EventsError::Invalid)?),
            _ => None,
        };
        let pattern_given = spec.event_pattern.as_deref().is_some_and(|p| !p.is_empty());
        if pattern_given {
            Pattern::parse(spec.event_pattern.as_deref().unwrap())
                .map_err(|e| EventsError::InvalidPattern(e.message()))?;
        }
        if schedule.is_none() && !pattern_given {
            return Err(invalid("Parameter(s) EventPattern or ScheduleExpression must be specified."));
        }
        if schedule.is_some() && spec.bus != DEFAULT_BUS {
            return Err(invalid("ScheduleExpression is supported only on the default event bus."));
        }
        let _w = self.writer.lock().await;
        self.require_bus(account, region, &spec.bus).await?;
        let existing = self
            .load_rule(account, region, &spec.bus, &spec.name)
            .await?;
        let now = ms_now();
        let arn = rule_arn(region, account, &spec.bus, &spec.name);
        let (rule, expect) = match existing {
            Some((old, version)) => {
                let mut r = old.clone();
                r.event_pattern = spec.event_pattern.filter(|p| !p.is_empty());
                r.schedule_expression = spec.schedule_expression.filter(|s| !s.is_empty());
                r.state = spec.state.unwrap_or(RuleState::Enabled);
                r.description = spec.description;
                r.role_arn = spec.role_arn;
                (r, Expect::Version(version))
            }
            None => (
                Rule {
                    name: spec.name.clone(),
                    bus: spec.bus.clone(),
                    arn: arn.clone(),
                    event_pattern: spec.event_pattern.filter(|p| !p.is_empty()),
                    schedule_expression: spec.schedule_expression.filter(|s| !s.is_empty()),
                    state: spec.state.unwrap_or(RuleState::Enabled),
                    description: spec.description,
                    role_arn: spec.role_arn,
                    created_by: account.to_string(),
                    tags: spec.tags,
                    targets: Vec::new(),
                    created_ms: now,
                },
                Expect::Absent,
            ),
        };
        let key = rule_key(&rule.bus, &rule.name);
        let mut batch = Batch::new().put(ns(account, region, "rules"), &key, &rule, expect);
        let sched_ns = ns(account, region, "schedules");
        match &rule.schedule_expression {
            Some(expr) => {
                let old = self
                    .store
                    .get_as::<ScheduleDoc>(&sched_ns, &key)
                    .await?
                    .map(|(d, _)| d);
                // Keep the clock when the expression did not change (an update of tags or
                // description must not reset when the next run is due).
                let doc = match old {
                    Some(d) if &d.expression == expr => d,
                    _ => ScheduleDoc {
                        bus: rule.bus.clone(),
                        rule: rule.name.clone(),
                        expression: expr.clone(),
                        anchor_ms: now,
                        last_fired_ms: now,
                    },
                };
                batch = batch.put(&sched_ns, &key, &doc, Expect::Any);
            }
            None => batch = batch.delete(&sched_ns, &key, Expect::Any),
        }
        self.store.commit(batch).await.map_err(|e| match e {
            codeyard_store::StoreError::Conflict(..) => EventsError::Contended,
            other => other.into(),
        })?;
        self.cache.upsert(account, region, rule).await?;
        Ok(arn)
    }

    /// Deletes a rule. Refused while it has targets; a missing rule is not an error.
    pub async fn delete_rule(
        &self,
        account: &str,
        region: &str,
        bus: &str,
        name: &str,
    ) -> EventsResult<()> {
        let _w = self.writer.lock().await;
        self.require_bus(account, region, bus).await?;
        let Some((rule, version)) = self.load_rule(account, region, bus, name).await? else {
            return Ok(());
        };
        if !rule.targets.is_empty() {
            return Err(invalid("Rule can't be deleted since it has targets."));
        }
        let key = rule_key(bus, name);
        self.store
            .commit(
                Batch::new()
                    .delete(ns(account, region, "rules"), &key, Expect::Version(version))
                    .delete(ns(account, region, "schedules"), &key, Expect::Any),
            )
            .await?;
        Ok(self.cache.remove(account, region, bus, name).await?)
    }

    /// Applies `change` to a stored rule (compare-and-swap) and refreshes the cache.
    async fn update_rule(
        &self,
        account: &str,
        region: &str,
        bus: &str,
        name: &str,
        change: impl FnOnce(&mut Rule) -> EventsResult<()>,
    ) -> EventsResult<Rule> {
        let _w = self.writer.lock().await;
        self.require_bus(account, region, bus).await?;
        let (mut rule, version) = self
            .load_rule(account, region, bus, name)
            .await?
            .ok_or_else(|| rule_not_found(name, bus))?;
        change(&mut rule)?;
        self.store
            .commit(Batch::new().put(
                ns(account, region, "rules"),
                rule_key(bus, name),
                &rule,
                Expect::Version(version),
            ))
            .await?;
        self.cache.upsert(account, region, rule.clone()).await?;
        Ok(rule)
    }

    pub async fn set_state(
        &self,
        account: &str,
        region: &str,
        bus: &str,
        name: &str,
        enabled: bool,
    ) -> EventsResult<()> {
        self.update_rule(account, region, bus, name, |r| {
            r.state = if enabled { RuleState::Enabled } else { RuleState::Disabled };
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// Adds or replaces targets by Id. Returns the entries refused.
    pub async fn put_targets(
        &self,
        account: &str,
        region: &str,
        bus: &str,
        name: &str,
        targets: Vec<Target>,
    ) -> EventsResult<Vec<RejectedTarget>> {
        let mut failed = Vec::new();
        let mut accepted = Vec::new();
        for t in targets {
            match check_target(&t) {
                Ok(()) => accepted.push(t),
                Err(reason) => failed.push(RejectedTarget { id: t.id.clone(), reason }),
            }
        }
        self.update_rule(account, region, bus, name, |r| {
            for t in &accepted {
                match r.targets.iter_mut().find(|x| x.id == t.id) {
                    Some(slot) => *slot = t.clone(),
                    None => r.targets.push(t.clone()),
                }
            }
            if r.targets.len() > MAX_TARGETS_PER_RULE {
                return Err(EventsError::TooManyTargets);
            }
            Ok(())
        })
        .await?;
        Ok(failed)
    }

    pub async fn remove_targets(
        &self,
        account: &str,
        region: &str,
        bus: &str,
        name: &str,
        ids: &[String],
    ) -> EventsResult<()> {
        self.update_rule(account, region, bus, name, |r| {
            r.targets.retain(|t| !ids.contains(&t.id));
            Ok(())
        })
        .await
        .map(|_| ())
    }

    // ------------------------------------------------------------------------------- tags

    /// The document an ARN names, for tagging: a rule or a bus.
    async fn tag_target(
        &self,
        account: &str,
        region: &str,
        resource_arn: &str,
    ) -> EventsResult<TagTarget> {
        let arn = Arn::parse(resource_arn)
            .filter(|a| a.service == "events")
            .ok_or_else(|| EventsError::ResourceNotFound(resource_arn.to_string()))?;
        if let Some(rest) = arn.resource.strip_prefix("rule/") {
            let (bus, name) = match rest.split_once('/') {
                Some((b, n)) => (b.to_string(), n.to_string()),
                None => (DEFAULT_BUS.to_string(), rest.to_string()),
            };
            self.get_rule(account, region, &bus, &name).await?;
            return Ok(TagTarget::Rule(bus, name));
        }
        if let Some(bus) = arn.resource.strip_prefix("event-bus/") {
            self.require_bus(account, region, bus).await?;
            return Ok(TagTarget::Bus(bus.to_string()));
        }
        Err(EventsError::ResourceNotFound(resource_arn.to_string()))
    }

    pub async fn tags(
        &self,
        account: &str,
        region: &str,
        resource_arn: &str,
    ) -> EventsResult<BTreeMap<String, String>> {
        Ok(
            match self.tag_target(account, region, resource_arn).await? {
                TagTarget::Rule(bus, name) => {
                    self.get_rule(account, region, &bus, &name).await?.tags
                }
                TagTarget::Bus(bus) => self.require_bus(account, region, &bus).await?.tags,
            },
        )
    }

    pub async fn change_tags(
        &self,
        account: &str,
        region: &str,
        resource_arn: &str,
        add: BTreeMap<String, String>,
        remove: Vec<String>,
    ) -> EventsResult<()> {
        match self.tag_target(account, region, resource_arn).await? {
            TagTarget::Rule(bus, name) => {
                self.update_rule(account, region, &bus, &name, |r| {
                    r.tags.extend(add);
                    r.tags.retain(|k, _| !remove.contains(k));
                    Ok(())
                })
                .await?;
            }
            TagTarget::Bus(bus) => {
                let _w = self.writer.lock().await;
                let mut b = self.require_bus(account, region, &bus).await?;
                b.tags.extend(add);
                b.tags.retain(|k, _| !remove.contains(k));
                b.modified_ms = ms_now();
                self.store
                    .put_as(&ns(account, region, "buses"), &bus, &b)
                    .await?;
            }
        }
        Ok(())
    }

    // ----------------------------------------------------------------------------- events

    /// Validates entries and puts the valid ones on the ingress queue in one commit.
    pub async fn put_events(
        &self,
        account: &str,
        region: &str,
        entries: Vec<PutEventEntry>,
    ) -> EventsResult<Vec<PutEventResult>> {
        let mut batch = Batch::new();
        let mut results = Vec::with_capacity(entries.len());
        // Bus existence, looked up once per call (the default bus always exists).
        let mut known: BTreeMap<String, bool> = BTreeMap::from([(DEFAULT_BUS.to_string(), true)]);
        for e in entries {
            let (Some(source), Some(detail_type), Some(detail)) =
                (&e.source, &e.detail_type, &e.detail)
            else {
                let missing: Vec<&'static str> = [
                    ("Source", &e.source),
                    ("DetailType", &e.detail_type),
                    ("Detail", &e.detail),
                ]
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(n, _)| *n)
                .collect();
                results.push(PutEventResult::Failed(EntryFailure::Missing(missing)));
                continue;
            };
            let detail: Value = match serde_json::from_str(detail) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    results.push(PutEventResult::Failed(EntryFailure::MalformedDetail));
                    continue;
                }
            };
            let exists = match known.get(&e.bus) {
                Some(x) => *x,
                None => {
                    let x = self.get_bus(account, region, &e.bus).await?.is_some();
                    known.insert(e.bus.clone(), x);
                    x
                }
            };
            if !exists {
                results.push(PutEventResult::Failed(EntryFailure::BusNotFound(e.bus.clone())));
                continue;
            }
            let id = codeyard_core::ids::uuid();
            let event = json!({
                "version": "0",
                "id": id,
                "detail-type": detail_type,
                "source": source,
                "account": account,
                "time": event_time(&e.time.unwrap_or_else(time::now)),
                "region": region,
                "resources": e.resources,
                "detail": detail,
            });
            batch = batch.enqueue(
                EVENTS_INGRESS_QUEUE,
                BusEvent {
                    account: account.into(),
                    region: region.into(),
                    bus: e.bus.clone(),
                    event,
                },
            );
            results.push(PutEventResult::Ok(id));
        }
        if !batch.is_empty() {
            self.store.commit(batch).await?;
            self.ingress_ready.notify_one();
        }
        Ok(results)
    }
}

enum TagTarget {
    Rule(String, String),
    Bus(String),
}

/// Checks one target of PutTargets: the reason it is refused (a ValidationException entry).
fn check_target(t: &Target) -> Result<(), String> {
    let (id, arn_text) = (&t.id, &t.arn);
    if Arn::parse(arn_text).is_none() {
        return Err(format!(
            "Parameter {arn_text} is not valid. Reason: Provided Arn is not in correct format."
        ));
    }
    let given = [t.input.is_some(), t.input_path.is_some(), t.input_transformer.is_some()]
        .iter()
        .filter(|given| **given)
        .count();
    if given > 1 {
        return Err(format!(
            "Only one of Input, InputPath, or InputTransformer must be provided for target {id}."
        ));
    }
    if let Some(input) = &t.input
        && serde_json::from_str::<Value>(input).is_err()
    {
        return Err(format!(
            "Input for target {id} is not valid JSON text."
        ));
    }
    if let Some(path) = &t.input_path
        && !transform::valid_path(path)
    {
        return Err(format!(
            "Invalid InputPath for target {id}: {path}"
        ));
    }
    if let Some(map) = t.input_transformer.as_ref().and_then(|x| x.input_paths_map.as_ref()) {
        for (k, v) in map {
            if k.starts_with("aws.") {
                return Err(format!(
                    "Input transformer key {k} is reserved: keys cannot start with \"aws.\"."
                ));
            }
            if !transform::valid_path(v) {
                return Err(format!(
                    "Invalid InputPathsMap value for key {k} of target {id}."
                ));
            }
        }
    }
    Ok(())
}
