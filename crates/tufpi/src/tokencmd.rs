//! `tufpi token …`: upload tokens of an index (only their SHA-256 is stored, in DIR/index.db).

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use tufpi_index::db::IndexDb;

use crate::args::DataDir;

/// Token subcommands.
#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create an upload token and print it (shown once). It also authorises yank, unyank
    /// and remove over HTTP (POST /manage/project/…) for the projects it may upload to.
    Create {
        #[command(flatten)]
        data_dir: DataDir,
        /// Limit the token to this project.
        #[arg(long)]
        project: Option<String>,
        /// A note to recognise the token by in `token list`.
        #[arg(long)]
        description: Option<String>,
    },
    /// List tokens: id, project scope, description, creation time.
    List {
        #[command(flatten)]
        data_dir: DataDir,
    },
    /// Revoke a token by its id (from `token list`). An id prefix (at least 8 hex digits)
    /// must match exactly one token: one matching several revokes nothing and lists them.
    Revoke {
        #[command(flatten)]
        data_dir: DataDir,
        /// Token id, or an unambiguous prefix of it (at least 8 hex digits).
        id: String,
    },
}

fn open(dir: &std::path::Path) -> Result<IndexDb> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(IndexDb::open(&dir.join("index.db"))?)
}

/// Run a token subcommand.
pub fn run(cmd: TokenCmd) -> Result<()> {
    match cmd {
        TokenCmd::Create {
            data_dir,
            project,
            description,
        } => {
            let token =
                open(&data_dir.path)?.create_token(project.as_deref(), description.as_deref())?;
            println!("{token}");
            match project {
                Some(p) => eprintln!("upload token for project {p} (shown once; use it as the password of user __token__)"),
                None => eprintln!("upload token for any project (shown once; use it as the password of user __token__)"),
            }
        }
        TokenCmd::List { data_dir } => {
            for (id, project, description, created) in open(&data_dir.path)?.tokens()? {
                println!(
                    "{id}  {:<24} {created}  {}",
                    project.unwrap_or_else(|| "(any project)".into()),
                    description.unwrap_or_default()
                );
            }
        }
        TokenCmd::Revoke { data_dir, id } => {
            if !open(&data_dir.path)?.revoke_token(&id)? {
                bail!("no token with id {id}");
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}
