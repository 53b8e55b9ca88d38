//! `tufpi serve --database URL --storage URL`: the scale-out options are refused without
//! them; two replicas on one database and blob store (a directory through `file://`) elect
//! one leader, and when it is killed (-9: its lease is not released) the other leads within
//! the failover budget of 5 s.

mod cli;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli::Server;
use tufpi_pg::testing::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_tufpi");

fn refused(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("serve")
        .args(args)
        .env_remove("TUFPI_DATABASE_URL")
        .env_remove("TUFPI_STORAGE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn scale_out_options_need_a_database_and_storage() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_str().unwrap();
    for opt in [
        ["--keys-dir", "/tmp/k"],
        ["--lease-ttl", "2s"],
        ["--public-metadata-url", "https://cdn.example/metadata/"],
        ["--files-url", "https://cdn.example/"],
    ] {
        let err = refused(&["--data-dir", dir, opt[0], opt[1]]);
        assert!(
            err.contains(&format!("{} is for a scaled-out index", opt[0])),
            "{err}"
        );
    }
    let err = refused(&["--data-dir", dir, "--database", "postgres://x@127.0.0.1/x"]);
    assert!(err.contains("needs both --database"), "{err}");
}

fn replica(db: &str, files: &Path, keys: &Path, data: &Path) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--bins-bit-length", "3"])
        .args(["--database", db, "--lease-ttl", "2s"])
        .arg("--storage")
        .arg(format!("file://{}", files.display()))
        .arg("--keys-dir")
        .arg(keys)
        .arg("--data-dir")
        .arg(data)
        .stderr(Stdio::null());
    Server::start(cmd)
}

/// `GET path` on `base`: the body, if the server answered.
fn get(base: &str, path: &str) -> Option<String> {
    let host = base.strip_prefix("http://")?;
    let mut s = TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

fn leads(r: &Server) -> Option<i64> {
    let h: serde_json::Value = serde_json::from_str(&get(&r.base, "/health")?).ok()?;
    h["publisher"]["term"]
        .as_i64()
        .filter(|_| h["publisher"]["leader"] == true)
}

#[test]
fn a_standby_leads_within_five_seconds_of_the_leader_being_killed() {
    let db = TestDb::create();
    let t = tempfile::tempdir().unwrap();
    let (files, keys) = (t.path().join("files"), t.path().join("keys"));
    std::fs::create_dir_all(&files).unwrap();
    let a = replica(db.url(), &files, &keys, &t.path().join("a"));
    let b = replica(db.url(), &files, &keys, &t.path().join("b"));
    let t0 = Instant::now();
    let (leader, standby, term) = loop {
        match (leads(&a), leads(&b)) {
            (Some(term), None) => break (a, b, term),
            (None, Some(term)) => break (b, a, term),
            _ => {}
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "no single leader");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(get(&standby.base, "/metadata/1.root.json").is_some_and(|r| r.contains("\"root\"")));
    let killed = Instant::now();
    drop(leader);
    let new_term = loop {
        if let Some(t) = leads(&standby) {
            break t;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "the standby did not lead within 5 s of the leader's death"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("led after {:?}", killed.elapsed());
    assert!(new_term > term);
    drop(standby);
}
