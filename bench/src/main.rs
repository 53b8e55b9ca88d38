//! `tufpi-bench`: canonicalize+sign and verify of a 16,385-entry snapshot and a 1,000-target
//! bin, in tufpi and (in the same run) in python-tuf, with the ratios. Run via `scripts/bench`.
//! The work is `tufpi_bench::sign_verify`'s.

// Metadata work is many small allocations; mimalloc roughly halves parse and free time
// compared with glibc malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};

use tufpi_bench::cli::parse_flags;
use tufpi_bench::measure::Error;
use tufpi_bench::sign_verify::report::{self, Row};
use tufpi_bench::sign_verify::{bench_rust, run_python, write_inputs};
use tufpi_core::crypto::{PrivateKey, Scheme};

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
    parse_flags(USAGE, |flag, val| {
        match flag {
            "--python" => o.python = Some(PathBuf::from(val()?)),
            "--no-python" => o.python = None,
            "--rust-iterations" => o.rust_iters = val()?.parse()?,
            "--python-iterations" => o.python_iters = val()?.parse()?,
            "--out" => o.out = PathBuf::from(val()?),
            "--targets" => o.targets = val()?.parse()?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if o.rust_iters == 0 || o.python_iters == 0 {
        return Err("iteration counts must be at least 1".into());
    }
    Ok(o)
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
