//! `tufpi proxy`: the verifying proxy (work in progress).

use anyhow::{bail, Result};
use clap::Args;

/// Arguments of `tufpi proxy`.
#[derive(Args)]
pub struct ProxyArgs {}

/// Runs the proxy.
pub fn run(_args: ProxyArgs) -> Result<()> {
    bail!("tufpi proxy is not built yet")
}
