//! Serving HTTP/1 to the open internet: a cap on open connections (under pressure the
//! longest-idle connection makes room for a new one, so clients that connect and say nothing
//! cannot lock others out), a deadline for each request head (which is also the keep-alive
//! idle timeout), a deadline between the chunks of a request body, a deadline for a stalled
//! write, and file descriptors kept back for the rest of the process (the publisher must
//! always be able to open a bin).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

/// Connection limits and timeouts of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most connections open at once (lowered at start to fit the file-descriptor limit
    /// less [`Limits::reserved_fds`]).
    pub max_connections: usize,
    /// Time allowed for a complete request head, counted from the connection's opening or
    /// from the end of its previous response (so also the keep-alive idle timeout).
    pub header_timeout: Duration,
    /// Longest wait for the next chunk of a request body.
    pub body_timeout: Duration,
    /// Longest a response write may stall (a client that stops reading).
    pub write_timeout: Duration,
    /// File descriptors never handed to connections: the publisher, the databases, the
    /// cache and upstream fetches need them.
    pub reserved_fds: u64,
    /// Largest request head, bytes.
    pub max_head_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4096,
            header_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(60),
            reserved_fds: 256,
            max_head_bytes: 64 << 10,
        }
    }
}

/// Raise the soft open-file limit to the hard one; returns the soft limit now in force.
fn raise_fd_limit() -> Option<u64> {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        // A very high hard limit (some systems say "infinity") is no reason to take it all.
        let want = lim.rlim_max.min(1 << 20);
        if lim.rlim_cur < want {
            let raised = libc::rlimit {
                rlim_cur: want,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = want;
            }
        }
        Some(lim.rlim_cur)
    }
}

/// The connection cap in force: the configured one, lowered to what the file-descriptor
/// limit allows once `reserved` are kept back (at least 16).
pub fn effective_max_connections(limits: &Limits) -> usize {
    match raise_fd_limit() {
        Some(soft) => {
            let room = soft.saturating_sub(limits.reserved_fds).max(16);
            limits.max_connections.min(room as usize).max(1)
        }
        None => limits.max_connections.max(1),
    }
}

/// One open connection, as the accept loop sees it.
struct Conn {
    /// Requests in flight (head read, response not yet fully written).
    busy: AtomicUsize,
    /// When it last became idle, ms since the server started.
    idle_since: AtomicU64,
    /// Chosen to make room: closing.
    evicted: AtomicBool,
    /// Has sent at least one complete request head.
    served: AtomicBool,
    close: tokio::sync::Notify,
}

struct Registry {
    started: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register a new connection if there is room, closing the longest-idle one to make it;
    /// `None` when every connection is busy.
    fn admit(&self, max: usize) -> Option<(u64, Arc<Conn>)> {
        let mut conns = self.lock();
        let live = conns
            .values()
            .filter(|c| !c.evicted.load(Ordering::Relaxed))
            .count();
        if live >= max {
            let victim = conns
                .values()
                .filter(|c| {
                    !c.evicted.load(Ordering::Relaxed) && c.busy.load(Ordering::Acquire) == 0
                })
                // Connections that never finished a request head go first (a client that
                // connects and says nothing can't make room by closing an honest keep-alive
                // connection), the longest idle of them first.
                .min_by_key(|c| {
                    (
                        c.served.load(Ordering::Relaxed),
                        c.idle_since.load(Ordering::Relaxed),
                    )
                })?;
            victim.evicted.store(true, Ordering::Relaxed);
            victim.close.notify_one();
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.now_ms()),
            evicted: AtomicBool::new(false),
            served: AtomicBool::new(false),
            close: tokio::sync::Notify::new(),
        });
        conns.insert(id, conn.clone());
        Some((id, conn))
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }
}

/// Marks its connection busy while alive: from the request head to the end of the response.
struct Busy {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl Busy {
    fn new(conn: Arc<Conn>, registry: Arc<Registry>) -> Busy {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        conn.served.store(true, Ordering::Relaxed);
        Busy { conn, registry }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.conn
            .idle_since
            .store(self.registry.now_ms(), Ordering::Relaxed);
        self.conn.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its connection busy until it is written (or dropped).
struct Tracked {
    inner: Body,
    _busy: Busy,
}

impl hyper::body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A socket whose writes fail once they have made no progress for the write timeout.
struct StallGuard {
    io: TcpStream,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl StallGuard {
    /// Map a pending write to an error once it has been pending for the timeout.
    fn check<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client stopped reading: write timed out",
                    )));
                }
                Poll::Pending
            }
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl AsyncRead for StallGuard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for StallGuard {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.check(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.check(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.check(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_shutdown(cx);
        self.check(cx, r)
    }
}

/// Whether an accept error means the process (not the one connection) is short of something.
fn resource_exhausted(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Pending connections the kernel may queue for `accept` (it caps this at `somaxconn`). A
/// short queue (128) overflows under a flood of new connections, and every honest SYN it drops
/// costs its client a one-second retransmit.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Listen on `addr` (`HOST:PORT`) with a [`LISTEN_BACKLOG`]-long accept queue.
pub async fn bind(addr: &str) -> io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(LISTEN_BACKLOG)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
}

/// How long open connections get to finish once shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serve `app` on `listener` within `limits` until `shutdown` resolves; then stop accepting,
/// let requests in flight finish (up to 10 s) and return.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let max = effective_max_connections(&limits);
    tracing::info!(
        max_connections = max,
        header_timeout_s = limits.header_timeout.as_secs_f64(),
        body_timeout_s = limits.body_timeout.as_secs_f64(),
        write_timeout_s = limits.write_timeout.as_secs_f64(),
        "connection limits"
    );
    let registry = Arc::new(Registry {
        started: Instant::now(),
        next_id: AtomicU64::new(0),
        conns: Mutex::new(HashMap::new()),
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_head_bytes.max(8192));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut refused: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        // Reap finished connection tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
        let (stream, _peer) = match accepted {
            Ok(a) => a,
            Err(e) if resource_exhausted(&e) => {
                tracing::warn!("accepting connections: {e}; pausing 50 ms");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => {
                tracing::debug!("accepting a connection: {e}");
                continue;
            }
        };
        let Some((id, conn)) = registry.admit(max) else {
            // Every connection is mid-request: refuse this one rather than queue it.
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    refused,
                    max_connections = max,
                    "connection refused: every connection is busy"
                );
            }
            drop(stream);
            continue;
        };
        // Without TCP_NODELAY a response written in two parts (headers, then a body) waits
        // ~40 ms on the peer's delayed ACK.
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(StallGuard {
            io: stream,
            timeout: limits.write_timeout,
            stalled: None,
        });
        let body_timeout = limits.body_timeout;
        let (app, reg, c) = (app.clone(), registry.clone(), conn.clone());
        let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let busy = Busy::new(c.clone(), reg.clone());
            let req = req.map(|b| Body::new(TimeoutBody::new(body_timeout, b)));
            let app = app.clone();
            async move {
                let resp = match app.oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(resp.map(|inner| Tracked { inner, _busy: busy }))
            }
        });
        let served = builder.serve_connection(io, svc);
        let mut stop = stop_rx.clone();
        let reg = registry.clone();
        tasks.spawn(async move {
            tokio::pin!(served);
            tokio::select! {
                r = served.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!("connection: {e}");
                    }
                }
                _ = conn.close.notified() => {
                    tracing::debug!("idle connection closed to make room for a new one");
                }
                _ = stop.changed() => {
                    served.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, served).await;
                }
            }
            reg.remove(id);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}
