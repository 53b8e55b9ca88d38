//! The CLI's shared vocabulary, spelt once: durations as operators write them, the repository
//! and data directories, and `ROLE=N` thresholds.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;

/// A duration as operators write it (`90s`, `10m`, `6h`, `1d`, `200ms`, `1h 30m`); a bare
/// number is seconds, as these options took before they took units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Span, String> {
        let s = s.trim();
        if let Ok(secs) = s.parse::<f64>() {
            return Duration::try_from_secs_f64(secs)
                .map(Span)
                .map_err(|e| format!("{s:?}: {e}"));
        }
        humantime::parse_duration(s)
            .map(Span)
            .map_err(|e| format!("{s:?}: {e} (e.g. 90s, 10m, 6h, 1d)"))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Span {
    /// `secs` seconds.
    pub const fn secs(secs: u64) -> Span {
        Span(Duration::from_secs(secs))
    }

    /// This duration, or the one an older spelling gave in `unit`s (hidden aliases such as
    /// `--retention-secs 3600` keep working).
    pub fn or_old(self, old: Option<u64>, unit: Duration) -> Duration {
        old.map_or(self.0, |n| {
            unit.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX))
        })
    }
}

/// `--repo DIR`: a repository made by `tufpi repo init`.
#[derive(Args, Debug, Clone)]
pub struct RepoDir {
    /// Repository directory.
    #[arg(id = "repo", long = "repo", value_name = "DIR")]
    pub path: PathBuf,
    /// Scale-out: state and metadata elsewhere (DIR then holds the keys).
    #[command(flatten)]
    pub deployment: Deployment,
}

/// `--data-dir DIR`: the data directory of `tufpi serve`.
#[derive(Args, Debug, Clone)]
pub struct DataDir {
    /// The index's data directory (`tufpi serve` creates it, with a development-key
    /// repository, if it is empty).
    #[arg(
        id = "data_dir",
        long = "data-dir",
        value_name = "DIR",
        default_value = "./tufpi-data"
    )]
    pub path: PathBuf,
    /// Scale-out: state and files elsewhere (DIR then holds the keys and upload temp files).
    #[command(flatten)]
    pub deployment: Deployment,
}

/// Where state and bytes live: `--database` and `--storage` (scale-out), or, without them,
/// the directory's SQLite database and files (embedded, the default).
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployment {
    /// PostgreSQL URL (`postgres://user@host/db?sslmode=require`) for the index's and the
    /// repository's state; without it, SQLite files in the directory.
    #[arg(
        id = "database",
        long = "database",
        env = "TUFPI_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// Where files, pages and TUF metadata live: `s3://BUCKET[/PREFIX]` (credentials, region
    /// and endpoint as the AWS tools read them) or `file:///path`; without it, the directory.
    #[arg(
        id = "storage",
        long = "storage",
        env = "TUFPI_STORAGE_URL",
        value_name = "URL"
    )]
    pub storage: Option<String>,
    /// The endpoint of an S3-compatible server (`http://127.0.0.1:9000`), instead of AWS's.
    #[arg(
        id = "storage_endpoint",
        long = "storage-endpoint",
        env = "TUFPI_STORAGE_ENDPOINT",
        value_name = "URL",
        requires = "storage"
    )]
    pub storage_endpoint: Option<String>,
}

impl Deployment {
    /// Whether anything lives outside the directory.
    pub fn is_scaled_out(&self) -> bool {
        self.database.is_some() || self.storage.is_some()
    }
}

/// `ROLE=N`: a role's signature threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threshold {
    /// The role.
    pub role: String,
    /// Signatures required.
    pub n: u64,
}

impl FromStr for Threshold {
    type Err = String;
    fn from_str(s: &str) -> Result<Threshold, String> {
        let (role, n) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected ROLE=N, e.g. root=2"))?;
        let n = n
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{s:?}: the threshold must be a whole number of at least 1"))?;
        Ok(Threshold {
            role: role.trim().to_string(),
            n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_take_units_and_bare_seconds() {
        let d = |s: &str| s.parse::<Span>().unwrap().0;
        assert_eq!(d("90s"), Duration::from_secs(90));
        assert_eq!(d("10m"), Duration::from_secs(600));
        assert_eq!(d("6h"), Duration::from_secs(6 * 3600));
        assert_eq!(d("1d"), Duration::from_secs(86_400));
        assert_eq!(d("200ms"), Duration::from_millis(200));
        assert_eq!(d("1h 30m"), Duration::from_secs(5400));
        assert_eq!(d("120"), Duration::from_secs(120));
        assert_eq!(d("2.5"), Duration::from_millis(2500));
        assert!("soon".parse::<Span>().unwrap_err().contains("e.g. 90s"));
        assert!("-1".parse::<Span>().is_err());
        assert_eq!(Span::secs(3600).to_string(), "1h");
        assert_eq!(
            Span::secs(5).or_old(Some(2), Duration::from_secs(3600)),
            Duration::from_secs(7200)
        );
        assert_eq!(
            Span::secs(5).or_old(None, Duration::from_secs(3600)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn thresholds_are_role_equals_n() {
        assert_eq!(
            "root=2".parse::<Threshold>().unwrap(),
            Threshold {
                role: "root".into(),
                n: 2
            }
        );
        assert!("root".parse::<Threshold>().unwrap_err().contains("ROLE=N"));
        assert!("root=0"
            .parse::<Threshold>()
            .unwrap_err()
            .contains("at least 1"));
        assert!("root=x".parse::<Threshold>().is_err());
    }
}
