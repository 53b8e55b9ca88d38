//! Benchmark of `tufpi repo serve`'s RSTUF API over loopback HTTP, with the figures RSTUF
//! publishes or is measured by: bootstrap time (POST → SUCCESS) for N bins, task latency
//! (submit → SUCCESS, polling `GET /task`) p50/p99 for 1, 10 and 100 artifacts, sustained
//! artifacts/s with concurrent clients, and RSTUF's heaviest CI scenario (50 clients × 50
//! artifacts posted at once), every artifact then verified by tufpi's client.
//!
//! `cargo run --release -p tufpi-rstuf --example rstuf_bench -- [BINS] [SECONDS] [CLIENTS]`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};
use tufpi_client::{FileFetcher, Updater, UpdaterConfig};
use tufpi_core::crypto::{PrivateKey, Scheme};
use tufpi_core::json::Value as CoreValue;
use tufpi_core::metadata::{Key, Metadata};
use tufpi_repo::layout::{build_root, TopKeys};

fn post(base: &str, path: &str, body: &Value) -> String {
    let r = ureq::post(&format!("{base}{path}"))
        .set("content-type", "application/json")
        .send_string(&body.to_string())
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let v: Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
    v["data"]["task_id"].as_str().unwrap().to_string()
}

fn wait(base: &str, id: &str) -> Value {
    let t0 = Instant::now();
    loop {
        let s = ureq::get(&format!("{base}/api/v1/task/?task_id={id}"))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        let v: Value = serde_json::from_str(&s).unwrap();
        match v["data"]["state"].as_str() {
            Some("SUCCESS") => return v,
            Some("ERRORED") | Some("FAILURE") => panic!("task {id}: {v}"),
            _ => {}
        }
        assert!(t0.elapsed() < Duration::from_secs(600), "task {id} stuck");
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn artifacts(prefix: &str, n: usize) -> Value {
    let list: Vec<Value> = (0..n)
        .map(|i| {
            json!({"path": format!("{prefix}/{i}/vnd.pypi.simple.v1.html"),
                   "info": {"length": 1000 + i, "hashes": {"blake2b-256": format!("{:064x}", i)}}})
        })
        .collect();
    json!({ "artifacts": list })
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let bins: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(16384);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let clients_n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();

    // The ceremony: an ed25519 root key and an ed25519 online key named by fn:<keyid>.
    let rk = PrivateKey::generate(Scheme::Ed25519).unwrap();
    let rpub = Key::from_private(&rk);
    let rid = rpub.compute_keyid();
    let ok = PrivateKey::generate(Scheme::Ed25519).unwrap();
    let mut opub = Key::from_private(&ok);
    let oid = opub.compute_keyid();
    std::fs::write(keys.join(&oid), ok.to_pkcs8_pem().unwrap()).unwrap();
    opub.unrecognized.insert(
        "x-rstuf-online-key-uri".into(),
        CoreValue::String(format!("fn:{oid}")),
    );
    let top = TopKeys {
        root: (vec![(rid.clone(), rpub)], 1),
        targets: (vec![(oid.clone(), opub.clone())], 1),
        online: (oid, opub),
    };
    let mut root = Metadata::new(build_root(
        &top,
        1,
        Utc::now() + chrono::Duration::days(365),
    ));
    root.sign(&rk, &rid).unwrap();
    let root_json: Value = serde_json::from_slice(&root.to_bytes()).unwrap();

    // The server, on loopback.
    let started = tufpi_rstuf::start(&dir.path().join("data"), Some(keys.clone())).unwrap();
    let app = tufpi_rstuf::router(started.service.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tufpi_simple::conn::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(tufpi_simple::conn::serve(
        listener,
        app,
        tufpi_simple::conn::Limits::default(),
        std::future::pending(),
    ));

    let t0 = Instant::now();
    let id = post(
        &base,
        "/api/v1/bootstrap/",
        &json!({
            "settings": {"roles": {
                "root": {"expiration": 365}, "timestamp": {"expiration": 1},
                "snapshot": {"expiration": 1}, "targets": {"expiration": 365},
                "bins": {"expiration": 1, "number_of_delegated_bins": bins}}},
            "metadata": {"root": root_json},
            "timeout": 300,
        }),
    );
    wait(&base, &id);
    println!(
        "bootstrap, {bins} bins (POST -> SUCCESS): {:.3} s",
        t0.elapsed().as_secs_f64()
    );

    for (n, rounds) in [(1usize, 200usize), (10, 200), (100, 100)] {
        let mut lat = Vec::with_capacity(rounds);
        for r in 0..rounds {
            let body = artifacts(&format!("lat{n}-{r}"), n);
            let t = Instant::now();
            let id = post(&base, "/api/v1/artifacts/", &body);
            wait(&base, &id);
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "task latency, {n:>3} artifacts (submit -> SUCCESS), {rounds} tasks one after another: \
             p50 {:.1} ms, p99 {:.1} ms",
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99)
        );
    }

    // Sustained: clients posting 100-artifact tasks back to back, each waiting for its own.
    let done = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + Duration::from_secs(secs);
    let t = Instant::now();
    let clients: Vec<_> = (0..clients_n)
        .map(|c| {
            let base = base.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut r = 0;
                while Instant::now() < stop_at {
                    let id = post(
                        &base,
                        "/api/v1/artifacts",
                        &artifacts(&format!("s{c}-{r}"), 100),
                    );
                    wait(&base, &id);
                    done.fetch_add(100, Ordering::Relaxed);
                    r += 1;
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let n = done.load(Ordering::Relaxed);
    println!(
        "sustained: {n} artifacts in {:.2} s by {clients_n} clients (100 per task, each client \
         waiting for SUCCESS): {:.0} artifacts/s",
        t.elapsed().as_secs_f64(),
        n as f64 / t.elapsed().as_secs_f64()
    );

    // RSTUF's heaviest CI scenario: 50 clients x 50 artifacts posted at the same moment.
    let barrier = Arc::new(std::sync::Barrier::new(50));
    let t = Instant::now();
    let clients: Vec<_> = (0..50)
        .map(|c| {
            let base = base.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let id = post(
                    &base,
                    "/api/v1/artifacts",
                    &artifacts(&format!("ci{c}"), 50),
                );
                wait(&base, &id);
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let wall = t.elapsed().as_secs_f64();
    let cdir = tempfile::tempdir().unwrap();
    let meta = dir.path().join("data/metadata");
    Updater::init(
        cdir.path(),
        &std::fs::read(meta.join("1.root.json")).unwrap(),
    )
    .unwrap();
    let mut u = Updater::new(
        cdir.path(),
        &format!("file://{}/", meta.display()),
        None,
        Box::new(FileFetcher),
        UpdaterConfig::default(),
    )
    .unwrap();
    u.refresh().unwrap();
    let mut verified = 0;
    for c in 0..50 {
        for i in 0..50 {
            let p = format!("ci{c}/{i}/vnd.pypi.simple.v1.html");
            let t = u
                .get_targetinfo(&p)
                .unwrap()
                .unwrap_or_else(|| panic!("{p} missing"));
            assert_eq!(t.length, 1000 + i as u64);
            verified += 1;
        }
    }
    println!(
        "50 clients x 50 artifacts posted at once: all SUCCESS in {wall:.3} s; \
         {verified} artifacts verified by tufpi's client from 1.root.json"
    );
    started.stop();
}
