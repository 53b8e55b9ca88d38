//! `index_load`: the HTTP/1.1 load generator of `scripts/bench-index`. One client for both
//! servers (tufpi and pypiserver), so they are measured the same way.
//!
//! `index_load pages`: C keep-alive connections on one thread (tokio, current-thread
//! runtime), each sending GETs of pages picked at random from a list, back to back, for a
//! warm-up and then a fixed measured time. Only 200 responses count; latencies are per request
//! (send → whole body read). A server that closes the connection (e.g. gunicorn's sync
//! workers) gets a new one, whose connect time counts in that request's latency.
//!
//! `index_load uploads`: a manifest of files uploaded with twine's multipart form over C
//! connections (`POST`, HTTP Basic `__token__`). With `--watch` (a tufpi index), a second
//! thread reads `/metadata/timestamp.json` every `--poll-ms` during the stream and until no
//! new snapshot has appeared for `--settle` seconds after it, noting when each snapshot version
//! was first seen; then a sweep walks those versions (snapshot → the bin delegated each
//! target, TAP 15) and takes, for every acknowledged upload, the time from its 200 response to
//! the first timestamp read whose snapshot's bin lists the distribution's target path. The
//! sweep runs after the stream, so its fetches neither load the server nor delay the reads.
//!
//! Both print one JSON object on stdout.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest as _};
use sha2::Sha256;
use tufpi_core::json::{self, Map};
use tufpi_core::metadata::SuccinctRoles;
use tufpi_core::Value;

const USAGE: &str = "usage:
  index_load pages --url http://HOST:PORT --paths FILE [--connections C] [--duration S]
                   [--warmup S] [--accept TYPE] [--seed N]
  index_load uploads --url http://HOST:PORT --manifest FILE [--path /legacy/]
                   [--connections C] [--token TOKEN] [--watch] [--poll-ms MS]
                   [--settle S] [--signed-timeout S]
manifest: one upload a line, tab-separated: FILE NAME VERSION FILETYPE PYVERSION";

type Error = Box<dyn std::error::Error + Send + Sync>;

fn fail(msg: impl Into<String>) -> Error {
    msg.into().into()
}

#[path = "../index_load_http.rs"]
mod http;

use http::{find, get_request, host_port, Conn};

// ------------------------------------------------------------------ statistics

/// Percentile (nearest rank) of sorted microseconds, in milliseconds.
fn pct_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn us(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

fn jnum(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "null".into()
    }
}

