//! Endless-data attacks (every download is capped: by the parent's length, or by the
//! configured default) and slow-retrieval attacks (over a real HTTP server on 127.0.0.1 with
//! the real `HttpFetcher`).

mod sim;

use std::time::{Duration, Instant};

use sim::*;
use tufpi_client::{ClientError, FetchError, HttpFetcher, UpdaterConfig};

fn expect_too_long(e: &ClientError, want_url: &str, want_max: u64) {
    match e {
        ClientError::Fetch(FetchError::TooLong { url, max_length }) => {
            assert_eq!(url, want_url);
            assert_eq!(*max_length, want_max);
        }
        other => panic!("expected TooLong for {want_url}, got {other:?}"),
    }
    assert_msg(
        e,
        &[
            want_url,
            &format!("more than {want_max} bytes"),
            "endless data",
        ],
    );
}

fn endless(sim: &Sim, path: &str) {
    sim.repo().fault(path, Fault::Endless);
}

// ----- metadata -----

#[test]
fn endless_timestamp_capped_at_16384() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    endless(&sim, "metadata/timestamp.json");
    let url = format!("{META_URL}timestamp.json");
    expect_too_long(&err(c.refresh(&sim)), &url, 16_384);
    assert_eq!(sim.caps(&url), [16_384]);
    assert_eq!(c.files(), ["root.json"]);
}

#[test]
fn endless_root_capped() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    sim.repo().bump_root();
    endless(&sim, "metadata/2.root.json");
    let url = format!("{META_URL}2.root.json");
    expect_too_long(&err(c.refresh(&sim)), &url, 512_000);

    // A configured cap is the one passed.
    let mut c = c;
    c.config.root_max_length = 1000;
    expect_too_long(&err(c.refresh(&sim)), &url, 1000);
}

#[test]
fn endless_snapshot_capped_at_length_in_timestamp() {
    let sim = Sim::new();
    sim.repo().meta_lengths = true;
    sim.repo().publish_snapshot();
    let len = sim.repo().latest("snapshot").len() as u64;
    let c = Client::new(&sim);
    endless(&sim, "metadata/2.snapshot.json");
    let url = format!("{META_URL}2.snapshot.json");
    expect_too_long(&err(c.refresh(&sim)), &url, len);

    // One byte more than listed is already too long.
    let mut longer = sim.repo().latest("snapshot");
    longer.push(b'\n');
    sim.repo()
        .fault("metadata/2.snapshot.json", Fault::Replace(longer));
    expect_too_long(&err(c.refresh(&sim)), &url, len);
}

#[test]
fn endless_snapshot_capped_by_default_without_length() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    endless(&sim, "metadata/1.snapshot.json");
    let url = format!("{META_URL}1.snapshot.json");
    expect_too_long(&err(c.refresh(&sim)), &url, 2_000_000);
}

#[test]
fn endless_targets_capped_at_length_in_snapshot() {
    let sim = Sim::new();
    sim.repo().meta_lengths = true;
    sim.repo().publish(&["targets"]);
    let len = sim.repo().latest("targets").len() as u64;
    let c = Client::new(&sim);
    endless(&sim, "metadata/2.targets.json");
    let url = format!("{META_URL}2.targets.json");
    expect_too_long(&err(c.refresh(&sim)), &url, len);
}

#[test]
fn endless_targets_capped_by_default_without_length() {
    let sim = Sim::new();
    let c = Client::new(&sim);
    endless(&sim, "metadata/1.targets.json");
    let url = format!("{META_URL}1.targets.json");
    expect_too_long(&err(c.refresh(&sim)), &url, 5_000_000);
}

#[test]
fn endless_delegated_capped() {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.delegate("targets", "a", &["*"], false);
        r.add_target("a", "f", b"f");
        r.publish(&["targets", "a"]);
    }
    let c = Client::new(&sim);
    endless(&sim, "metadata/1.a.json");
    let url = format!("{META_URL}1.a.json");
    expect_too_long(&err(c.targetinfo(&sim, "f")), &url, 5_000_000);

    sim.repo().meta_lengths = true;
    sim.repo().publish(&["a"]);
    let len = sim.repo().latest("a").len() as u64;
    endless(&sim, "metadata/2.a.json");
    let url = format!("{META_URL}2.a.json");
    expect_too_long(&err(c.targetinfo(&sim, "f")), &url, len);
}

#[test]
fn endless_target_capped_at_listed_length() {
    let sim = Sim::new();
    let info = {
        let mut r = sim.repo();
        let info = r.add_target("targets", "pkg.whl", b"twelve bytes");
        r.publish(&["targets"]);
        info
    };
    let path = format!("targets/{}.pkg.whl", info.hashes["sha256"]);
    let url = format!("https://sim.test/{path}");
    let c = Client::new(&sim);
    endless(&sim, &path);
    expect_too_long(&err(c.download(&sim, "pkg.whl")), &url, 12);
    assert_eq!(sim.caps(&url), [12]);
    // More than listed, then stopping: also refused.
    sim.repo()
        .fault(&path, Fault::Replace(b"twelve bytes and more".to_vec()));
    expect_too_long(&err(c.download(&sim, "pkg.whl")), &url, 12);
    assert!(c.target_files().is_empty());
}

// ----- over real HTTP -----

