//! Scaled-out replicas in one process: several `Index`es on one PostgreSQL database and one
//! blob store (the S3 test server when `TUFPI_TEST_S3_ENDPOINT` is set, else a directory
//! through `file://`), sharing one keys directory. Uploads through any replica are signed
//! by the one leading the publisher lease; a standby takes over when the leader stops; an
//! old leader's repository, fenced by its lapsed term, changes nothing.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{get, signed_targets, wheel, TestIndex};
use tufpi_index::{Deployment, IndexOptions};
use tufpi_pg::testing::TestDb;
use tufpi_pg::Fence;
use tufpi_repo::{Backend, RepoError, Repository, PUBLISHER_LEASE};

/// One database, one blob store, one keys directory.
struct Cluster {
    db: TestDb,
    storage: String,
    endpoint: Option<String>,
    keys: tempfile::TempDir,
    _files: Option<tempfile::TempDir>,
}

impl Cluster {
    fn new(name: &str) -> Cluster {
        let keys = tempfile::tempdir().unwrap();
        let db = TestDb::create();
        if let Some(b) = tufpi_blob::testing::test_bucket(name) {
            for (k, v) in b.env() {
                std::env::set_var(k, v);
            }
            return Cluster {
                db,
                storage: b.url(""),
                endpoint: Some(b.endpoint.clone()),
                keys,
                _files: None,
            };
        }
        let files = tempfile::tempdir().unwrap();
        Cluster {
            db,
            storage: format!("file://{}", files.path().display()),
            endpoint: None,
            keys,
            _files: Some(files),
        }
    }

    fn options(&self, keys_dir: Option<PathBuf>) -> IndexOptions {
        IndexOptions {
            deployment: Deployment {
                database: Some(self.db.url().to_string()),
                storage: Some(self.storage.clone()),
                storage_endpoint: self.endpoint.clone(),
                keys_dir: Some(keys_dir.unwrap_or_else(|| self.keys.path().to_path_buf())),
                lease_ttl: Duration::from_secs(1),
                ..Deployment::default()
            },
            ..common::test_options()
        }
    }

    /// A replica with its own data directory; returns it and whether it made the repository.
    fn replica_with(&self, keys_dir: Option<PathBuf>) -> (TestIndex, bool) {
        self.replica_from(&self.options(keys_dir))
    }

    /// [`Cluster::replica_with`] opened with `opts`.
    fn replica_from(&self, opts: &IndexOptions) -> (TestIndex, bool) {
        common::index_opened(opts, |_| {
            tufpi_index::db::IndexDb::open_postgres(&self.db.database())
                .unwrap()
                .create_token(None, None)
                .unwrap()
        })
    }

    fn replica(&self) -> TestIndex {
        self.replica_with(None).0
    }

    /// Two replicas started at once: exactly one makes the repository.
    fn pair(&self) -> (TestIndex, TestIndex) {
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| self.replica_with(None));
            let b = s.spawn(|| self.replica_with(None));
            (a.join().unwrap(), b.join().unwrap())
        });
        assert!(
            a.1 ^ b.1,
            "exactly one replica initialises: {} {}",
            a.1,
            b.1
        );
        (a.0, b.0)
    }
}

/// Run `f` off the async runtime: the PostgreSQL driver blocks on a runtime of its own.
async fn off<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// A cluster shared with blocking closures.
async fn cluster(name: &'static str) -> Arc<Cluster> {
    off(move || Arc::new(Cluster::new(name))).await
}

/// A replica of `c`, started off the runtime.
async fn start_replica(c: &Arc<Cluster>) -> TestIndex {
    off({
        let c = c.clone();
        move || c.replica()
    })
    .await
}

