//! `tufpi serve`: the PyPI-compatible index whose uploads are TUF-signed within a second.

use std::time::Duration;

use anyhow::Result;
use clap::Args;
use tufpi_index::upload::UploadLimits;
use tufpi_index::{CollectConfig, IndexOptions, PublisherConfig, ServeOptions, DEFAULT_MAX_UPLOAD};

use crate::args::{DataDir, Span};

const SEC: Duration = Duration::from_secs(1);

/// The management API, for `tufpi serve --help`.
const MANAGE_HELP: &str = "\
Yank, unyank and remove over HTTP (the CLI equivalent is `tufpi project`):
  POST /manage/project/<name>/yank|unyank|remove
  auth: HTTP basic, user __token__, password an upload token for <name> (or any project)
  body (application/x-www-form-urlencoded or a JSON object of strings):
    filename=F | version=V     which files
    reason=TEXT                yank only: shown by installers
    confirm=<name>             remove only, instead of filename/version: the whole project
  answer: 200 JSON {project, action, changed, unchanged, project_removed}; refusals are
  4xx with a one-line reason. Page and file targets are re-signed within a second.
  e.g. curl -u __token__:TOKEN -d version=1.0 -d reason=broken http://HOST/manage/project/foo/yank";

/// What `--target-hashes` means to `serve`, after what it means to every repository.
const SERVE_TARGET_HASHES: &str = "For a new data directory (default sha256), or a change of \
an existing one's: every target is re-listed and re-signed at start. Without the option an \
index keeps what it lists";

/// Options of `tufpi serve`.
#[derive(Args)]
#[command(after_help = MANAGE_HELP)]
pub struct ServeArgs {
    #[command(flatten)]
    data_dir: DataDir,
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:4458")]
    listen: String,
    /// Largest accepted distribution file, bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_UPLOAD)]
    max_upload_size: u64,
    /// 2^N bins for a new repository (PEP 458: 14; smaller for tests).
    #[arg(long, default_value_t = 14, hide = true)]
    bins_bit_length: u32,
    #[arg(long, help = format!("{}. {SERVE_TARGET_HASHES}", crate::repocmd::TARGET_HASHES_HELP))]
    target_hashes: Option<tufpi_repo::TargetHashes>,
    /// Longest wait between publishes while changes are pending.
    #[arg(long, default_value_t = Span(Duration::from_millis(200)), hide = true)]
    publish_interval: Span,
    #[arg(long, hide = true, conflicts_with = "publish_interval")]
    publish_interval_ms: Option<u64>,
    /// Superseded metadata and pages are kept this long (clients mid-update still find
    /// them), then collected.
    #[arg(long, default_value_t = Span(CollectConfig::default().retention))]
    retention: Span,
    #[arg(long, hide = true, conflicts_with = "retention")]
    retention_secs: Option<u64>,
    /// Time between garbage collections.
    #[arg(long, default_value_t = Span(CollectConfig::default().every))]
    gc_interval: Span,
    #[arg(long, hide = true, conflicts_with = "gc_interval")]
    gc_interval_secs: Option<u64>,
    /// Uploads in progress at once on the server (more wait up to 5 s, then get a 503).
    #[arg(long, default_value_t = UploadLimits::default().per_server)]
    max_concurrent_uploads: usize,
    /// Uploads in progress at once with one token (more wait up to 5 s, then get a 429).
    #[arg(long, default_value_t = UploadLimits::default().per_token)]
    max_uploads_per_token: usize,
    #[command(flatten)]
    conn: crate::connargs::ConnArgs,
}

/// Run `tufpi serve`.
pub fn run(args: ServeArgs) -> Result<()> {
    let opts = ServeOptions {
        data_dir: args.data_dir.path,
        listen: args.listen,
        conn: args.conn.limits(),
        collect: CollectConfig {
            every: args.gc_interval.or_old(args.gc_interval_secs, SEC).max(SEC),
            retention: args.retention.or_old(args.retention_secs, SEC),
        },
        index: IndexOptions {
            bins_bit_length: args.bins_bit_length,
            max_upload: args.max_upload_size,
            publisher: PublisherConfig {
                interval: args
                    .publish_interval
                    .or_old(args.publish_interval_ms, Duration::from_millis(1))
                    .max(Duration::from_millis(10)),
                ..PublisherConfig::default()
            },
            uploads: UploadLimits {
                per_server: args.max_concurrent_uploads.max(1),
                per_token: args.max_uploads_per_token.max(1),
                ..UploadLimits::default()
            },
            target_hashes: args.target_hashes,
        },
    };
    Ok(tufpi_index::run(opts)?)
}
