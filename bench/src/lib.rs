//! tufpi-bench: the benchmarks of tufpi against python-tuf (and pypiserver), as a small
//! library under three thin binaries. `measure` is the one place timings, percentiles, RSS
//! and CPU time are taken and figures printed; `cli` reads the command lines.
//!
//! | binary | script | module |
//! |---|---|---|
//! | `tufpi-bench` | `scripts/bench` | `sign_verify`: canonicalize+sign and verify |
//! | `repo_bench` | `scripts/bench-repo` | `repo`: the repository engine's scenarios |
//! | `index_load` | `scripts/bench-index` | `index_load`: the index's HTTP load generator |

pub mod cli;
pub mod index_load;
pub mod measure;
pub mod repo;
pub mod sign_verify;
