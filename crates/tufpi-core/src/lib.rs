//! tufpi-core: the TUF metadata core (canonical JSON, metadata model, keys, signatures,
//! threshold verification, target → role matching). No I/O.

pub mod crypto;
pub mod hashes;
pub mod json;
pub mod metadata;
pub mod pathmatch;
pub mod verify;

pub use json::{Map, Value};
