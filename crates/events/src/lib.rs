//! codeyard-events: Amazon EventBridge. Buses, rules and targets, the complete event-pattern
//! language, durable delivery to targets, and scheduled rules.
//!
//! Layout (domain first, the wire last):
//! * [`pattern`]: the pattern language, a pure compiler and matcher with AWS's validation
//!   messages;
//! * [`cache`]: compiled rules per bus, indexed by the exact values they require, so matching
//!   stays cheap with thousands of rules;
//! * [`schedule`]: `rate(...)` / `cron(...)` parsing and next-fire computation;
//! * [`transform`]: Input, InputPath and InputTransformer;
//! * [`model`]: stored documents and their namespaces; [`rules`]: the operations on them;
//!   [`error`]: the domain's errors, turned into AWS's codes once at the API edge;
//! * [`delivery`]: the ingress fan-out, the delivery worker (retries with backoff, delivery
//!   records) and the scheduler, all on durable store queues;
//! * [`api`]: the generated `codeyard_api::events::EventsApi` trait over [`rules`];
//!   [`http`]: `/_codeyard/events/deliveries` and
//!   [`cli_events`].
//!
//! Flow: every event (PutEvents, other services' outboxes) is a `BusEvent` on the store queue
//! `events.ingress`; the ingress worker matches it against the bus's enabled rules and
//! enqueues one `events.delivery` item per (rule, target); the delivery worker invokes the
//! target through `platform.hub.target(<ARN service>)` (CodePipeline and CodeBuild register
//! theirs), forwards to a bus for an event bus ARN, and records every attempt.
//!
//! A target with a `RoleArn` is invoked as EventBridge's session of that role
//! (`TargetInvocation::context`; under `--iam enforce` the role must trust
//! events.amazonaws.com), and the invoker authorizes it (CodePipeline:
//! codepipeline:StartPipelineExecution, CodeBuild: codebuild:StartBuild). A refusal starts
//! nothing, is not retried, is logged at warn and is kept as a `failed` delivery record with
//! AWS's code and message (`AccessDeniedException: User: ... is not authorized to perform:
//! ...`), which `codeyard events` and `/_codeyard/events/deliveries` show: AWS only counts
//! FailedInvocations (and sends the error to a DLQ). PutTargets checks iam:PassRole of every
//! RoleArn it is given.

pub mod api;
pub mod cache;
pub mod delivery;
pub mod error;
pub mod http;
pub mod model;
pub mod pattern;
pub mod rules;
pub mod schedule;
pub mod transform;

pub use http::cli_events;

use codeyard_wire::{Platform, Registry};
use std::sync::Arc;

/// Registers the EventBridge API, the observability endpoint and the background workers.
pub async fn register(registry: &mut Registry, platform: &Platform) -> anyhow::Result<()> {
    let events = Arc::new(rules::Events::new(platform.store.clone()));
    registry.add_aws(codeyard_api::events::service(api::EventsService { events: events.clone(), hub: platform.hub.clone() }));
    registry.add_http(Arc::new(http::EventsHttp {
        platform: platform.clone(),
    }));
    delivery::spawn_workers(events, platform.clone());
    Ok(())
}
