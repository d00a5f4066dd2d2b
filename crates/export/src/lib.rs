//! `codeyard export terraform`: HCL for hashicorp/aws that recreates resources a server holds,
//! and what they depend on (roles, policies, rules, targets). The console's "as Terraform" view
//! and the CLI (through the server, against `--endpoint`) both use [`terraform`].
//!
//! Everything is read through the real APIs in-process ([`App::call`] as the caller's context,
//! and the hub's `ObjectStoreApi` for S3), so an export shows only what the caller may read.

use codeyard_core::{AwsError, RequestContext};
use codeyard_wire::dispatch::App;
use std::sync::Arc;

/// What to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every supported resource of the context's account and region.
    All,
    /// One pipeline and everything it depends on or that starts it.
    Pipeline(String),
}

/// The HCL (one `.tf` file: variables, provider, resources) for `selection`. `endpoint` is the
/// default of the `endpoint` variable the provider block reads.
pub async fn terraform(app: &Arc<App>, ctx: &RequestContext, selection: Selection, endpoint: &str) -> Result<String, AwsError> {
    let _ = (app, ctx, selection, endpoint);
    Err(AwsError::client("UnsupportedOperation", "codeyard export terraform is not built yet"))
}
