//! `index_load uploads`: a manifest of files uploaded with twine's multipart form, and the
//! signing watch (`watch`) when asked.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tufpi_core::hashes::digest_hex;

use super::args::Args;
use super::http::{host_port, runtime, Conn};
use super::watch::{poll_timestamps, sweep, Signed, Source};
use crate::measure::{fail, jnum, jstr, percentile_us_as_ms, us, Error};

struct Upload {
    filename: String,
    body: Vec<u8>,
    boundary: String,
    /// The distribution's TUF target path on a tufpi index.
    target: String,
}

/// The uploads a manifest lists, each a whole multipart body.
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
        let sha = digest_hex("sha256", &data).unwrap_or_default();
        let b2 = digest_hex("blake2b-256", &data).unwrap_or_default();
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

/// A prepared upload request: its bytes, the filename, the target it signs as, and the
/// index of the replica it goes to.
type Request = (Vec<u8>, String, String, usize);

/// `index_load uploads`: see the module documentation.
pub fn uploads(a: &Args) -> Result<(), Error> {
    // Several replicas: `--url A,B,C`, upload i going to URL i mod n (round-robin); the
    // signing watch reads the first (or `--watch-url`).
    let hosts: Vec<String> = a
        .req("url")?
        .split(',')
        .filter(|u| !u.trim().is_empty())
        .map(|u| host_port(u.trim()))
        .collect::<Result<_, _>>()?;
    if hosts.is_empty() {
        return Err(fail("--url: no URL"));
    }
    let host = match a.opt("watch-url") {
        Some(u) => host_port(&u)?,
        None => hosts[0].clone(),
    };
    let manifest = a.req("manifest")?;
    let path = a.opt("path").unwrap_or_else(|| "/legacy/".into());
    let conns: usize = a.num("connections", 1)?;
    let token = a.opt("token");
    let do_watch = a.flag("watch");
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
    let reqs: Rc<Vec<Request>> = Rc::new(
        items
            .into_iter()
            .enumerate()
            .map(|(i, u)| {
                let hi = i % hosts.len();
                let host = &hosts[hi];
                let mut r = format!(
                    "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tufpi-index-load\r\n{auth}\
Content-Type: multipart/form-data; boundary={}\r\nContent-Length: {}\r\n\r\n",
                    u.boundary,
                    u.body.len()
                )
                .into_bytes();
                r.extend_from_slice(&u.body);
                (r, u.filename, u.target, hi)
            })
            .collect(),
    );
    let n = reqs.len();
    let done = Arc::new(AtomicBool::new(false));
    // The watch of the index's /metadata/, and optionally a second one elsewhere (e.g. the
    // S3 bucket's metadata/ read directly: when the publisher's write landed, before any
    // replica's caching), each polled by a thread of its own.
    let mut sources = vec![(Source::server(&host), poll)];
    if let Some(u) = a.opt("watch2-url") {
        let rest = u
            .strip_prefix("http://")
            .ok_or_else(|| fail(format!("--watch2-url: not an http:// URL: {u}")))?;
        let (h, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        sources.push((
            Source {
                host: h.to_string(),
                prefix: format!("/{}", prefix.trim_end_matches('/')),
                header: a.opt("watch2-header").unwrap_or_default(),
            },
            Duration::from_secs_f64(a.num::<f64>("watch2-poll-ms", 20.0)? / 1000.0),
        ));
    }
    let pollers: Vec<_> = if do_watch {
        sources
            .iter()
            .cloned()
            .map(|(src, every)| {
                let done = done.clone();
                std::thread::spawn(move || {
                    let mut s = Signed::default();
                    let r = poll_timestamps(&src, every, settle, signed_timeout, &done, &mut s);
                    (r, s)
                })
            })
            .collect()
    } else {
        Vec::new()
    };
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
        let hosts = hosts.clone();
        local.spawn_local(async move {
            // One keep-alive connection per replica.
            let mut conns: Vec<Conn> = hosts.iter().map(|h| Conn::new(h)).collect();
            loop {
                let i = next.get();
                if i >= reqs.len() {
                    break;
                }
                next.set(i + 1);
                let (req, filename, target, hi) = &reqs[i];
                let t0 = Instant::now();
                let r = conns[*hi].send(req, true).await;
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
    let acks = std::mem::take(&mut *acks.borrow_mut());
    let signed: Vec<Signed> = pollers
        .into_iter()
        .zip(&sources)
        .map(|(p, (src, _))| {
            let (timeline, mut s) = match p.join() {
                Ok(x) => x,
                Err(_) => (Err(fail("the poller panicked")), Signed::default()),
            };
            if let Err(e) = timeline.and_then(|t| sweep(src, &t, acks.clone(), &mut s)) {
                s.error = Some(e.to_string());
            }
            s
        })
        .collect();
    let mut lat = lat.borrow_mut();
    lat.sort_unstable();
    let ok = lat.len();
    let signed_json = signed.first().map_or("null".to_string(), Signed::to_json);
    let signed2_json = signed.get(1).map_or("null".to_string(), Signed::to_json);
    println!(
        "{{\"n\": {n}, \"ok\": {ok}, \"failed\": {}, \"connections\": {conns}, \"seconds\": {}, \
\"rate\": {}, \"p50_ms\": {}, \"p99_ms\": {}, \"max_ms\": {}, \"signed\": {signed_json}, \
\"signed2\": {signed2_json}, \
\"first_error\": {}}}",
        failed.get(),
        jnum(wall),
        jnum(ok as f64 / wall),
        jnum(percentile_us_as_ms(&lat, 50.0)),
        jnum(percentile_us_as_ms(&lat, 99.0)),
        jnum(percentile_us_as_ms(&lat, 100.0)),
        first_error
            .borrow()
            .as_deref()
            .map(jstr)
            .unwrap_or("null".into()),
    );
    Ok(())
}
