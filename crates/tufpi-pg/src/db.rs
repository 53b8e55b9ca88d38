//! Connecting: a pool of synchronous connections (r2d2 over the `postgres` crate), TLS by
//! rustls as `sslmode` asks, connect and statement timeouts, and the one function that
//! redacts a connection string's password wherever it is shown.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use r2d2_postgres::PostgresConnectionManager;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::PgError;

/// The connection manager of the pool.
pub type Manager = PostgresConnectionManager<MakeRustlsConnect>;
/// A connection taken from the pool (derefs to `postgres::Client`); back to the pool on drop.
pub type Conn = r2d2::PooledConnection<Manager>;

/// How the pool connects; `Options::default()` is what `Database::connect` uses.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most connections open at once.
    pub max_size: u32,
    /// How long to wait for a connection (TCP + TLS + auth, or a free one from the pool).
    pub connect_timeout: Duration,
    /// Server-side limit on one statement (`statement_timeout`); zero for none.
    pub statement_timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_size: 16,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
        }
    }
}

/// A pool of connections to one database. Cheap to clone (the clones share the pool).
#[derive(Clone)]
pub struct Database {
    pool: r2d2::Pool<Manager>,
    redacted: Arc<str>,
    /// How the pool connects, for a connection of its own ([`Database::connect_dedicated`]).
    direct: Arc<(postgres::Config, MakeRustlsConnect)>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("url", &self.redacted)
            .finish()
    }
}

/// A pooled connection idle longer than this is checked before it is handed out.
pub const VALIDATE_IDLE: Duration = Duration::from_secs(1);

/// When a pooled connection was last handed out.
struct LastCheckout(std::time::Instant);

/// Sets the statement timeout on each new connection. A session `SET` rather than the
/// startup `options` parameter, which PgBouncer refuses unless told to ignore it.
#[derive(Debug)]
struct Customizer {
    statement_timeout_ms: u128,
}

impl r2d2::CustomizeConnection<postgres::Client, postgres::Error> for Customizer {
    fn on_acquire(&self, conn: &mut postgres::Client) -> Result<(), postgres::Error> {
        conn.batch_execute(&format!(
            "SET statement_timeout = {}",
            self.statement_timeout_ms
        ))
    }
}

impl Database {
    /// Connect to `url` (`postgres://user:password@host:port/db?sslmode=…`, or libpq's
    /// `key=value` form) with the default options; fails `Unavailable` if no connection can
    /// be made within the connect timeout.
    pub fn connect(url: &str) -> Result<Database, PgError> {
        Database::connect_with(url, &Options::default())
    }

    /// Connect to `url` with `opts`.
    pub fn connect_with(url: &str, opts: &Options) -> Result<Database, PgError> {
        let redacted: Arc<str> = redact_url(url).into();
        let (config, tls) = parse(url, &redacted, opts)?;
        // One connection made directly first: the pool would report any failure (a wrong
        // password, an unknown database) only as a timeout, after waiting for it; this
        // says what is wrong at once, and whether it is worth a retry.
        config
            .connect(tls.clone())
            .map_err(|e| with_url(PgError::from(e), &redacted))?;
        let direct = Arc::new((config.clone(), tls.clone()));
        let manager = PostgresConnectionManager::new(config, tls);
        let pool = r2d2::Pool::builder()
            .max_size(opts.max_size.max(1))
            // `get` checks connections that sat idle instead (see there).
            .test_on_check_out(false)
            .min_idle(Some(0))
            .connection_timeout(opts.connect_timeout)
            .connection_customizer(Box::new(Customizer {
                statement_timeout_ms: opts.statement_timeout.as_millis(),
            }))
            .build_unchecked(manager);
        Ok(Database {
            pool,
            redacted,
            direct,
        })
    }

    /// A connection of its own, outside the pool (a session that keeps state, such as a
    /// `LISTEN`); `Unavailable` if it cannot be made within the connect timeout.
    pub fn connect_dedicated(&self) -> Result<postgres::Client, PgError> {
        let (config, tls) = &*self.direct;
        config
            .connect(tls.clone())
            .map_err(|e| with_url(PgError::from(e), &self.redacted))
    }

