//! `tufpi migrate` end to end (PostgreSQL and the S3 test server; skipped without
//! `TUFPI_TEST_S3_ENDPOINT` unless `TUFPI_REQUIRE_S3=1`): an embedded `tufpi serve` takes an
//! upload and a TUF client trusts its root and installs from it; the data directory is
//! migrated; a scaled-out `tufpi serve` serves the same pages and timestamp, takes the next
//! upload with the same token, and the same client (same trusted metadata) refreshes and
//! downloads the new file.

mod cli;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cli::Server;
use tufpi_blob::BlobStore;
use tufpi_pg::testing::TestDb;

/// Start `tufpi serve ARGS…` and wait until it says where it listens.
fn serve(args: &[&str], env: &[(&str, String)]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tufpi"));
    cmd.arg("serve")
        .args(["--listen", "127.0.0.1:0", "--bins-bit-length", "3"])
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stderr(Stdio::inherit());
    Server::start(cmd)
}

/// `tufpi ARGS…` with `env`, in the test's working directory.
fn tufpi(args: &[&str], env: &[(&str, String)]) -> Output {
    cli::tufpi_with(Path::new("."), env, args)
}

fn ok(args: &[&str], env: &[(&str, String)]) -> String {
    let out = tufpi(args, env);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {err}");
    eprint!("{err}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One HTTP/1.1 request (Connection: close): (status, body).
fn http(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let host = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..split]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let mut body = resp[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 4 + n..];
    }
}

