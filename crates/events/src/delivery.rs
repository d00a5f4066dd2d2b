//! Getting events to targets, durably.
//!
//! 1. **Ingress worker** drains `events.ingress` (PutEvents, other services' outboxes, the
//!    scheduler, bus-to-bus forwarding). For each event it finds the bus's matching enabled
//!    rules (compiled cache) and enqueues one delivery item per (rule, target) on
//!    `events.delivery`, in one store commit that also acks the ingress items
//!    ([`Batch::ack`]): the fan-out and the ack are one transaction, so after a crash an event
//!    is either still on the ingress queue or fanned out, never lost and never fanned out twice.
//!    One commit per leased batch of up to 200 events (it used to be a commit plus one ack per
//!    event, 201 round trips to the store's writer, which competed with PutEvents' own commits).
//! 2. **Delivery worker** drains `events.delivery`: shapes the input, invokes the target
//!    (`platform.hub.target(<arn service>)`, an event bus ARN forwards), records the attempt,
//!    and acks, or releases the item with exponential backoff while attempts remain.
//!    At-least-once: an attempt interrupted by a crash is made again after the lease expires.
//! 3. **Scheduler** fires scheduled rules on time by publishing "Scheduled Event"s.

use crate::model::*;
use crate::rules::{Events, event_time};
use crate::schedule::Schedule;
use crate::transform::{DeliveryFacts, InputShape, shape_input};
use codeyard_core::hub::{BusEvent, EVENTS_INGRESS_QUEUE, TargetInvocation};
use codeyard_core::{AwsError, arn::Arn, time};
use codeyard_store::{Batch, Expect, QueueItem, StateStoreExt};
use codeyard_wire::Platform;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Servers before the fan-out and its ack were one commit recorded "done" markers here (item id
/// modulo [`MARKER_SLOTS`]) and acked afterwards: an item they fanned out but did not ack is
/// acked on sight, not fanned out again.
const MARKER_SLOTS: i64 = 4096;
const MARKER_NS: &str = "events/_system/ingress-done";
const IDLE_POLL: Duration = Duration::from_millis(100);
// Short leases: after a kill -9 the items a dead process held come back this soon.
const INGRESS_LEASE: Duration = Duration::from_secs(5);
const DELIVERY_LEASE: Duration = Duration::from_secs(30);
/// Attempts when the target has no RetryPolicy (AWS's default is 185 over 24 h; a local tool
/// gives up sooner).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Starts the workers; they stop on `platform.shutdown`.
pub fn spawn_workers(events: Arc<Events>, platform: Platform) {
    tokio::spawn(ingress_loop(events.clone(), platform.clone()));
    tokio::spawn(delivery_loop(platform.clone()));
    tokio::spawn(scheduler_loop(events, platform));
}

async fn ingress_loop(events: Arc<Events>, platform: Platform) {
    loop {
        let busy = match ingress_once(&events, &platform).await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::warn!(error = %e, "events ingress");
                false
            }
        };
        if !busy {
            tokio::select! {
                _ = platform.shutdown.cancelled() => return,
                _ = events.ingress_ready.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        } else if platform.shutdown.is_cancelled() {
            return;
        }
    }
}

/// Fans out one leased batch of ingress items. Returns how many items were handled.
pub async fn ingress_once(events: &Events, platform: &Platform) -> Result<usize, AwsError> {
    let store = &platform.store;
    let items = store
        .lease(EVENTS_INGRESS_QUEUE, 200, INGRESS_LEASE)
        .await?;
    if items.is_empty() {
        return Ok(0);
    }
    let mut batch = Batch::new();
    for item in &items {
        // Leased before by an older server: fanned out already if its marker is there.
        if item.attempts > 0
            && let Some((marker, _)) = store
                .get_as::<i64>(MARKER_NS, &format!("{:04}", item.id % MARKER_SLOTS))
                .await?
            && marker == item.id
        {
            batch = batch.ack(item.id);
            continue;
        }
        for d in fan_out(events, item).await? {
            batch = batch.enqueue(DELIVERY_QUEUE, d);
        }
        batch = batch.ack(item.id);
    }
    store.commit(batch).await?;
    Ok(items.len())
}

