//! tufpi-rstuf: Repository Service for TUF's REST API v1 (`/api/v1/…`) over the tufpi
//! repository engine, so RSTUF's clients (the `rstuf` CLI, Warehouse's TUF integration) work
//! unchanged against one tufpi process: no separate worker, Redis, broker or PostgreSQL.
//!
//! `routes.rs` answers HTTP (checking payloads with `payload.rs`/`validate.rs`), records each
//! task in `tasks.rs` and hands it to the single worker thread (`worker.rs`), which owns the
//! repository and batches artifact tasks into one publish. `online.rs` finds the online key
//! as RSTUF's worker does; `roots.rs` checks roots for bootstrap, update and signing.

mod convert;
pub mod error;
pub mod online;
pub mod payload;
pub mod roots;
pub mod routes;
pub mod run;
pub mod service;
pub mod settings;
pub mod tasks;
pub mod validate;
pub mod worker;

pub use error::RstufError;
pub use routes::router;
pub use run::{serve, start, ServeOptions, Started};
