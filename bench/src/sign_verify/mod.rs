//! The core benchmark (`scripts/bench`, binary `tufpi-bench`): canonicalize+sign and verify
//! of a 16,385-entry snapshot and a 1,000-target bin in tufpi, and the same work in
//! python-tuf (`python_bench.py`) on the same files. `fixtures` makes the inputs, `report`
//! reads python-tuf's figures and prints the table.

pub mod fixtures;
pub mod report;

use std::path::Path;
use std::process::Command;

use tufpi_core::crypto::PrivateKey;
use tufpi_core::metadata::{Key, Metadata};
use tufpi_core::verify::{role_keys, verify_bytes};

use crate::measure::{time, Error, Stats};

/// One benchmarked file: its name, the role it is verified as, and its delegator.
pub struct Case {
    /// File name stem (`snapshot`, `bin`).
    pub name: &'static str,
    /// Role it is verified as.
    pub role: &'static str,
    /// Its delegator's metadata.
    pub delegator: Metadata,
}

/// Rust timings and the signature made for one case.
pub struct RustResult {
    /// canonicalize+sign times.
    pub sign: Stats,
    /// verify times.
    pub verify: Stats,
    /// The signature made.
    pub sig: String,
}

/// Time canonicalize+sign and verify of `case` in tufpi, `n` times each after a warm-up.
pub fn bench_rust(
    out: &Path,
    case: &Case,
    key: &PrivateKey,
    keyid: &str,
    n: usize,
) -> Result<RustResult, Error> {
    let unsigned = std::fs::read(out.join(format!("{}.unsigned.json", case.name)))?;
    let (sign, signed_md) = time(n, || {
        let (mut md, canonical) = Metadata::from_bytes_with_canonical(&unsigned)?;
        md.sign_canonical(key, keyid, &canonical)?;
        Ok(md)
    })?;
    let signed_path = out.join(format!("{}.signed.json", case.name));
    std::fs::write(&signed_path, signed_md.to_bytes())?;
    let signed = std::fs::read(&signed_path)?;
    let rk = role_keys(&case.delegator.signed, case.role)?;
    let (verify, ()) = time(n, || {
        let (md, canonical) = Metadata::from_bytes_with_canonical(&signed)?;
        verify_bytes(&canonical, &md.signatures, case.role, rk)?;
        Ok(())
    })?;
    let sig = signed_md.signatures[0].sig.clone();
    Ok(RustResult { sign, verify, sig })
}

/// Write the key and every input file; return the benchmark cases.
pub fn write_inputs(
    out: &Path,
    key: &PrivateKey,
    targets: usize,
) -> Result<(String, Vec<Case>), Error> {
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("key.pem"), key.to_pkcs8_pem()?)?;
    let public = Key::from_private(key);
    let keyid = public.compute_keyid();
    let mut root = fixtures::root(&keyid, &public);
    let mut top = fixtures::targets(&keyid, &public);
    root.sign(key, &keyid)?;
    top.sign(key, &keyid)?;
    std::fs::write(out.join("root.json"), root.to_bytes())?;
    std::fs::write(out.join("targets.json"), top.to_bytes())?;
    std::fs::write(
        out.join("snapshot.unsigned.json"),
        fixtures::snapshot().to_bytes(),
    )?;
    std::fs::write(
        out.join("bin.unsigned.json"),
        fixtures::bin(targets).to_bytes(),
    )?;
    let cases = vec![
        Case {
            name: "snapshot",
            role: "snapshot",
            delegator: root,
        },
        Case {
            name: "bin",
            role: fixtures::BIN_ROLE,
            delegator: top,
        },
    ];
    Ok((keyid, cases))
}

/// Run python_bench.py on the same inputs: its JSON output.
pub fn run_python(python: &Path, out: &Path, iters: usize) -> Result<tufpi_core::Value, Error> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python_bench.py");
    let output = Command::new(python)
        .arg(&script)
        .arg("--dir")
        .arg(out)
        .args([
            "--iterations",
            &iters.to_string(),
            "--bin-role",
            fixtures::BIN_ROLE,
        ])
        .output()
        .map_err(|e| {
            format!(
                "cannot run {}: {e} (use scripts/bench to set up .venv)",
                python.display()
            )
        })?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        return Err(format!("{} failed: {}\n{err}", script.display(), output.status).into());
    }
    Ok(tufpi_core::json::parse(&output.stdout)?)
}