async fn fan_out(events: &Events, item: &QueueItem) -> Result<Vec<DeliveryItem>, AwsError> {
    let ev: BusEvent = match serde_json::from_value(item.payload.clone()) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "events ingress: dropping a malformed event");
            return Ok(Vec::new());
        }
    };
    let ingestion_time = event_time(&time::now());
    let mut out = Vec::new();
    for live in events
        .cache
        .matching(&ev.account, &ev.region, &ev.bus, &ev.event)
        .await?
    {
        for target in &live.rule.targets {
            out.push(DeliveryItem {
                account: ev.account.clone(),
                region: ev.region.clone(),
                bus: ev.bus.clone(),
                rule: live.rule.name.clone(),
                rule_arn: live.rule.arn.clone(),
                target: target.clone(),
                event: ev.event.clone(),
                ingestion_time: ingestion_time.clone(),
            });
        }
    }
    Ok(out)
}

async fn delivery_loop(platform: Platform) {
    loop {
        let n = match delivery_once(&platform).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "events delivery");
                0
            }
        };
        if n == 0 {
            tokio::select! {
                _ = platform.shutdown.cancelled() => return,
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        } else if platform.shutdown.is_cancelled() {
            return;
        }
    }
}

/// Makes one leased batch of deliveries, concurrently.
pub async fn delivery_once(platform: &Platform) -> Result<usize, AwsError> {
    let items = platform
        .store
        .lease(DELIVERY_QUEUE, 32, DELIVERY_LEASE)
        .await?;
    let n = items.len();
    let mut set = tokio::task::JoinSet::new();
    for item in items {
        let p = platform.clone();
        set.spawn(async move {
            if let Err(e) = deliver(&p, item).await {
                tracing::warn!(error = %e, "events delivery bookkeeping");
            }
        });
    }
    while set.join_next().await.is_some() {}
    Ok(n)
}

/// Why an attempt failed, and whether trying again can help.
struct Failure {
    message: String,
    retryable: bool,
}

async fn deliver(platform: &Platform, item: QueueItem) -> Result<(), AwsError> {
    let d: DeliveryItem = match serde_json::from_value(item.payload.clone()) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "events delivery: dropping a malformed item");
            return platform.store.ack(item.id).await.map_err(Into::into);
        }
    };
    let attempt = item.attempts + 1;
    let target_arn = d.target.arn.clone();
    let input = shape(&d);
    let outcome = invoke(platform, &d, &target_arn, &input).await;
    let max_attempts = d
        .target
        .retry_policy
        .as_ref()
        .and_then(|r| r.maximum_retry_attempts)
        .map(|n| n.max(0) as u32 + 1)
        .unwrap_or(DEFAULT_MAX_ATTEMPTS);
    let (status, detail) = match &outcome {
        Ok(desc) => (DeliveryStatus::Delivered, desc.clone()),
        Err(f) if f.retryable && attempt < max_attempts => (DeliveryStatus::Retrying, f.message.clone()),
        Err(f) => (DeliveryStatus::Failed, f.message.clone()),
    };
    if status != DeliveryStatus::Delivered {
        tracing::warn!(rule = %d.rule, target = %target_arn, attempt, status = %status, detail = %detail, "events delivery");
    }
    record(platform, &d, &target_arn, attempt, status, &detail, &input).await?;
    if status == DeliveryStatus::Retrying {
        let backoff = Duration::from_secs(1u64 << (attempt - 1).min(16)).min(MAX_BACKOFF);
        platform.store.release(item.id, backoff).await?;
    } else {
        platform.store.ack(item.id).await?;
    }
    Ok(())
}

fn shape(d: &DeliveryItem) -> Value {
    let t = &d.target;
    let transformer = t.input_transformer.as_ref();
    let shape = InputShape {
        input: t.input.as_deref(),
        input_path: t.input_path.as_deref(),
        paths_map: transformer.and_then(|x| x.input_paths_map.as_ref()),
        template: transformer.map(|x| x.input_template.as_str()),
    };
    let facts = DeliveryFacts {
        rule_arn: &d.rule_arn,
        rule_name: &d.rule,
        ingestion_time: &d.ingestion_time,
    };
    shape_input(&shape, &d.event, &facts)
}

