//! tufpi-index: a PyPI-compatible package index (PEP 503/691 simple API with PEP 592, 658/714
//! and 700 fields; twine's upload API) whose every upload becomes a TUF target (PEP 458),
//! signed by a background publisher within a second. Yank, unyank and remove (CLI through
//! [`manage_data_dir`], HTTP through `POST /manage/project/…`) re-render the pages and
//! update the targets the same way.

pub mod collect;
pub mod datadir;
pub mod db;
pub mod deploy;
pub mod error;
pub mod gzip;
pub mod index;
mod lastknown;
pub mod manage;
mod metadata;
pub mod migrate;
pub mod names;
pub mod pages;
pub mod publisher;
pub mod routes;
pub mod run;
pub mod sdist;
pub mod storage;
pub mod upload;
pub mod wheel;
mod zipcheck;

pub use collect::{CollectConfig, Collected};
pub use datadir::{is_index_dir, manage_data_dir, wait_signed, Publication};
pub use deploy::Deployment;
pub use error::IndexError;
pub use index::{Index, IndexOptions, DEFAULT_MAX_UPLOAD};
pub use manage::{Action, Operation, Outcome, Selector};
pub use publisher::PublisherConfig;
pub use routes::router;
pub use run::{run, ServeOptions};