fn jstr(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

// ------------------------------------------------------------------ options

struct Args {
    cmd: String,
    kv: HashMap<String, String>,
    flags: HashSet<String>,
}

impl Args {
    fn parse() -> Result<Args, Error> {
        let mut it = std::env::args().skip(1);
        let cmd = it.next().ok_or_else(|| fail(USAGE))?;
        let mut kv = HashMap::new();
        let mut flags = HashSet::new();
        while let Some(a) = it.next() {
            let Some(k) = a.strip_prefix("--") else {
                return Err(fail(format!("unexpected argument {a}\n{USAGE}")));
            };
            if k == "watch" {
                flags.insert(k.to_string());
                continue;
            }
            let v = it
                .next()
                .ok_or_else(|| fail(format!("--{k} needs a value")))?;
            kv.insert(k.to_string(), v);
        }
        Ok(Args { cmd, kv, flags })
    }

    fn req(&self, k: &str) -> Result<String, Error> {
        self.kv
            .get(k)
            .cloned()
            .ok_or_else(|| fail(format!("--{k} is required\n{USAGE}")))
    }

    fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> Result<T, Error> {
        match self.kv.get(k) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| fail(format!("--{k}: bad value {v}"))),
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

// ------------------------------------------------------------------ pages

#[derive(Default)]
struct PageCounts {
    lat_us: Vec<u32>,
    non200: u64,
    errors: u64,
    bytes: u64,
    first_error: Option<String>,
}

fn pages(a: &Args) -> Result<(), Error> {
    let url = a.req("url")?;
    let host = host_port(&url)?;
    let paths_file = a.req("paths")?;
    let conns: usize = a.num("connections", 64)?;
    let duration: f64 = a.num("duration", 10.0)?;
    let warmup: f64 = a.num("warmup", 2.0)?;
    let accept =
        a.kv.get("accept")
            .cloned()
            .unwrap_or_else(|| "text/html".into());
    let seed: u64 = a.num("seed", 458)?;
    let text = std::fs::read_to_string(&paths_file)?;
    let reqs: Rc<Vec<Vec<u8>>> = Rc::new(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|p| get_request(&host, p, &accept))
            .collect(),
    );
    if reqs.is_empty() {
        return Err(fail("no paths"));
    }
    let rt = runtime()?;
    let local = tokio::task::LocalSet::new();
    let counts = Rc::new(RefCell::new(PageCounts::default()));
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(warmup);
    let end = measure_from + Duration::from_secs_f64(duration);
    let cpu0 = Rc::new(Cell::new(None::<f64>));
    for c in 0..conns {
        let reqs = reqs.clone();
        let counts = counts.clone();
        let host = host.clone();
        let cpu0 = cpu0.clone();
        local.spawn_local(async move {
            let mut conn = Conn::new(&host);
            // xorshift64*, one stream per connection.
            let mut x = seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(c as u64 + 1));
            let mut local_lat = Vec::with_capacity(1 << 16);
            let (mut non200, mut errors, mut bytes) = (0u64, 0u64, 0u64);
            let mut first_error = None;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                if t0 >= measure_from && cpu0.get().is_none() {
                    cpu0.set(Some(cpu_seconds()));
                }
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                let i = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) % reqs.len() as u64) as usize;
                let r = conn.send(&reqs[i], true).await;
                let t1 = Instant::now();
                let counted = t0 >= measure_from && t1 <= end;
                match r {
                    Ok(resp) if counted => {
                        if resp.status == 200 {
                            local_lat.push(us(t1 - t0));
                            bytes += resp.body.len() as u64;
                        } else {
                            non200 += 1;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if counted {
                            errors += 1;
                        }
                        if first_error.is_none() {
                            first_error = Some(e.to_string());
                        }
                        // Do not spin on a dead server.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            let mut g = counts.borrow_mut();
            g.lat_us.extend_from_slice(&local_lat);
            g.non200 += non200;
            g.errors += errors;
            g.bytes += bytes;
            if g.first_error.is_none() {
                g.first_error = first_error;
            }
        });
    }
    rt.block_on(local);
    let cpu1 = cpu_seconds();
    let mut g = counts.borrow_mut();
    g.lat_us.sort_unstable();
    let ok = g.lat_us.len();
    let cpu = cpu0.get().map(|c0| cpu1 - c0).unwrap_or(f64::NAN);
    println!(
        "{{\"ok\": {ok}, \"non200\": {}, \"errors\": {}, \"seconds\": {}, \"rps\": {}, \
\"p50_ms\": {}, \"p90_ms\": {}, \"p99_ms\": {}, \"max_ms\": {}, \"mean_body_bytes\": {}, \
\"connections\": {conns}, \"paths\": {}, \"loadgen_cpu\": {}, \"first_error\": {}}}",
        g.non200,
        g.errors,
        jnum(duration),
        jnum(ok as f64 / duration),
        jnum(pct_ms(&g.lat_us, 50.0)),
        jnum(pct_ms(&g.lat_us, 90.0)),
        jnum(pct_ms(&g.lat_us, 99.0)),
        jnum(pct_ms(&g.lat_us, 100.0)),
        jnum(if ok > 0 {
            g.bytes as f64 / ok as f64
        } else {
            0.0
        }),
        reqs.len(),
        jnum(cpu / duration),
        g.first_error.as_deref().map(jstr).unwrap_or("null".into()),
    );
    Ok(())
}

// ------------------------------------------------------------------ uploads

struct Upload {
    filename: String,
    body: Vec<u8>,
    boundary: String,
    /// The distribution's TUF target path on a tufpi index.
    target: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn load_manifest(path: &str) -> Result<Vec<Upload>, Error> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let [file, name, version, filetype, pyversion] = f[..] else {
            return Err(fail(format!(
                "{path}:{}: want 5 tab-separated fields",
                n + 1
            )));
        };
        let data = std::fs::read(file).map_err(|e| fail(format!("reading {file}: {e}")))?;
        let filename = PathBuf::from(file)
            .file_name()
            .and_then(|s| s.to_str())
            .ok_or_else(|| fail(format!("bad file name {file}")))?
            .to_string();
        let sha = hex(&Sha256::digest(&data));
        let b2 = hex(&Blake2b::<U32>::digest(&data));
        let target = format!(
            "packages/{}/{}/{}/{filename}",
            &b2[..2],
            &b2[2..4],
            &b2[4..]
        );
        let boundary = format!("tufpi-bench-{}", &sha[..16]);
        let mut body = Vec::with_capacity(data.len() + 1024);
        for (k, v) in [
            (":action", "file_upload"),
            ("protocol_version", "1"),
            ("name", name),
            ("version", version),
            ("filetype", filetype),
            ("pyversion", pyversion),
            ("metadata_version", "2.1"),
            ("sha256_digest", &sha),
        ] {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        out.push(Upload {
            filename,
            body,
            boundary,
            target,
        });
    }
    Ok(out)
}

fn b64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What the signing watch learned.
#[derive(Default)]
struct Signed {
    /// Milliseconds from each upload's 200 response to the first timestamp.json read whose
    /// snapshot's bin lists its target.
    ms: Vec<f64>,
    /// Acknowledged uploads not in the last snapshot read.
    unsigned: usize,
    /// timestamp.json reads, and how many of them showed a new snapshot version.
    polls: u64,
    timestamps: u64,
    /// Largest gap between two timestamp reads, ms: the resolution actually achieved.
    max_poll_gap_ms: f64,
    /// Metadata fetches of the sweep after the stream.
    fetches: u64,
    error: Option<String>,
}

async fn get_bytes(conn: &mut Conn, host: &str, path: &str, n: &mut u64) -> Result<Vec<u8>, Error> {
    *n += 1;
    let r = conn
        .send(&get_request(host, path, "application/json"), true)
        .await
        .map_err(|e| fail(format!("GET {path}: {e}")))?;
    if r.status != 200 {
        return Err(fail(format!("GET {path}: status {}", r.status)));
    }
    Ok(r.body)
}

async fn get_json(conn: &mut Conn, host: &str, path: &str, n: &mut u64) -> Result<Value, Error> {
    let body = get_bytes(conn, host, path, n).await?;
    json::parse(&body).map_err(|e| fail(format!("GET {path}: {e}")))
}

fn meta_version(meta: &Map, file: &str) -> Option<u64> {
    meta.get(file)?.get("version").and_then(|v| match v {
        Value::Int(i) => i.as_u64(),
        _ => None,
    })
}

fn signed_meta<'a>(doc: &'a Value, what: &str) -> Result<&'a Map, Error> {
    doc.get("signed")
        .and_then(|s| s.get("meta"))
        .and_then(Value::as_object)
        .ok_or_else(|| fail(format!("{what} has no signed.meta")))
}

