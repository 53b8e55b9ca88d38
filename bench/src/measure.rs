//! Measuring, for every benchmark of the crate: timings and their statistics (median, mean,
//! nearest-rank percentiles), peak RSS and CPU time of this process, and the figures printed
//! for the scripts (`key=value` lines, JSON numbers and strings).

use std::time::{Duration, Instant};

/// The benchmarks' error.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// An error with this message.
pub fn fail(msg: impl Into<String>) -> Error {
    msg.into().into()
}

/// Per-iteration times in milliseconds.
#[derive(Debug, Clone)]
pub struct Stats {
    ms: Vec<f64>,
}

impl Stats {
    /// Statistics over `ms` (must be non-empty).
    pub fn new(mut ms: Vec<f64>) -> Stats {
        ms.sort_by(f64::total_cmp);
        Stats { ms }
    }

    /// Median time.
    pub fn median(&self) -> f64 {
        let n = self.ms.len();
        if n % 2 == 1 {
            self.ms[n / 2]
        } else {
            (self.ms[n / 2 - 1] + self.ms[n / 2]) / 2.0
        }
    }

    /// Mean time.
    pub fn mean(&self) -> f64 {
        self.ms.iter().sum::<f64>() / self.ms.len() as f64
    }
}

/// Run `f` once to warm up, then `n` times; the per-iteration times and the last result.
pub fn time<T>(n: usize, mut f: impl FnMut() -> Result<T, Error>) -> Result<(Stats, T), Error> {
    let mut last = f()?;
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        last = f()?;
        ms.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((Stats::new(ms), last))
}

/// Milliseconds since `t0`.
pub fn ms(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1000.0
}

/// `d` in whole microseconds (saturating at `u32::MAX`), for compact latency lists.
pub fn us(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

/// The index of the `p`-th percentile (nearest rank) in a sorted list of `len` figures;
/// `None` for an empty list.
pub fn nearest_rank(len: usize, p: f64) -> Option<usize> {
    if len == 0 {
        return None;
    }
    let rank = ((p / 100.0) * len as f64).ceil().max(1.0) as usize;
    Some(rank.min(len) - 1)
}

/// The `p`-th percentile (nearest rank) of `xs`, in any order; NaN for none.
pub fn percentile(xs: &[f64], p: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    nearest_rank(v.len(), p).map_or(f64::NAN, |i| v[i])
}

/// The `p`-th percentile (nearest rank) of sorted microseconds, in milliseconds; NaN for none.
pub fn percentile_us_as_ms(sorted: &[u32], p: f64) -> f64 {
    nearest_rank(sorted.len(), p).map_or(f64::NAN, |i| sorted[i] as f64 / 1000.0)
}

/// Peak resident set size of this process so far, in MB (VmHWM).
pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU time (user + system) this process has used, in seconds.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// Print one figure as a `key=value` line (what the scenario processes report).
pub fn emit(key: &str, value: f64) {
    println!("{key}={value}");
}

/// A figure as a JSON number (three decimals), or `null` when it is not finite.
pub fn jnum(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "null".into()
    }
}

/// A JSON string.
pub fn jstr(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let xs = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(percentile(&xs, 50.0), 3.0);
        assert_eq!(percentile(&xs, 0.0), 1.0);
        assert_eq!(percentile(&xs, 100.0), 5.0);
        assert!(percentile(&[], 50.0).is_nan());
        assert_eq!(percentile_us_as_ms(&[1000, 2000, 3000, 4000], 90.0), 4.0);
        assert_eq!(percentile_us_as_ms(&[1000, 2000, 3000, 4000], 50.0), 2.0);
        let s = Stats::new(vec![3.0, 1.0, 2.0, 10.0]);
        assert_eq!((s.median(), s.mean()), (2.5, 4.0));
        assert_eq!(jnum(f64::NAN), "null");
        assert_eq!(jstr("a\"\n"), "\"a\\\"\\u000a\"");
    }
}
