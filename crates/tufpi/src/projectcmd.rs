//! `tufpi project …`: yank, unyank and remove index files (work in progress).

use anyhow::{bail, Result};
use clap::Subcommand;

/// Project subcommands.
#[derive(Subcommand)]
pub enum ProjectCmd {
    /// Yank a file or release (PEP 592).
    Yank {},
}

/// Runs a project subcommand.
pub fn run(_cmd: ProjectCmd) -> Result<()> {
    bail!("tufpi project is not built yet")
}
