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
use codeyard_core::AwsResult;
use codeyard_core::hub::LogSink;
use codeyard_wire::{Platform, Registry};
use std::sync::Arc;
use store::{Logs, Scope};

/// The hub's view of CloudWatch Logs.
pub struct LogSinkImpl {
    logs: Logs,
}

#[async_trait]
impl LogSink for LogSinkImpl {
    async fn ensure_stream(
        &self,
        account: &str,
        region: &str,
        group: &str,
        stream: &str,
    ) -> AwsResult<()> {
        Ok(self.logs.ensure_stream(Scope { account, region }, group, stream).await?)
    }

    async fn append(
        &self,
        account: &str,
        region: &str,
        group: &str,
        stream: &str,
        events: Vec<(i64, String)>,
    ) -> AwsResult<()> {
        let now = codeyard_core::time::epoch_millis(&codeyard_core::time::now());
        self.logs
            .append(Scope { account, region }, group, stream, events, now)
            .await?;
        Ok(())
    }
}

/// Registers CloudWatch Logs and the hub's log sink.
pub async fn register(registry: &mut Registry, platform: &Platform) -> anyhow::Result<()> {
    let logs = Logs::new(platform.store.clone());
    platform
        .hub
        .set_logs(Arc::new(LogSinkImpl { logs: logs.clone() }));
    registry.add_aws(codeyard_api::logs::service(api::LogsService { logs }));
    Ok(())
}
