//! `tufpi token …`: upload tokens of an index (only their SHA-256 is stored, in DIR/index.db).

use anyhow::{bail, Result};
use clap::Subcommand;

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

/// Run a token subcommand.
pub fn run(cmd: TokenCmd) -> Result<()> {
    match cmd {
        TokenCmd::Create {
            data_dir,
            project,
            description,
        } => {
            let token = data_dir
                .index_db(true)?
                .create_token(project.as_deref(), description.as_deref())?;
            println!("{token}");
            match project {
                Some(p) => eprintln!("upload token for project {p} (shown once; use it as the password of user __token__)"),
                None => eprintln!("upload token for any project (shown once; use it as the password of user __token__)"),
            }
        }
        TokenCmd::List { data_dir } => {
            for (id, project, description, created) in data_dir.index_db(true)?.tokens()? {
                println!(
                    "{id}  {:<24} {created}  {}",
                    project.unwrap_or_else(|| "(any project)".into()),
                    description.unwrap_or_default()
                );
            }
        }
        TokenCmd::Revoke { data_dir, id } => {
            if !data_dir.index_db(true)?.revoke_token(&id)? {
                bail!("no token with id {id}");
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}