fn get(base: &str, path: &str) -> (u16, Vec<u8>) {
    http(base, "GET", path, &[], b"")
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A wheel (a zip of stored entries) whose METADATA names `name` and `version`.
fn wheel(name: &str, version: &str) -> Vec<u8> {
    let dist = format!("{name}-{version}.dist-info");
    let entries = [
        ("pkg/__init__.py".to_string(), b"X = 1\n".to_vec()),
        (
            format!("{dist}/METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nA test project.\n")
                .into_bytes(),
        ),
        (
            format!("{dist}/WHEEL"),
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                .to_vec(),
        ),
    ];
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (path, data) in &entries {
        let offset = out.len() as u32;
        let common = |v: &mut Vec<u8>| {
            v.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]); // version, flags, stored, time, date
            v.extend_from_slice(&crc32(data).to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(&(path.len() as u16).to_le_bytes());
            v.extend_from_slice(&[0, 0]);
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        common(&mut out);
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&[20, 0]);
        common(&mut central);
        central.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
        central.extend_from_slice(&[0; 4]); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(path.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let n = entries.len() as u16;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in input.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Upload `name` `version`'s wheel as twine does.
fn upload(base: &str, token: &str, name: &str, version: &str) {
    let filename = format!("{name}-{version}-py3-none-any.whl");
    let content = wheel(name, version);
    let mut h = tufpi_core::hashes::Hasher::new("sha256").unwrap();
    h.update(&content);
    let sha256 = h.finish_hex();
    let b = "----tufpi-migrate-test";
    let mut body = Vec::new();
    for (k, v) in [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("name", name),
        ("version", version),
        ("filetype", "bdist_wheel"),
        ("pyversion", "py3"),
        ("metadata_version", "2.1"),
        ("sha256_digest", &sha256),
    ] {
        write!(
            body,
            "--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        )
        .unwrap();
    }
    write!(
        body,
        "--{b}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"{filename}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .unwrap();
    body.extend_from_slice(&content);
    write!(body, "\r\n--{b}--\r\n").unwrap();
    let headers = [
        ("Content-Type", format!("multipart/form-data; boundary={b}")),
        (
            "Authorization",
            format!("Basic {}", base64(format!("__token__:{token}").as_bytes())),
        ),
    ];
    let (status, resp) = http(base, "POST", "/legacy/", &headers, &body);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
}

/// Wait until `/simple/<project>/` lists `filename` and the server has nothing to sign.
fn signed(base: &str, project: &str, filename: &str) {
    let t0 = Instant::now();
    loop {
        let (s, page) = get(base, &format!("/simple/{project}/"));
        let (_, health) = get(base, "/health");
        let h: serde_json::Value = serde_json::from_slice(&health).unwrap_or_default();
        if s == 200
            && String::from_utf8_lossy(&page).contains(filename)
            && h["pending_changes"] == 0
        {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{filename} never signed: {h}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `packages/…` path of `filename` on `/simple/<project>/` (JSON).
fn file_path(base: &str, project: &str, filename: &str) -> String {
    let (_, page) = http(
        base,
        "GET",
        &format!("/simple/{project}/"),
        &[("Accept", "application/vnd.pypi.simple.v1+json".into())],
        b"",
    );
    let v: serde_json::Value = serde_json::from_slice(&page).unwrap();
    let f = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == filename)
        .unwrap();
    f["url"]
        .as_str()
        .unwrap()
        .trim_start_matches("../../")
        .to_string()
}

/// The TUF client refreshes from `base` and downloads (verifies) `target`; retried for a
/// while, as a server serves a new timestamp within a second or so of signing it.
fn client_installs(base: &str, meta: &Path, target: &str, into: &Path) {
    let m = meta.to_str().unwrap();
    let url = format!("{base}/metadata/");
    let t0 = Instant::now();
    loop {
        ok(
            &[
                "client",
                "--metadata-url",
                &url,
                "--metadata-dir",
                m,
                "refresh",
            ],
            &[],
        );
        let out = tufpi(
            &[
                "client",
                "--metadata-url",
                &url,
                "--metadata-dir",
                m,
                "--target-name",
                target,
                "--target-dir",
                into.to_str().unwrap(),
                "--target-base-url",
                &format!("{base}/"),
                "--no-hash-prefix",
                "download",
            ],
            &[],
        );
        if out.status.success() {
            return;
        }
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            err.contains("not found in signed metadata") && t0.elapsed() < Duration::from_secs(20),
            "{target}: {err}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_embedded_index_migrated_keeps_its_clients() {
    let Some(bucket) = tufpi_blob::testing::test_bucket("migrate-cli") else {
        return;
    };
    let pg = TestDb::create();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();

    // Embedded: an upload, a client that trusts the root and installs.
    let embedded = serve(&["--data-dir", d], &[]);
    let token = ok(&["token", "create", "--data-dir", d], &[])
        .trim()
        .to_string();
    upload(&embedded.base, &token, "demo", "1.0");
    signed(&embedded.base, "demo", "demo-1.0-py3-none-any.whl");
    let meta = tmp.path().join("client");
    let m = meta.to_str().unwrap();
    let root = data.join("repo").join("metadata").join("1.root.json");
    ok(
        &[
            "client",
            "--metadata-dir",
            m,
            "init",
            root.to_str().unwrap(),
        ],
        &[],
    );
    let got = tmp.path().join("got");
    std::fs::create_dir_all(&got).unwrap();
    let w1 = file_path(&embedded.base, "demo", "demo-1.0-py3-none-any.whl");
    client_installs(&embedded.base, &meta, &w1, &got);

    // Refused while the server runs, and into the data directory itself; nothing written.
    let mut env = bucket.env();
    env.push(("TUFPI_DATABASE_URL", pg.url().to_string()));
    env.push(("TUFPI_STORAGE_URL", bucket.url("")));
    let out = tufpi(&["migrate", "--data-dir", d], &env);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("in use"), "{err}");
    assert!(bucket.store("").list("").unwrap().is_empty());
    drop(embedded);
    let mut inside = env.clone();
    inside.push(("TUFPI_STORAGE_URL", format!("file://{}/up", data.display())));
    let out = tufpi(&["migrate", "--data-dir", d], &inside);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("lies in the data directory"),
        "{err}"
    );

    // Migrate.
    let t0 = Instant::now();
    let out = ok(&["migrate", "--data-dir", d], &env);
    eprintln!("migrate took {:.2} s:\n{out}", t0.elapsed().as_secs_f64());
    assert!(out.contains("1 projects, 1 files"), "{out}");
    assert!(out.contains("--keys-dir"), "{out}");
    let ts_local =
        std::fs::read(data.join("repo").join("metadata").join("timestamp.json")).unwrap();

    // Scaled out, on another directory (the keys from the migrated one).
    let keys = data.join("repo").join("keys");
    let replica = tmp.path().join("replica");
    let scaled = serve(
        &[
            "--data-dir",
            replica.to_str().unwrap(),
            "--keys-dir",
            keys.to_str().unwrap(),
        ],
        &env,
    );
    let (s, page) = get(&scaled.base, "/simple/demo/");
    assert_eq!(s, 200);
    assert!(String::from_utf8_lossy(&page).contains("demo-1.0-py3-none-any.whl"));
    let (s, ts) = get(&scaled.base, "/metadata/timestamp.json");
    assert_eq!(s, 200);
    assert_eq!(ts, ts_local, "the migrated timestamp is served as it was");

    // The same token uploads; the same client refreshes (versions continue) and installs.
    upload(&scaled.base, &token, "demo", "2.0");
    signed(&scaled.base, "demo", "demo-2.0-py3-none-any.whl");
    let w2 = file_path(&scaled.base, "demo", "demo-2.0-py3-none-any.whl");
    client_installs(&scaled.base, &meta, &w2, &got);
    client_installs(&scaled.base, &meta, &w1, &got);
    let (_, ts2) = get(&scaled.base, "/metadata/timestamp.json");
    let v = |b: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(b).unwrap()["signed"]["version"]
            .as_u64()
            .unwrap()
    };
    assert!(v(&ts2) > v(&ts_local));

    // A second migration into the live target is refused.
    let out = tufpi(&["migrate", "--data-dir", d], &env);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("timestamp.json"), "{err}");
}

/// Figures for a PEP 458-sized repository (16,384 bins): `cargo test -p tufpi --test
/// migrate_cli -- --ignored --nocapture` (uploads: `TUFPI_MIGRATE_UPLOADS`, default 200).
#[test]
#[ignore]
fn figures_for_a_full_sized_repository() {
    let Some(bucket) = tufpi_blob::testing::test_bucket("migrate-figures") else {
        return;
    };
    let uploads: usize = std::env::var("TUFPI_MIGRATE_UPLOADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let pg = TestDb::create();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tufpi"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir", d]);
    let embedded = Server::start(cmd);
    let token = ok(&["token", "create", "--data-dir", d], &[])
        .trim()
        .to_string();
    let t0 = Instant::now();
    for i in 0..uploads {
        upload(
            &embedded.base,
            &token,
            &format!("p{}", i % 50),
            &format!("1.{i}"),
        );
    }
    let last = uploads - 1;
    signed(
        &embedded.base,
        &format!("p{}", last % 50),
        &format!("p{}-1.{last}-py3-none-any.whl", last % 50),
    );
    eprintln!("{uploads} uploads in {:.1} s", t0.elapsed().as_secs_f64());
    drop(embedded);
    let mut env = bucket.env();
    env.push(("TUFPI_DATABASE_URL", pg.url().to_string()));
    env.push(("TUFPI_STORAGE_URL", bucket.url("")));
    let t0 = Instant::now();
    let out = ok(&["migrate", "--data-dir", d], &env);
    eprintln!("migrate took {:.1} s:\n{out}", t0.elapsed().as_secs_f64());
}
