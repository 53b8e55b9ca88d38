//! tufpi-client: the TUF client workflow (spec §5). `trusted` is the pure state machine;
//! `updater` is the thin shell that loads, fetches and persists; `fetcher` is the network edge.

pub mod config;
pub mod error;
pub mod fetcher;
pub mod redact;
pub mod trusted;
pub mod updater;

pub use config::UpdaterConfig;
pub use error::ClientError;
pub use fetcher::{AnyFetcher, FetchError, Fetcher, FileFetcher, HttpFetcher};
pub use redact::{redact, redact_url};
pub use trusted::{TimestampUpdate, TrustedSet};
pub use updater::Updater;
