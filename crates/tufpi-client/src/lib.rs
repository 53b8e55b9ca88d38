//! tufpi-client: the TUF client workflow (spec §5). `trusted` is the pure state machine;
//! `updater` is the thin shell that loads, fetches and persists, over the local
//! `metadata_dir`; `walk` is the delegation search both it and the proxy use; `race` the
//! retry when the repository moves on mid-update; `quote` the names and URLs of roles and
//! targets; `fetcher` is the network edge and `redact` keeps credentials out of what it
//! reports.

pub mod config;
pub mod error;
pub mod fetcher;
pub mod metadata_dir;
pub mod quote;
mod race;
pub mod redact;
pub mod trusted;
pub mod updater;
pub mod walk;

pub use config::UpdaterConfig;
pub use error::ClientError;
pub use fetcher::{AnyFetcher, FetchError, Fetcher, FileFetcher, HttpFetcher};
pub use metadata_dir::MetadataDir;
pub use race::RACE_RETRIES;
pub use redact::{redact, redact_url};
pub use trusted::{TimestampUpdate, TrustedSet};
pub use updater::Updater;
pub use walk::{Pending, TargetWalk};
