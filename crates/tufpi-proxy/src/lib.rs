//! tufpi-proxy: a verifying proxy in front of a PEP 458 index. pip and uv talk to it as to
//! any simple index; it hands them only pages and files that the index's TUF metadata
//! vouches for, verified by `tufpi-client` before a single byte leaves.
//!
//! `trust` holds the TUF client and its refresh policy, `pages` turns a verified PEP 691
//! page into the HTML or JSON asked for with links back at the proxy, `files` downloads,
//! verifies and caches distribution files (`stream` verifies and streams large cached
//! ones), `routes` answers requests, `pip` tells pip the reasons it would hide, `run` is the
//! run loop.

pub mod error;
pub mod files;
pub mod pages;
mod pip;
mod routes;
pub mod run;
pub mod stream;
mod sync;
pub mod trust;

pub use error::ProxyError;
pub use run::{run, ProxyOptions};
