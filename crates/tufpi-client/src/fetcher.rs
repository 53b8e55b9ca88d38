//! Fetchers: HTTP(S) and `file://` behind one trait, each refusing more than `max_length`
//! bytes (endless-data defence) and bounded in time (slow-retrieval defence). Every
//! `FetchError` is built with the URL redacted (`crate::redact`): no userinfo, query or
//! fragment reaches an error text.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::redact::{redact, redact_url};

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// 403/404 (or a missing file): the repository does not have it.
    #[error("{url}: not found (status {status})")]
    NotFound {
        /// URL fetched.
        url: String,
        /// HTTP status (404 for missing files).
        status: u16,
    },
    /// Another unsuccessful HTTP status.
    #[error("{url}: HTTP status {status}")]
    Status {
        /// URL fetched.
        url: String,
        /// HTTP status.
        status: u16,
    },
    /// More bytes than allowed.
    #[error("{url}: more than {max_length} bytes: endless data refused")]
    TooLong {
        /// URL fetched.
        url: String,
        /// The cap.
        max_length: u64,
    },
    /// The download took too long.
    #[error("{url}: timed out after {secs} s: slow retrieval refused")]
    Timeout {
        /// URL fetched.
        url: String,
        /// The limit.
        secs: u64,
    },
    /// Any other transport failure.
    #[error("{url}: {message}")]
    Transport {
        /// URL fetched.
        url: String,
        /// What happened.
        message: String,
    },
}

impl FetchError {
    /// Whether the resource does not exist (403/404), which ends e.g. the root chain.
    pub fn is_not_found(&self) -> bool {
        matches!(self, FetchError::NotFound { .. })
    }
}

/// Downloads bytes, never more than `max_length`.
pub trait Fetcher: Send + Sync {
    /// Fetch `url`, refusing more than `max_length` bytes.
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError>;
}

/// Read at most `max_length` bytes from `r`, failing past it or past `deadline`.
fn read_capped(
    mut r: impl Read,
    url: &str,
    max_length: u64,
    deadline: Option<(Instant, Duration)>,
    expected: Option<u64>,
) -> Result<Vec<u8>, FetchError> {
    // Sized up front when the length is known: growing by doubling to a large file costs
    // more in fresh pages and copies than the download itself.
    let size = expected.unwrap_or(0).min(max_length).min(1 << 30);
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(FetchError::Timeout {
                    url: redact_url(url),
                    secs: deadline.map(|d| d.1.as_secs()).unwrap_or(0),
                })
            }
            Err(e) => {
                // ureq reports a body-read deadline as an io::Error of kind TimedOut/WouldBlock
                // (sometimes wrapped).
                let timed_out = is_timeout(&e)
                    || std::error::Error::source(&e)
                        .and_then(|s| s.downcast_ref::<std::io::Error>())
                        .is_some_and(is_timeout);
                if timed_out || e.to_string().contains("timed out") {
                    return Err(FetchError::Timeout {
                        url: redact_url(url),
                        secs: deadline.map(|d| d.1.as_secs()).unwrap_or(0),
                    });
                }
                return Err(FetchError::Transport {
                    url: redact_url(url),
                    message: redact(&e.to_string()),
                });
            }
        };
        if n == 0 {
            return Ok(out);
        }
        if out.len() as u64 + n as u64 > max_length {
            return Err(FetchError::TooLong {
                url: redact_url(url),
                max_length,
            });
        }
        out.extend_from_slice(&buf[..n]);
        if let Some((start, limit)) = deadline {
            if start.elapsed() > limit {
                return Err(FetchError::Timeout {
                    url: redact_url(url),
                    secs: limit.as_secs(),
                });
            }
        }
    }
}

/// HTTP(S) fetcher (ureq, rustls) with connect and overall timeouts. A plain blocking
/// client: no async runtime to start, which matters for a CLI run that lasts milliseconds.
pub struct HttpFetcher {
    agent: ureq::Agent,
    timeout: Duration,
}

impl HttpFetcher {
    /// A fetcher with the given connect timeout and overall per-download timeout.
    pub fn new(connect_timeout: Duration, timeout: Duration) -> Result<HttpFetcher, FetchError> {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(connect_timeout)
            .timeout(timeout)
            .user_agent(concat!("tufpi/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(HttpFetcher { agent, timeout })
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

impl Fetcher for HttpFetcher {
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        let start = Instant::now();
        let timeout = || FetchError::Timeout {
            url: redact_url(url),
            secs: self.timeout.as_secs(),
        };
        let resp = match self.agent.get(url).call() {
            Ok(r) => r,
            Err(ureq::Error::Status(status, _)) if status == 403 || status == 404 => {
                return Err(FetchError::NotFound {
                    url: redact_url(url),
                    status,
                })
            }
            Err(ureq::Error::Status(status, _)) => {
                return Err(FetchError::Status {
                    url: redact_url(url),
                    status,
                })
            }
            Err(ureq::Error::Transport(t)) => {
                let timed_out = std::error::Error::source(&t)
                    .and_then(|s| s.downcast_ref::<std::io::Error>())
                    .is_some_and(is_timeout);
                return Err(if timed_out {
                    timeout()
                } else {
                    FetchError::Transport {
                        url: redact_url(url),
                        message: redact(&t.to_string()),
                    }
                });
            }
        };
        let declared = resp
            .header("Content-Length")
            .and_then(|l| l.trim().parse::<u64>().ok());
        if declared.is_some_and(|l| l > max_length) {
            return Err(FetchError::TooLong {
                url: redact_url(url),
                max_length,
            });
        }
        read_capped(
            resp.into_reader(),
            url,
            max_length,
            Some((start, self.timeout)),
            declared,
        )
    }
}

/// `file://` fetcher, for local mirrors and tests.
pub struct FileFetcher;

impl Fetcher for FileFetcher {
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        let parsed = url::Url::parse(url).map_err(|e| FetchError::Transport {
            url: redact_url(url),
            message: redact(&e.to_string()),
        })?;
        let path = parsed.to_file_path().map_err(|()| FetchError::Transport {
            url: redact_url(url),
            message: "not a local file URL".into(),
        })?;
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(FetchError::NotFound {
                    url: redact_url(url),
                    status: 404,
                })
            }
            Err(e) => {
                return Err(FetchError::Transport {
                    url: redact_url(url),
                    message: redact(&e.to_string()),
                })
            }
        };
        let len = file.metadata().ok().map(|m| m.len());
        read_capped(file, url, max_length, None, len)
    }
}

/// Picks the fetcher by URL scheme: `file://` or HTTP(S).
pub struct AnyFetcher {
    http: HttpFetcher,
}

impl AnyFetcher {
    /// A fetcher for `http`, `https` and `file` URLs.
    pub fn new(connect_timeout: Duration, timeout: Duration) -> Result<AnyFetcher, FetchError> {
        Ok(AnyFetcher {
            http: HttpFetcher::new(connect_timeout, timeout)?,
        })
    }
}

impl Fetcher for AnyFetcher {
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        if url.starts_with("file:") {
            FileFetcher.fetch(url, max_length)
        } else {
            self.http.fetch(url, max_length)
        }
    }
}
