//! A second `tufpi serve` on a data directory a server already runs on fails at once, naming
//! the running server's PID, instead of waiting; `tufpi` commands that only queue keep working
//! next to the server; once the server is gone (even killed), the directory can be served.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// A server process, killed when dropped (a failing test leaves none running).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    fn stop(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

fn serve(data: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tufpi"))
        .args(["serve", "--listen", "127.0.0.1:0", "--bins-bit-length", "3"])
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tufpi serve")
}

/// Start a server and wait until it says it listens.
fn serving(data: &Path) -> Server {
    let mut child = Server(serve(data));
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).unwrap();
        assert!(n > 0, "the server exited before listening");
        if line.contains("listening on") {
            break;
        }
    }
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    child
}

/// Wait up to `limit` for `child` to exit.
fn exit_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn tufpi(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tufpi"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap()
}

#[test]
fn a_second_server_on_a_data_dir_fails_at_once_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let first = serving(&data);

    let mut second = Server(serve(&data));
    let t0 = Instant::now();
    let status = exit_within(&mut second.0, Duration::from_secs(10));
    let _ = second.0.kill();
    let mut stdout = String::new();
    let mut stderr = String::new();
    let _ = second.0.stdout.take().unwrap().read_to_string(&mut stdout);
    let _ = second.0.stderr.take().unwrap().read_to_string(&mut stderr);
    drop(second);
    let status = status.unwrap_or_else(|| panic!("the second server still runs: {stderr}"));
    assert!(!status.success(), "{stderr}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}: {stderr}",
        t0.elapsed()
    );
    let want = format!(
        "data dir {} in use by PID {} ",
        data.display(),
        first.0.id()
    );
    assert!(stderr.contains(&want), "want {want:?} in {stderr}");
    assert!(!stdout.contains("listening on"), "{stdout}");

    // Next to the running server, commands that only queue still work.
    let o = tufpi(&["token", "create"], &data);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = tufpi(&["project", "show", "nothing-here"], &data);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("in use by PID"), "{err}");

    // Killed (the lock file still names it), the first server no longer holds the directory.
    first.stop();
    serving(&data).stop();
}
