//! `tufpi repo serve`: Repository Service for TUF's REST API v1 (a drop-in for RSTUF's API,
//! worker, Redis and broker) over a tufpi repository.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

/// Arguments of `tufpi repo serve`.
#[derive(Args, Debug, Clone)]
pub struct RstufArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4460")]
    listen: String,
    /// Data directory: tasks and settings (rstuf.db), the repository, and the published
    /// metadata (DIR/metadata, also served under /metadata/).
    #[arg(long, default_value = "./tufpi-repo")]
    data_dir: PathBuf,
    /// Directory of the online key files that root names with `x-rstuf-online-key-uri`
    /// `fn:<file>` (unencrypted PKCS#8 PEM), as RSTUF's worker reads RSTUF_ONLINE_KEY_DIR.
    #[arg(long, env = "RSTUF_ONLINE_KEY_DIR")]
    online_key_dir: Option<PathBuf>,
    #[command(flatten)]
    conn: crate::connargs::ConnArgs,
}

/// Run the server until interrupted.
pub fn run(args: RstufArgs) -> Result<()> {
    tufpi_rstuf::serve(tufpi_rstuf::ServeOptions {
        listen: args.listen.clone(),
        data_dir: args.data_dir.clone(),
        online_key_dir: args.online_key_dir,
        conn: args.conn.limits(),
    })
    .with_context(|| format!("serving the RSTUF API from {}", args.data_dir.display()))
}
