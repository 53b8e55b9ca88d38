//! What the client keeps and asks for: hostile role names and target paths stay inside their
//! directories (percent-encoded) and are encoded in URLs; a corrupted or truncated cache is
//! re-downloaded; persisted files are exactly the bytes served; the consistent-snapshot race
//! (a file vanishing because the repository published again) is retried from timestamp.

mod sim;

use std::collections::BTreeSet;

use sim::*;
use tufpi_client::{ClientError, FetchError, HttpFetcher, Updater};

/// Hostile names, each with the file-name encoding the client must use.
const HOSTILE: [(&str, &str); 10] = [
    ("../x", "..%2Fx"),
    ("?", "%3F"),
    ("#", "%23"),
    ("%", "%25"),
    ("/", "%2F"),
    ("a/../../b", "a%2F..%2F..%2Fb"),
    ("..", "%2E%2E"),
    (".", "%2E"),
    ("x/./y", "x%2F.%2Fy"),
    ("sp ace&=+", "sp%20ace%26%3D%2B"),
];

const TOP: [&str; 4] = [
    "root.json",
    "snapshot.json",
    "targets.json",
    "timestamp.json",
];

fn hostile_repo() -> Sim {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        let globs = ["*", "*/*", "*/*/*", "*/*/*/*"];
        let mut roles = vec!["targets"];
        for (name, _) in HOSTILE {
            r.delegate("targets", name, &globs, false);
            r.add_target(name, name, format!("content of {name}").as_bytes());
            roles.push(name);
        }
        r.publish(&roles);
    }
    sim
}

/// Everything under the client's temp dir: only `metadata/` and `targets/` and their files.
fn assert_contained(c: &Client, meta: &[String], targets: &[String]) {
    let mut want: BTreeSet<String> = ["metadata/".to_string(), "targets/".to_string()].into();
    want.extend(meta.iter().map(|f| format!("metadata/{f}")));
    want.extend(targets.iter().map(|f| format!("targets/{f}")));
    let got: BTreeSet<String> = list(c.tmp.path()).into_iter().collect();
    assert_eq!(got, want);
}

#[test]
fn hostile_names_stay_inside_and_are_encoded() {
    let sim = hostile_repo();
    let c = Client::new(&sim);
    for (name, _) in HOSTILE {
        let file = c.download(&sim, name).unwrap();
        assert_eq!(
            std::fs::read(&file).unwrap(),
            format!("content of {name}").as_bytes()
        );
        assert_eq!(file.parent().unwrap(), c.target_dir());
    }
    let mut meta: Vec<String> = TOP.iter().map(|s| s.to_string()).collect();
    meta.extend(HOSTILE.iter().map(|(_, enc)| format!("{enc}.json")));
    let targets: Vec<String> = HOSTILE.iter().map(|(_, enc)| enc.to_string()).collect();
    assert_contained(&c, &meta, &targets);

    // Each local role file is exactly what was served for it.
    for (name, enc) in HOSTILE {
        assert_eq!(
            c.read(&format!("{enc}.json")).unwrap(),
            sim.repo().latest(name)
        );
    }

    // Metadata URLs: the role name is one encoded path segment.
    let fetched = sim.fetched();
    for (_, enc) in HOSTILE {
        let u = format!("{META_URL}1.{enc}.json");
        assert!(fetched.contains(&u), "{u} not in {fetched:?}");
    }
    // Every URL stays under its base once parsed (no dot segments climbing out, no query or
    // fragment).
    for u in &fetched {
        let parsed = url::Url::parse(u).unwrap();
        assert_eq!(parsed.query(), None, "{u}");
        assert_eq!(parsed.fragment(), None, "{u}");
        assert!(
            parsed.path().starts_with("/metadata/") || parsed.path().starts_with("/targets/"),
            "{u} resolves to {}",
            parsed.path()
        );
        assert_eq!(
            parsed.path().matches('/').count(),
            u.matches('/').count() - 2,
            "{u}"
        );
    }
    let target_urls: Vec<&String> = fetched
        .iter()
        .filter(|u| u.starts_with(TARGETS_URL))
        .collect();
    assert_eq!(target_urls.len(), HOSTILE.len());
    let hash = |name: &str| sim.repo().targets_body(name).targets[name].hashes["sha256"].clone();
    for (name, want) in [
        ("?", format!("{}.%3F", hash("?"))),
        ("#", format!("{}.%23", hash("#"))),
        ("%", format!("{}.%25", hash("%"))),
        ("/", format!("/{}.", hash("/"))),
        ("../x", format!("..%2F{}.x", hash("../x"))),
        (
            "a/../../b",
            format!("a%2F..%2F..%2F{}.b", hash("a/../../b")),
        ),
        (
            "sp ace&=+",
            format!("{}.sp%20ace%26%3D%2B", hash("sp ace&=+")),
        ),
    ] {
        let u = format!("{TARGETS_URL}{want}");
        assert!(fetched.contains(&u), "{name}: {u} not in {target_urls:?}");
    }
}

