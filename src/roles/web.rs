//! `concourse web` (and the web half of `quickstart`).

use crate::cli::{MigrateArgs, WebArgs};
use std::path::PathBuf;

pub async fn run(_args: WebArgs, _quickstart_worker_dir: Option<Option<PathBuf>>) -> anyhow::Result<()> {
    anyhow::bail!("web: not wired yet")
}

pub async fn migrate(_args: MigrateArgs) -> anyhow::Result<()> {
    anyhow::bail!("migrate: not wired yet")
}
