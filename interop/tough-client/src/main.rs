//! tough-client: an interop peer that downloads targets from a TUF repository with the `tough`
//! crate (awslabs/tough), so tufpi's repositories are checked against a second Rust client.
//!
//! ```text
//! tough-client --root ROOT.json --metadata-url URL --targets-url URL --datastore DIR \
//!     --out DIR NAME...
//! ```
//!
//! tough loads and verifies the whole repository (root chain, timestamp, snapshot, targets and
//! every delegated role), then each NAME is downloaded, verified by tough (length and sha256),
//! and written to `--out` as NAME percent-encoded whole (`packages/a b.whl` ->
//! `packages%2Fa%20b.whl`). Exit 0 when every NAME was saved; otherwise exit 1 with one line
//! per failure on stderr: `FAILED <NAME>: <tough's error, with its causes>`. Exit 2 on a usage
//! error.
//!
//! The transport is plain HTTP (ureq without TLS) behind tough's `Transport` trait; tough's own
//! `http` feature would pull in reqwest, rustls and a platform certificate verifier.

use std::error::Error as StdError;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use tough::{
    ExpirationEnforcement, Limits, RepositoryLoader, TargetName, Transport, TransportError,
    TransportErrorKind, TransportStream,
};
use url::Url;

const USAGE: &str = "usage: tough-client --root ROOT.json --metadata-url URL --targets-url URL \
                     --datastore DIR --out DIR NAME...";

/// Plain-HTTP transport for tough (loopback test servers: no TLS, no proxy).
#[derive(Debug, Clone)]
struct HttpTransport {
    agent: ureq::Agent,
}

impl HttpTransport {
    fn new() -> Self {
        let config = ureq::Agent::config_builder()
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(120)))
            .build();
        Self {
            agent: config.into(),
        }
    }
}

/// A response body read in chunks as tough pulls on the stream (so tough's size caps stop an
/// endless body). The reader sits in a mutex only to make the stream `Sync`, as tough requires.
struct BodyChunks {
    url: String,
    reader: Mutex<ureq::BodyReader<'static>>,
    done: bool,
}

impl Iterator for BodyChunks {
    type Item = Result<Bytes, TransportError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut buf = vec![0u8; 64 * 1024];
        let read = self
            .reader
            .get_mut()
            .expect("body reader lock")
            .read(&mut buf);
        match read {
            Ok(0) => {
                self.done = true;
                None
            }
            Ok(n) => {
                buf.truncate(n);
                Some(Ok(Bytes::from(buf)))
            }
            Err(e) => {
                self.done = true;
                Some(Err(TransportError::new_with_cause(
                    TransportErrorKind::Other,
                    &self.url,
                    e,
                )))
            }
        }
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn fetch(&self, url: Url) -> Result<TransportStream, TransportError> {
        if url.scheme() != "http" {
            return Err(TransportError::new(
                TransportErrorKind::UnsupportedUrlScheme,
                url,
            ));
        }
        // Blocking I/O on the (single-threaded) runtime: tough fetches one file at a time.
        match self.agent.get(url.as_str()).call() {
            Ok(response) => {
                let chunks = BodyChunks {
                    url: url.to_string(),
                    reader: Mutex::new(response.into_body().into_reader()),
                    done: false,
                };
                Ok(Box::pin(futures_util::stream::iter(chunks)))
            }
            // As tough's own HTTP transport: 403, 404 and 410 mean "no such file" (this is
            // how the client learns there is no newer root).
            Err(ureq::Error::StatusCode(code)) if matches!(code, 403 | 404 | 410) => {
                Err(TransportError::new_with_cause(
                    TransportErrorKind::FileNotFound,
                    url,
                    format!("HTTP {code}"),
                ))
            }
            Err(ureq::Error::StatusCode(code)) => Err(TransportError::new_with_cause(
                TransportErrorKind::Other,
                url,
                format!("HTTP {code}"),
            )),
            Err(e) => Err(TransportError::new_with_cause(
                TransportErrorKind::Other,
                url,
                e,
            )),
        }
    }
}

