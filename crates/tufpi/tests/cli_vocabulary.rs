//! One spelling per idea across the CLI: durations take units (`90s`, `6h`, `30d`),
//! thresholds are `--threshold ROLE=N`, and the older spellings a released command line used
//! (`--retention-secs`, `--margin-hours`, `--expires-days`, `--root-threshold`, `--timeout`)
//! still work, hidden from `--help`.

mod cli;

use std::path::Path;

use cli::{ok, refused};

fn signed(path: &Path) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["signed"].clone()
}

#[test]
fn thresholds_are_role_equals_n_in_repo_init_too() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for k in ["ra", "rb", "tg", "bn"] {
        let (pem, public) = (format!("{k}.pem"), format!("{k}.pub.json"));
        let args = [
            "key",
            "generate",
            "--scheme",
            "ed25519",
            "--out",
            &pem,
            "--public-out",
            &public,
        ];
        ok(d, &args);
    }
    let init = |repo: &str, extra: &[&str]| {
        let mut a = vec!["repo", "init", "--repo", repo, "--bins-bit-length", "3"];
        a.extend_from_slice(&["--root-key", "ra.pub.json", "--root-key", "rb.pub.json"]);
        a.extend_from_slice(&["--targets-key", "tg.pub.json", "--bins-key", "bn.pub.json"]);
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| ok(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    run(init("new", &["--threshold", "root=2"]));
    let root = signed(&d.join("new/ceremony/1.root.json"));
    assert_eq!(root["roles"]["root"]["threshold"], 2);
    assert_eq!(root["roles"]["targets"]["threshold"], 1);
    // The older spelling gives the same root.
    run(init("old", &["--root-threshold", "2"]));
    let old = signed(&d.join("old/ceremony/1.root.json"));
    assert_eq!(old["roles"]["root"]["threshold"], 2);

    let bad = init("bad", &["--threshold", "snapshot=2"]);
    refused(
        d,
        &bad.iter().map(String::as_str).collect::<Vec<_>>(),
        "root, targets and bins",
    );
    let bad = init("bad", &["--threshold", "root=0"]);
    refused(
        d,
        &bad.iter().map(String::as_str).collect::<Vec<_>>(),
        "at least 1",
    );
}

#[test]
fn durations_take_units_and_older_spellings_still_work() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(
        d,
        &[
            "repo",
            "init",
            "--repo",
            "r",
            "--dev-keys",
            "--bins-bit-length",
            "3",
        ],
    );
    for args in [
        &["repo", "gc", "--repo", "r", "--retention", "1h"][..],
        &["repo", "gc", "--repo", "r", "--retention", "90"],
        &["repo", "gc", "--repo", "r", "--retention-secs", "3600"],
        &["repo", "refresh", "--repo", "r", "--margin", "2d"],
        &["repo", "refresh", "--repo", "r", "--margin-hours", "48"],
    ] {
        ok(d, args);
    }
    refused(
        d,
        &["repo", "gc", "--repo", "r", "--retention", "soon"],
        "e.g. 90s",
    );
    refused(
        d,
        &[
            "repo",
            "gc",
            "--repo",
            "r",
            "--retention",
            "1h",
            "--retention-secs",
            "5",
        ],
        "cannot be used with",
    );
    // 30 days and --expires-days 30 expire on the same day.
    let prepare = |out: &str, expiry: &[&str]| {
        let mut a = vec![
            "ceremony", "prepare", "--repo", "r", "--role", "bins", "--out", out,
        ];
        a.extend_from_slice(expiry);
        ok(d, &a);
        signed(&d.join(out))["expires"].as_str().unwrap()[..10].to_string()
    };
    assert_eq!(
        prepare("a.json", &["--expires", "30d"]),
        prepare("b.json", &["--expires-days", "30"])
    );

    // --help shows the new spellings only.
    let help = ok(d, &["repo", "gc", "--help"]);
    assert!(
        help.contains("--retention <RETENTION>") && !help.contains("retention-secs"),
        "{help}"
    );
    let help = ok(d, &["serve", "--help"]);
    assert!(
        help.contains("--gc-interval <GC_INTERVAL>") && !help.contains("gc-interval-secs"),
        "{help}"
    );
    let help = ok(d, &["client", "--metadata-dir", "m", "--help"]);
    assert!(
        help.contains("--fetch-timeout") && !help.contains("--timeout"),
        "{help}"
    );
    let help = ok(d, &["proxy", "--help"]);
    assert!(help.contains("--fetch-timeout <FETCH_TIMEOUT>"), "{help}");
}