#[test]
fn hostile_target_paths_over_real_http() {
    let sim = hostile_repo();
    let base = sim.serve_http();
    let mut c = Client::new(&sim);
    c.metadata_url = format!("{base}metadata/");
    c.targets_url = format!("{base}targets/");
    let fetcher = || {
        Box::new(
            HttpFetcher::new(
                std::time::Duration::from_secs(5),
                std::time::Duration::from_secs(5),
            )
            .unwrap(),
        )
    };
    for (name, enc) in HOSTILE {
        let mut u = c.updater_with(fetcher()).unwrap();
        let info = u.get_targetinfo(name).unwrap().unwrap();
        let file = Updater::target_file_path(&c.target_dir(), name);
        u.download_target(name, &info, &file).unwrap();
        assert_eq!(
            std::fs::read(c.target_dir().join(enc)).unwrap(),
            format!("content of {name}").as_bytes()
        );
    }
    // What the server saw: every request under /metadata/ or /targets/.
    for u in sim.fetched() {
        let path = u
            .strip_prefix(base.trim_end_matches('/'))
            .unwrap()
            .to_string();
        assert!(
            path.starts_with("/metadata/") || path.starts_with("/targets/"),
            "server got {path}"
        );
    }
}

#[test]
fn dot_target_paths_without_hash_prefix() {
    // Without consistent snapshots the path goes into the URL as it is: dot segments must
    // still not climb out of the target base.
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.root_body().consistent_snapshot = Some(false);
        r.publish_root();
        r.add_target("targets", "a/../../b", b"b");
        r.add_target("targets", "..", b"dotdot");
        r.publish(&["targets"]);
    }
    let c = Client::new(&sim);
    let file = c.download(&sim, "a/../../b").unwrap();
    assert_eq!(std::fs::read(file).unwrap(), b"b");
    assert!(sim
        .fetched()
        .contains(&format!("{TARGETS_URL}a%2F..%2F..%2Fb")));
    // A bare ".." has no URL form under the base: refused, never fetched.
    let e = err(c.download(&sim, ".."));
    assert!(matches!(e, ClientError::Config(_)), "{e:?}");
    assert_msg(&e, &["\"..\""]);
    assert!(!sim
        .fetched()
        .iter()
        .any(|u| u.ends_with("/..") || u.ends_with("%2E%2E")));
    assert_eq!(c.target_files(), ["a%2F..%2F..%2Fb"]);
}

#[test]
fn non_consistent_repository_uses_plain_names() {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.root_body().consistent_snapshot = Some(false);
        r.publish_root();
        r.delegate("targets", "a", &["*"], false);
        r.add_target("a", "pkg.whl", b"pkg");
        r.publish(&["targets", "a"]);
    }
    let c = Client::new(&sim);
    c.download(&sim, "pkg.whl").unwrap();
    let fetched = sim.fetched();
    for f in ["snapshot.json", "targets.json", "a.json"] {
        assert!(fetched.contains(&format!("{META_URL}{f}")), "{fetched:?}");
    }
    assert!(fetched.contains(&format!("{TARGETS_URL}pkg.whl")));
}

// ----- corrupted cache -----

