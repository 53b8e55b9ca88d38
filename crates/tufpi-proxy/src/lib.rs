//! tufpi-proxy: a verifying proxy in front of a PEP 458 index (work in progress).
