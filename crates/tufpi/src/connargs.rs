//! The connection limits `tufpi serve` and `tufpi proxy` share, spelt once.

use std::time::Duration;

use clap::Args;
use tufpi_simple::conn::Limits;

/// Connection limits and timeouts of a server facing the open internet.
#[derive(Args, Debug, Clone)]
pub struct ConnArgs {
    /// Most connections open at once; when all are taken, the longest-idle one is closed to
    /// make room (lowered at start to fit the open-file limit less --reserved-fds).
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Seconds a client gets to send a complete request head, from connecting or from the end
    /// of its previous response (also the keep-alive idle timeout).
    #[arg(long, default_value_t = Limits::default().header_timeout.as_secs())]
    header_timeout: u64,
    /// Longest wait, seconds, for the next chunk of a request body (uploads).
    #[arg(long, default_value_t = Limits::default().body_timeout.as_secs())]
    body_timeout: u64,
    /// Longest a response write may stall, seconds (a client that stops reading).
    #[arg(long, default_value_t = Limits::default().write_timeout.as_secs())]
    write_timeout: u64,
    /// Open files kept back from connections for the server's own work (publisher, databases).
    #[arg(long, default_value_t = Limits::default().reserved_fds)]
    reserved_fds: u64,
}

impl ConnArgs {
    /// The limits these arguments ask for.
    pub fn limits(&self) -> Limits {
        let secs = |s: u64| Duration::from_secs(s.max(1));
        Limits {
            max_connections: self.max_connections.max(1),
            header_timeout: secs(self.header_timeout),
            body_timeout: secs(self.body_timeout),
            write_timeout: secs(self.write_timeout),
            reserved_fds: self.reserved_fds,
            ..Limits::default()
        }
    }
}
