//! One server per data directory: its publisher holds the repository lock and writes its PID
//! in the lock file; a second `Index::open` (a second `tufpi serve`) is refused at once,
//! naming that PID, instead of waiting for the lock. Released, the lock file names no one.

use std::time::{Duration, Instant};

use tufpi_index::publisher::{ensure_not_served, Publisher, SERVER_LOCK_HOLDER};
use tufpi_index::{Index, IndexError, IndexOptions, PublisherConfig};
use tufpi_repo::repo::lock_holder;
use tufpi_repo::{RepoError, Repository};

fn opts() -> IndexOptions {
    IndexOptions {
        bins_bit_length: 3,
        ..IndexOptions::default()
    }
}

#[test]
fn a_second_index_on_a_data_dir_is_refused_at_once_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let repo_dir = dir.join("repo");
    let pid = std::process::id();
    let (index, created) = Index::open(dir, &opts()).unwrap();
    assert!(created);
    let holder = lock_holder(&repo_dir).expect("the server holds the lock");
    assert_eq!(holder.pid, Some(pid));
    assert_eq!(holder.what, SERVER_LOCK_HOLDER);

    let t0 = Instant::now();
    let err = Index::open(dir, &opts())
        .err()
        .expect("second open refused");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let want = format!(
        "data dir {} in use by PID {pid} (tufpi serve)",
        dir.display()
    );
    assert!(err.to_string().contains(&want), "{err}");
    assert!(ensure_not_served(dir).is_err());

    // Past the early check (a server starting at the same instant), the publisher itself
    // refuses at once rather than waiting for another server.
    let repo = Repository::open(&repo_dir).unwrap();
    let t0 = Instant::now();
    let err = Publisher::start(repo, PublisherConfig::default(), Box::new(|_| Ok(0)))
        .err()
        .expect("second publisher refused");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(
        matches!(err, IndexError::Repo(RepoError::Locked(_))),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("(PID {pid}: tufpi serve)")),
        "{err}"
    );

    // A command that only queues (and publishes when it can) still works next to it.
    let mut other = Repository::open(&repo_dir).unwrap();
    let err = other.lock().unwrap_err();
    assert!(err.to_string().contains("another publisher holds"), "{err}");

    // Stopped, the server lets go: the lock file names no one and the directory opens again.
    index.shutdown();
    drop(index);
    assert_eq!(lock_holder(&repo_dir), None);
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("publisher.lock")).unwrap(),
        ""
    );
    ensure_not_served(dir).unwrap();
    let (index, created) = Index::open(dir, &opts()).unwrap();
    assert!(!created);
    index.shutdown();
}

#[test]
fn a_lock_file_left_by_a_killed_holder_names_no_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (index, _) = Index::open(dir, &opts()).unwrap();
    index.shutdown();
    drop(index);
    // What a server killed with SIGKILL leaves: its line, no flock. PID 0 is never a
    // process's.
    std::fs::write(dir.join("repo/publisher.lock"), "0 tufpi serve\n").unwrap();
    ensure_not_served(dir).unwrap();
    let (index, _) = Index::open(dir, &opts()).unwrap();
    index.shutdown();
}
