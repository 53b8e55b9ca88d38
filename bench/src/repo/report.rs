//! The report: the side-by-side table with goals, then the details behind the figures.

use super::table::{self, Figures, Goal, Row, Unit};

/// What the run measured.
pub struct Opts {
    /// tufpi's full-build size.
    pub n: u64,
    /// python-tuf's full-build size (extrapolated to `n` if smaller).
    pub py_n: u64,
    /// Offered rate of the paced stream.
    pub rate: f64,
    /// Whether the 10M build ran.
    pub ten_m: bool,
    /// Whether the work dir is tmpfs.
    pub tmpfs: bool,
}

/// Print the table and the details under it.
pub fn report(o: &Opts, t: &Figures, p: &Figures) {
    let scaled = o.py_n != o.n;
    let mut p = p.clone();
    if scaled {
        if let Some(v) = p.get_mut("full_ms") {
            *v *= o.n as f64 / o.py_n as f64;
        }
    }
    let row = |name: &str, key: &str, unit| Row::new(name, key, t, &p, unit);
    let (n, rate) = (o.n, o.rate);
    let mut full_rss = row(
        &format!("full build {n}: peak RSS"),
        "full_rss_mb",
        Unit::Mb,
    );
    let mut full = row(&format!("full build {n}"), "full_ms", Unit::Ms).goal(Goal::Ratio(15.0));
    if scaled {
        full.mark = "*";
        full_rss.mark = "+";
    }
    if n == 1_000_000 {
        full_rss = full_rss.goal(Goal::AtMost(300.0));
    }
    let mut rows = vec![
        row("init: 16,384 empty bins", "init_ms", Unit::Ms).goal(Goal::AtMost(200.0)),
        row("init: peak RSS", "init_rss_mb", Unit::Mb),
        full,
        full_rss,
        row("publish one add: p50", "one_p50_ms", Unit::Ms).goal(Goal::AtMost(5.0)),
        row("publish one add: p90", "one_p90_ms", Unit::Ms),
        row("publish one add: p99", "one_p99_ms", Unit::Ms),
        row(
            "stream, max rate: published/s",
            "stream_per_s",
            Unit::PerSec,
        )
        .goal(Goal::AtLeast(5000.0)),
        row(
            "stream, max rate: latency p50",
            "stream_lat_p50_ms",
            Unit::Ms,
        ),
        row(
            "stream, max rate: latency p99",
            "stream_lat_p99_ms",
            Unit::Ms,
        ),
        row(
            &format!("stream @{rate}/s: published/s"),
            "paced_per_s",
            Unit::PerSec,
        ),
        row(
            &format!("stream @{rate}/s: latency p50"),
            "paced_lat_p50_ms",
            Unit::Ms,
        ),
        row(
            &format!("stream @{rate}/s: latency p99"),
            "paced_lat_p99_ms",
            Unit::Ms,
        ),
    ];
    if o.ten_m {
        let none = Figures::new();
        rows.push(
            Row::new("full build 10M", "m10_full_ms", t, &none, Unit::Ms)
                .goal(Goal::AtMost(15_000.0)),
        );
        rows.push(
            Row::new(
                "full build 10M: peak RSS",
                "m10_full_rss_mb",
                t,
                &none,
                Unit::Mb,
            )
            .goal(Goal::AtMost(2048.0)),
        );
    }
    println!();
    table::print(&rows);
    println!();
    println!("ratio: python-tuf/tufpi for times and RSS, tufpi/python-tuf for rates");
    println!("latency: from enqueue acknowledged to listed in a published timestamp.json");
    println!(
        "published/s: adds published / (last publish - start), the queue drain after the \
         producer stops included; at max rate the producer outpaces the publisher, so the \
         backlog and its latency grow with the run's length"
    );
    if scaled {
        println!(
            "* python-tuf measured at {} targets, extrapolated linearly to {n}",
            o.py_n
        );
        println!(
            "+ python-tuf measured at {} targets (not extrapolated)",
            o.py_n
        );
    }
    details(o, t, &p);
}

fn details(o: &Opts, t: &Figures, p: &Figures) {
    let g = |k: &str| t.get(k).copied().unwrap_or(f64::NAN);
    let s = |k: &str| g(k) / 1e3;
    println!(
        "tufpi full build (repo import: records to signed bins, one publish): {:.2} s ({} bins \
         signed); init before it (untimed) {:.2} s",
        s("full_ms"),
        g("full_bins_signed"),
        s("full_init_ms")
    );
    println!(
        "records made alone (inside both builds too): tufpi {:.2} s for {n}, python-tuf {:.2} s \
         for {py_n}",
        s("full_gen_ms"),
        p.get("full_gen_ms").copied().unwrap_or(f64::NAN) / 1e3,
        n = o.n,
        py_n = o.py_n
    );
    println!(
        "tufpi publish one add = enqueue + publish; publish alone p50 {:.2} ms, p99 {:.2} ms",
        g("one_publish_p50_ms"),
        g("one_publish_p99_ms")
    );
    for (name, what) in [("stream", "max rate"), ("paced", "paced")] {
        let k = |x: &str| g(&format!("{name}_{x}"));
        println!(
            "tufpi stream ({what}): {:.0} single-target enqueue calls ({:.0}/s), {:.0} published \
             in {:.0} timestamps ({:.2} bins re-signed per add), queue drained {:.2} s after the \
             producer stopped; peak RSS {:.0} MB",
            k("enqueued"),
            k("enqueue_per_s"),
            k("published"),
            k("timestamps"),
            k("bins_per_change"),
            k("drain_ms") / 1e3,
            k("rss_mb")
        );
    }
    if o.ten_m {
        println!(
            "tufpi 10M: import {:.2} s; publish one add p50 {:.2} ms",
            s("m10_full_ms"),
            g("m10_one_p50_ms")
        );
    }
    if !p.is_empty() {
        println!(
            "python-tuf writes files without fsync and queues the stream in memory (no \
             durability); tufpi fsyncs its files and every enqueue ({}).",
            if o.tmpfs {
                "here on tmpfs, where fsync is nearly free"
            } else {
                "here on the --work file system"
            }
        );
    }
}
