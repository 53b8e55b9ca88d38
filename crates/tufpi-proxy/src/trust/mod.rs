//! The TUF side of the proxy: the trusted metadata, its refresh policy, target lookups and
//! verified downloads of targets. No network I/O ever happens under a lock that a lookup
//! waits for.
//!
//! - The top-level metadata (root chain, timestamp, snapshot, targets) is refreshed by one
//!   `tufpi-client` updater, owned by the refresh task: one refresh at a time (single
//!   flight), every lookup that needs one joins it. A successful refresh installs a new
//!   immutable *generation* (its `TrustedSet`) with one pointer swap, so a lookup sees one
//!   consistent snapshot of the metadata from start to end.
//! - Delegated roles (PEP 458's `bins` and `bin-n`) are loaded lazily per generation: from
//!   the local cache or the upstream, verified against the generation's snapshot and the
//!   delegator's keys, once per role however many lookups want it (single flight), without
//!   holding anything a lookup of another project needs. Roles whose snapshot entry did not
//!   change are carried over to the next generation.
//! - A target no role lists is remembered as missing for the generation (negative cache):
//!   asked again, it is a 404 at once, until a refresh brings a different snapshot.
//!
//! The policy: every lookup (page or file) waits for a refresh started no longer than the
//! refresh interval before it arrived; no lookup is answered while the last refresh failed,
//! nor from metadata that has expired by now (root, timestamp, snapshot, targets, or a
//! delegated role on the way to the target): that forces a refresh, and if the refresh cannot
//! replace it, the answer is the refusal. `/health` reports a refresh that hangs.
//!
//! `store` holds the state and opens it, `refresh` the refresh policy and `/health`'s view,
//! `lookup` the lookups and delegated roles, `download` the verified target downloads,
//! `generation` one verified state of the metadata, `flights` the single flight they share.

mod download;
mod flights;
mod generation;
mod lookup;
mod refresh;
mod store;

pub use flights::Flights;
pub use store::{Resolved, Trust, Upstream};
