//! `tufpi`: PEP 458 for Python package indexes. A thin binary over the library crates.

// Metadata work is many small allocations; mimalloc roughly halves parse and free time
// compared with glibc malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod args;
mod ceremonycmd;
mod clientcmd;
mod connargs;
mod deploy;
mod fsutil;
mod keycmd;
mod metacmd;
mod migratecmd;
mod projectcmd;
mod proxycmd;
mod repocmd;
mod rstufcmd;
mod servecmd;
mod tokencmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// tufpi — PEP 458 (The Update Framework) for Python package indexes.
#[derive(Parser)]
#[command(name = "tufpi", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate signing keys.
    Key {
        #[command(subcommand)]
        cmd: keycmd::KeyCmd,
    },
    /// Sign, verify and inspect TUF metadata files.
    Metadata {
        #[command(subcommand)]
        cmd: metacmd::MetadataCmd,
    },
    /// The TUF client: init with a trusted root, refresh, download verified targets.
    Client(clientcmd::ClientArgs),
    /// Create and run a PEP 458 repository.
    Repo {
        #[command(subcommand)]
        cmd: repocmd::RepoCmd,
    },
    /// Offline-role key ceremonies: prepare, show, combine, publish.
    Ceremony {
        #[command(subcommand)]
        cmd: ceremonycmd::CeremonyCmd,
    },
    /// Run a PyPI-compatible index whose uploads are TUF-signed within a second.
    Serve(servecmd::ServeArgs),
    /// Yank, unyank or remove files and projects of an index.
    Project {
        #[command(subcommand)]
        cmd: projectcmd::ProjectCmd,
    },
    /// Copy an embedded index (a data directory) to PostgreSQL and a blob store.
    Migrate(migratecmd::MigrateArgs),
    /// Run a verifying proxy: pip and uv get only what the index's TUF metadata vouches for.
    Proxy(proxycmd::ProxyArgs),
    /// Create, list and revoke the index's upload tokens.
    Token {
        #[command(subcommand)]
        cmd: tokencmd::TokenCmd,
    },
    /// JSON utilities.
    Json {
        #[command(subcommand)]
        cmd: metacmd::JsonCmd,
    },
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away
    // (`tufpi repo status | head`) instead of failing a write.
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to the default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TUFPI_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // Usage errors exit 1 like every other failure (the client protocol wants exactly 1).
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Key { cmd } => keycmd::run(cmd),
        Command::Metadata { cmd } => metacmd::run(cmd),
        Command::Json { cmd } => metacmd::run_json(cmd),
        Command::Client(args) => clientcmd::run(args),
        Command::Repo { cmd } => repocmd::run(cmd),
        Command::Ceremony { cmd } => ceremonycmd::run(cmd),
        Command::Serve(args) => servecmd::run(args),
        Command::Token { cmd } => tokencmd::run(cmd),
        Command::Project { cmd } => projectcmd::run(cmd),
        Command::Proxy(args) => proxycmd::run(args),
        Command::Migrate(args) => migratecmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, each cause once: library errors often already
/// include their cause in their own message.
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !msg.contains(&text) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&text);
        }
    }
    msg.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks over every subcommand (unique argument ids, valid
    /// defaults, conflicts naming real arguments): a clash otherwise shows only when that
    /// subcommand runs.
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