/// The bin versions listed by a snapshot (`"<bin>.json": {..., "version": N}`), by bin index:
/// a scan of the bytes, as a full parse of 16,385 entries per snapshot version is slow. The
/// first snapshot is also fully parsed and compared with this.
fn scan_bin_versions(doc: &[u8], sr: &SuccinctRoles) -> Vec<u32> {
    let mut out = vec![0u32; sr.number_of_bins() as usize];
    let prefix = format!("\"{}-", sr.name_prefix);
    let pat = prefix.as_bytes();
    let mut i = 0;
    while let Some(off) = find(&doc[i..], pat) {
        let start = i + off + 1;
        let Some(end) = doc[start..]
            .iter()
            .position(|&b| b == b'"')
            .map(|p| start + p)
        else {
            break;
        };
        i = end + 1;
        let Some(name) = std::str::from_utf8(&doc[start..end])
            .ok()
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let Some(idx) = sr.index_of(name) else {
            continue;
        };
        // The value object up to its closing brace holds "version": N.
        let Some(close) = doc[i..].iter().position(|&b| b == b'}').map(|p| i + p) else {
            break;
        };
        if let Some(v) = find(&doc[i..close], b"\"version\"").map(|p| i + p + 9) {
            let digits: String = doc[v..close]
                .iter()
                .skip_while(|b| matches!(b, b' ' | b':' | b'\n' | b'\r' | b'\t'))
                .take_while(|b| b.is_ascii_digit())
                .map(|&b| b as char)
                .collect();
            out[idx as usize] = digits.parse().unwrap_or(0);
        }
        i = close;
    }
    out
}