fn populated() -> (Sim, Client) {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.delegate("targets", "role/with slash", &["*"], false);
        r.add_target("role/with slash", "f", b"f");
        r.publish(&["targets", "role/with slash"]);
    }
    let c = Client::new(&sim);
    assert!(c.targetinfo(&sim, "f").unwrap().is_some());
    (sim, c)
}

const LOCAL: [(&str, &str); 4] = [
    ("timestamp.json", "timestamp"),
    ("snapshot.json", "snapshot"),
    ("targets.json", "targets"),
    ("role%2Fwith%20slash.json", "role/with slash"),
];

fn assert_dir_clean(c: &Client) {
    let mut want: Vec<String> = LOCAL.iter().map(|(f, _)| f.to_string()).collect();
    want.push("root.json".into());
    want.sort();
    assert_eq!(c.files(), want);
}

#[test]
fn corrupted_cache_is_redownloaded() {
    for (file, role) in LOCAL {
        for corrupt in ["garbage", "truncated", "empty", "wrong role"] {
            let (sim, c) = populated();
            let good = c.read(file).unwrap();
            let bad = match corrupt {
                "garbage" => b"\x00\xffnot json at all".to_vec(),
                "truncated" => good[..good.len() / 2].to_vec(),
                "empty" => Vec::new(),
                _ => sim.repo().latest("root"),
            };
            c.write(file, &bad);
            sim.clear_fetched();
            assert!(
                c.targetinfo(&sim, "f").unwrap().is_some(),
                "{file} {corrupt}"
            );
            assert_eq!(
                c.read(file).unwrap(),
                sim.repo().latest(role),
                "{file} {corrupt}"
            );
            let fetched = sim.fetched();
            let v = sim.repo().published[role];
            let url = if role == "timestamp" {
                format!("{META_URL}timestamp.json")
            } else {
                format!("{META_URL}{v}.{}.json", file.trim_end_matches(".json"))
            };
            assert!(fetched.contains(&url), "{file} {corrupt}: {fetched:?}");
            assert_dir_clean(&c);
        }
    }
}

#[test]
fn corrupted_trusted_root_is_an_error_not_a_panic() {
    let (sim, c) = populated();
    c.write("root.json", b"{\"signed\": ");
    let e = err(c.updater_with(Box::new(sim.clone())));
    assert!(
        matches!(&e, ClientError::Invalid { role, .. } if role == "root"),
        "{e:?}"
    );
    assert_msg(&e, &["root"]);
    std::fs::remove_file(c.dir().join("root.json")).unwrap();
    let e = err(c.updater_with(Box::new(sim.clone())));
    assert!(matches!(&e, ClientError::Config(_)), "{e:?}");
    assert_msg(&e, &["root.json"]);
}

#[test]
fn persisted_files_are_exactly_the_bytes_served() {
    for compact in [false, true] {
        let sim = Sim::new();
        {
            let mut r = sim.repo();
            r.compact = compact;
            r.meta_lengths = compact;
            r.bump_root();
            r.delegate("targets", "a", &["*"], false);
            r.add_target("a", "f.whl", b"wheel");
            r.publish(&["targets", "a"]);
        }
        let c = Client::new(&sim);
        let file = c.download(&sim, "f.whl").unwrap();
        let r = sim.repo();
        assert_eq!(c.read("root.json").unwrap(), r.file("metadata/2.root.json"));
        for role in ["timestamp", "snapshot", "targets", "a"] {
            assert_eq!(
                c.read(&format!("{role}.json")).unwrap(),
                r.latest(role),
                "{role}"
            );
        }
        assert_eq!(std::fs::read(file).unwrap(), b"wheel");
        assert_eq!(
            c.files(),
            [
                "a.json",
                "root.json",
                "snapshot.json",
                "targets.json",
                "timestamp.json"
            ]
        );
    }
}

// ----- consistent-snapshot race -----

/// When `path` is first asked for, the repository publishes again (a new target in
/// `role`, new snapshot and timestamp) and drops `path`.
fn race_on(sim: &Sim, path: &str, role: &'static str, target: &'static str) {
    let path = path.to_string();
    let mut done = false;
    sim.repo().hook = Some(Box::new(move |r, p| {
        if !done && p == path {
            done = true;
            r.add_target(role, target, b"published meanwhile");
            r.publish(&[role]);
            r.files.remove(&path);
        }
    }));
}

