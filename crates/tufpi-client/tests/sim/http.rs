//! A tiny HTTP/1.1 server on 127.0.0.1 serving the simulated repository (with its faults:
//! slow bodies, delayed headers, endless bodies without `Content-Length`), for tests of the
//! real `HttpFetcher`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use super::{decode, Served, Sim};

impl Sim {
    /// Start a real HTTP server on 127.0.0.1 serving this repository (with its faults);
    /// returns the base URL (`http://127.0.0.1:PORT/`). The thread lives as long as the test.
    pub fn serve_http(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let sim = self.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let sim = sim.clone();
                std::thread::spawn(move || http_answer(&sim, conn));
            }
        });
        format!("http://{addr}/")
    }
}

fn http_answer(sim: &Sim, mut conn: TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let url = format!(
        "http://{}{target}",
        conn.local_addr().map(|a| a.to_string()).unwrap_or_default()
    );
    let served = {
        let mut r = sim.repo();
        r.fetched.push((url, 0));
        r.answer(&decode(target.trim_start_matches('/')))
    };
    let _ = http_write(&mut conn, served);
}

fn http_write(conn: &mut TcpStream, served: Served) -> std::io::Result<()> {
    match served {
        Served::NotFound => conn
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        Served::Data(d) => {
            let h = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                d.len()
            );
            conn.write_all(h.as_bytes())?;
            conn.write_all(&d)
        }
        Served::Slow(d, interval) => {
            let h = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                d.len()
            );
            conn.write_all(h.as_bytes())?;
            for b in d {
                std::thread::sleep(interval);
                conn.write_all(&[b])?;
                conn.flush()?;
            }
            Ok(())
        }
        Served::Endless => {
            // No Content-Length: the body ends when the connection closes, i.e. never.
            conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
            let chunk = vec![b'x'; 16 * 1024];
            loop {
                conn.write_all(&chunk)?;
            }
        }
        Served::Delayed(d, inner) => {
            std::thread::sleep(d);
            http_write(conn, *inner)
        }
    }
}
