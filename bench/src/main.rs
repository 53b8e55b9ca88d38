//! `tufpi-bench`: canonicalize+sign and verify of a 16,385-entry snapshot and a 1,000-target
//! bin, in tufpi and (in the same run) in python-tuf, with the ratios. Run via `scripts/bench`.

mod fixtures;
mod report;

// Metadata work is many small allocations; mimalloc roughly halves parse and free time
// compared with glibc malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tufpi_core::crypto::{PrivateKey, Scheme};
use tufpi_core::metadata::{Key, Metadata};
use tufpi_core::verify::{role_keys, verify_bytes};

use report::{Row, Stats};

type Error = Box<dyn std::error::Error>;

const USAGE: &str = "usage: tufpi-bench [--python PATH] [--rust-iterations N] \
[--python-iterations N] [--out DIR] [--targets N] [--no-python]";

/// Command-line options.
struct Opts {
    python: Option<PathBuf>,
    rust_iters: usize,
    python_iters: usize,
    out: PathBuf,
    targets: usize,
}

fn parse_args() -> Result<Opts, Error> {
    let mut o = Opts {
        python: Some(PathBuf::from(".venv/bin/python")),
        rust_iters: 50,
        python_iters: 10,
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("out"),
        targets: 1000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--python" => o.python = Some(PathBuf::from(val()?)),
            "--no-python" => o.python = None,
            "--rust-iterations" => o.rust_iters = val()?.parse()?,
            "--python-iterations" => o.python_iters = val()?.parse()?,
            "--out" => o.out = PathBuf::from(val()?),
            "--targets" => o.targets = val()?.parse()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}").into()),
        }
    }
    if o.rust_iters == 0 || o.python_iters == 0 {
        return Err("iteration counts must be at least 1".into());
    }
    Ok(o)
}

/// Run `f` once to warm up, then `n` times; the per-iteration times and the last result.
fn time<T>(n: usize, mut f: impl FnMut() -> Result<T, Error>) -> Result<(Stats, T), Error> {
    let mut last = f()?;
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        last = f()?;
        ms.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((Stats::new(ms), last))
}

/// One benchmarked file: its name, the role it is verified as, and its delegator.
struct Case {
    name: &'static str,
    role: &'static str,
    delegator: Metadata,
}

/// Rust timings and the signature made for one case.
struct RustResult {
    sign: Stats,
    verify: Stats,
    sig: String,
}

fn bench_rust(
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
fn write_inputs(
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

fn run_python(python: &Path, out: &Path, iters: usize) -> Result<tufpi_core::Value, Error> {
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

fn main() {
    if let Err(e) = run() {
        eprintln!("tufpi-bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Error> {
    let opts = parse_args()?;
    let key = PrivateKey::generate(Scheme::Ed25519)?;
    let (keyid, cases) = write_inputs(&opts.out, &key, opts.targets)?;
    for c in &cases {
        let len = std::fs::metadata(opts.out.join(format!("{}.unsigned.json", c.name)))?.len();
        println!(
            "input {:<8} {:>9} bytes  ({})",
            c.name,
            len,
            opts.out.display()
        );
    }
    println!(
        "iterations: rust {}, python {} (each after 1 warm-up)\n",
        opts.rust_iters, opts.python_iters
    );
    let mut rust = Vec::new();
    for c in &cases {
        rust.push(bench_rust(&opts.out, c, &key, &keyid, opts.rust_iters)?);
    }
    let py = match &opts.python {
        Some(p) => Some(run_python(p, &opts.out, opts.python_iters)?),
        None => None,
    };
    let mut rows = Vec::new();
    let mut sigs = Vec::new();
    for (c, r) in cases.iter().zip(&rust) {
        let pr = py
            .as_ref()
            .map(|v| report::python_case(v, c.name))
            .transpose()?;
        if let Some(pr) = &pr {
            sigs.push((c.name, r.sig == pr.sig));
        }
        let (ps, pv) = pr
            .map(|p| (Some(p.sign), Some(p.verify)))
            .unwrap_or((None, None));
        rows.push(Row {
            op: "canonicalize+sign",
            file: c.name,
            rust: r.sign.clone(),
            python: ps,
        });
        rows.push(Row {
            op: "verify",
            file: c.name,
            rust: r.verify.clone(),
            python: pv,
        });
    }
    report::print(&rows);
    if let Some(v) = &py {
        let py_keyid = v.get("keyid").and_then(|k| k.as_str()).unwrap_or("");
        println!(
            "keyids identical (tufpi vs securesystemslib): {}",
            yes(py_keyid == keyid)
        );
        let all = sigs.iter().all(|(_, same)| *same);
        let detail: Vec<String> = sigs
            .iter()
            .map(|(n, s)| format!("{n}: {}", yes(*s)))
            .collect();
        println!("signatures identical: {} ({})", yes(all), detail.join(", "));
        if !all {
            return Err("tufpi and python-tuf signed different bytes".into());
        }
    }
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "NO"
    }
}
