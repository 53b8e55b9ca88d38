//! `index_load pages`: simple pages over keep-alive connections for a fixed time.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::args::Args;
use super::http::{get_request, host_port, runtime, Conn};
use crate::measure::{cpu_seconds, fail, jnum, jstr, percentile_us_as_ms, us, Error};

#[derive(Default)]
struct PageCounts {
    lat_us: Vec<u32>,
    non200: u64,
    errors: u64,
    bytes: u64,
    first_error: Option<String>,
}

/// `index_load pages`: see the module documentation.
pub fn pages(a: &Args) -> Result<(), Error> {
    let url = a.req("url")?;
    let host = host_port(&url)?;
    let paths_file = a.req("paths")?;
    let conns: usize = a.num("connections", 64)?;
    let duration: f64 = a.num("duration", 10.0)?;
    let warmup: f64 = a.num("warmup", 2.0)?;
    let accept = a.opt("accept").unwrap_or_else(|| "text/html".into());
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
        jnum(percentile_us_as_ms(&g.lat_us, 50.0)),
        jnum(percentile_us_as_ms(&g.lat_us, 90.0)),
        jnum(percentile_us_as_ms(&g.lat_us, 99.0)),
        jnum(percentile_us_as_ms(&g.lat_us, 100.0)),
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
