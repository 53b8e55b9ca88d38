//! The run loop: the upstream's URLs checked, the trust store and file cache opened, a first
//! refresh, a one-line banner with the pip and uv command lines, then serving until Ctrl-C or
//! SIGTERM (graceful shutdown).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};
use tufpi_client::{redact_url, UpdaterConfig};

use crate::error::ProxyError;
use crate::files::FileCache;
use crate::routes::{router, App};
use crate::trust::{Trust, Upstream};

/// What `tufpi proxy` was asked for.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// The index, e.g. `http://127.0.0.1:4458`.
    pub upstream: String,
    /// TUF metadata base URL (default `<upstream>/metadata/`).
    pub metadata_url: Option<String>,
    /// Target base URL (default `<upstream>/`).
    pub target_base: Option<String>,
    /// The trusted root metadata file (used when the cache holds no trusted root yet).
    pub root: PathBuf,
    /// Address to listen on, `HOST:PORT` (port 0: any free port).
    pub listen: String,
    /// Cache directory: trusted metadata and verified files.
    pub cache_dir: PathBuf,
    /// Refresh the metadata at most this often (a page request after it has passed does).
    pub refresh_interval: Duration,
    /// Overall timeout of one upstream download.
    pub fetch_timeout: Duration,
    /// Most upstream target downloads at once.
    pub max_downloads: usize,
    /// Connection limits and timeouts.
    pub conn: tufpi_simple::conn::Limits,
}

/// `url` parsed, normalised, with a trailing slash; no query or fragment (target paths are
/// appended to it). Error texts show it without credentials.
fn base_url(url: &str, what: &str) -> Result<String, ProxyError> {
    let shown = redact_url(url);
    let bad = |why: String| ProxyError::Config(format!("{what} {shown:?}: {why}"));
    let u = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if !matches!(u.scheme(), "http" | "https" | "file") {
        return Err(bad("only http, https and file URLs".into()));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad(
            "a base URL cannot have a query or fragment (paths are appended to it)".into(),
        ));
    }
    let mut u = u;
    if !u.path().ends_with('/') {
        let path = format!("{}/", u.path());
        u.set_path(&path);
    }
    Ok(u.to_string())
}

/// Run the proxy until interrupted.
pub fn run(opts: ProxyOptions) -> Result<(), ProxyError> {
    let upstream = base_url(&opts.upstream, "upstream")?;
    let metadata_url = base_url(
        opts.metadata_url
            .as_deref()
            .unwrap_or(&format!("{upstream}metadata/")),
        "metadata URL",
    )?;
    let target_base = base_url(
        opts.target_base.as_deref().unwrap_or(&upstream),
        "target base URL",
    )?;
    let root = std::fs::read(&opts.root)
        .map_err(|e| ProxyError::Config(format!("reading {}: {e}", opts.root.display())))?;
    let config = UpdaterConfig {
        fetch_timeout: opts.fetch_timeout,
        ..UpdaterConfig::default()
    };
    let trust = Arc::new(Trust::open(
        &opts.cache_dir.join("metadata"),
        &root,
        Upstream {
            metadata_url: metadata_url.clone(),
            target_base: target_base.clone(),
        },
        opts.refresh_interval,
        opts.max_downloads,
        config,
    )?);
    // What the logs and the banner show: no credentials.
    let (metadata_url, target_base) = (redact_url(&metadata_url), redact_url(&target_base));
    let files = FileCache::open(&opts.cache_dir.join("files"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tufpi-proxy")
        .build()
        .map_err(|e| ProxyError::Internal(format!("starting the runtime: {e}").into()))?;
    rt.block_on(async move {
        let listener = tufpi_simple::conn::bind(&opts.listen)
            .await
            .map_err(|e| ProxyError::Config(format!("listening on {}: {e}", opts.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ProxyError::Internal(format!("reading the bound address: {e}").into()))?;
        // A first refresh says at once whether the upstream and the root fit; a failure is
        // reported and retried on the next request, not fatal.
        let t = trust.clone();
        match tokio::task::spawn_blocking(move || t.refresh()).await {
            Ok(Ok(())) => info!(%metadata_url, "trusted metadata refreshed"),
            Ok(Err(e)) => warn!("first refresh: {e}"),
            Err(e) => return Err(ProxyError::Internal(e.to_string().into())),
        }
        let app = Arc::new(App::new(trust, files));
        let base = format!("http://{addr}");
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "tufpi proxy of {target_base} listening on {base}/ (pip install --index-url {base}/simple/ PROJECT | uv pip install --index-url {base}/simple/ PROJECT)"
            );
            let _ = out.flush();
        }
        tufpi_simple::conn::serve(
            listener,
            router(app),
            opts.conn.clone(),
            tufpi_simple::shutdown_signal(),
        )
        .await
        .map_err(|e| ProxyError::Internal(format!("serving: {e}").into()))?;
        info!("stopped");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            base_url("http://h:1/a", "upstream").unwrap(),
            "http://h:1/a/"
        );
        for bad in [
            "http://h/?x=1",
            "http://h/#f",
            "http://u:secret@h/?tok=1",
            "ftp://h/",
        ] {
            let e = base_url(bad, "upstream").unwrap_err();
            assert!(matches!(e, ProxyError::Config(_)), "{bad}");
            assert!(!e.to_string().contains("secret"), "{e}");
        }
        assert!(base_url("http://h/?x=1", "upstream")
            .unwrap_err()
            .to_string()
            .contains("query or fragment"));
    }
}
