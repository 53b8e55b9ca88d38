//! `repo_bench`: the repository engine (tufpi-repo) against python-tuf doing the same work, in
//! one run: init of 16,384 empty succinct bins; full build of N targets; publish of one added
//! target; a sustained stream of single-target adds. Each scenario runs in a child process of
//! its own (`repo_bench --scenario NAME`), so peak RSS is per scenario. Run via
//! `scripts/bench-repo`.

// As in the `tufpi` binary: metadata work is many small allocations.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tufpi_bench::cli::parse_flags;
use tufpi_bench::measure::Error;
use tufpi_bench::repo::report;
use tufpi_bench::repo::scenarios::{self, Params};
use tufpi_bench::repo::table::{self, Figures};

const USAGE: &str = "usage: repo_bench [--n N] [--reps R] [--secs S] [--rate R] [--batch B] \
[--python PATH | --no-python] [--py-n N] [--py-reps R] [--with-10m] [--work DIR] [--keep]
       repo_bench --scenario init|full|stream|paced --dir DIR [--n N] [--reps R] [--secs S] \
[--rate R] [--batch B]";

/// Command-line options.
struct Opts {
    scenario: Option<String>,
    dir: Option<PathBuf>,
    n: u64,
    reps: usize,
    secs: f64,
    rate: f64,
    batch: usize,
    python: Option<PathBuf>,
    py_n: Option<u64>,
    py_reps: usize,
    ten_m: bool,
    work: Option<PathBuf>,
    keep: bool,
}

fn parse_args() -> Result<Opts, Error> {
    let mut o = Opts {
        scenario: None,
        dir: None,
        n: 1_000_000,
        reps: 200,
        secs: 10.0,
        rate: 5000.0,
        batch: 100_000,
        python: Some(PathBuf::from(".venv/bin/python")),
        py_n: None,
        py_reps: 50,
        ten_m: false,
        work: None,
        keep: false,
    };
    parse_flags(USAGE, |flag, val| {
        match flag {
            "--scenario" => o.scenario = Some(val()?),
            "--dir" => o.dir = Some(PathBuf::from(val()?)),
            "--n" => o.n = val()?.parse()?,
            "--reps" => o.reps = val()?.parse()?,
            "--secs" => o.secs = val()?.parse()?,
            "--rate" => o.rate = val()?.parse()?,
            "--batch" => o.batch = val()?.parse()?,
            "--python" => o.python = Some(PathBuf::from(val()?)),
            "--no-python" => o.python = None,
            "--py-n" => o.py_n = Some(val()?.parse()?),
            "--py-reps" => o.py_reps = val()?.parse()?,
            "--with-10m" => o.ten_m = true,
            "--work" => o.work = Some(PathBuf::from(val()?)),
            "--keep" => o.keep = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(o)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("repo_bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Error> {
    // TUFPI_LOG=tufpi_repo=debug shows the engine's phase timings on stderr.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("TUFPI_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let o = parse_args()?;
    match &o.scenario {
        Some(name) => {
            let dir = o.dir.clone().ok_or("--scenario needs --dir")?;
            scenarios::run(
                name,
                &Params {
                    dir,
                    n: o.n,
                    reps: o.reps,
                    batch: o.batch,
                    secs: o.secs,
                    rate: o.rate,
                },
            )
        }
        None => orchestrate(&o),
    }
}

/// Run `cmd` (stderr passed through), returning the figures it printed.
fn collect(mut cmd: Command, what: &str) -> Result<Figures, Error> {
    eprintln!("[{what}] ...");
    let out = cmd.stderr(Stdio::inherit()).output()?;
    if !out.status.success() {
        return Err(format!("{what} failed: {}", out.status).into());
    }
    Ok(table::parse(&String::from_utf8_lossy(&out.stdout)))
}

/// The arguments both sides' scenarios take: `--n --reps --secs --rate --batch`.
fn size_args(o: &Opts, n: u64, reps: usize) -> [String; 10] {
    [
        "--n".into(),
        n.to_string(),
        "--reps".into(),
        reps.to_string(),
        "--secs".into(),
        o.secs.to_string(),
        "--rate".into(),
        o.rate.to_string(),
        "--batch".into(),
        o.batch.to_string(),
    ]
}

/// One tufpi scenario in a child process of this binary.
fn tufpi(o: &Opts, name: &str, dir: &Path, n: u64, reps: usize) -> Result<Figures, Error> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["--scenario", name, "--dir"])
        .arg(dir)
        .args(size_args(o, n, reps));
    collect(cmd, &format!("tufpi {name}, {n} targets"))
}

fn remove(dir: &Path, keep: bool) {
    if !keep {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn orchestrate(o: &Opts) -> Result<(), Error> {
    let (base, kind) = match &o.work {
        Some(w) => (w.clone(), "--work"),
        None if Path::new("/dev/shm").is_dir() => (PathBuf::from("/dev/shm"), "tmpfs"),
        None => (std::env::temp_dir(), "temp dir"),
    };
    let work = base.join(format!("tufpi-repo-bench.{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("work dir: {} ({kind}); {cpus} CPUs", work.display());
    println!(
        "N = {} targets; publish-one x{}; streams of {} s, as fast as possible and paced at {}/s \
         (publish batch <= {})",
        o.n, o.reps, o.secs, o.rate, o.batch
    );

    let mut t = tufpi(o, "init", &work.join("tufpi-init"), 0, 0)?;
    remove(&work.join("tufpi-init"), o.keep);
    let full_dir = work.join("tufpi-full");
    t.extend(tufpi(o, "full", &full_dir, o.n, o.reps)?);
    t.extend(tufpi(o, "stream", &full_dir, o.n, o.reps)?);
    t.extend(tufpi(o, "paced", &full_dir, o.n, o.reps)?);
    remove(&full_dir, o.keep);
    if o.ten_m {
        let dir = work.join("tufpi-10m");
        for (k, v) in tufpi(o, "full", &dir, 10_000_000, 20)? {
            t.insert(format!("m10_{k}"), v);
        }
        remove(&dir, o.keep);
    }

    let py_n = o.py_n.unwrap_or(o.n).min(o.n);
    let mut p = Figures::new();
    if let Some(python) = &o.python {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("repo_bench.py");
        let mut cmd = Command::new(python);
        cmd.arg(&script)
            .arg("--dir")
            .arg(work.join("python"))
            .args(size_args(o, py_n, o.py_reps));
        p = collect(cmd, &format!("python-tuf, {py_n} targets"))?;
        remove(&work.join("python"), o.keep);
    }
    if !o.keep {
        let _ = std::fs::remove_dir_all(&work);
    }
    let opts = report::Opts {
        n: o.n,
        py_n,
        rate: o.rate,
        ten_m: o.ten_m,
        tmpfs: kind == "tmpfs",
    };
    report::report(&opts, &t, &p);
    Ok(())
}
