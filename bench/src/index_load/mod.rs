//! The index load generator (`index_load`): the HTTP/1.1 load generator of `scripts/bench-index`. One client for both
//! servers (tufpi and pypiserver), so they are measured the same way.
//!
//! `index_load pages`: C keep-alive connections on one thread (tokio, current-thread
//! runtime), each sending GETs of pages picked at random from a list, back to back, for a
//! warm-up and then a fixed measured time. Only 200 responses count; latencies are per request
//! (send → whole body read). A server that closes the connection (e.g. gunicorn's sync
//! workers) gets a new one, whose connect time counts in that request's latency.
//!
//! `index_load uploads`: a manifest of files uploaded with twine's multipart form over C
//! connections (`POST`, HTTP Basic `__token__`); `--url A,B,C` spreads them round-robin over
//! several replicas (upload i to URL i mod n). With `--watch` (a tufpi index), a second
//! thread reads `/metadata/timestamp.json` every `--poll-ms` during the stream and until no
//! new snapshot has appeared for `--settle` seconds after it, noting when each snapshot version
//! was first seen; then a sweep walks those versions (snapshot → the bin delegated each
//! target, TAP 15) and takes, for every acknowledged upload, the time from its 200 response to
//! the first timestamp read whose snapshot's bin lists the distribution's target path. The
//! sweep runs after the stream, so its fetches neither load the server nor delay the reads.
//!
//! Both print one JSON object on stdout.
//!
//! `args` reads the command line, `http` is the client, `pages` and `uploads` the two loads,
//! `watch` the signing watch of an upload stream.

pub mod args;
pub mod http;
pub mod pages;
pub mod uploads;
pub mod watch;

use crate::measure::{fail, Error};
use args::{Args, USAGE};

/// Run the load the command line asks for.
pub fn run() -> Result<(), Error> {
    let a = Args::parse()?;
    match a.cmd.as_str() {
        "pages" => pages::pages(&a),
        "uploads" => uploads::uploads(&a),
        _ => Err(fail(USAGE)),
    }
}