#[test]
fn race_snapshot_vanishes_retry_from_timestamp() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    c.refresh(&sim).unwrap();
    sim.repo().publish(&["targets"]); // targets v2, snapshot v2, timestamp v2
    race_on(&sim, "metadata/2.snapshot.json", "targets", "late.whl");
    sim.clear_fetched();
    let mut u = c.updater(&sim);
    u.refresh().unwrap();
    assert_eq!(u.trusted().snapshot().unwrap().version, 3);
    assert_eq!(sim.count(&format!("{META_URL}timestamp.json")), 2);
    assert_eq!(sim.count(&format!("{META_URL}2.snapshot.json")), 1);
    assert!(u.get_targetinfo("late.whl").unwrap().is_some());
    assert_eq!(
        c.read("snapshot.json").unwrap(),
        sim.repo().latest("snapshot")
    );
    assert_eq!(c.version("timestamp.json"), Some(3));
}

#[test]
fn race_targets_and_delegated_vanish_retry_from_timestamp() {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.delegate("targets", "a", &["*"], false);
        r.add_target("a", "f", b"f");
        r.publish(&["targets", "a"]);
    }
    let c = Client::new(&sim);
    c.refresh(&sim).unwrap();
    sim.repo().publish(&["targets"]); // targets v3
    race_on(&sim, "metadata/3.targets.json", "targets", "late.whl");
    let mut u = c.updater(&sim);
    u.refresh().unwrap();
    assert_eq!(u.trusted().targets("targets").unwrap().version, 4);

    // A delegated role vanishing mid-walk.
    sim.repo().publish(&["a"]); // a v2
    race_on(&sim, "metadata/2.a.json", "a", "late-a.whl");
    let mut u = c.updater(&sim);
    assert!(u.get_targetinfo("late-a.whl").unwrap().is_some());
    assert_eq!(c.version("a.json"), Some(3));
}

#[test]
fn race_that_never_settles_gives_up() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    sim.repo()
        .fault("metadata/1.snapshot.json", Fault::NotFound);
    let e = err(c.refresh(&sim));
    match &e {
        ClientError::Fetch(FetchError::NotFound { url, status: 404 }) => {
            assert_eq!(url, &format!("{META_URL}1.snapshot.json"))
        }
        other => panic!("{other:?}"),
    }
    assert_msg(&e, &["1.snapshot.json", "not found"]);
    assert_eq!(sim.count(&format!("{META_URL}1.snapshot.json")), 3);
    assert_eq!(c.files(), ["root.json", "timestamp.json"]);
}

#[test]
fn missing_snapshot_without_consistent_snapshots_is_not_retried() {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.root_body().consistent_snapshot = Some(false);
        r.publish_root();
        r.fault("metadata/snapshot.json", Fault::NotFound);
    }
    let c = Client::new(&sim);
    let e = err(c.refresh(&sim));
    assert!(
        matches!(&e, ClientError::Fetch(f) if f.is_not_found()),
        "{e:?}"
    );
    assert_eq!(sim.count(&format!("{META_URL}snapshot.json")), 1);
}

#[test]
fn hash_prefix_can_be_switched_off() {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.add_target("targets", "packages/ab/cd/pkg-1.0.tar.gz", b"sdist");
        r.publish(&["targets"]);
    }
    let mut c = Client::new(&sim);
    c.config.prefix_targets_with_hash = false;
    c.download(&sim, "packages/ab/cd/pkg-1.0.tar.gz").unwrap();
    assert!(sim
        .fetched()
        .contains(&format!("{TARGETS_URL}packages/ab/cd/pkg-1.0.tar.gz")));
    // Metadata is still fetched by version.
    assert!(sim.fetched().contains(&format!("{META_URL}2.targets.json")));
    assert_eq!(c.target_files(), ["packages%2Fab%2Fcd%2Fpkg-1.0.tar.gz"]);
}
