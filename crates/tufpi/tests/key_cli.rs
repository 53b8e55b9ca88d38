//! `tufpi key generate`: never replaces an existing key file unless told to (`--force`), and
//! creates the private key readable by its owner only.

mod cli;

use std::path::Path;
use std::process::Output;

use cli::tufpi;

fn generate(dir: &Path, out: &str, public_out: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "key",
        "generate",
        "--scheme",
        "ed25519",
        "--out",
        out,
        "--public-out",
        public_out,
    ];
    args.extend_from_slice(extra);
    tufpi(dir, &args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The keyid printed on success.
fn keyid(o: &Output) -> String {
    assert!(o.status.success(), "{}", stderr(o));
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    id
}

#[test]
fn an_existing_key_file_is_never_replaced_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let first = keyid(&generate(d, "k.pem", "k.pub.json", &[]));
    let pem = std::fs::read(d.join("k.pem")).unwrap();
    let public = std::fs::read(d.join("k.pub.json")).unwrap();
    assert!(String::from_utf8_lossy(&public).contains(&first));

    // The private key exists: refused, naming it; neither file touched.
    let o = generate(d, "k.pem", "other.pub.json", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("k.pem already exists"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(std::fs::read(d.join("k.pem")).unwrap(), pem);
    assert!(!d.join("other.pub.json").exists());

    // The public key file exists: refused too, and no private key is left behind.
    let o = generate(d, "other.pem", "k.pub.json", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("k.pub.json already exists"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(d.join("k.pub.json")).unwrap(), public);
    assert!(!d.join("other.pem").exists());

    // One path for both is refused outright.
    let o = generate(d, "same", "same", &["--force"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!d.join("same").exists());

    // --force replaces both.
    let second = keyid(&generate(d, "k.pem", "k.pub.json", &["--force"]));
    assert_ne!(first, second);
    assert_ne!(std::fs::read(d.join("k.pem")).unwrap(), pem);
    assert!(
        String::from_utf8_lossy(&std::fs::read(d.join("k.pub.json")).unwrap()).contains(&second)
    );
}

#[cfg(unix)]
#[test]
fn the_private_key_is_created_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let mode = |p: &str| std::fs::metadata(d.join(p)).unwrap().permissions().mode() & 0o777;
    keyid(&generate(d, "k.pem", "k.pub.json", &[]));
    assert_eq!(mode("k.pem"), 0o600);
    keyid(&generate(d, "k.pem", "k.pub.json", &["--force"]));
    assert_eq!(mode("k.pem"), 0o600);
    // No temp files left next to the keys.
    let names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}
