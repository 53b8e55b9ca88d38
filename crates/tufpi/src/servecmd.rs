//! `tufpi serve`: the PyPI-compatible index whose uploads are TUF-signed within a second.

use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use tufpi_index::publisher::DEFAULT_LEASE_TTL;
use tufpi_index::upload::UploadLimits;
use tufpi_index::{
    CollectConfig, Deployment, IndexOptions, PublisherConfig, ServeOptions, DEFAULT_MAX_UPLOAD,
};

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
  e.g. curl -u __token__:TOKEN -d version=1.0 -d reason=broken http://HOST/manage/project/foo/yank

Scaled out (--database URL --storage URL): any number of replicas share one PostgreSQL
database and one blob store; each takes uploads and serves reads, and the one holding the
publisher lease in PostgreSQL signs (a standby takes over when the lease lapses). The first
replica to lead on an empty database creates a development-key repository in its --keys-dir;
every replica that is to publish needs those keys. A replica without the online key serves
and queues uploads but never publishes (/health says so). /health reports the database, the
storage and whether this replica leads.";

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
    /// Scaled out: the repository's signing keys on this replica (default DATA/repo/keys).
    /// Every replica that is to publish needs the online key.
    #[arg(long, value_name = "DIR")]
    keys_dir: Option<std::path::PathBuf>,
    /// Scaled out: the publisher lease's time to live (default 3s). The leader renews it
    /// every TTL/3 and stops publishing after TTL/2 without a renewal; a standby takes over
    /// at most TTL (+ TTL/8) after the leader's last renewal.
    #[arg(long, value_name = "SPAN")]
    lease_ttl: Option<Span>,
    /// Scaled out: where clients fetch TUF metadata (e.g. a CDN in front of the bucket's
    /// metadata/ prefix); printed at start. /metadata/ keeps being served here too.
    #[arg(long, value_name = "URL")]
    public_metadata_url: Option<String>,
    /// Scaled out: where clients fetch files (e.g. a CDN in front of the bucket's packages/
    /// prefix): /packages/... answers a redirect to URL/packages/... (pip, uv and TUF clients
    /// follow it). Pages keep relative links, so they sign the same on every replica; give
    /// every replica the same value all the same.
    #[arg(long, value_name = "URL")]
    files_url: Option<String>,
    #[command(flatten)]
    conn: crate::connargs::ConnArgs,
}

/// The deployment `args` ask for; the scale-out options refused without --database and
/// --storage.
fn deployment(args: &ServeArgs) -> Result<Deployment> {
    let d = &args.data_dir.deployment;
    if !d.is_scaled_out() {
        let given = [
            ("--keys-dir", args.keys_dir.is_some()),
            ("--lease-ttl", args.lease_ttl.is_some()),
            ("--public-metadata-url", args.public_metadata_url.is_some()),
            ("--files-url", args.files_url.is_some()),
        ];
        if let Some((name, _)) = given.iter().find(|(_, set)| *set) {
            bail!(
                "{name} is for a scaled-out index (--database URL --storage URL); an embedded \
                 index keeps its keys in DATA/repo/keys and serves its own files and metadata"
            );
        }
    } else if d.database.is_none() || d.storage.is_none() {
        bail!(
            "a scaled-out index needs both --database (PostgreSQL) and --storage \
             (s3://BUCKET[/PREFIX], or file:///path on one machine)"
        );
    }
    Ok(Deployment {
        database: d.database.clone(),
        storage: d.storage.clone(),
        storage_endpoint: d.storage_endpoint.clone(),
        keys_dir: args.keys_dir.clone(),
        lease_ttl: args.lease_ttl.map_or(DEFAULT_LEASE_TTL, |s| s.0),
        public_metadata_url: args.public_metadata_url.clone(),
        files_url: args.files_url.clone(),
    })
}

/// Run `tufpi serve`.
pub fn run(args: ServeArgs) -> Result<()> {
    let deployment = deployment(&args)?;
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
            deployment,
        },
    };
    Ok(tufpi_index::run(opts)?)
}