struct Args {
    root: PathBuf,
    metadata_url: Url,
    targets_url: Url,
    datastore: PathBuf,
    out: PathBuf,
    names: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut root = None;
    let mut metadata_url = None;
    let mut targets_url = None;
    let mut datastore = None;
    let mut out = None;
    let mut names = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--root" => root = Some(PathBuf::from(value("--root")?)),
            "--metadata-url" => metadata_url = Some(value("--metadata-url")?),
            "--targets-url" => targets_url = Some(value("--targets-url")?),
            "--datastore" => datastore = Some(PathBuf::from(value("--datastore")?)),
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "-h" | "--help" => return Err(String::new()),
            "--" => names.extend(it.by_ref()),
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            _ => names.push(arg),
        }
    }
    let url = |s: Option<String>, flag: &str| -> Result<Url, String> {
        let s = s.ok_or_else(|| format!("{flag} is required"))?;
        Url::parse(&s).map_err(|e| format!("{flag} {s}: {e}"))
    };
    if names.is_empty() {
        return Err("no target NAME given".into());
    }
    Ok(Args {
        root: root.ok_or("--root is required")?,
        metadata_url: url(metadata_url, "--metadata-url")?,
        targets_url: url(targets_url, "--targets-url")?,
        datastore: datastore.ok_or("--datastore is required")?,
        out: out.ok_or("--out is required")?,
        names,
    })
}

/// An error with its chain of causes on one line (tough's errors keep the detail in `source`).
fn chain(e: &dyn StdError) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s.replace('\n', " ")
}

/// The file a target is saved as, in `out`: its whole name percent-encoded (every byte but
/// ASCII letters, digits and `_.-~`, as Python's `urllib.parse.quote(name, safe="")`), so
/// names never climb out of `out` and targets with one base name in two directories differ.
fn out_path(out: &Path, name: &str) -> PathBuf {
    let mut file = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) {
            file.push(b as char);
        } else {
            file.push_str(&format!("%{b:02X}"));
        }
    }
    out.join(file)
}

async fn download(repo: &tough::Repository, raw: &str, out: &Path) -> Result<(), String> {
    let name = TargetName::new(raw).map_err(|e| chain(&e))?;
    let dest = out_path(out, raw);
    let mut stream = repo
        .read_target(&name)
        .await
        .map_err(|e| chain(&e))?
        .ok_or_else(|| "not found in the repository's targets metadata".to_string())?;
    // Written to a temporary file and renamed only once tough has checked the whole stream.
    let tmp = out.join(format!(
        ".{}.part",
        dest.file_name().unwrap().to_string_lossy()
    ));
    let result = async {
        let mut f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| chain(&e))?;
            f.write_all(&chunk)
                .map_err(|e| format!("{}: {e}", tmp.display()))?;
        }
        f.sync_all()
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &dest).map_err(|e| format!("{}: {e}", dest.display()))
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

async fn run(args: Args) -> Vec<(String, String)> {
    let fail_all = |msg: String| -> Vec<(String, String)> {
        args.names
            .iter()
            .map(|n| (n.clone(), msg.clone()))
            .collect()
    };
    let root = match std::fs::read(&args.root) {
        Ok(b) => b,
        Err(e) => return fail_all(format!("reading {}: {e}", args.root.display())),
    };
    for dir in [&args.datastore, &args.out] {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return fail_all(format!("creating {}: {e}", dir.display()));
        }
    }
    // tough's default limits, as any tough user gets them (snapshot.json up to 1 MiB unless
    // timestamp.json gives its length; a 16,384-bin PEP 458 snapshot is about 0.5 MiB).
    let limits = Limits::default();
    let repo = RepositoryLoader::new(&root, args.metadata_url.clone(), args.targets_url.clone())
        .transport(HttpTransport::new())
        .datastore(&args.datastore)
        .limits(limits)
        .expiration_enforcement(ExpirationEnforcement::Safe)
        .load()
        .await;
    let repo = match repo {
        Ok(r) => r,
        Err(e) => return fail_all(format!("loading the repository: {}", chain(&e))),
    };
    let mut failures = Vec::new();
    for name in &args.names {
        if let Err(e) = download(&repo, name, &args.out).await {
            failures.push((name.clone(), e));
        }
    }
    failures
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let failures = rt.block_on(run(args));
    if failures.is_empty() {
        return ExitCode::SUCCESS;
    }
    for (name, err) in &failures {
        eprintln!("FAILED {name}: {err}");
    }
    ExitCode::from(1)
}
