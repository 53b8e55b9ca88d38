//! Running the index: bind, open (or create) the data directory, say how to use it, serve
//! until SIGINT/SIGTERM, then let the publisher finish.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::collect::CollectConfig;
use crate::error::IndexError;
use crate::index::{Index, IndexOptions};
use crate::routes::router;

/// What `tufpi serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The data directory.
    pub data_dir: PathBuf,
    /// Address to listen on, `HOST:PORT` (port 0: any free port).
    pub listen: String,
    /// Index options.
    pub index: IndexOptions,
    /// Connection limits and timeouts.
    pub conn: tufpi_simple::conn::Limits,
    /// Garbage collection of superseded metadata and pages.
    pub collect: CollectConfig,
}

/// Collect garbage every `cfg.every`, for as long as the server runs.
async fn collector(index: Arc<Index>, cfg: CollectConfig) {
    let mut tick = tokio::time::interval(cfg.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let idx = index.clone();
        let retention = cfg.retention;
        match tokio::task::spawn_blocking(move || idx.collect(retention)).await {
            Ok(Ok(c)) => tracing::info!(
                metadata_deleted = c.metadata.deleted,
                pages_deleted = c.pages_deleted,
                pages_retained = c.pages_retained,
                pages_checked = c.pages_checked,
                "collected garbage"
            ),
            Ok(Err(e)) => tracing::warn!("collecting garbage: {e}"),
            Err(e) => tracing::warn!("collecting garbage: {e}"),
        }
    }
}

/// The loud notice printed when a data directory is created: development keys, the trusted
/// root, and how to upload, install and verify.
pub fn banner(dir: &Path, base: &str) -> String {
    let d = dir.display();
    let root = dir.join("repo").join("metadata").join("1.root.json");
    let root = root.display();
    let line = "=".repeat(78);
    format!(
        "{line}
WARNING: NEW INDEX WITH DEVELOPMENT KEYS in {d}/repo
WARNING: every signing key, the offline root, targets and bins keys included, is in
WARNING: {d}/repo/keys. For development and testing only: NEVER for production.

Trusted root (hand it to clients out of band): {root}

Create an upload token:
  tufpi token create --data-dir {d} [--project NAME]
Upload:
  twine upload --repository-url {base}/legacy/ -u __token__ -p TOKEN dist/*
Install:
  pip install --index-url {base}/simple/ PROJECT
  uv pip install --index-url {base}/simple/ PROJECT
Yank, unyank, remove (PyPI semantics; signed like uploads):
  tufpi project yank --data-dir {d} PROJECT VERSION [--reason TEXT]   (or --file FILENAME)
  tufpi project remove --data-dir {d} --file FILENAME                 (or PROJECT VERSION, PROJECT --all)
  curl -u __token__:TOKEN -d version=VERSION -d reason=TEXT {base}/manage/project/PROJECT/yank
Verify with TUF (target base URL = the server root):
  tufpi client --metadata-dir TRUST init {root}
  tufpi client --metadata-url {base}/metadata/ --metadata-dir TRUST --target-base-url {base}/ \\
      --target-dir OUT --target-name simple/PROJECT/vnd.pypi.simple.v1.json download
{line}
"
    )
}

/// The loud notice printed by the scaled-out replica that created the repository.
pub fn banner_scaled(keys_dir: &Path, base: &str) -> String {
    let k = keys_dir.display();
    let line = "=".repeat(78);
    format!(
        "{line}
WARNING: NEW SCALED-OUT INDEX WITH DEVELOPMENT KEYS in {k}
WARNING: every signing key, the offline root, targets and bins keys included, is there.
WARNING: For development and testing only: NEVER for production. Every replica that is
WARNING: to publish needs the online key: give them all this --keys-dir (a copy of it).

Trusted root (hand it to clients out of band): {base}/metadata/1.root.json
Create an upload token (the same --database and --storage):
  tufpi token create --database URL --storage URL [--project NAME]
Upload:
  twine upload --repository-url {base}/legacy/ -u __token__ -p TOKEN dist/*
Install:
  pip install --index-url {base}/simple/ PROJECT
{line}
"
    )
}

/// Serve the index until interrupted.
pub fn run(opts: ServeOptions) -> Result<(), IndexError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tufpi-serve")
        .build()
        .map_err(|e| IndexError::io("starting the runtime", e))?;
    // A second server on this data directory is refused before it takes a port.
    crate::publisher::ensure_not_served(&opts.data_dir)?;
    rt.block_on(async move {
        let listener = tufpi_simple::conn::bind(&opts.listen)
            .await
            .map_err(|e| IndexError::io(format!("listening on {}", opts.listen), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| IndexError::io("reading the bound address", e))?;
        let base = format!("http://{addr}");
        let dir = opts.data_dir.clone();
        let index_opts = opts.index.clone();
        let (index, created) = tokio::task::spawn_blocking(move || Index::open(&dir, &index_opts))
            .await
            .map_err(|e| IndexError::Internal(e.to_string()))??;
        let index = Arc::new(index);
        let mut out = std::io::stdout().lock();
        match index.scale_out() {
            Some(so) => {
                if created {
                    let _ = write!(out, "{}", banner_scaled(&so.keys_dir, &base));
                }
                let _ = writeln!(
                    out,
                    "tufpi index (scaled out: {}, {}) listening on {base}/",
                    so.db.url_redacted(),
                    so.blobs.describe()
                );
                if let Some(url) = &so.public_metadata_url {
                    let _ = writeln!(out, "TUF metadata for clients: {url}");
                }
            }
            None => {
                if created {
                    let _ = write!(out, "{}", banner(&opts.data_dir, &base));
                }
                let _ = writeln!(
                    out,
                    "tufpi index of {} listening on {base}/",
                    opts.data_dir.display()
                );
            }
        }
        let _ = out.flush();
        drop(out);
        let gc = tokio::spawn(collector(index.clone(), opts.collect.clone()));
        let served = tufpi_simple::conn::serve(
            listener,
            router(index.clone()),
            opts.conn.clone(),
            tufpi_simple::shutdown_signal(),
        )
        .await
        .map_err(|e| IndexError::io("serving", e));
        gc.abort();
        let idx = index.clone();
        let _ = tokio::task::spawn_blocking(move || idx.shutdown()).await;
        served
    })
}
