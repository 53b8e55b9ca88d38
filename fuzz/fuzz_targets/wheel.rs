//! The wheel reader (`*.dist-info/METADATA` of a zip archive) and the zip sdist reader
//! (top-level `PKG-INFO`) on arbitrary bytes, as uploads of `demo` 1.0. Checks: nothing
//! panics, and what is accepted is consistent core metadata for demo 1.0.
#![no_main]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use pep440_rs::Version;
use tufpi_index::names::normalize;
use tufpi_index::sdist::sdist_metadata;
use tufpi_index::wheel::wheel_metadata;

fuzz_target!(|data: &[u8]| {
    let path = tufpi_fuzz::scratch_file("upload.whl", data);
    let v = Version::from_str("1.0").unwrap();
    for r in [
        wheel_metadata(&path, "demo", &v),
        sdist_metadata(&path, "demo-1.0.zip", "demo", &v),
    ] {
        if let Ok(m) = r {
            assert_eq!(normalize(&m.name), "demo");
            assert_eq!(Version::from_str(&m.version).ok().as_ref(), Some(&v));
            assert!(m.bytes.len() as u64 <= tufpi_index::wheel::MAX_METADATA);
        }
    }
});
