//! codeyard-logs: CloudWatch Logs (awsJson1.1), where builds stream their output.
//!
//! * [`store`]: groups, streams and events per account and region. Events are kept in chunks
//!   of up to a thousand per document, so appending a line is one small commit and reading a
//!   stream is a range scan.
//! * [`filter`]: FilterLogEvents' filter patterns (terms, phrases, `?any`, `-exclude`).
//! * [`api`]: the generated `codeyard_api::logs::LogsApi` trait, implemented over the store.
//!
//! [`LogSinkImpl`] is the hub's [`LogSink`]: builds create their stream with `ensure_stream`
//! and `append` each batch of lines while they run.

pub mod api;
pub mod filter;
pub mod store;

use async_trait::async_trait;
use codeyard_core::hub::{Hub, LogSink};
use codeyard_core::{AccessRequest, AwsResult, RequestContext};
use codeyard_wire::{Platform, Registry};
use std::sync::Arc;
use store::{Logs, LogsScope, Scope};

/// The hub's view of CloudWatch Logs. Each call is authorized for the context's caller (a
/// build passes its service role's session), on the ARNs AWS's Service Authorization
/// Reference names.
pub struct LogSinkImpl {
    logs: Logs,
    hub: Arc<Hub>,
}

fn stream_arn(ctx: &RequestContext, group: &str, stream: &str) -> String {
    Scope::of(ctx).stream_arn(group, stream)
}

impl LogSinkImpl {
    async fn authorize(&self, ctx: &RequestContext, action: &str, resource: String) -> AwsResult<()> {
        self.hub
            .authorize(ctx, &AccessRequest::new(action, resource))
            .await
            .map_err(|d| d.to_error("AccessDeniedException"))
    }
}

#[async_trait]
impl LogSink for LogSinkImpl {
    async fn ensure_stream(&self, ctx: &RequestContext, group: &str, stream: &str) -> AwsResult<()> {
        let s = Scope::of(ctx);
        match self.logs.group(s, group).await {
            Ok(_) => {}
            Err(store::LogsError::GroupNotFound) => {
                self.authorize(ctx, "logs:CreateLogGroup", s.group_arn(group)).await?;
                match self.logs.create_group(s, group, None, None, Default::default()).await {
                    Ok(()) | Err(store::LogsError::GroupExists) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
        self.authorize(ctx, "logs:CreateLogStream", stream_arn(ctx, group, stream)).await?;
        Ok(self.logs.ensure_stream(s, group, stream).await?)
    }

    async fn append(&self, ctx: &RequestContext, group: &str, stream: &str, events: Vec<(i64, String)>) -> AwsResult<()> {
        self.authorize(ctx, "logs:PutLogEvents", stream_arn(ctx, group, stream)).await?;
        let now = codeyard_core::time::epoch_millis(&codeyard_core::time::now());
        self.logs.append(Scope::of(ctx), group, stream, events, now).await?;
        Ok(())
    }
}

/// Registers CloudWatch Logs and the hub's log sink.
pub async fn register(registry: &mut Registry, platform: &Platform) -> anyhow::Result<()> {
    let logs = Logs::new(platform.store.clone());
    platform
        .hub
        .set_logs(Arc::new(LogSinkImpl { logs: logs.clone(), hub: platform.hub.clone() }));
    registry.add_aws(codeyard_api::logs::service(api::LogsService { logs }));
    Ok(())
}
