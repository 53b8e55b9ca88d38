//! The signing watch of an upload stream: `timestamp.json` polled during the stream, then a
//! sweep over the snapshot versions seen, finding when each acknowledged upload was first
//! listed by a signed bin.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tufpi_core::json::{self, Map};
use tufpi_core::metadata::SuccinctRoles;
use tufpi_core::Value;

use super::http::{find, get_request, runtime, Conn};
use crate::measure::{fail, jnum, jstr, percentile, Error};

/// What the signing watch learned.
#[derive(Default)]
pub struct Signed {
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
    /// Why the watch or the sweep failed, if it did.
    pub error: Option<String>,
}

impl Signed {
    /// The figures as a JSON object.
    pub fn to_json(&self) -> String {
        let p = |q: f64| jnum(percentile(&self.ms, q));
        format!(
            "{{\"n\": {}, \"unsigned\": {}, \"p50_ms\": {}, \"p90_ms\": {}, \"p99_ms\": {}, \
\"max_ms\": {}, \"polls\": {}, \"max_poll_gap_ms\": {}, \"timestamps_seen\": {}, \
\"metadata_fetches\": {}, \"error\": {}}}",
            self.ms.len(),
            self.unsigned,
            p(50.0),
            p(90.0),
            p(99.0),
            p(100.0),
            self.polls,
            jnum(self.max_poll_gap_ms),
            self.timestamps,
            self.fetches,
            self.error.as_deref().map(jstr).unwrap_or("null".into()),
        )
    }
}

/// Where the watch reads the metadata: a server's `/metadata/` (the default), or another
/// prefix on another host (e.g. the S3 bucket's `metadata/` directly), with one extra header.
#[derive(Clone)]
pub struct Source {
    /// `host:port`.
    pub host: String,
    /// The path the metadata file names follow, without the trailing slash.
    pub prefix: String,
    /// One more request header line (`Name: value`), or empty.
    pub header: String,
}

impl Source {
    /// The `/metadata/` of `host`.
    pub fn server(host: &str) -> Source {
        Source {
            host: host.to_string(),
            prefix: "/metadata".into(),
            header: String::new(),
        }
    }
}

async fn get_bytes(
    conn: &mut Conn,
    src: &Source,
    name: &str,
    n: &mut u64,
) -> Result<Vec<u8>, Error> {
    *n += 1;
    let path = format!("{}/{name}", src.prefix);
    let mut req = get_request(&src.host, &path, "application/json");
    if !src.header.is_empty() {
        req.truncate(req.len() - 2);
        req.extend_from_slice(format!("{}\r\n\r\n", src.header).as_bytes());
    }
    let r = conn
        .send(&req, true)
        .await
        .map_err(|e| fail(format!("GET {path}: {e}")))?;
    if r.status != 200 {
        return Err(fail(format!("GET {path}: status {}", r.status)));
    }
    Ok(r.body)
}

async fn get_json(conn: &mut Conn, src: &Source, path: &str, n: &mut u64) -> Result<Value, Error> {
    let body = get_bytes(conn, src, path, n).await?;
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
pub fn poll_timestamps(
    src: &Source,
    poll: Duration,
    settle: Duration,
    timeout: Duration,
    done: &std::sync::atomic::AtomicBool,
    out: &mut Signed,
) -> Result<Vec<(Instant, u64)>, Error> {
    let rt = runtime()?;
    rt.block_on(async {
        let mut conn = Conn::one_shot(&src.host);
        let mut timeline: Vec<(Instant, u64)> = Vec::new();
        let mut done_at: Option<Instant> = None;
        let mut last_read: Option<Instant> = None;
        loop {
            let body = get_bytes(&mut conn, src, "timestamp.json", &mut 0).await?;
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
pub fn sweep(
    src: &Source,
    timeline: &[(Instant, u64)],
    acks: Vec<(String, Instant)>,
    out: &mut Signed,
) -> Result<(), Error> {
    let rt = runtime()?;
    rt.block_on(async {
        let mut conn = Conn::one_shot(&src.host);
        let n = &mut out.fetches;
        let Some(&(_, first)) = timeline.first() else {
            return Err(fail("no timestamp read"));
        };
        // The bins' delegator: `bins` (PEP 458) or `targets` (targets online).
        let snap = get_json(&mut conn, src, &format!("{first}.snapshot.json"), n).await?;
        let meta = signed_meta(&snap, "snapshot")?;
        let (role, v) = match meta_version(meta, "bins.json") {
            Some(v) => ("bins", v),
            None => (
                "targets",
                meta_version(meta, "targets.json")
                    .ok_or_else(|| fail("snapshot lists no targets.json"))?,
            ),
        };
        let doc = get_json(&mut conn, src, &format!("{v}.{role}.json"), n).await?;
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
        let raw = get_bytes(&mut conn, src, &format!("{first}.snapshot.json"), n).await?;
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
            let raw = get_bytes(&mut conn, src, &format!("{sv}.snapshot.json"), n).await?;
            let versions = scan_bin_versions(&raw, &sr);
            let mut still = Vec::with_capacity(pending.len());
            for (target, b, t_ack) in pending.drain(..) {
                let bv = versions[b as usize];
                if let std::collections::hash_map::Entry::Vacant(e) = bins.entry((b, bv)) {
                    let name = sr.role_name(b);
                    let doc = get_json(&mut conn, src, &format!("{bv}.{name}.json"), n).await?;
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
