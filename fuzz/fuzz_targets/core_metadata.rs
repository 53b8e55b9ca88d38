//! The core metadata reader (`METADATA` / `PKG-INFO`, RFC 822-style headers) checked against
//! an upload of project `demo` version 1.0. Checks: nothing panics; what is accepted names
//! `demo` once normalised and a version PEP 440-equal to 1.0, keeps the exact bytes, and its
//! fields are what `header` reads.
#![no_main]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use pep440_rs::Version;
use tufpi_index::names::normalize;
use tufpi_index::wheel::{header, parse_core_metadata, unsafe_entry_name};

fuzz_target!(|data: &[u8]| {
    let v = Version::from_str("1.0").unwrap();
    let file = "demo-1.0.dist-info/METADATA";
    let r = parse_core_metadata(data.to_vec(), "wheel", file, "demo", &v);
    if let Ok(text) = std::str::from_utf8(data) {
        for key in ["Name", "Version", "Metadata-Version", "Requires-Python", ""] {
            let _ = header(text, key);
        }
        let _ = unsafe_entry_name(text);
    }
    let Ok(m) = r else {
        return;
    };
    assert_eq!(m.bytes, data);
    assert_eq!(normalize(&m.name), "demo");
    assert_eq!(Version::from_str(&m.version).ok(), Some(v));
    let text = std::str::from_utf8(data).expect("accepted metadata is UTF-8");
    assert_eq!(header(text, "Name").as_deref(), Some(m.name.as_str()));
    assert_eq!(header(text, "Version").as_deref(), Some(m.version.as_str()));
    assert_eq!(
        header(text, "Requires-Python").filter(|s| !s.is_empty()),
        m.requires_python
    );
});