/// Poll `timestamp.json` every `poll` until `done` is set and then no new snapshot version
/// has appeared for `settle` (or `timeout` passed): the first read of each snapshot version.
fn poll_timestamps(
    host: &str,
    poll: Duration,
    settle: Duration,
    timeout: Duration,
    done: &std::sync::atomic::AtomicBool,
    out: &mut Signed,
) -> Result<Vec<(Instant, u64)>, Error> {
    let rt = runtime()?;
    rt.block_on(async {
        let mut conn = Conn::one_shot(host);
        let mut timeline: Vec<(Instant, u64)> = Vec::new();
        let mut done_at: Option<Instant> = None;
        let mut last_read: Option<Instant> = None;
        loop {
            let body = get_bytes(&mut conn, host, "/metadata/timestamp.json", &mut 0).await?;
            let t = Instant::now();
            out.polls += 1;
            if let Some(prev) = last_read {
                let gap = (t - prev).as_secs_f64() * 1000.0;
                out.max_poll_gap_ms = out.max_poll_gap_ms.max(gap);
            }
            last_read = Some(t);
            let ts = json::parse(&body).map_err(|e| fail(format!("timestamp.json: {e}")))?;
            let sv = meta_version(signed_meta(&ts, "timestamp")?, "snapshot.json")
                .ok_or_else(|| fail("timestamp has no snapshot version"))?;
            if timeline.last().map(|l| l.1) != Some(sv) {
                timeline.push((t, sv));
            }
            if done_at.is_none() && done.load(std::sync::atomic::Ordering::Acquire) {
                done_at = Some(t);
            }
            if let Some(d) = done_at {
                let last_change = timeline.last().map(|l| l.0).unwrap_or(d).max(d);
                if t - last_change >= settle || t - d >= timeout {
                    return Ok(timeline);
                }
            }
            tokio::time::sleep(poll).await;
        }
    })
}

/// After the stream: walk the snapshot versions in the order they were first read and find,
/// for each acknowledged upload, the first one whose bin lists its target.
fn sweep(
    host: &str,
    timeline: &[(Instant, u64)],
    acks: Vec<(String, Instant)>,
    out: &mut Signed,
) -> Result<(), Error> {
    let rt = runtime()?;
    rt.block_on(async {
        let mut conn = Conn::one_shot(host);
        let n = &mut out.fetches;
        let Some(&(_, first)) = timeline.first() else {
            return Err(fail("no timestamp read"));
        };
        // The bins' delegator: `bins` (PEP 458) or `targets` (targets online).
        let snap = get_json(
            &mut conn,
            host,
            &format!("/metadata/{first}.snapshot.json"),
            n,
        )
        .await?;
        let meta = signed_meta(&snap, "snapshot")?;
        let (role, v) = match meta_version(meta, "bins.json") {
            Some(v) => ("bins", v),
            None => (
                "targets",
                meta_version(meta, "targets.json")
                    .ok_or_else(|| fail("snapshot lists no targets.json"))?,
            ),
        };
        let doc = get_json(&mut conn, host, &format!("/metadata/{v}.{role}.json"), n).await?;
        let sr = doc
            .get("signed")
            .and_then(|s| s.get("delegations"))
            .and_then(|d| d.get("succinct_roles"))
            .ok_or_else(|| fail(format!("{role}.json has no succinct_roles")))?;
        let bit_length = match sr.get("bit_length") {
            Some(Value::Int(i)) => i.as_u64().unwrap_or(0) as u32,
            _ => 0,
        };
        if !(1..=32).contains(&bit_length) {
            return Err(fail("bad succinct_roles bit_length"));
        }
        let sr = SuccinctRoles {
            keyids: Vec::new(),
            threshold: 1,
            bit_length,
            name_prefix: sr
                .get("name_prefix")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            unrecognized: Map::new(),
        };
        // The scan must agree with a full parse.
        let raw = get_bytes(
            &mut conn,
            host,
            &format!("/metadata/{first}.snapshot.json"),
            n,
        )
        .await?;
        let scanned = scan_bin_versions(&raw, &sr);
        for (i, v) in scanned.iter().enumerate() {
            let want = meta_version(meta, &format!("{}.json", sr.role_name(i as u64))).unwrap_or(0);
            if u64::from(*v) != want {
                return Err(fail(format!(
                    "snapshot scan disagrees with the parse at bin {i}"
                )));
            }
        }
        let mut pending: Vec<(String, u64, Instant)> = acks
            .into_iter()
            .map(|(t, at)| {
                let b = sr.bin_for_target(&t);
                (t, b, at)
            })
            .collect();
        // (bin, version) -> its target names.
        let mut bins: HashMap<(u64, u32), HashSet<String>> = HashMap::new();
        for &(t_read, sv) in timeline {
            if pending.is_empty() {
                break;
            }
            let raw =
                get_bytes(&mut conn, host, &format!("/metadata/{sv}.snapshot.json"), n).await?;
            let versions = scan_bin_versions(&raw, &sr);
            let mut still = Vec::with_capacity(pending.len());
            for (target, b, t_ack) in pending.drain(..) {
                let bv = versions[b as usize];
                if let std::collections::hash_map::Entry::Vacant(e) = bins.entry((b, bv)) {
                    let name = sr.role_name(b);
                    let doc = get_json(&mut conn, host, &format!("/metadata/{bv}.{name}.json"), n)
                        .await?;
                    e.insert(
                        doc.get("signed")
                            .and_then(|s| s.get("targets"))
                            .and_then(Value::as_object)
                            .map(|m| m.keys().cloned().collect())
                            .unwrap_or_default(),
                    );
                }
                if bins[&(b, bv)].contains(&target) {
                    out.ms
                        .push(t_read.saturating_duration_since(t_ack).as_secs_f64() * 1000.0);
                } else {
                    still.push((target, b, t_ack));
                }
            }
            pending = still;
        }
        out.unsigned = pending.len();
        out.timestamps = timeline.len() as u64;
        Ok(())
    })
}

