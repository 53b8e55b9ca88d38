//! `index_load`: the HTTP/1.1 load generator of `scripts/bench-index` (`pages` and
//! `uploads`); the work is `tufpi_bench::index_load`'s.

fn main() {
    if let Err(e) = tufpi_bench::index_load::run() {
        eprintln!("index_load: {e}");
        std::process::exit(2);
    }
}
