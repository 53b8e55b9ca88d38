//! tufpi-repo: the repository side of PEP 458 — the default layout (root, targets and bins
//! offline; timestamp, snapshot and 2^k succinct bins online), a state store, a crash-safe
//! sequential publisher that batches, expiry refresh and GC.

pub mod ceremony;
pub mod config;
mod direct;
pub mod error;
#[doc(hidden)]
pub mod files;
pub mod gc;
pub mod import;
pub mod keys;
pub mod layout;
pub mod publisher;
pub mod repo;
pub mod rotate;
pub mod store;
pub mod target_hashes;

pub use config::{BinsMode, RepoConfig};
pub use error::RepoError;
pub use gc::GcReport;
pub use import::ImportReport;
pub use repo::{PublishReport, Repository};
pub use rotate::OfflineKeys;
pub use store::{Change, RoleState, StateStore, TargetRecord};
pub use target_hashes::TargetHashes;