fn uploads(a: &Args) -> Result<(), Error> {
    let url = a.req("url")?;
    let host = host_port(&url)?;
    let manifest = a.req("manifest")?;
    let path =
        a.kv.get("path")
            .cloned()
            .unwrap_or_else(|| "/legacy/".into());
    let conns: usize = a.num("connections", 1)?;
    let token = a.kv.get("token").cloned();
    let do_watch = a.flags.contains("watch");
    let poll = Duration::from_secs_f64(a.num::<f64>("poll-ms", 5.0)? / 1000.0);
    let signed_timeout = Duration::from_secs_f64(a.num("signed-timeout", 30.0)?);
    let settle = Duration::from_secs_f64(a.num("settle", 1.0)?);
    let items = load_manifest(&manifest)?;
    let auth = token
        .map(|t| {
            format!(
                "Authorization: Basic {}\r\n",
                b64(format!("__token__:{t}").as_bytes())
            )
        })
        .unwrap_or_default();
    // Whole requests, built before the clock starts.
    let reqs: Rc<Vec<(Vec<u8>, String, String)>> = Rc::new(
        items
            .into_iter()
            .map(|u| {
                let mut r = format!(
                    "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tufpi-index-load\r\n{auth}\
Content-Type: multipart/form-data; boundary={}\r\nContent-Length: {}\r\n\r\n",
                    u.boundary,
                    u.body.len()
                )
                .into_bytes();
                r.extend_from_slice(&u.body);
                (r, u.filename, u.target)
            })
            .collect(),
    );
    let n = reqs.len();
    let done = Arc::new(AtomicBool::new(false));
    let poller = do_watch.then(|| {
        let (h, done) = (host.clone(), done.clone());
        std::thread::spawn(move || {
            let mut s = Signed::default();
            let r = poll_timestamps(&h, poll, settle, signed_timeout, &done, &mut s);
            (r, s)
        })
    });
    let acks = Rc::new(RefCell::new(Vec::<(String, Instant)>::new()));
    let rt = runtime()?;
    let local = tokio::task::LocalSet::new();
    let next = Rc::new(Cell::new(0usize));
    let lat = Rc::new(RefCell::new(Vec::<u32>::new()));
    let failed = Rc::new(Cell::new(0usize));
    let first_error = Rc::new(RefCell::new(None::<String>));
    let start = Instant::now();
    for _ in 0..conns.max(1) {
        let (reqs, next, lat, failed, first_error) = (
            reqs.clone(),
            next.clone(),
            lat.clone(),
            failed.clone(),
            first_error.clone(),
        );
        let acks = acks.clone();
        let host = host.clone();
        local.spawn_local(async move {
            let mut conn = Conn::new(&host);
            loop {
                let i = next.get();
                if i >= reqs.len() {
                    break;
                }
                next.set(i + 1);
                let (req, filename, target) = &reqs[i];
                let t0 = Instant::now();
                let r = conn.send(req, true).await;
                let t1 = Instant::now();
                match r {
                    Ok(resp) if resp.status == 200 => {
                        lat.borrow_mut().push(us(t1 - t0));
                        acks.borrow_mut().push((target.clone(), t1));
                    }
                    other => {
                        failed.set(failed.get() + 1);
                        let mut fe = first_error.borrow_mut();
                        if fe.is_none() {
                            *fe = Some(match other {
                                Ok(resp) => format!(
                                    "{filename}: status {}: {}",
                                    resp.status,
                                    String::from_utf8_lossy(&resp.body)
                                        .chars()
                                        .take(300)
                                        .collect::<String>()
                                ),
                                Err(e) => format!("{filename}: {e}"),
                            });
                        }
                    }
                }
            }
        });
    }
    rt.block_on(local);
    let wall = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Release);
    let signed = poller.map(|p| {
        let (timeline, mut s) = match p.join() {
            Ok(x) => x,
            Err(_) => (Err(fail("the poller panicked")), Signed::default()),
        };
        let acks = std::mem::take(&mut *acks.borrow_mut());
        if let Err(e) = timeline.and_then(|t| sweep(&host, &t, acks, &mut s)) {
            s.error = Some(e.to_string());
        }
        s
    });
    let mut lat = lat.borrow_mut();
    lat.sort_unstable();
    let ok = lat.len();
    let signed_json = match &signed {
        None => "null".to_string(),
        Some(s) => {
            let mut ms = s.ms.clone();
            ms.sort_by(f64::total_cmp);
            let p = |q: f64| -> f64 {
                if ms.is_empty() {
                    return f64::NAN;
                }
                let rank = ((q / 100.0) * ms.len() as f64).ceil() as usize;
                ms[rank.clamp(1, ms.len()) - 1]
            };
            format!(
                "{{\"n\": {}, \"unsigned\": {}, \"p50_ms\": {}, \"p90_ms\": {}, \"p99_ms\": {}, \
\"max_ms\": {}, \"polls\": {}, \"max_poll_gap_ms\": {}, \"timestamps_seen\": {}, \
\"metadata_fetches\": {}, \"error\": {}}}",
                ms.len(),
                s.unsigned,
                jnum(p(50.0)),
                jnum(p(90.0)),
                jnum(p(99.0)),
                jnum(p(100.0)),
                s.polls,
                jnum(s.max_poll_gap_ms),
                s.timestamps,
                s.fetches,
                s.error.as_deref().map(jstr).unwrap_or("null".into()),
            )
        }
    };
    println!(
        "{{\"n\": {n}, \"ok\": {ok}, \"failed\": {}, \"connections\": {conns}, \"seconds\": {}, \
\"rate\": {}, \"p50_ms\": {}, \"p99_ms\": {}, \"max_ms\": {}, \"signed\": {signed_json}, \
\"first_error\": {}}}",
        failed.get(),
        jnum(wall),
        jnum(ok as f64 / wall),
        jnum(pct_ms(&lat, 50.0)),
        jnum(pct_ms(&lat, 99.0)),
        jnum(pct_ms(&lat, 100.0)),
        first_error
            .borrow()
            .as_deref()
            .map(jstr)
            .unwrap_or("null".into()),
    );
    Ok(())
}

fn main() {
    let res = Args::parse().and_then(|a| match a.cmd.as_str() {
        "pages" => pages(&a),
        "uploads" => uploads(&a),
        _ => Err(fail(USAGE)),
    });
    if let Err(e) = res {
        eprintln!("index_load: {e}");
        std::process::exit(2);
    }
}