/// Two replicas of `c` started at once ([`Cluster::pair`]), once exactly one of them leads
/// (within a lease round).
async fn start_pair(c: &Arc<Cluster>) -> (TestIndex, TestIndex) {
    let (a, b) = off({
        let c = c.clone();
        move || c.pair()
    })
    .await;
    let t0 = Instant::now();
    while is_leader(&a).await == is_leader(&b).await {
        assert!(t0.elapsed() < Duration::from_secs(5), "no single leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (a, b)
}

/// Wait up to 5 s until `t` leads.
async fn wait_leader(t: &TestIndex) {
    let t0 = Instant::now();
    while !is_leader(t).await {
        assert!(t0.elapsed() < Duration::from_secs(5), "no leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stop a replica (its publisher publishes what is pending, then releases the lease).
async fn stop(t: TestIndex) {
    off(move || {
        t.index.shutdown();
        drop(t);
    })
    .await
}

/// Drop the cluster (its database) off the runtime.
async fn finish(c: Arc<Cluster>) {
    off(move || drop(c)).await
}

async fn health(t: &TestIndex) -> serde_json::Value {
    let r = get(&t.router, "/health", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

async fn is_leader(t: &TestIndex) -> bool {
    health(t).await["publisher"]["leader"] == true
}

/// Wait up to `within` until `t`'s metadata signs every path of `paths`; the targets then.
async fn wait_signed(
    t: &TestIndex,
    paths: &[String],
    within: Duration,
) -> BTreeMap<String, (u64, String)> {
    let t0 = Instant::now();
    loop {
        let signed = signed_targets(&t.router).await;
        if paths.iter().all(|p| signed.contains_key(p)) {
            return signed;
        }
        assert!(
            t0.elapsed() < within,
            "not signed within {within:?}: {paths:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Upload a wheel of `name` 1.0 through `t`; returns its page target's path.
async fn upload(t: &TestIndex, name: &str) -> String {
    let file = format!("{name}-1.0-py3-none-any.whl");
    let r = t.upload(name, "1.0", &file, &wheel(name, "1.0")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    format!("simple/{name}/vnd.pypi.simple.v1.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_through_every_replica_are_signed_by_the_one_leader() {
    let c = cluster("scaleout-two-replicas").await;
    let (a, b) = start_pair(&c).await;
    let (ha, hb) = (health(&a).await, health(&b).await);
    for h in [&ha, &hb] {
        assert_eq!(h["mode"], "scale-out");
        assert_eq!(h["database"]["ok"], true);
        assert_eq!(h["storage"]["ok"], true);
        assert_eq!(h["publisher"]["keys"], true);
    }
    let leader_term = ha["publisher"]["term"].clone();
    let leader_term = if leader_term.is_null() {
        hb["publisher"]["term"].clone()
    } else {
        leader_term
    };
    assert!(leader_term.as_i64().is_some());

    let pa = upload(&a, "alpha").await;
    let pb = upload(&b, "beta").await;
    let t1 = Instant::now();
    // Both replicas serve metadata that signs both uploads, within a second or so.
    let sa = wait_signed(&a, &[pa.clone(), pb.clone()], Duration::from_secs(5)).await;
    let sb = wait_signed(&b, &[pa.clone(), pb.clone()], Duration::from_secs(5)).await;
    eprintln!("signed after {:?}", t1.elapsed());
    assert_eq!(sa, sb);
    // The signed pages are what each replica serves.
    for t in [&a, &b] {
        for p in [&pa, &pb] {
            let r = get(&t.router, &format!("/{p}"), None).await;
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(common::sha256_hex(&r.body), sa[p].1, "{p}");
        }
    }
    // A twine retry of the same file through the other replica succeeds, storing nothing.
    let again = b
        .upload(
            "alpha",
            "1.0",
            "alpha-1.0-py3-none-any.whl",
            &wheel("alpha", "1.0"),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    let listed = get(&b.router, &format!("/{pa}"), None).await;
    assert_eq!(
        common::sha256_hex(&listed.body),
        sa[&pa].1,
        "the page did not change"
    );
    stop(a).await;
    stop(b).await;
    finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standby_takes_over_when_the_leader_stops() {
    let c = cluster("scaleout-takeover").await;
    let (a, b) = start_pair(&c).await;
    let (leader, standby) = if is_leader(&a).await { (a, b) } else { (b, a) };
    let old_term = health(&leader).await["publisher"]["term"].as_i64().unwrap();
    let p = upload(&standby, "gamma").await;
    wait_signed(&standby, std::slice::from_ref(&p), Duration::from_secs(5)).await;

    // The leader stops (releasing the lease): the standby leads under a newer term and
    // publishes what is uploaded through it.
    let stopped = Instant::now();
    stop(leader).await;
    let q = upload(&standby, "delta").await;
    wait_signed(&standby, &[p, q], Duration::from_secs(5)).await;
    eprintln!("taken over and published after {:?}", stopped.elapsed());
    let h = health(&standby).await;
    assert_eq!(h["publisher"]["leader"], true);
    assert!(h["publisher"]["term"].as_i64().unwrap() > old_term);
    stop(standby).await;
    finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_old_leader_is_fenced_and_changes_nothing() {
    let c = cluster("scaleout-fenced").await;
    let first = start_replica(&c).await;
    wait_leader(&first).await;
    let old_term = health(&first).await["publisher"]["term"].as_i64().unwrap();
    let p = upload(&first, "epsilon").await;
    wait_signed(&first, std::slice::from_ref(&p), Duration::from_secs(5)).await;

    // A repository opened under the old term, as a leader paused past its lease holds it.
    let (db, blobs, mut stale) = off({
        let c = c.clone();
        move || {
            let db = c.db.database();
            let blobs = tufpi_blob::open(
                &c.storage,
                &tufpi_blob::StorageOptions {
                    endpoint: c.endpoint.clone(),
                },
            )
            .unwrap();
            let fence = Fence {
                name: PUBLISHER_LEASE.to_string(),
                term: old_term,
            };
            let backend =
                Backend::scale_out(&db, Some(fence), blobs.clone(), c.keys.path()).unwrap();
            let mut stale = Repository::open_with(backend).unwrap();
            stale.lock().unwrap();
            (db, blobs, stale)
        }
    })
    .await;

    // The leader goes; another replica takes over and publishes a change.
    stop(first).await;
    let second = start_replica(&c).await;
    let q = upload(&second, "zeta").await;
    let signed = wait_signed(&second, &[p.clone(), q.clone()], Duration::from_secs(5)).await;
    let new_term = health(&second).await["publisher"]["term"].as_i64().unwrap();
    assert!(new_term > old_term);
    // The stale leader wakes with work queued: its writes are refused.
    let (ts_before, refused, stale) = off({
        let (c, q, blobs) = (c.clone(), q.clone(), blobs.clone());
        move || {
            let ts_before = blobs.get("metadata/timestamp.json").unwrap().unwrap();
            let backend = Backend::scale_out(&db, None, blobs.clone(), c.keys.path()).unwrap();
            let mut unfenced = Repository::open_with(backend).unwrap();
            unfenced.enqueue(&[tufpi_repo::Change::Remove(q)]).unwrap();
            let refused = stale.publish(100).unwrap_err();
            (ts_before, refused, stale)
        }
    })
    .await;
    assert!(
        matches!(
            refused,
            RepoError::Fenced { .. } | RepoError::TimestampReplaced { .. }
        ),
        "{refused}"
    );
    if let RepoError::Fenced { held, current } = &refused {
        assert_eq!((*held, *current), (old_term, new_term));
    }
    let ts_after = off({
        let blobs = blobs.clone();
        move || {
            drop(stale);
            blobs.get("metadata/timestamp.json").unwrap().unwrap()
        }
    })
    .await;
    assert_eq!(
        ts_after, ts_before,
        "the stale leader changed timestamp.json"
    );
    // The real leader publishes the queued removal; the repository stays consistent.
    let t1 = Instant::now();
    loop {
        let now = signed_targets(&second.router).await;
        if !now.contains_key(&q) {
            assert!(now.contains_key(&p));
            assert_eq!(now[&p], signed[&p]);
            break;
        }
        assert!(
            t1.elapsed() < Duration::from_secs(5),
            "removal not published"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop(second).await;
    finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_without_keys_serves_and_queues_but_never_publishes() {
    let c = cluster("scaleout-no-keys").await;
    let leader = start_replica(&c).await;
    let empty = tempfile::tempdir().unwrap();
    let (keyless, created) = off({
        let (c, keys) = (c.clone(), empty.path().to_path_buf());
        move || c.replica_with(Some(keys))
    })
    .await;
    assert!(!created);
    let p = upload(&keyless, "eta").await;
    // Signed by the leader; served by both.
    wait_signed(&keyless, std::slice::from_ref(&p), Duration::from_secs(5)).await;
    wait_signed(&leader, std::slice::from_ref(&p), Duration::from_secs(5)).await;
    // The leader stops: the keyless replica never takes over.
    stop(leader).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let h = health(&keyless).await;
    assert_eq!(h["publisher"]["keys"], false, "{h}");
    assert_eq!(h["publisher"]["leader"], false, "{h}");
    assert_eq!(h["publisher"]["state"], "no keys", "{h}");
    let q = upload(&keyless, "theta").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!signed_targets(&keyless.router).await.contains_key(&q));
    assert!(health(&keyless).await["pending_changes"].as_u64().unwrap() > 0);
    stop(keyless).await;
    finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_whose_term_is_taken_stops_publishing_and_campaigns_again() {
    let c = cluster("scaleout-intruder").await;
    let a = start_replica(&c).await;
    wait_leader(&a).await;
    let term = health(&a).await["publisher"]["term"].as_i64().unwrap();
    // Another holder takes the lease under a newer term, as after a lapse, for 3 s.
    off({
        let c = c.clone();
        move || {
            let n =
                c.db.database()
                    .get()
                    .unwrap()
                    .execute(
                        "UPDATE lease SET holder = 'intruder', term = term + 1,
                         expires_at = now() + interval '3 seconds'
                     WHERE name = $1",
                        &[&PUBLISHER_LEASE],
                    )
                    .unwrap();
            assert_eq!(n, 1);
        }
    })
    .await;
    let taken = Instant::now();
    let p = upload(&a, "iota").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let h = health(&a).await;
    assert_eq!(h["publisher"]["leader"], false, "{h}");
    assert!(!signed_targets(&a.router).await.contains_key(&p));
    // Once the intruder's lease lapses, the replica leads again under a newer term and
    // publishes what waited.
    wait_signed(&a, std::slice::from_ref(&p), Duration::from_secs(6)).await;
    assert!(taken.elapsed() >= Duration::from_secs(3));
    let h = health(&a).await;
    assert_eq!(h["publisher"]["leader"], true, "{h}");
    assert!(h["publisher"]["term"].as_i64().unwrap() >= term + 2, "{h}");
    stop(a).await;
    finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metadata_comes_from_the_store_and_files_redirect_to_the_files_url() {
    let c = cluster("scaleout-serving").await;
    let a = off({
        let c = c.clone();
        move || {
            let mut opts = c.options(None);
            opts.deployment.files_url = Some("https://cdn.example/files/".into());
            c.replica_from(&opts).0
        }
    })
    .await;
    let p = upload(&a, "kappa").await;
    wait_signed(&a, std::slice::from_ref(&p), Duration::from_secs(5)).await;

    let root = get(&a.router, "/metadata/1.root.json", None).await;
    assert_eq!(root.status, StatusCode::OK);
    assert_eq!(root.headers["cache-control"], "public, max-age=3600");
    assert_eq!(root.json()["signed"]["_type"], "root");
    let ts = get(&a.router, "/metadata/timestamp.json", None).await;
    assert_eq!(ts.status, StatusCode::OK);
    assert_eq!(ts.headers["cache-control"], "no-cache");
    let v = ts.json()["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    let req = axum::http::Request::get(format!("/metadata/{v}.snapshot.json"))
        .header("accept-encoding", "gzip")
        .body(axum::body::Body::empty())
        .unwrap();
    let snap = common::send(&a.router, req).await;
    assert_eq!(snap.status, StatusCode::OK);
    if snap.body.len() > 2 && snap.body[..2] == [0x1f, 0x8b] {
        assert_eq!(snap.headers["content-encoding"], "gzip");
    }
    assert_eq!(
        get(&a.router, "/metadata/9999.snapshot.json", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Pages keep relative links; the file answers a redirect to the files URL.
    let page = get(&a.router, &format!("/{p}"), None).await.json();
    let url = page["files"][0]["url"].as_str().unwrap().to_string();
    let target = url.strip_prefix("../../").unwrap();
    let r = get(&a.router, &format!("/{target}"), None).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.headers["location"],
        format!("https://cdn.example/files/{target}").as_str()
    );
    let missing = target.replace("kappa-1.0", "kappa-2.0");
    assert_eq!(
        get(&a.router, &format!("/{missing}"), None).await.status,
        StatusCode::NOT_FOUND
    );
    stop(a).await;
    finish(c).await;
}

/// Refuse (or allow again) new connections to the test database, ending the open ones.
fn database_reachable(c: &Cluster, yes: bool) {
    let admin_url = std::env::var("TUFPI_TEST_PG_URL")
        .unwrap_or_else(|_| tufpi_pg::testing::DEFAULT_TEST_URL.to_string());
    let admin = tufpi_pg::Database::connect(&admin_url).unwrap();
    let mut conn = admin.get().unwrap();
    let name = c.db.name();
    conn.batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {yes}"))
        .unwrap();
    if !yes {
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&name],
        )
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_database_reads_keep_serving_and_uploads_are_503() {
    let c = cluster("scaleout-db-outage").await;
    let a = start_replica(&c).await;
    let p = upload(&a, "lambda").await;
    wait_signed(&a, std::slice::from_ref(&p), Duration::from_secs(5)).await;
    assert_eq!(
        get(&a.router, "/simple/", None).await.status,
        StatusCode::OK
    );
    let page = get(
        &a.router,
        "/simple/lambda/",
        Some("application/vnd.pypi.simple.v1+json"),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    let url = page.json()["files"][0]["url"].as_str().unwrap().to_string();
    let file = format!("/{}", url.strip_prefix("../../").unwrap());
    assert_eq!(get(&a.router, &file, None).await.status, StatusCode::OK);

    off({
        let c = c.clone();
        move || database_reachable(&c, false)
    })
    .await;
    // Reads: what this replica saw last (the first one waits out the connection timeout).
    let again = get(
        &a.router,
        "/simple/lambda/",
        Some("application/vnd.pypi.simple.v1+json"),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    assert_eq!(again.body, page.body);
    let t0 = Instant::now();
    assert_eq!(get(&a.router, &file, None).await.status, StatusCode::OK);
    let list = get(&a.router, "/simple/", None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.text().contains("lambda"));
    assert_eq!(
        get(&a.router, "/metadata/timestamp.json", None)
            .await
            .status,
        StatusCode::OK
    );
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    // Uploads: 503 with Retry-After; health says which dependency is down.
    let r = a
        .upload("mu", "1.0", "mu-1.0-py3-none-any.whl", &wheel("mu", "1.0"))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert!(r.headers.contains_key("retry-after"));
    let h = get(&a.router, "/health", None).await;
    assert_eq!(h.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h.json()["database"]["ok"], false);
    assert_eq!(h.json()["storage"]["ok"], true);

    // Back: the upload goes through and the publisher resumes.
    off({
        let c = c.clone();
        move || database_reachable(&c, true)
    })
    .await;
    let t1 = Instant::now();
    let q = loop {
        let r = a
            .upload("mu", "1.0", "mu-1.0-py3-none-any.whl", &wheel("mu", "1.0"))
            .await;
        if r.status == StatusCode::OK {
            break "simple/mu/vnd.pypi.simple.v1.json".to_string();
        }
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
        assert!(t1.elapsed() < Duration::from_secs(20), "no recovery");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    wait_signed(&a, &[p, q], Duration::from_secs(10)).await;
    assert_eq!(health(&a).await["database"]["ok"], true);
    stop(a).await;
    finish(c).await;
}
