//! `tufpi migrate`: move an embedded index (a data directory) up to a scaled-out deployment
//! (PostgreSQL + a blob store); see `tufpi_index::migrate` for the order and the refusals.

use anyhow::{bail, Context, Result};
use clap::Args;
use tufpi_index::migrate::{human_bytes, migrate, MigrateOptions, MigrateReport};

use crate::args::DataDir;

/// Arguments of `tufpi migrate`.
#[derive(Args, Debug)]
#[command(after_help = "\
Copies the index's rows, the repository's state, every file and page and all TUF metadata,
in that order of safety: files, pages and metadata first (create-only), then the rows in one
transaction, timestamp.json last. Clients holding the old root keep verifying: the same root
and keys, versions continuing. Refused while a server runs on the data directory, and into a
target that already holds a repository (or another index). An interrupted run is resumed by
running it again. The keys stay in DIR/repo/keys: give that directory to the replicas that
publish (`tufpi serve --keys-dir`). Do not serve DIR embedded again afterwards: its history
and the scaled-out one's would part.")]
pub struct MigrateArgs {
    /// The data directory to migrate, and the target (`--database` and `--storage`, both
    /// required here).
    #[command(flatten)]
    pub data: DataDir,
    /// Objects copied (and checked) at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub threads: usize,
}

/// Run `tufpi migrate`.
pub fn run(args: MigrateArgs) -> Result<()> {
    let d = &args.data.deployment;
    let (Some(db_url), Some(storage_url)) = (&d.database, &d.storage) else {
        bail!(
            "tufpi migrate needs the target: both --database URL (PostgreSQL) and --storage URL \
             (s3://BUCKET[/PREFIX] or file:///path)"
        );
    };
    let dir = &args.data.path;
    let db = d.database()?.context("the database")?;
    let blobs = d.storage()?.context("the storage")?;
    let opts = MigrateOptions {
        threads: args.threads.max(1),
    };
    let report = migrate(dir, &db, blobs, &opts, &|m| eprintln!("{m}"))?;
    print_report(&report);
    let endpoint = d
        .storage_endpoint
        .as_deref()
        .map(|e| format!(" --storage-endpoint '{e}'"))
        .unwrap_or_default();
    println!(
        "\nThe keys stay here: {} (copy them to every replica that publishes).\nNext, on each \
         replica:\n  tufpi serve --database '{}' --storage '{storage_url}'{endpoint} --keys-dir {}\n\
         Clients keep their trusted root; do not serve {} embedded any more.",
        report.keys_dir.display(),
        tufpi_pg::redact_url(db_url),
        report.keys_dir.display(),
        dir.display()
    );
    Ok(())
}

fn print_report(r: &MigrateReport) {
    println!(
        "migrated in {:.1} s: {} projects, {} files, {} pages, {} tokens ({} rows{})",
        r.elapsed.as_secs_f64(),
        r.projects,
        r.files,
        r.pages,
        r.tokens,
        r.rows,
        if r.rows_were_there {
            ", there already from an interrupted run"
        } else {
            ""
        }
    );
    println!(
        "  files and pages: {} objects, {} ({} put, {} there already)",
        r.objects.new + r.objects.existed,
        human_bytes(r.objects.bytes),
        r.objects.new,
        r.objects.existed
    );
    println!(
        "  metadata: {} files, {} ({} put, {} there already); root v{}, snapshot v{}, \
         timestamp v{}, {} targets",
        r.metadata.new + r.metadata.existed,
        human_bytes(r.metadata.bytes),
        r.metadata.new,
        r.metadata.existed,
        r.root_version,
        r.snapshot_version,
        r.timestamp_version,
        r.targets
    );
    if r.published > 0 {
        println!("  published first: {} pending changes", r.published);
    }
}
