//! The connection loop against hostile clients: heads that never finish, idle keep-alive
//! connections, bodies that stall, clients that stop reading, and more connections than the
//! cap — an honest request must still be answered.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::{get, post};
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tufpi_simple::conn::{serve, Limits};

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/big", get(|| async { vec![b'x'; 32 << 20] }))
        .route(
            "/upload",
            post(|body: Bytes| async move { format!("{}", body.len()) }),
        )
}

async fn start(limits: Limits) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, app(), limits, async {
        let _ = rx.await;
    }));
    (addr, tx)
}

/// One honest GET on a new connection; the response head and body as text.
async fn honest(addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out))
        .await
        .expect("honest request answered in time")
        .unwrap();
    out
}

/// Wait until the peer closes `s` (EOF or reset); how long it took.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(t0.elapsed()), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t0.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

fn quick() -> Limits {
    Limits {
        max_connections: 16,
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        write_timeout: Duration::from_secs(1),
        ..Limits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_heads_and_idle_connections_are_closed() {
    let (addr, _stop) = start(quick()).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let t = closed_within(&mut slow, Duration::from_secs(5)).await;
    assert!(t.is_some(), "a head never finished keeps its connection");

    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(5))
        .await
        .is_some());

    // Keep-alive: after a response, the next head must come within the timeout too.
    let mut ka = TcpStream::connect(addr).await.unwrap();
    ka.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = ka.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut ka, Duration::from_secs(5))
        .await
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_silent_connections_than_the_cap_do_not_lock_out_honest_clients() {
    let limits = Limits {
        header_timeout: Duration::from_secs(60),
        ..quick()
    };
    let (addr, _stop) = start(limits).await;
    let mut hogs = Vec::new();
    for _ in 0..64 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        hogs.push(s);
    }
    for _ in 0..5 {
        let out = honest(addr).await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.ends_with("ok"), "{out}");
    }
    // The hogs made room: at most the cap of them is still open.
    let mut open = 0;
    for s in &mut hogs {
        if closed_within(s, Duration::from_millis(20)).await.is_none() {
            open += 1;
        }
    }
    assert!(open <= 16, "{open} silent connections still open, cap 16");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_cut_off() {
    let (addr, _stop) = start(quick()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
        .await
        .unwrap();
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(r.is_ok(), "a stalled body kept its connection for 5 s");
    let text = String::from_utf8_lossy(&out);
    assert!(!text.contains("200 OK"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped() {
    let (addr, _stop) = start(quick()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The server gave up: reading now drains what the socket buffers held, then hits the
    // end well short of 32 MiB.
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => total += n,
            Err(_) => panic!("connection still open after the write timeout"),
        }
    }
    assert!(total < 32 << 20, "the whole body arrived: {total}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_never_make_room_by_closing_an_honest_keep_alive_one() {
    let limits = Limits {
        header_timeout: Duration::from_secs(60),
        ..quick()
    };
    let (addr, _stop) = start(limits).await;
    let mut ka = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 1024];
    ka.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let n = ka.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Four times the cap in silent connections, all newer than the idle keep-alive one.
    let mut hogs = Vec::new();
    for _ in 0..64 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        hogs.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    ka.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), ka.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "the honest keep-alive connection was closed to make room"
    );
}
