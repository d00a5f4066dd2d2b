//! codeyard-console (skeleton).

use codeyard_wire::{Platform, Registry};

pub async fn register(_registry: &mut Registry, _platform: &Platform) -> anyhow::Result<()> {
    Ok(())
}
