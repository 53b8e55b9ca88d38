//! The connection limits `tufpi serve` and `tufpi proxy` share, spelt once.

use std::time::Duration;

use clap::Args;
use tufpi_simple::conn::Limits;

use crate::args::Span;

/// Connection limits and timeouts of a server facing the open internet.
#[derive(Args, Debug, Clone)]
pub struct ConnArgs {
    /// Most connections open at once; when all are taken, the longest-idle one is closed to
    /// make room (lowered at start to fit the open-file limit less --reserved-fds).
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// How long a client gets to send a complete request head, from connecting or from the
    /// end of its previous response (also the keep-alive idle timeout).
    #[arg(long, default_value_t = Span(Limits::default().header_timeout))]
    header_timeout: Span,
    /// Longest wait for the next chunk of a request body (uploads).
    #[arg(long, default_value_t = Span(Limits::default().body_timeout))]
    body_timeout: Span,
    /// Longest a response write may stall (a client that stops reading).
    #[arg(long, default_value_t = Span(Limits::default().write_timeout))]
    write_timeout: Span,
    /// Open files kept back from connections for the server's own work (publisher, databases).
    #[arg(long, default_value_t = Limits::default().reserved_fds)]
    reserved_fds: u64,
}

impl ConnArgs {
    /// The limits these arguments ask for.
    pub fn limits(&self) -> Limits {
        let secs = |s: Span| s.0.max(Duration::from_secs(1));
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
