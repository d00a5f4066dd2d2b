//! codeyard-codepipeline (not yet implemented).

use codeyard_wire::{Platform, Registry};

/// Registers this crate's services and background workers.
pub async fn register(_registry: &mut Registry, _platform: &Platform) -> anyhow::Result<()> {
    Ok(())
}
