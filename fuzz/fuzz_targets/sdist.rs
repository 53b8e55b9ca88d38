//! The `.tar.gz` sdist reader on arbitrary bytes: the streamed, capped gzip + tar walk for
//! the one top-level `PKG-INFO` (in memory, 4 MiB cap), and, when that finds one, the same
//! file through `sdist_metadata` (from disk, with the production cap). Checks: nothing
//! panics; a found `PKG-INFO` is `NAME/PKG-INFO` with a safe name and at most MAX_METADATA
//! bytes; both paths agree on the result.
#![no_main]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use pep440_rs::Version;
use tufpi_index::sdist::{sdist_metadata, targz_pkg_info};
use tufpi_index::wheel::{parse_core_metadata, unsafe_entry_name, MAX_METADATA};

fuzz_target!(|data: &[u8]| {
    let Ok((name, bytes)) = targz_pkg_info(data, 4 << 20) else {
        return;
    };
    assert!(!unsafe_entry_name(&name), "unsafe name {name:?} accepted");
    let parts: Vec<&str> = name.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    assert_eq!(parts.len(), 2, "{name:?}");
    assert_eq!(parts[1], "PKG-INFO");
    assert!(bytes.len() as u64 <= MAX_METADATA);

    let v = Version::from_str("1.0").unwrap();
    let direct = parse_core_metadata(bytes, "sdist", &name, "demo", &v);
    let path = tufpi_fuzz::scratch_file("upload.tar.gz", data);
    let via_file = sdist_metadata(&path, "demo-1.0.tar.gz", "demo", &v);
    match (direct, via_file) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("in memory {a:?}, from the file {b:?}"),
    }
});