    /// A connection from the pool; `Unavailable` if none can be had within the timeout.
    ///
    /// A connection used within the last [`VALIDATE_IDLE`] is handed out as is; one idle
    /// longer (the server may have restarted meanwhile) is checked first with an empty
    /// query, and a dead one is dropped for another. (The pool's own check-out test would
    /// cost a round trip per use, doubling those of a busy replica.)
    pub fn get(&self) -> Result<Conn, PgError> {
        // More than the pool holds: every idle connection may be dead after a restart.
        for _ in 0..=self.pool.max_size() {
            let mut conn = self.pool.get().map_err(|e| PgError::Unavailable {
                detail: format!("{}: {e}", self.redacted),
                source: Some(Box::new(e)),
            })?;
            let now = std::time::Instant::now();
            let fresh = r2d2::PooledConnection::extensions(&conn)
                .get::<LastCheckout>()
                .is_some_and(|t| now.duration_since(t.0) < VALIDATE_IDLE);
            if fresh || conn.simple_query("").is_ok() {
                r2d2::PooledConnection::extensions_mut(&mut conn).insert(LastCheckout(now));
                return Ok(conn);
            }
            // Dead (closed now): dropped by the pool when returned.
        }
        Err(PgError::Unavailable {
            detail: format!("{}: no live connection", self.redacted),
            source: None,
        })
    }

    /// The connection string, password redacted: the form to print or log.
    pub fn url_redacted(&self) -> &str {
        &self.redacted
    }
}

/// `e` with the (redacted) connection string in front of its detail.
fn with_url(e: PgError, redacted: &str) -> PgError {
    match e {
        PgError::Unavailable { detail, source } => PgError::Unavailable {
            detail: format!("{redacted}: {detail}"),
            source,
        },
        PgError::Db { detail, source } => PgError::Db {
            detail: format!("{redacted}: {detail}"),
            source,
        },
        e => e,
    }
}

/// The driver's configuration and TLS connector for `url`. `sslmode` `disable`, `prefer`
/// (the default) and `require` behave as in libpq: the latter two encrypt without checking
/// the server's certificate. `verify-full` checks it (chain to the Web PKI roots or to
/// `sslrootcert`, and the host name) as libpq does.
fn parse(
    url: &str,
    redacted: &str,
    opts: &Options,
) -> Result<(postgres::Config, MakeRustlsConnect), PgError> {
    let bad = |detail: String| PgError::Config {
        url: redacted.to_string(),
        detail,
    };
    let (rest, sslmode, rootcert) = take_tls_params(url);
    let verify = match sslmode.as_deref() {
        Some("verify-full") => true,
        Some("verify-ca") => {
            return Err(bad(
                "sslmode=verify-ca is not supported: use verify-full".into()
            ))
        }
        Some(m @ ("disable" | "prefer" | "require")) => {
            // Back into the string: the driver handles these itself.
            return finish(
                &with_param(&rest, "sslmode", m),
                false,
                rootcert,
                opts,
                &bad,
            );
        }
        Some(m) => return Err(bad(format!("unknown sslmode {m:?}"))),
        None => false,
    };
    let rest = if verify {
        with_param(&rest, "sslmode", "require")
    } else {
        rest
    };
    finish(&rest, verify, rootcert, opts, &bad)
}

