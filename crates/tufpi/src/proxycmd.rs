//! `tufpi proxy`: the verifying proxy. pip and uv get only what the index's TUF metadata
//! vouches for.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use tufpi_proxy::ProxyOptions;

use crate::args::Span;

/// Arguments of `tufpi proxy`.
#[derive(Args)]
pub struct ProxyArgs {
    /// The index, e.g. http://127.0.0.1:4458 (metadata under /metadata/, targets under /; no
    /// query or fragment).
    #[arg(long)]
    upstream: String,
    /// The trusted root metadata, obtained out of band (e.g. the index's 1.root.json).
    #[arg(long)]
    root: PathBuf,
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:4459")]
    listen: String,
    /// Cache of trusted metadata and verified files.
    #[arg(long, default_value = "./tufpi-proxy-cache")]
    cache_dir: PathBuf,
    /// TUF metadata base URL, when not <upstream>/metadata/ (no query or fragment).
    #[arg(long)]
    metadata_url: Option<String>,
    /// Base URL of targets (pages and files), when not <upstream>/ (file host apart; no query
    /// or fragment).
    #[arg(long)]
    target_base_url: Option<String>,
    /// Refresh the TUF metadata at most this often (the next page or file request after it
    /// has passed does; expired metadata is refreshed at once, whatever this says).
    #[arg(long, default_value_t = Span::secs(2))]
    refresh_interval: Span,
    /// Overall timeout of one upstream download.
    #[arg(long, default_value_t = Span::secs(120))]
    fetch_timeout: Span,
    /// Most upstream downloads of targets at once (others wait for a free slot).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    max_downloads: u16,
    #[command(flatten)]
    conn: crate::connargs::ConnArgs,
}

/// Run `tufpi proxy`.
pub fn run(args: ProxyArgs) -> Result<()> {
    let opts = ProxyOptions {
        upstream: args.upstream,
        metadata_url: args.metadata_url,
        target_base: args.target_base_url,
        root: args.root,
        listen: args.listen,
        cache_dir: args.cache_dir,
        refresh_interval: args.refresh_interval.0,
        fetch_timeout: args.fetch_timeout.0.max(Duration::from_secs(1)),
        max_downloads: usize::from(args.max_downloads),
        conn: args.conn.limits(),
    };
    Ok(tufpi_proxy::run(opts)?)
}
