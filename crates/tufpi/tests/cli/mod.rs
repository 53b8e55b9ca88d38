//! Running the `tufpi` binary from a test, in a working directory: the run, success and
//! refusal helpers the CLI tests share.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// `tufpi ARGS…` in `dir`.
pub fn tufpi(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tufpi"))
        .current_dir(dir)
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
