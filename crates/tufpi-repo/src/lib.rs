//! tufpi-repo: the repository side of PEP 458 — the default layout (root, targets and bins
//! offline; timestamp, snapshot and 2^k succinct bins online), a state store, a crash-safe
//! sequential publisher that batches, expiry refresh and GC.
//!
//! The repository (`repo.rs`, with `init.rs`, `import.rs`, `rotate.rs` adding to it) queues
//! changes and plans publishes (`plan.rs`); the publisher (`publisher.rs`) writes a recorded
//! plan and knows nothing of the repository. Its state lives behind two seams chosen at
//! start (`backend.rs`): a state store (SQLite or PostgreSQL) and a metadata blob store (the
//! local file system or S3-compatible object storage).

mod backend;
pub mod ceremony;
pub mod change;
pub mod config;
mod direct;
pub mod error;
pub mod gc;
pub mod import;
pub mod init;
pub mod keys;
pub mod layout;
mod lock;
mod plan;
mod publisher;
pub mod repo;
pub mod rotate;
pub mod store;
pub mod target_hashes;

pub use backend::{Backend, METADATA_PREFIX, PUBLISHER_LEASE, STAGING_PREFIX};
pub use change::{Change, TargetRecord};
pub use config::{BinsMode, ExpiryRole, RepoConfig};
pub use error::RepoError;
pub use gc::GcReport;
pub use import::ImportReport;
pub use init::OfflineKeys;
pub use repo::{PublishReport, Repository};
pub use store::{RoleState, StateStore};
pub use target_hashes::TargetHashes;
