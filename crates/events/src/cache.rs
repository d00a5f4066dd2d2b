//! Compiled rules in memory, per bus, indexed for fast matching.
//!
//! The store holds the rules (and their pattern source); this cache holds each rule's compiled
//! [`Pattern`] so events are never matched by re-parsing. A bus is loaded from the store on
//! first use (so a restart rebuilds it lazily) and kept in step by every rule write, which
//! updates the single rule it changed.
//!
//! Index: a rule whose every alternative requires an exact string at some path (typically
//! `source` or `detail-type`) is filed under those values; an event only evaluates the rules
//! filed under its own values at the indexed paths, plus the few rules that could not be
//! indexed. A bus with thousands of rules for other sources costs a few hash look-ups.

use crate::model::{Rule, ns};
use crate::pattern::{FlatEvent, Pattern};
use codeyard_store::{SharedStore, StateStoreExt, StoreResult};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

/// Every stored rule of one bus, in key (name) order.
pub(crate) async fn stored_rules(store: &SharedStore, account: &str, region: &str, bus: &str) -> StoreResult<Vec<Rule>> {
    store.scan(&ns(account, region, "rules"), &format!("{bus}|")).collect_as().await
}

/// A rule ready to match.
pub struct LiveRule {
    pub rule: Rule,
    /// None for rules without an event pattern (schedule-only): they match no event.
    pub pattern: Option<Pattern>,
    index_key: Option<(String, Vec<String>)>,
}

impl LiveRule {
    pub fn new(rule: Rule) -> LiveRule {
        let pattern = rule
            .event_pattern
            .as_deref()
            .and_then(|p| Pattern::parse(p).ok());
        let index_key = pattern.as_ref().and_then(Pattern::index_key);
        LiveRule {
            rule,
            pattern,
            index_key,
        }
    }
}

#[derive(Default)]
pub struct BusRules {
    rules: HashMap<String, Arc<LiveRule>>,
    /// path -> value -> rule names.
    index: HashMap<String, HashMap<String, HashSet<String>>>,
    unindexed: HashSet<String>,
}

impl BusRules {
    pub fn upsert(&mut self, rule: Rule) {
        let name = rule.name.clone();
        self.remove(&name);
        let live = Arc::new(LiveRule::new(rule));
        match &live.index_key {
            Some((path, values)) => {
                let by_value = self.index.entry(path.clone()).or_default();
                for v in values {
                    by_value.entry(v.clone()).or_default().insert(name.clone());
                }
            }
            None => {
                self.unindexed.insert(name.clone());
            }
        }
        self.rules.insert(name, live);
    }

    pub fn remove(&mut self, name: &str) {
        let Some(old) = self.rules.remove(name) else {
            return;
        };
        match &old.index_key {
            Some((path, values)) => {
                if let Some(by_value) = self.index.get_mut(path) {
                    for v in values {
                        if let Some(set) = by_value.get_mut(v) {
                            set.remove(name);
                            if set.is_empty() {
                                by_value.remove(v);
                            }
                        }
                    }
                    if by_value.is_empty() {
                        self.index.remove(path);
                    }
                }
            }
            None => {
                self.unindexed.remove(name);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The enabled rules whose pattern matches the event, in name order.
    pub fn matching(&self, event: &Value) -> Vec<Arc<LiveRule>> {
        let flat = FlatEvent::new(event);
        let mut candidates: HashSet<&str> = self.unindexed.iter().map(String::as_str).collect();
        for (path, by_value) in &self.index {
            for v in flat.values(path) {
                if let Some(names) = v.as_str().and_then(|s| by_value.get(s)) {
                    candidates.extend(names.iter().map(String::as_str));
                }
            }
        }
        let mut out: Vec<Arc<LiveRule>> = candidates
            .into_iter()
            .filter_map(|n| self.rules.get(n))
            .filter(|r| {
                r.rule.enabled() && r.pattern.as_ref().is_some_and(|p| p.matches_flat(&flat))
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| a.rule.name.cmp(&b.rule.name));
        out
    }
}

type BusKey = (String, String, String);

/// Every loaded bus's compiled rules.
pub struct RuleCache {
    store: SharedStore,
    buses: tokio::sync::Mutex<HashMap<BusKey, Arc<RwLock<BusRules>>>>,
}

impl RuleCache {
    pub fn new(store: SharedStore) -> RuleCache {
        RuleCache {
            store,
            buses: Default::default(),
        }
    }

    /// The bus's compiled rules, loaded from the store the first time.
    pub async fn bus(
        &self,
        account: &str,
        region: &str,
        bus: &str,
    ) -> StoreResult<Arc<RwLock<BusRules>>> {
        let key = (account.to_string(), region.to_string(), bus.to_string());
        let mut buses = self.buses.lock().await;
        if let Some(b) = buses.get(&key) {
            return Ok(b.clone());
        }
        // Loaded under the lock so a concurrent write cannot slip between load and insert.
        let mut rules = BusRules::default();
        for rule in stored_rules(&self.store, account, region, bus).await? {
            rules.upsert(rule);
        }
        let b = Arc::new(RwLock::new(rules));
        buses.insert(key, b.clone());
        Ok(b)
    }

    /// Records a stored rule change (call after the store commit, while holding the writer lock).
    pub async fn upsert(&self, account: &str, region: &str, rule: Rule) -> StoreResult<()> {
        let b = self.bus(account, region, &rule.bus).await?;
        b.write().unwrap().upsert(rule);
        Ok(())
    }

    pub async fn remove(
        &self,
        account: &str,
        region: &str,
        bus: &str,
        name: &str,
    ) -> StoreResult<()> {
        let b = self.bus(account, region, bus).await?;
        b.write().unwrap().remove(name);
        Ok(())
    }

    /// Forgets a deleted bus.
    pub async fn drop_bus(&self, account: &str, region: &str, bus: &str) {
        self.buses
            .lock()
            .await
            .remove(&(account.to_string(), region.to_string(), bus.to_string()));
    }

    /// The matching enabled rules for an event on a bus.
    pub async fn matching(
        &self,
        account: &str,
        region: &str,
        bus: &str,
        event: &Value,
    ) -> StoreResult<Vec<Arc<LiveRule>>> {
        let b = self.bus(account, region, bus).await?;
        let found = b.read().unwrap().matching(event);
        Ok(found)
    }
}