fn http_client(sim: &Sim, timeout: Duration) -> (Client, String) {
    let base = sim.serve_http();
    let mut c = Client::new(sim);
    c.metadata_url = format!("{base}metadata/");
    c.targets_url = format!("{base}targets/");
    c.config = UpdaterConfig {
        fetch_timeout: timeout,
        ..UpdaterConfig::default()
    };
    (c, base)
}

fn http(timeout: Duration) -> Box<HttpFetcher> {
    Box::new(HttpFetcher::new(Duration::from_secs(2), timeout).unwrap())
}

#[test]
fn http_fetcher_full_update_and_download() {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.meta_lengths = true;
        r.delegate("targets", "a b", &["dir/*"], false);
        r.add_target("a b", "dir/file name+1.whl", b"wheel bytes");
        r.publish(&["targets", "a b"]);
    }
    let (c, base) = http_client(&sim, Duration::from_secs(5));
    let mut u = c.updater_with(http(Duration::from_secs(5))).unwrap();
    let info = u.get_targetinfo("dir/file name+1.whl").unwrap().unwrap();
    let file = tufpi_client::Updater::target_file_path(&c.target_dir(), "dir/file name+1.whl");
    u.download_target("dir/file name+1.whl", &info, &file)
        .unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), b"wheel bytes");
    let hash = &info.hashes["sha256"];
    let fetched = sim.fetched();
    assert!(
        fetched.contains(&format!("{base}metadata/1.a%20b.json")),
        "{fetched:?}"
    );
    assert!(
        fetched.contains(&format!("{base}targets/dir/{hash}.file%20name%2B1.whl")),
        "{fetched:?}"
    );
    assert_eq!(c.read("a%20b.json").unwrap(), sim.repo().latest("a b"));
}

#[test]
fn http_endless_timestamp_without_content_length() {
    let sim = Sim::new();
    let (c, base) = http_client(&sim, Duration::from_secs(10));
    endless(&sim, "metadata/timestamp.json");
    let url = format!("{base}metadata/timestamp.json");
    let start = Instant::now();
    let e = err(c
        .updater_with(http(Duration::from_secs(10)))
        .unwrap()
        .refresh());
    expect_too_long(&e, &url, 16_384);
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn http_declared_length_over_cap_refused_early() {
    let sim = Sim::new();
    let (c, base) = http_client(&sim, Duration::from_secs(10));
    sim.repo().fault(
        "metadata/timestamp.json",
        Fault::Replace(vec![b' '; 20_000]),
    );
    let url = format!("{base}metadata/timestamp.json");
    let e = err(c
        .updater_with(http(Duration::from_secs(10)))
        .unwrap()
        .refresh());
    expect_too_long(&e, &url, 16_384);
}

fn expect_timeout(e: &ClientError, want_url: &str, want_secs: u64) {
    match e {
        ClientError::Fetch(FetchError::Timeout { url, secs }) => {
            assert_eq!(url, want_url);
            assert_eq!(*secs, want_secs);
        }
        other => panic!("expected Timeout for {want_url}, got {other:?}"),
    }
    assert_msg(
        e,
        &[
            want_url,
            &format!("timed out after {want_secs} s"),
            "slow retrieval",
        ],
    );
}

#[test]
fn slow_retrieval_body_times_out() {
    let sim = Sim::new();
    let (c, base) = http_client(&sim, Duration::from_secs(1));
    // The timestamp trickles in at one byte per 50 ms: ~1 KB would take a minute.
    sim.repo().fault(
        "metadata/timestamp.json",
        Fault::Slow(Duration::from_millis(50)),
    );
    let url = format!("{base}metadata/timestamp.json");
    let start = Instant::now();
    let e = err(c
        .updater_with(http(Duration::from_secs(1)))
        .unwrap()
        .refresh());
    expect_timeout(&e, &url, 1);
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(c.files(), ["root.json"]);
}

#[test]
fn slow_retrieval_headers_time_out() {
    let sim = Sim::new();
    let (c, base) = http_client(&sim, Duration::from_secs(1));
    sim.repo()
        .fault("metadata/2.root.json", Fault::Delay(Duration::from_secs(5)));
    let url = format!("{base}metadata/2.root.json");
    let start = Instant::now();
    let e = err(c
        .updater_with(http(Duration::from_secs(1)))
        .unwrap()
        .refresh());
    expect_timeout(&e, &url, 1);
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn slow_target_download_times_out_and_writes_nothing() {
    let sim = Sim::new();
    let info = {
        let mut r = sim.repo();
        let info = r.add_target("targets", "big.whl", &[7u8; 200]);
        r.publish(&["targets"]);
        info
    };
    let (c, base) = http_client(&sim, Duration::from_secs(1));
    let path = format!("targets/{}.big.whl", info.hashes["sha256"]);
    sim.repo()
        .fault(&path, Fault::Slow(Duration::from_millis(20)));
    let mut u = c.updater_with(http(Duration::from_secs(1))).unwrap();
    let info = u.get_targetinfo("big.whl").unwrap().unwrap();
    let file = tufpi_client::Updater::target_file_path(&c.target_dir(), "big.whl");
    let e = err(u.download_target("big.whl", &info, &file));
    expect_timeout(&e, &format!("{base}{path}"), 1);
    assert!(c.target_files().is_empty());
}
