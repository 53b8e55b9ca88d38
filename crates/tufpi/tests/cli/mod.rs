//! Running the `tufpi` binary from a test, in a working directory: the run, success and
//! refusal helpers the CLI tests share, and a `tufpi serve` process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// `tufpi ARGS…` in `dir`.
pub fn tufpi(dir: &Path, args: &[&str]) -> Output {
    tufpi_with(dir, &[], args)
}

/// `tufpi ARGS…` in `dir`, with `env` added to its environment.
pub fn tufpi_with(dir: &Path, env: &[(&str, String)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tufpi"))
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(args)
        .output()
        .expect("run tufpi")
}

/// `tufpi ARGS…` in `dir`, which must succeed; its stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = tufpi(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `tufpi ARGS…` in `dir`, which must fail (exit 1, usage errors included) with `want` in
/// its stderr.
pub fn refused(dir: &Path, args: &[&str], want: &str) {
    let out = tufpi(dir, args);
    assert_eq!(out.status.code(), Some(1), "{args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(want), "{args:?}: {err}");
}

/// A `tufpi serve` process and the base URL it listens on, killed when dropped (a failing
/// test leaves none running).
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Start `cmd` (a `tufpi serve …`; its stderr as the caller set it) and wait until it
    /// says where it listens; its stdout is drained after, so it never blocks on a full pipe.
    pub fn start(mut cmd: Command) -> Server {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start tufpi serve");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let base = loop {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "tufpi serve exited before listening"
            );
            if let Some((_, url)) = line.trim().split_once("listening on ") {
                break url.trim_end_matches('/').to_string();
            }
        };
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Server { child, base }
    }
}
