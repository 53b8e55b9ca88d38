//! `tufpi serve` and `tufpi proxy` against clients that connect and never finish a request:
//! such connections are closed after the header timeout, and more of them than the
//! connection cap do not keep an honest client (or /health) out. Before the hardened
//! connection loop, they stayed open forever and ~20,000 of them exhausted the file
//! descriptors.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `tufpi ARGS` and wait for its "listening on http://ADDR/" line.
fn start(args: &[&str]) -> (Proc, SocketAddr) {
    let mut child = Proc(
        Command::new(env!("CARGO_BIN_EXE_tufpi"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tufpi"),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "exited before listening"
        );
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr = rest.split('/').next().unwrap();
            break addr.parse().unwrap();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    (child, addr)
}

/// An unfinished request head on a new connection.
fn hog(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    s
}

/// Whether the server closed `s` within `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 1024];
    while t0.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(_) => return true,
        }
    }
    false
}

/// GET `path` on a fresh connection; the status line.
fn status_of(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines().next().unwrap_or("").to_string()
}

fn check(addr: SocketAddr, honest_path: &str) {
    // A head never finished is cut off after the header timeout (1 s here).
    let mut slow = hog(addr);
    assert!(
        closed_within(&mut slow, Duration::from_secs(5)),
        "an unfinished head kept its connection for 5 s"
    );
    // Four times the connection cap in hogs: honest requests still get through.
    let hogs: Vec<TcpStream> = (0..64).map(|_| hog(addr)).collect();
    for _ in 0..3 {
        let st = status_of(addr, honest_path);
        assert!(st.starts_with("HTTP/1.1 200"), "{honest_path}: {st:?}");
    }
    drop(hogs);
}

const LIMITS: [&str; 6] = [
    "--header-timeout",
    "1",
    "--max-connections",
    "16",
    "--listen",
    "127.0.0.1:0",
];

#[test]
fn index_and_proxy_shed_slow_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_s = data.to_str().unwrap();
    let mut args = vec!["serve", "--data-dir", data_s, "--bins-bit-length", "3"];
    args.extend(LIMITS);
    let (_index, index_addr) = start(&args);
    check(index_addr, "/health");

    let upstream = format!("http://{index_addr}");
    let root = data.join("repo/metadata/1.root.json");
    let cache = tmp.path().join("cache");
    let mut args = vec![
        "proxy",
        "--upstream",
        &upstream,
        "--root",
        root.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    args.extend(LIMITS);
    let (_proxy, proxy_addr) = start(&args);
    check(proxy_addr, "/health");
}