async fn invoke(
    platform: &Platform,
    d: &DeliveryItem,
    target_arn: &str,
    input: &Value,
) -> Result<String, Failure> {
    let Some(arn) = Arn::parse(target_arn) else {
        return Err(Failure {
            message: format!("target ARN {target_arn} is not valid"),
            retryable: false,
        });
    };
    // An event bus target forwards the original event to that bus.
    if arn.service == "events"
        && let Some(bus) = arn.resource.strip_prefix("event-bus/")
    {
        let ev = BusEvent {
            account: arn.account.clone(),
            region: arn.region.clone(),
            bus: bus.to_string(),
            event: d.event.clone(),
        };
        return match platform.store.commit(Batch::new().publish_event(ev)).await {
            Ok(()) => Ok(format!("forwarded to event bus {bus}")),
            Err(e) => Err(Failure {
                message: format!("forwarding to event bus {bus}: {e}"),
                retryable: true,
            }),
        };
    }
    let Some(invoker) = platform.hub.target(&arn.service) else {
        return Err(Failure {
            message: format!(
                "target type not supported by codeyard: {} ({target_arn}); the event was not delivered",
                arn.service
            ),
            retryable: false,
        });
    };
    let role_arn = d.target.role_arn.clone().filter(|r| !r.is_empty());
    if let Some(role) = &role_arn {
        assume_target_role(platform, &d.account, role).await?;
    }
    let invocation = TargetInvocation {
        account: d.account.clone(),
        region: d.region.clone(),
        target_arn: target_arn.to_string(),
        role_arn,
        rule_arn: d.rule_arn.clone(),
        input: input.clone(),
        endpoint: platform.config.public_endpoint.clone(),
    };
    invoker.invoke(&invocation).await.map_err(|e| Failure {
        retryable: TargetErrorKind::of(&e).retryable(),
        message: format!("{}: {}", e.code, e.message),
    })
}

/// EventBridge may invoke a target through its RoleArn only when the role's trust policy names
/// events.amazonaws.com (checked under `--iam enforce`, for IAM role ARNs); a refusal is not
/// retried and is recorded with STS's error.
async fn assume_target_role(platform: &Platform, account: &str, role: &str) -> Result<(), Failure> {
    let is_role = Arn::parse(role).is_some_and(|a| a.service == "iam" && a.resource.starts_with("role/"));
    if !is_role || platform.hub.iam_mode() != codeyard_core::IamMode::Enforce {
        return Ok(());
    }
    let Ok(sts) = platform.hub.credentials() else {
        return Ok(());
    };
    let session = codeyard_core::ids::hex(16);
    sts.assume_role_as_service(account, role, "events.amazonaws.com", &session, 900)
        .await
        .map(|_| ())
        .map_err(|e| Failure { message: format!("{}: {}", e.code, e.message), retryable: false })
}

/// What kind of failure a target reported. The hub's `TargetInvoker` answers the target
/// service's own AWS error, so its code is read here and only here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetErrorKind {
    /// The target asked to slow down (`ThrottlingException`, `Throttled`...).
    Throttled,
    /// Another change raced this one (`ConcurrentModificationException`).
    Contended,
    /// The target service failed (5xx).
    ServerSide,
    /// The target refused the request (a missing pipeline, a bad input): retrying cannot help.
    Refused,
}

impl TargetErrorKind {
    fn of(e: &AwsError) -> TargetErrorKind {
        if e.status >= 500 {
            TargetErrorKind::ServerSide
        } else if e.code.contains("Throttl") {
            TargetErrorKind::Throttled
        } else if e.code.contains("ConcurrentModification") {
            TargetErrorKind::Contended
        } else {
            TargetErrorKind::Refused
        }
    }

    /// Throttling, races and server-side failures are worth retrying; a refusal is not.
    fn retryable(self) -> bool {
        self != TargetErrorKind::Refused
    }
}

async fn record(
    platform: &Platform,
    d: &DeliveryItem,
    target_arn: &str,
    attempt: u32,
    status: DeliveryStatus,
    detail: &str,
    input: &Value,
) -> Result<(), AwsError> {
    let store = &platform.store;
    let key_base = rule_key(&d.bus, &d.rule);
    let seq = store
        .next_counter(&format!(
            "events.deliveries/{}/{}/{key_base}",
            d.account, d.region
        ))
        .await?;
    let rec = DeliveryRecord {
        seq,
        time: time::iso8601(&time::now()),
        account: d.account.clone(),
        region: d.region.clone(),
        bus: d.bus.clone(),
        rule: d.rule.clone(),
        target_id: d.target.id.clone(),
        target_arn: target_arn.to_string(),
        event_id: d
            .event
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        attempt,
        status,
        detail: detail.to_string(),
        input: input.clone(),
    };
    let key = format!("{key_base}|{:03}", seq % DELIVERY_LOG_SIZE);
    store
        .put_as(&ns(&d.account, &d.region, "deliveries"), &key, &rec)
        .await?;
    Ok(())
}

