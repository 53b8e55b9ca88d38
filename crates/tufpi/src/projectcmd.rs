//! `tufpi project …`: yank, unyank and remove files, releases and projects of an index, as
//! PyPI does (a yanked file stays installable when pinned with `==`; a removed filename can
//! never be uploaded again). Works whether `tufpi serve` runs on the data directory or not:
//! the change is committed next to the server's (SQLite serialises them), then published
//! here, or by the running server's publisher, which signs it within a second.

use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use tufpi_index::{Action, Operation, Outcome, Publication, Selector};

use tufpi_repo::StateStore;

use crate::args::DataDir;

/// Project subcommands.
#[derive(Subcommand)]
pub enum ProjectCmd {
    /// Yank a file (--file) or a release (PROJECT VERSION), PEP 592: pip and uv skip it
    /// unless pinned with ==; it stays listed and downloadable.
    Yank {
        #[command(flatten)]
        what: What,
        /// Why, shown by installers.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Undo a yank of a file (--file) or a release (PROJECT VERSION).
    Unyank {
        #[command(flatten)]
        what: What,
    },
    /// Remove a file (--file), a release (PROJECT VERSION) or a whole project (PROJECT --all).
    /// Removed filenames can never be uploaded again.
    Remove {
        #[command(flatten)]
        what: What,
        /// Remove the whole project: every file, its pages, its name from /simple/.
        #[arg(long)]
        all: bool,
    },
    /// List a project's files: version, filename, yanked (and why).
    Show {
        #[command(flatten)]
        data_dir: DataDir,
        /// Project name.
        project: String,
    },
}

/// Which files: `--file NAME`, or `PROJECT VERSION` (or `PROJECT` with `remove --all`).
#[derive(Args)]
pub struct What {
    #[command(flatten)]
    data_dir: DataDir,
    /// Project name (optional with --file).
    project: Option<String>,
    /// Release version.
    version: Option<String>,
    /// One file, by filename.
    #[arg(long)]
    file: Option<String>,
}

/// The operation `what` and `action` ask for.
fn operation(what: &What, action: Action, all: bool) -> Result<Operation> {
    let verb = action.name();
    let (project, selector) = match (&what.project, &what.version, &what.file, all) {
        (_, _, Some(_), true) | (_, Some(_), _, true) => {
            bail!("--all removes a whole project: give only PROJECT")
        }
        (_, Some(_), Some(_), _) => bail!("give either --file FILENAME or PROJECT VERSION, not both"),
        (project, None, Some(file), false) => {
            let project = match project {
                Some(p) => p.clone(),
                None => match what.data_dir.index_db(false)?.file(file)? {
                    Some(row) => row.project,
                    None => bail!("no file named {file:?} in this index"),
                },
            };
            (project, Selector::File(file.clone()))
        }
        (Some(p), Some(v), None, false) => (p.clone(), Selector::Release(v.clone())),
        (Some(p), None, None, true) => (p.clone(), Selector::Project),
        (Some(p), None, None, false) if verb == "remove" => bail!(
            "say what to remove from {p}: --file FILENAME, a VERSION, or --all for the whole project"
        ),
        (Some(p), None, None, false) => {
            bail!("say what to {verb} in {p}: --file FILENAME or a VERSION")
        }
        (None, _, None, _) => bail!("give --file FILENAME or PROJECT VERSION"),
    };
    Ok(Operation {
        project,
        selector,
        action,
    })
}

fn report(op: &Operation, out: &Outcome) {
    let past = match &op.action {
        Action::Yank { .. } => "yanked",
        Action::Unyank => "unyanked",
        Action::Remove => "removed",
    };
    for f in &out.changed {
        match &op.action {
            Action::Yank { reason } if !reason.is_empty() => {
                println!("{past} {f} (reason: {reason})")
            }
            _ => println!("{past} {f}"),
        }
    }
    for f in &out.unchanged {
        println!("unchanged {f} (already {past})");
    }
    if out.project_removed {
        println!("removed project {}", out.project);
    }
}

fn manage(data_dir: &DataDir, op: Operation) -> Result<()> {
    if data_dir.deployment.is_scaled_out() {
        return manage_scaled_out(data_dir, op);
    }
    let data_dir = data_dir.path.as_path();
    let (out, publication) = tufpi_index::manage_data_dir(data_dir, &op, 100_000)?;
    report(&op, &out);
    match publication {
        Publication::Nothing => println!("nothing changed"),
        Publication::Published(v) => println!("signed: snapshot v{v}"),
        Publication::Queued => match tufpi_index::wait_signed(data_dir, Duration::from_secs(10))? {
            Some(v) => println!("signed by the running server: snapshot v{v}"),
            None => println!("queued: the running server signs it (not yet done after 10 s)"),
        },
        Publication::Deferred(why) => println!(
            "committed, not yet queued for signing ({why}): the running server, or its next start, signs it"
        ),
    }
    Ok(())
}

/// [`manage`] on a scaled-out index: commit the change (the database serialises it with
/// every replica's), delete removed files' bytes, and wait for the leading replica's
/// publisher to sign it.
fn manage_scaled_out(data_dir: &DataDir, op: Operation) -> Result<()> {
    let (mut db, state) = data_dir.index_db_queueing()?;
    let Some(storage) = data_dir.storage()? else {
        bail!("--database needs --storage: the files and pages are where every replica sees them");
    };
    let out = tufpi_index::manage::apply(&mut db, &storage, &op)?;
    tufpi_index::manage::delete_dead_files(&storage, &out);
    report(&op, &out);
    if out.changed.is_empty() && !out.project_removed {
        println!("nothing changed");
        return Ok(());
    }
    let t0 = std::time::Instant::now();
    while state.pending()? > 0 {
        if t0.elapsed() > Duration::from_secs(10) {
            println!("queued: the leading replica signs it (not yet after 10 s: is a `tufpi serve` replica running?)");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("signed by the leading replica");
    Ok(())
}

/// Run a project subcommand.
pub fn run(cmd: ProjectCmd) -> Result<()> {
    match cmd {
        ProjectCmd::Yank { what, reason } => {
            let action = Action::Yank {
                reason: reason.unwrap_or_default().trim().to_string(),
            };
            let op = operation(&what, action, false)?;
            manage(&what.data_dir, op)
        }
        ProjectCmd::Unyank { what } => {
            let op = operation(&what, Action::Unyank, false)?;
            manage(&what.data_dir, op)
        }
        ProjectCmd::Remove { what, all } => {
            let op = operation(&what, Action::Remove, all)?;
            manage(&what.data_dir, op)
        }
        ProjectCmd::Show { data_dir, project } => {
            let db = data_dir.index_db(false)?;
            let name = tufpi_index::names::normalize(&project);
            if db.project(&name)?.is_none() {
                bail!("no project {name:?} in this index");
            }
            let files = db.files_of(&name)?;
            if files.is_empty() {
                println!("{name}: no files");
            }
            for f in files {
                let yanked = match f.yanked {
                    None => String::new(),
                    Some(r) if r.is_empty() => "  yanked".to_string(),
                    Some(r) => format!("  yanked: {r}"),
                };
                println!("{:<12} {}{yanked}", f.version, f.filename);
            }
            Ok(())
        }
    }
}
