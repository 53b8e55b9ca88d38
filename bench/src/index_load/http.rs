//! The load generator's HTTP/1.1 client: keep-alive connections (reopened when the server
//! closes one), requests written by hand, responses parsed just enough to measure them.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::measure::{fail, Error};

/// One keep-alive HTTP/1.1 connection (reopened when the server closes it).
pub(crate) struct Conn {
    pub(crate) addr: String,
    pub(crate) stream: Option<TcpStream>,
    pub(crate) buf: Vec<u8>,
    pub(crate) len: usize,
    /// A new connection for every request (see `Conn::one_shot`).
    pub(crate) one_shot: bool,
}

/// A response: status and (when asked for) body.
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

impl Conn {
    pub(crate) fn new(addr: &str) -> Conn {
        Conn {
            addr: addr.to_string(),
            stream: None,
            buf: vec![0; 64 * 1024],
            len: 0,
            one_shot: false,
        }
    }

    /// A client that opens a new connection for every request. The metadata watch uses it:
    /// on a reused connection, a response a server writes in two pieces (head, then a file
    /// body) with Nagle's algorithm on waits for this side's delayed ACK, ~40 ms, which would
    /// swamp the latency being measured (tufpi sets TCP_NODELAY; the watch does not rely on it).
    pub(crate) fn one_shot(addr: &str) -> Conn {
        Conn {
            one_shot: true,
            ..Conn::new(addr)
        }
    }

    /// Send `req` (a whole request) and read the response. A request on a reused connection
    /// that the server had closed (nothing at all read back) is sent again once on a new one.
    pub(crate) async fn send(&mut self, req: &[u8], keep_body: bool) -> io::Result<Resp> {
        let reused = self.stream.is_some();
        match self.attempt(req, keep_body).await {
            Ok(r) => Ok(r),
            Err((e, got_bytes)) => {
                self.stream = None;
                if reused && !got_bytes {
                    self.attempt(req, keep_body).await.map_err(|(e, _)| {
                        self.stream = None;
                        e
                    })
                } else {
                    Err(e)
                }
            }
        }
    }

    pub(crate) async fn attempt(
        &mut self,
        req: &[u8],
        keep_body: bool,
    ) -> Result<Resp, (io::Error, bool)> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr)
                .await
                .map_err(|e| (e, false))?;
            s.set_nodelay(true).map_err(|e| (e, false))?;
            self.stream = Some(s);
            self.len = 0;
        }
        let stream = self.stream.as_mut().expect("connected");
        stream.write_all(req).await.map_err(|e| (e, false))?;
        self.read_response(keep_body).await
    }

    /// Read more bytes into the buffer; false at end of stream.
    pub(crate) async fn fill(&mut self) -> io::Result<bool> {
        if self.len == self.buf.len() {
            let n = self.buf.len() * 2;
            self.buf.resize(n, 0);
        }
        let stream = self.stream.as_mut().expect("connected");
        let n = stream.read(&mut self.buf[self.len..]).await?;
        self.len += n;
        Ok(n > 0)
    }

    /// Make at least `n` bytes available.
    pub(crate) async fn need(&mut self, n: usize) -> io::Result<()> {
        if self.buf.len() < n {
            self.buf.resize(n.next_power_of_two(), 0);
        }
        while self.len < n {
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(())
    }

    /// Drop the first `n` buffered bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }

    pub(crate) async fn read_response(
        &mut self,
        keep_body: bool,
    ) -> Result<Resp, (io::Error, bool)> {
        // Headers.
        let head_end = loop {
            if let Some(i) = find(&self.buf[..self.len], b"\r\n\r\n") {
                break i + 4;
            }
            let got = self.len > 0;
            match self.fill().await {
                Ok(true) => {}
                Ok(false) => return Err((io::ErrorKind::UnexpectedEof.into(), got)),
                Err(e) => return Err((e, got)),
            }
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .map_err(|_| (bad("non-UTF-8 response head"), true))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let mut parts = status_line.split(' ');
        let version = parts.next().unwrap_or("");
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| (bad("bad status line"), true))?;
        let mut close = version == "HTTP/1.0";
        let mut length: Option<usize> = None;
        let mut chunked = false;
        for line in lines {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse().ok();
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.to_ascii_lowercase().contains("chunked");
            } else if k.eq_ignore_ascii_case("connection") {
                let v = v.to_ascii_lowercase();
                if v.contains("close") {
                    close = true;
                } else if v.contains("keep-alive") {
                    close = false;
                }
            }
        }
        self.consume(head_end);
        let mut body = Vec::new();
        let e = |e: io::Error| (e, true);
        if status == 204 || status == 304 || (100..200).contains(&status) {
            // No body.
        } else if chunked {
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf[..self.len], b"\r\n") {
                        break i;
                    }
                    if !self.fill().await.map_err(e)? {
                        return Err(e(io::ErrorKind::UnexpectedEof.into()));
                    }
                };
                let size_text = std::str::from_utf8(&self.buf[..line_end]).unwrap_or("");
                let size_text = size_text.split(';').next().unwrap_or("").trim();
                let size =
                    usize::from_str_radix(size_text, 16).map_err(|_| e(bad("bad chunk size")))?;
                self.consume(line_end + 2);
                if size == 0 {
                    // Trailers up to the empty line.
                    loop {
                        if let Some(i) = find(&self.buf[..self.len], b"\r\n") {
                            self.consume(i + 2);
                            if i == 0 {
                                break;
                            }
                            continue;
                        }
                        if !self.fill().await.map_err(e)? {
                            return Err(e(io::ErrorKind::UnexpectedEof.into()));
                        }
                    }
                    break;
                }
                self.need(size + 2).await.map_err(e)?;
                if keep_body {
                    body.extend_from_slice(&self.buf[..size]);
                }
                self.consume(size + 2);
            }
        } else if let Some(n) = length {
            self.need(n).await.map_err(e)?;
            if keep_body {
                body.extend_from_slice(&self.buf[..n]);
            }
            self.consume(n);
        } else {
            // Until the server closes.
            while self.fill().await.map_err(e)? {}
            if keep_body {
                body.extend_from_slice(&self.buf[..self.len]);
            }
            self.len = 0;
            close = true;
        }
        if close || self.one_shot {
            self.stream = None;
            self.len = 0;
        }
        Ok(Resp { status, body })
    }
}

/// `http://HOST:PORT[/…]` → `HOST:PORT`.
pub(crate) fn host_port(url: &str) -> Result<String, Error> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| fail(format!("not an http:// URL: {url}")))?;
    Ok(rest.split('/').next().unwrap_or("").to_string())
}

pub(crate) fn get_request(host: &str, path: &str, accept: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tufpi-index-load\r\nAccept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

/// A current-thread runtime for the connections.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