/// Recent delivery records, newest first, optionally for one rule (any bus, account, region).
pub async fn recent_deliveries(
    platform: &Platform,
    rule: Option<&str>,
    bus: Option<&str>,
) -> Result<Vec<DeliveryRecord>, AwsError> {
    let mut out: Vec<DeliveryRecord> = Vec::new();
    for n in platform.store.namespaces("events/").await? {
        if !n.ends_with("/deliveries") {
            continue;
        }
        let prefix = match (bus, rule) {
            (Some(b), Some(r)) => format!("{}|", rule_key(b, r)),
            _ => String::new(),
        };
        let mut scan = platform.store.scan(&n, &prefix);
        while let Some(page) = scan.next_page_as::<DeliveryRecord>().await? {
            out.extend(page.into_iter().filter(|r| rule.is_none_or(|x| x == r.rule) && bus.is_none_or(|b| b == r.bus)));
        }
    }
    out.sort_by(|a, b| b.time.cmp(&a.time).then(b.seq.cmp(&a.seq)));
    Ok(out)
}

// --------------------------------------------------------------------------------- scheduler

async fn scheduler_loop(events: Arc<Events>, platform: Platform) {
    loop {
        if let Err(e) = fire_due(&events, &platform).await {
            tracing::warn!(error = %e, "events scheduler");
        }
        tokio::select! {
            _ = platform.shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Publishes a "Scheduled Event" for every scheduled rule that is due by the platform's clock.
pub async fn fire_due(events: &Events, platform: &Platform) -> Result<usize, AwsError> {
    let store = &platform.store;
    let now = platform.clock.now();
    let mut fired = 0;
    for n in store.namespaces("events/").await? {
        let Some(rest) = n.strip_suffix("/schedules") else {
            continue;
        };
        let mut parts = rest.splitn(3, '/').skip(1);
        let (Some(account), Some(region)) = (parts.next(), parts.next()) else {
            continue;
        };
        for doc in store.scan(&n, "").collect().await? {
            let mut s: ScheduleDoc = doc.parse()?;
            let Ok(schedule) = Schedule::parse(&s.expression) else {
                continue;
            };
            let anchor = time::from_epoch_millis(s.anchor_ms);
            let Some(next) = schedule.next_after(anchor, time::from_epoch_millis(s.last_fired_ms))
            else {
                continue;
            };
            if next > now {
                continue;
            }
            let rule = match events.get_rule(account, region, &s.bus, &s.rule).await {
                Ok(r) => r,
                Err(_) => continue,
            };
            // After downtime, fire once for the missed runs rather than once per missed run.
            s.last_fired_ms = now.timestamp_millis();
            let mut batch = Batch::new().put(&n, &doc.key, &s, Expect::Version(doc.version));
            if rule.enabled() {
                // A scheduled event goes to its own rule's targets only (no pattern matching).
                let event = json!({
                    "version": "0",
                    "id": codeyard_core::ids::uuid(),
                    "detail-type": "Scheduled Event",
                    "source": "aws.events",
                    "account": account,
                    "time": event_time(&next),
                    "region": region,
                    "resources": [rule.arn],
                    "detail": {},
                });
                for target in &rule.targets {
                    batch = batch.enqueue(
                        DELIVERY_QUEUE,
                        DeliveryItem {
                            account: account.into(),
                            region: region.into(),
                            bus: s.bus.clone(),
                            rule: rule.name.clone(),
                            rule_arn: rule.arn.clone(),
                            target: target.clone(),
                            event: event.clone(),
                            ingestion_time: event_time(&now),
                        },
                    );
                }
                fired += 1;
            }
            store.commit(batch).await?;
        }
    }
    Ok(fired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_races_and_server_failures_are_retried_refusals_are_not() {
        let kind = |status, code| TargetErrorKind::of(&AwsError::new(status, code, "m"));
        assert_eq!(kind(400, "ThrottlingException"), TargetErrorKind::Throttled);
        assert_eq!(kind(400, "ConcurrentModificationException"), TargetErrorKind::Contended);
        assert_eq!(kind(503, "ServiceUnavailable"), TargetErrorKind::ServerSide);
        assert_eq!(kind(400, "PipelineNotFoundException"), TargetErrorKind::Refused);
        assert!(kind(400, "Throttled").retryable() && !kind(400, "ValidationException").retryable());
    }
}
