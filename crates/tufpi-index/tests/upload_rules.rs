//! Filename, version and archive rules of uploads as strict as PyPI's (issue 10, findings 5
//! and 6): wheel tags checked, one file per normalised name, release and tags, ever (also
//! after a removal), one sdist per release, no local versions, the `.dist-info` directory
//! of the uploaded project, every digest sent checked, and sdist links kept inside the
//! archive.

mod common;

use std::io::Write;

use axum::http::StatusCode;
use common::*;
use md5::Digest;
use tufpi_index::pages::JSON_TYPE;

fn ok(r: &Reply) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

/// Expect a 400 whose message (and reason phrase) holds `needle`.
fn refused(r: &Reply, needle: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(
        r.text().contains(needle),
        "{needle:?} not in {:?}",
        r.text()
    );
    assert!(
        r.reason.as_deref().unwrap_or("").contains(needle),
        "{needle:?} not in the reason phrase {:?}",
        r.reason
    );
}

async fn versions(t: &TestIndex, project: &str) -> serde_json::Value {
    get(&t.router, &format!("/simple/{project}/"), Some(JSON_TYPE))
        .await
        .json()["versions"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wheel_tags_and_versions_are_compared_normalised() {
    let t = index();
    let w = wheel("alpha", "3.0");
    // The platform tag of `…-any.whl.whl` is `any.whl`: `whl` is no platform.
    let f = "alpha-3.0-py3-none-any.whl.whl";
    refused(
        &upload_with(&t, "alpha", "3.0", f, &w, |_| {}).await,
        "unknown platform tag \"whl\"",
    );
    for bad in [
        "alpha-3.0-py3-none-.whl",
        "alpha-3.0-py3-none-any.x_.whl",
        "alpha-3.0-py3-none-any.whl_.whl",
        "alpha-3.0-py3-none-linux.whl",
        "alpha-3.0-x1-py3-none-any.whl",
        "alpha-3.0-py3!-none-any.whl",
    ] {
        let r = upload_with(&t, "alpha", "3.0", bad, &w, |_| {}).await;
        refused(&r, "Invalid wheel filename");
    }
    for good in [
        "alpha-3.0-py3-none-any.whl",
        "alpha-3.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "alpha-3.0-cp312-cp312-macosx_11_0_arm64.whl",
        "alpha-3.0-cp312-cp312-win_amd64.whl",
        "alpha-3.0-cp312-cp312-linux_x86_64.whl",
        "alpha-3.0-cp312-cp312-musllinux_1_2_aarch64.whl",
        "alpha-3.0-1-py3-none-any.whl",
    ] {
        ok(&upload_with(&t, "alpha", "3.0", good, &w, |_| {}).await);
    }

    // One release is one PEP 440 version, and a file is its name, release and tags.
    ok(&t
        .upload(
            "alpha",
            "4.0",
            "alpha-4.0-py3-none-any.whl",
            &wheel("alpha", "4.0"),
        )
        .await);
    for (version, filename) in [
        ("4.0.0", "alpha-4.0.0-py3-none-any.whl"),
        ("4", "alpha-4-py3-none-any.whl"),
        ("4.0", "Alpha-4.0-py3-none-any.whl"),
        ("4.0", "alpha-4.0-PY3-NONE-ANY.whl"),
    ] {
        refused(
            &t.upload("alpha", version, filename, &wheel("alpha", version))
                .await,
            "File already exists",
        );
    }
    let r = t
        .upload(
            "alpha",
            "4.0.0",
            "alpha-4.0.0-py3-none-any.whl",
            &wheel("alpha", "4.0.0"),
        )
        .await;
    refused(
        &r,
        "\"alpha-4.0.0-py3-none-any.whl\" is the same file as \"alpha-4.0-py3-none-any.whl\"",
    );
    // Compressed tag sets compare expanded: py2.py3 is py3.py2.
    ok(&t
        .upload(
            "alpha",
            "4.0.0",
            "alpha-4.0.0-py2.py3-none-any.whl",
            &wheel("alpha", "4.0.0"),
        )
        .await);
    refused(
        &t.upload(
            "alpha",
            "4",
            "alpha-4-py3.py2-none-any.whl",
            &wheel("alpha", "4"),
        )
        .await,
        "File already exists",
    );
    // Another build of the same tags is another file.
    ok(&t
        .upload(
            "alpha",
            "4",
            "alpha-4-1-py3-none-any.whl",
            &wheel("alpha", "4"),
        )
        .await);
    // Files of 4, 4.0 and 4.0.0 are one release, named as first uploaded.
    assert_eq!(
        versions(&t, "alpha").await,
        serde_json::json!(["3.0", "4.0"])
    );

    // A local version is refused, as on PyPI.
    let r = t
        .upload(
            "alpha",
            "5+evil",
            "alpha-5+evil-py3-none-any.whl",
            &wheel("alpha", "5+evil"),
        )
        .await;
    refused(&r, "Invalid version \"5+evil\": local versions");
    assert_eq!(t.settled().await["files"], 10);
    t.index.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_file_stays_used_under_every_spelling() {
    let t = index();
    ok(&t
        .upload("beta", "2.0", "beta-2.0.tar.gz", &sdist("beta", "2.0"))
        .await);
    ok(&t
        .upload(
            "beta",
            "2.0",
            "beta-2.0-py3-none-any.whl",
            &wheel("beta", "2.0"),
        )
        .await);
    // One sdist per release, whatever its format.
    let zip = zip_of(&[("beta-2.0/PKG-INFO", &pkg_info("beta", "2.0"))]);
    refused(
        &t.upload("beta", "2.0", "beta-2.0.zip", &zip).await,
        "would be a second sdist of beta 2: \"beta-2.0.tar.gz\" was uploaded before",
    );
    let r = t.manage("beta", "remove", "version=2.0").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(t.settled().await["files"], 0);
    for (version, filename, bytes) in [
        ("2.0", "beta-2.0.tar.gz", sdist("beta", "2.0")),
        ("2.0.0", "beta-2.0.0.tar.gz", sdist("beta", "2.0.0")),
        ("2", "beta-2.tar.gz", sdist("beta", "2")),
        ("2", "Beta-2.zip", zip.clone()),
        (
            "2.0.0",
            "beta-2.0.0-py3-none-any.whl",
            wheel("beta", "2.0.0"),
        ),
    ] {
        refused(
            &t.upload("beta", version, filename, &bytes).await,
            "File already exists",
        );
    }
    // Another version, or other tags, are other files.
    ok(&t
        .upload(
            "beta",
            "2.0.1",
            "beta-2.0.1.tar.gz",
            &sdist("beta", "2.0.1"),
        )
        .await);
    ok(&t
        .upload(
            "beta",
            "2.0.0",
            "beta-2.0.0-cp312-abi3-win_amd64.whl",
            &wheel("beta", "2.0.0"),
        )
        .await);
    assert_eq!(t.settled().await["files"], 2);

    // An index made before identities were recorded: they are recorded from its filenames
    // when it is opened.
    let db = t.dir.path().join("index.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("DELETE FROM used_dists", [])
        .unwrap();
    let t = t.restart();
    for (version, filename, bytes) in [
        ("2.0.0", "beta-2.0.0.tar.gz", sdist("beta", "2.0.0")),
        ("2.0.1.0", "beta-2.0.1.0.tar.gz", sdist("beta", "2.0.1.0")),
        ("2", "beta-2-py3-none-any.whl", wheel("beta", "2")),
    ] {
        refused(
            &t.upload("beta", version, filename, &bytes).await,
            "File already exists",
        );
    }
    ok(&t
        .upload(
            "beta",
            "2.0.0",
            "beta-2.0.0-cp313-abi3-win_amd64.whl",
            &wheel("beta", "2.0.0"),
        )
        .await);
    t.settled().await;
    t.index.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dist_info_directory_must_be_the_projects() {
    let t = index();
    let f = "demo-1.0-py3-none-any.whl";
    let meta = pkg_info("demo", "1.0");
    for (dir, needle) in [
        (
            "other-1.0.dist-info",
            "Invalid wheel: its .dist-info directory \"other-1.0.dist-info\" is for project \"other\", not \"demo\"",
        ),
        (
            "demo-2.0.dist-info",
            "Invalid wheel: its .dist-info directory \"demo-2.0.dist-info\" is for version \"2.0\", not 1.0",
        ),
        (
            "demo.dist-info",
            "Invalid wheel: its .dist-info directory \"demo.dist-info\" names no version",
        ),
    ] {
        let w = zip_of(&[(&format!("{dir}/METADATA"), &meta)]);
        refused(&t.upload("demo", "1.0", f, &w).await, needle);
    }
    let w = zip_of(&[("Demo-1.0.0.dist-info/METADATA", &meta)]);
    ok(&t.upload("demo", "1.0", f, &w).await);
    t.settled().await;
    t.index.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_digest_sent_is_checked() {
    let t = index();
    let w = wheel("demo", "1.0");
    let f = "demo-1.0-py3-none-any.whl";
    let md5 = hex::encode(md5::Md5::digest(&w));
    let b2 = {
        use blake2::digest::consts::U32;
        hex::encode(blake2::Blake2b::<U32>::digest(&w))
    };
    for (field, value, needle) in [
        (
            "md5_digest",
            "0".repeat(32),
            "does not match a digest calculated from the uploaded file (md5_digest)",
        ),
        (
            "blake2_256_digest",
            "0".repeat(64),
            "does not match a digest calculated from the uploaded file (blake2_256_digest)",
        ),
        (
            "md5_digest",
            "xyz".into(),
            "Invalid md5_digest \"xyz\": expected 32 hex digits",
        ),
        (
            "sha256_digest",
            "abc".into(),
            "Invalid sha256_digest \"abc\": expected 64 hex digits",
        ),
    ] {
        let r = upload_with(&t, "demo", "1.0", f, &w, |fm| {
            fm.retain(|(k, _)| k != field);
            fm.push((field.into(), value.clone()))
        })
        .await;
        refused(&r, needle);
    }
    // All three, right (in either case): accepted.
    let r = upload_with(&t, "demo", "1.0", f, &w, |fm| {
        fm.push(("md5_digest".into(), md5.to_uppercase()));
        fm.push(("blake2_256_digest".into(), b2));
    })
    .await;
    ok(&r);
    t.settled().await;
    t.index.shutdown();
}

/// A tar member: name, type, link target or contents.
#[derive(Clone, Copy)]
enum Member<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Device(&'a str),
}

/// A `.tar.gz` of `members`, names and link targets written as given.
fn tar_of(members: &[Member]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut t = tar::Builder::new(gz);
    for m in members {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        let (name, body, link): (&str, &[u8], Option<&str>) = match m {
            Member::File(n, b) => {
                h.set_entry_type(tar::EntryType::Regular);
                (n, b, None)
            }
            Member::Symlink(n, l) => {
                h.set_entry_type(tar::EntryType::Symlink);
                (n, b"", Some(l))
            }
            Member::Hardlink(n, l) => {
                h.set_entry_type(tar::EntryType::Link);
                (n, b"", Some(l))
            }
            Member::Device(n) => {
                h.set_entry_type(tar::EntryType::Char);
                (n, b"", None)
            }
        };
        h.set_size(body.len() as u64);
        let g = h.as_gnu_mut().unwrap();
        g.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            g.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        t.append(&h, body).unwrap();
    }
    t.into_inner().unwrap().finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdist_links_must_stay_inside_the_archive() {
    let t = index();
    let info = pkg_info("demo", "1.0");
    let info = info.as_bytes();
    let with = |extra: Member| tar_of(&[Member::File("demo-1.0/PKG-INFO", info), extra]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            with(Member::Symlink("demo-1.0/evil", "../../etc/passwd")),
            "the symlink \"demo-1.0/evil\" points outside the archive (\"../../etc/passwd\")",
        ),
        (
            with(Member::Symlink("demo-1.0/evil", "/etc/passwd")),
            "the symlink \"demo-1.0/evil\" points outside the archive",
        ),
        (
            with(Member::Hardlink("demo-1.0/evil", "../outside")),
            "the hard link \"demo-1.0/evil\" points outside the archive",
        ),
        (
            with(Member::Device("demo-1.0/tty")),
            "\"demo-1.0/tty\" is a device file or a pipe",
        ),
        (
            tar_of(&[
                Member::File("demo-1.0/PKG-INFO", info),
                Member::Symlink("demo-1.0/up", ".."),
                Member::File("demo-1.0/up/x", b"written next to the sdist"),
            ]),
            "\"demo-1.0/up/x\" is stored under the symlink \"demo-1.0/up\"",
        ),
        (
            tar_of(&[
                Member::File("demo-1.0/PKG-INFO", info),
                Member::Symlink("demo-1.0/up", ".."),
                Member::Symlink("demo-1.0/evil", "up/../x"),
            ]),
            "points through the symlink \"demo-1.0/up\"",
        ),
    ];
    for (sd, needle) in cases {
        refused(
            &t.upload("demo", "1.0", "demo-1.0.tar.gz", &sd).await,
            needle,
        );
    }
    // Zip sdists alike: a symlink's target is its contents.
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let o = zip::write::SimpleFileOptions::default();
        z.start_file("demo-1.0/PKG-INFO", o).unwrap();
        z.write_all(info).unwrap();
        z.add_symlink("demo-1.0/evil", "../../../etc/passwd", o)
            .unwrap();
        z.finish().unwrap();
    }
    refused(
        &t.upload("demo", "1.0", "demo-1.0.zip", &buf.into_inner())
            .await,
        "the symlink \"demo-1.0/evil\" points outside the archive",
    );
    // Links that stay inside are fine (a README shared with the docs).
    let sd = tar_of(&[
        Member::File("demo-1.0/PKG-INFO", info),
        Member::File("demo-1.0/README.md", b"# demo"),
        Member::Symlink("demo-1.0/docs/README.md", "../README.md"),
        Member::Hardlink("demo-1.0/README.txt", "demo-1.0/README.md"),
    ]);
    ok(&t.upload("demo", "1.0", "demo-1.0.tar.gz", &sd).await);
    t.settled().await;
    t.index.shutdown();
}
