//! `tufpi client …`: the TUF client, with the de facto TUF client test protocol's flags.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use tufpi_client::{AnyFetcher, ClientError, Updater, UpdaterConfig};

/// Client options (given before the action word).
#[derive(Args)]
pub struct ClientArgs {
    /// Base URL of the repository's metadata (`http(s)://…` or `file://…`).
    #[arg(long)]
    metadata_url: Option<String>,
    /// Directory holding the trusted metadata (only that).
    #[arg(long)]
    metadata_dir: PathBuf,
    /// Target to download (repeatable).
    #[arg(long = "target-name")]
    target_names: Vec<String>,
    /// Where downloaded targets go (under their percent-encoded names).
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Base URL of the targets.
    #[arg(long)]
    target_base_url: Option<String>,
    /// Fetch targets by their path as-is even with consistent snapshots (for content-addressed
    /// paths such as PyPI's `packages/…`), instead of `dir/HASH.name`.
    #[arg(long)]
    no_hash_prefix: bool,
    /// Most root rotations followed in one update.
    #[arg(long, default_value_t = 256)]
    max_root_rotations: u32,
    /// Most delegated roles visited per target.
    #[arg(long, default_value_t = 32)]
    max_delegations: usize,
    /// Overall timeout of one download.
    #[arg(long, alias = "timeout", default_value_t = crate::args::Span::secs(120))]
    fetch_timeout: crate::args::Span,
    #[command(subcommand)]
    action: ClientAction,
}

/// What the client does.
#[derive(Subcommand)]
enum ClientAction {
    /// Store TRUSTED_ROOT as the trust anchor in the metadata dir.
    Init {
        /// A root.json obtained out of band.
        trusted_root: PathBuf,
    },
    /// Update the top-level metadata.
    Refresh,
    /// Update, then download each --target-name into --target-dir, verified.
    Download,
}

fn updater(args: &ClientArgs) -> Result<Updater> {
    let url = args
        .metadata_url
        .as_deref()
        .context("--metadata-url is required")?;
    let config = UpdaterConfig {
        max_root_rotations: args.max_root_rotations,
        max_delegations: args.max_delegations,
        prefix_targets_with_hash: !args.no_hash_prefix,
        fetch_timeout: args.fetch_timeout.0,
        ..UpdaterConfig::default()
    };
    let fetcher = AnyFetcher::new(config.connect_timeout, config.fetch_timeout)?;
    Ok(Updater::new(
        &args.metadata_dir,
        url,
        args.target_base_url.as_deref(),
        Box::new(fetcher),
        config,
    )?)
}

/// `f` on a fresh updater, which is then closed (its metadata writes finished and made
/// durable) whether `f` succeeded or not; `f`'s error comes first.
fn with_updater<T>(args: &ClientArgs, f: impl FnOnce(&mut Updater) -> Result<T>) -> Result<T> {
    let mut u = updater(args)?;
    let out = f(&mut u);
    let closed = u.close();
    let out = out?;
    closed?;
    Ok(out)
}

/// Run the client.
pub fn run(args: ClientArgs) -> Result<()> {
    match &args.action {
        ClientAction::Init { trusted_root } => {
            let data = std::fs::read(trusted_root)
                .with_context(|| format!("reading {}", trusted_root.display()))?;
            Updater::init(&args.metadata_dir, &data)?;
        }
        ClientAction::Refresh => {
            let (root, ts) = with_updater(&args, |u| {
                u.refresh()?;
                let ts = u.trusted().timestamp().map(|t| t.version).unwrap_or(0);
                Ok((u.trusted().root_signed().version, ts))
            })?;
            println!("refreshed: root v{root}, timestamp v{ts}");
        }
        ClientAction::Download => {
            if args.target_names.is_empty() {
                bail!("download needs at least one --target-name");
            }
            let target_dir = args
                .target_dir
                .as_deref()
                .context("--target-dir is required")?;
            with_updater(&args, |u| {
                u.refresh()?;
                for name in &args.target_names {
                    let info = u
                        .get_targetinfo(name)?
                        .ok_or_else(|| ClientError::TargetNotFound(name.clone()))?;
                    let path = Updater::target_file_path(target_dir, name);
                    if Updater::find_cached_target(&info, &path) {
                        println!("cached: {name}");
                        continue;
                    }
                    u.download_target(name, &info, &path)?;
                    println!("downloaded: {name} ({} bytes)", info.length);
                }
                Ok(())
            })?;
        }
    }
    Ok(())
}
