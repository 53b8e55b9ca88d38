//! tufpi-index: a PyPI-compatible package index (PEP 503/691 simple API with PEP 592, 658/714
//! and 700 fields; twine's upload API) whose every upload becomes a TUF target (PEP 458),
//! signed by a background publisher within a second.

pub mod db;
pub mod error;
pub mod index;
pub mod names;
pub mod pages;
pub mod publisher;
pub mod serve;
pub mod server;
pub mod storage;
pub mod upload;
pub mod wheel;

pub use error::IndexError;
pub use index::{Index, IndexOptions, DEFAULT_MAX_UPLOAD};
pub use publisher::PublisherConfig;
pub use serve::{run, ServeOptions};
pub use server::router;
