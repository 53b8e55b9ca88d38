//! The production path end to end through the CLI: offline key holders generate keys,
//! `repo init` prepares unsigned metadata, holders sign separately, `ceremony combine` and
//! `ceremony publish` check thresholds and publish; then a client verifies from 1.root.json.
//! Also a root rotation ceremony with a new key set.

mod cli;

use std::path::Path;

use cli::{ok, refused, tufpi};

#[test]
fn offline_ceremony_then_root_rotation() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for k in ["ra", "rb", "rc", "tg", "bn"] {
        ok(
            d,
            &[
                "key",
                "generate",
                "--scheme",
                "ecdsa-sha2-nistp256",
                "--out",
                &format!("{k}.pem"),
                "--public-out",
                &format!("{k}.pub.json"),
            ],
        );
    }
    // Without keys, init explains the ceremony and refuses.
    let out = tufpi(d, &["repo", "init", "--repo", "r"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("offline key ceremony"));

    ok(
        d,
        &[
            "repo",
            "init",
            "--repo",
            "r",
            "--bins-bit-length",
            "5",
            "--root-key",
            "ra.pub.json",
            "--root-key",
            "rb.pub.json",
            "--root-threshold",
            "2",
            "--targets-key",
            "tg.pub.json",
            "--bins-key",
            "bn.pub.json",
        ],
    );
    assert!(
        !d.join("r/keys/root.pem").exists(),
        "offline keys never sit in the repository"
    );
    for (src, dst, key) in [
        ("1.root.json", "a.json", "ra.pem"),
        ("1.root.json", "b.json", "rb.pem"),
        ("1.targets.json", "t.json", "tg.pem"),
        ("1.bins.json", "bins.json", "bn.pem"),
    ] {
        std::fs::copy(d.join("r/ceremony").join(src), d.join(dst)).unwrap();
        ok(d, &["metadata", "sign", dst, "--key", key]);
    }
    // One root signature of two: refused, nothing published.
    refused(
        d,
        &[
            "ceremony",
            "publish",
            "--repo",
            "r",
            "a.json",
            "t.json",
            "bins.json",
        ],
        "1/2",
    );
    assert!(!d.join("r/metadata/1.root.json").exists());
    ok(
        d,
        &[
            "ceremony",
            "combine",
            "--out",
            "root.json",
            "a.json",
            "b.json",
        ],
    );
    ok(
        d,
        &[
            "ceremony",
            "publish",
            "--repo",
            "r",
            "root.json",
            "t.json",
            "bins.json",
        ],
    );
    let bins = std::fs::read_dir(d.join("r/metadata"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("1.bin-")
        })
        .count();
    assert_eq!(bins, 32);

    std::fs::write(d.join("f.whl"), b"wheel bytes").unwrap();
    ok(
        d,
        &[
            "repo",
            "add",
            "--repo",
            "r",
            "packages/x/f.whl",
            "--file",
            "f.whl",
            "--publish",
        ],
    );

    // Root rotation: rb leaves, rc joins, threshold stays 2; v2 needs 2 of {ra, rb} and 2 of {ra, rc}.
    let rb_keyid = ok(d, &["json", "canonical", "rb.pub.json"]);
    let rb_keyid = rb_keyid
        .split("\"keyid\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    ok(
        d,
        &[
            "ceremony",
            "prepare",
            "--repo",
            "r",
            "--role",
            "root",
            "--out",
            "new-root.json",
            "--add-key",
            "root=rc.pub.json",
            "--remove-key",
            &format!("root={rb_keyid}"),
        ],
    );
    let show = ok(d, &["ceremony", "show", "--repo", "r", "new-root.json"]);
    assert!(
        show.contains("version 1 -> 2") && show.contains("+ key") && show.contains("- key"),
        "{show}"
    );
    for k in ["ra.pem", "rc.pem"] {
        ok(d, &["metadata", "sign", "new-root.json", "--key", k]);
    }
    refused(
        d,
        &["ceremony", "publish", "--repo", "r", "new-root.json"],
        "root v1 (trusted) keys",
    );
    ok(d, &["metadata", "sign", "new-root.json", "--key", "rb.pem"]);
    ok(d, &["ceremony", "publish", "--repo", "r", "new-root.json"]);

    // A fresh client trusting only 1.root.json follows the chain and gets the target.
    let meta = format!("file://{}/", d.join("r/metadata").display());
    let targets = format!("file://{}/", d.join("t").display());
    std::fs::create_dir_all(d.join("t/packages/x")).unwrap();
    // Serve the target under each of its hash-prefixed names.
    let bytes = b"wheel bytes";
    for h in [sha256_hex(bytes), blake2b_hex(d, "f.whl")] {
        std::fs::write(d.join(format!("t/packages/x/{h}.f.whl")), bytes).unwrap();
    }
    ok(
        d,
        &[
            "client",
            "--metadata-dir",
            "c",
            "init",
            "r/metadata/1.root.json",
        ],
    );
    ok(
        d,
        &[
            "client",
            "--metadata-url",
            &meta,
            "--metadata-dir",
            "c",
            "--target-name",
            "packages/x/f.whl",
            "--target-dir",
            "dl",
            "--target-base-url",
            &targets,
            "download",
        ],
    );
    assert_eq!(
        std::fs::read(d.join("dl/packages%2Fx%2Ff.whl")).unwrap(),
        bytes
    );
    let root = std::fs::read_to_string(d.join("c/root.json")).unwrap();
    assert!(
        root.contains("\"version\": 2"),
        "client follows the rotation"
    );
}

fn sha256_hex(b: &[u8]) -> String {
    tufpi_core_digest("sha256", b)
}

fn blake2b_hex(d: &Path, file: &str) -> String {
    tufpi_core_digest("blake2b-256", &std::fs::read(d.join(file)).unwrap())
}

fn tufpi_core_digest(alg: &str, b: &[u8]) -> String {
    tufpi_core::hashes::digest_hex(alg, b).unwrap()
}