fn finish(
    url: &str,
    verify: bool,
    rootcert: Option<String>,
    opts: &Options,
    bad: &dyn Fn(String) -> PgError,
) -> Result<(postgres::Config, MakeRustlsConnect), PgError> {
    let mut config = postgres::Config::from_str(url).map_err(|e| bad(crate::describe(&e)))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(opts.connect_timeout);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Tls(e.to_string()))?;
    let tls = if verify {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = rootcert {
            let pem = std::fs::read(&path)
                .map_err(|e| PgError::Tls(format!("sslrootcert {path}: {e}")))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| PgError::Tls(format!("sslrootcert {path}: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| PgError::Tls(format!("sslrootcert {path}: {e}")))?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth()
    };
    Ok((config, MakeRustlsConnect::new(tls)))
}

/// libpq's `prefer`/`require`: the channel is encrypted and the handshake's signatures are
/// checked, but the certificate is not (libpq checks it only for verify-ca/verify-full).
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// `url` without its `sslmode` and `sslrootcert` parameters, and their values.
fn take_tls_params(url: &str) -> (String, Option<String>, Option<String>) {
    let (mut mode, mut root) = (None, None);
    let mut keep = |k: &str, v: &str| match k {
        "sslmode" => {
            mode = Some(v.to_string());
            false
        }
        "sslrootcert" => {
            root = Some(v.to_string());
            false
        }
        _ => true,
    };
    let rest = if is_url(url) {
        match url.split_once('?') {
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|p| {
                        let (k, v) = p.split_once('=').unwrap_or((p, ""));
                        keep(k, v)
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => url.to_string(),
        }
    } else {
        url.split_whitespace()
            .filter(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                keep(k.trim(), v.trim())
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    (rest, mode, root)
}

/// `url` with `key=value` added.
fn with_param(url: &str, key: &str, value: &str) -> String {
    if is_url(url) {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{key}={value}")
    } else {
        format!("{url} {key}={value}")
    }
}

/// The connection string with any password replaced by `***`: in the URL's user info, in a
/// `password=` query parameter, or in libpq's `password=…` key-value form. The one place
/// that redacts: print or log a connection string only through it.
pub fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://").filter(|_| is_url(url)) {
        let head = &url[..scheme_end + 3];
        let rest = &url[scheme_end + 3..];
        let (before_query, query) = match rest.find('?') {
            Some(q) => (&rest[..q], Some(&rest[q + 1..])),
            None => (rest, None),
        };
        // The user info ends at the authority's last '@' (a password may hold '@' or '/').
        let mut out = String::from(head);
        match before_query.rfind('@') {
            Some(at) => {
                let userinfo = &before_query[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&before_query[at..]);
            }
            None => out.push_str(before_query),
        }
        if let Some(q) = query {
            out.push('?');
            let parts: Vec<String> = q
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_string(),
                })
                .collect();
            out.push_str(&parts.join("&"));
        }
        return out;
    }
    redact_key_value(url)
}

/// libpq's `key=value` form: the value after `password =` (quoted or bare) becomes `***`.
fn redact_key_value(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::new();
    let mut i = 0;
    while let Some(found) = lower[i..].find("password") {
        let start = i + found;
        let after = start + "password".len();
        let bytes = s.as_bytes();
        let mut j = after;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        let boundary = start == 0 || bytes[start - 1].is_ascii_whitespace();
        if !boundary || j >= bytes.len() || bytes[j] != b'=' {
            out.push_str(&s[i..after]);
            i = after;
            continue;
        }
        j += 1;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        let end = if j < bytes.len() && bytes[j] == b'\'' {
            // Quoted: up to the closing quote not escaped by a backslash.
            let mut k = j + 1;
            while k < bytes.len() && bytes[k] != b'\'' {
                k += if bytes[k] == b'\\' { 2 } else { 1 };
            }
            (k + 1).min(bytes.len())
        } else {
            let mut k = j;
            while k < bytes.len() && !bytes[k].is_ascii_whitespace() {
                k += 1;
            }
            k
        };
        out.push_str(&s[i..j]);
        out.push_str("***");
        i = end;
    }
    out.push_str(&s[i..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_in_every_form() {
        assert_eq!(
            redact_url("postgres://u:p@ss/w@h:5432/db?sslmode=require"),
            "postgres://u:***@h:5432/db?sslmode=require"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("postgresql://h/db?user=u&password=secret&x=1"),
            "postgresql://h/db?user=u&password=***&x=1"
        );
        assert_eq!(
            redact_url("host=h password = 'a b\\' c' user=u"),
            "host=h password = *** user=u"
        );
        assert_eq!(redact_url("host=h password=secret"), "host=h password=***");
        assert_eq!(redact_url("host=h mypassword=x"), "host=h mypassword=x");
    }

    #[test]
    fn tls_parameters_are_taken_out() {
        let (rest, mode, root) =
            take_tls_params("postgres://h/db?sslmode=verify-full&sslrootcert=/ca.pem&a=b");
        assert_eq!(rest, "postgres://h/db?a=b");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/ca.pem"));
        let (rest, mode, _) = take_tls_params("host=h sslmode=disable");
        assert_eq!(
            (rest.as_str(), mode.as_deref()),
            ("host=h", Some("disable"))
        );
    }
}
