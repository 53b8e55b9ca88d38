"""Scale-out repository benchmark (issue 13), `scripts/bench-repo --scaleout`: `tufpi repo init`
and a `tufpi repo import --from-jsonl` of N targets (default 1,000,000) on the embedded backend
(SQLite + files in DIR) and on PostgreSQL + S3, side by side in one run, the same records in
each: record i as bench/repo_bench.py (and the Rust side, bench/src/repo/records.rs) makes it,
PyPI-like paths with sha256 + blake2b-256. Goal: the PostgreSQL + S3 import <= 2x the embedded one.

S3 servers (--servers, default both): moto (Python, the tests' server: it enforces every
precondition, and its request rate bounds a scaled-out import) and s3s-fs (Rust, objects as
files; benchmarks only: it does not enforce create-only against concurrent writers, see
scripts/s3-server). Both are started through scripts/s3-server (TUFPI_S3_SERVER=moto|s3s).

Each command is timed as a whole (wall), with its CPU time and peak RSS (wait4); during the
scaled-out imports also the S3 server's and PostgreSQL's CPU time, the S3 requests moto logged
(method and status), and the import's own phases (its debug log, TUFPI_LOG=tufpi_repo::import=
debug): read + bucket the records, sign + stage the bins, record the plan + publish (the bins'
PUTs, the snapshot, the timestamp, the state). The limit rows: each server alone serving the
import's S3 requests (counted in moto's log) for objects of the import's mean bin size, at its
PutObject and GetObject rates measured here over 8 connections.
--reps R runs every configuration R times, interleaved, and shows the median wall times and
each run's ratio (the machine may be shared: one run's ratio moves with the load). --perf also
samples the scaled-out imports with `perf record -g` and prints where their CPU
time goes (by shared object and by symbol); `perf report -i WORK/perf-<server>.data` for more
(with --keep). The embedded repository, the JSONL and the scaled-out imports' local scratch
(TMPDIR) live in the work directory (default /dev/shm when present), so both sides stage on the
same file system; the database made here is dropped WITH (FORCE), the servers stopped by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from repo_bench import record  # noqa: E402  (the benchmark's records, one definition)
from scaleout import (  # noqa: E402
    Deployment, Postgres, S3Server, cpu_seconds, postgres_cpu, PG_DEFAULT,
)

T0 = time.monotonic()
# The import's phase lines (crates/tufpi-repo/src/import.rs), as tracing's fmt layer writes them.
_PHASE = re.compile(r"import: (records read and bucketed|bins signed and staged|plan recorded and published)"
                    r".*?elapsed=([\d.]+)(ns|µs|us|ms|s)\b")
_UNIT = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
PHASES = {"records read and bucketed": "read+bucket", "bins signed and staged": "sign+stage",
          "plan recorded and published": "plan+publish"}


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f} s] {msg}", file=sys.stderr, flush=True)


def write_jsonl(path: Path, n: int) -> None:
    with open(path, "w") as f:
        for i in range(n):
            p, length, hashes = record(i)
            f.write(json.dumps({"path": p, "length": length, "hashes": hashes}, separators=(",", ":")) + "\n")


def timed(argv: list[str], env: dict, logf: Path, watch: list[int] | None = None) -> dict:
    """Run argv to completion: wall s, its CPU s and peak RSS MB, the CPU s of `watch`, and the
    import phases its output reports."""
    c0 = cpu_seconds(watch or [])
    with open(logf, "ab") as out:
        out.write(f"==== {' '.join(argv)}\n".encode())
        out.flush()
        start = out.tell()
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise SystemExit(f"{argv[1:4]} failed ({p.returncode}); its output:\n{logf.read_text()[-3000:]}")
    with open(logf, "rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    phases = {PHASES[m.group(1)]: float(m.group(2)) * _UNIT[m.group(3)] for m in _PHASE.finditer(text)}
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
            "rss_mb": ru.ru_maxrss / 1024, "watch_cpu_s": cpu_seconds(watch or []) - c0, "phases": phases}


def perf_top(data: Path, sort: str, n: int) -> list[str]:
    """The top `n` lines of `perf report` of `data`, sorted by `sort` (self time)."""
    r = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "--sort", sort,
                        "--percent-limit", "0.5", "-q", "-g", "none"], capture_output=True, text=True)
    return [ln.rstrip() for ln in r.stdout.splitlines() if ln.strip()][:n]


def mean_bin_size(mdir: Path) -> int:
    """Mean size of the newest version of every bin in a metadata directory."""
    newest: dict[str, tuple[int, int]] = {}
    for f in mdir.iterdir():
        parts = f.name.split(".", 1)
        if parts[0].isdigit():
            v, role = int(parts[0]), parts[1]
            if v > newest.get(role, (0, 0))[0]:
                newest[role] = (v, f.stat().st_size)
    bins = [s for r, (_, s) in newest.items() if r.startswith("bin-")]
    return int(sum(bins) / max(len(bins), 1))


def scaled(kind: str, a, work: Path, env: dict, pg: Postgres, jsonl: Path, bits: list[str], n: int,
           rates: bool) -> dict:
    """init + import on PostgreSQL + the `kind` S3 server, and (`rates`) the server's own PUT and
    GET rates; the server is stopped before returning."""
    tufpi = str(a.tufpi)
    log(f"starting the S3 test server ({kind}) ...")
    s3 = S3Server(work, kind)
    out: dict = {"server": kind}
    try:
        dep = Deployment(pg, s3, f"repo_{kind}")
        denv = dict(dep.env(env), **s3.client_env)
        # The import's local scratch (spill files, staged bins) next to the embedded one's.
        tmp = work / f"tmp-{kind}"
        tmp.mkdir(exist_ok=True)
        denv["TMPDIR"] = str(tmp)
        d = work / f"scaled-{kind}"
        logf = work / f"scaled-{kind}.log"
        log(f"PostgreSQL + {kind}: repo init ({2 ** a.bins_bit_length:,} bins) ...")
        off = s3.log_offset()
        out["init"] = timed([tufpi, "repo", "init", "--repo", str(d), "--dev-keys", *bits, *dep.args()], denv,
                            logf, [s3.pid])
        out["init"]["s3"] = dict(s3.requests_since(off, dep.bucket)) if s3.logs_requests else {}
        log(f"PostgreSQL + {kind}: repo import of {n:,} targets ...")
        off = s3.log_offset()
        m0, p0 = cpu_seconds([s3.pid]), postgres_cpu()
        argv = [tufpi, "repo", "import", "--repo", str(d), "--from-jsonl", str(jsonl), *dep.args()]
        perf = work / f"perf-{kind}.data"
        if a.perf:
            argv = ["perf", "record", "-q", "-F", "499", "-g", "-o", str(perf), "--", *argv]
        out["import"] = timed(argv, dict(denv, TUFPI_LOG="tufpi_repo::import=debug"), logf)
        out["import"]["server_cpu_s"] = cpu_seconds([s3.pid]) - m0
        out["import"]["pg_cpu_s"] = postgres_cpu() - p0
        if s3.logs_requests:
            out["import"]["s3"] = dict(s3.requests_since(off, dep.bucket))
            # By status too: 412s are create-only PUTs that found the key taken.
            statuses: dict = {}
            with open(s3.dir / "log", "rb") as f:
                f.seek(off)
                for m in re.finditer(rb'"(GET|PUT|POST|HEAD|DELETE) /' + re.escape(dep.bucket.encode())
                                     + rb'[/?]\S* HTTP/[\d.]+" (\d+)', f.read()):
                    key = f"{m.group(1).decode()} {m.group(2).decode()}"
                    statuses[key] = statuses.get(key, 0) + 1
            out["import"]["s3_status"] = statuses
        # The server alone: its PutObject and GetObject rates for objects of the mean bin size.
        if rates:
            k = 2000
            log(f"{kind} alone: {k} PutObjects and GetObjects of {a.mean_bin:,} bytes at concurrency 8 ...")
            lim_bucket = "tufpi-bench-limit-repo"
            s3.create_bucket(lim_bucket)
            out["put_rate"] = s3.put_rate(lim_bucket, k, a.mean_bin, 8)
            out["get_rate"] = s3.put_rate(lim_bucket, k, a.mean_bin, 8, "GET")
        if a.perf:
            out["perf_dso"] = perf_top(perf, "dso", 12)
            out["perf_sym"] = perf_top(perf, "sym", 25)
        dep.drop()
        if not a.keep:
            shutil.rmtree(d, ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        s3.stop()
        if not a.keep:
            shutil.rmtree(s3.dir, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tufpi", type=Path, default=HERE.parent / "target" / "release" / "tufpi")
    ap.add_argument("--targets", type=int, help="targets imported (default 1,000,000; quick 100,000)")
    ap.add_argument("--quick", action="store_true", help="100,000 targets in 4,096 bins: about 2 minutes")
    ap.add_argument("--bins-bit-length", type=int, help="2^N bins (default 14: 16,384; quick 12)")
    ap.add_argument("--servers", default="moto,s3s", help="S3 servers to run on, in order (moto, s3s)")
    ap.add_argument("--reps", type=int, default=1,
                    help="runs of every configuration, interleaved; the table shows medians (default 1)")
    ap.add_argument("--perf", action="store_true", help="sample the scaled-out imports with perf record -g")
    ap.add_argument("--pg-url", default=os.environ.get("TUFPI_TEST_PG_URL", PG_DEFAULT))
    ap.add_argument("--work", type=Path, help="work directory (default a new one in /dev/shm when present)")
    ap.add_argument("--json", type=Path, help="also write all measurements here")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    n = a.targets or (100_000 if a.quick else 1_000_000)
    a.bins_bit_length = a.bins_bit_length or (12 if a.quick else 14)
    servers = [s for s in a.servers.split(",") if s]
    for s in servers:
        if s not in ("moto", "s3s"):
            raise SystemExit(f"--servers: unknown S3 server {s!r} (moto, s3s)")
    if not a.tufpi.is_file():
        raise SystemExit(f"missing {a.tufpi} (cargo build --release -p tufpi)")
    if a.perf and not shutil.which("perf"):
        raise SystemExit("--perf needs perf (linux-tools) on PATH")
    shm = Path("/dev/shm")
    work = a.work or Path(tempfile.mkdtemp(prefix="tufpi-repo-scaleout-", dir=shm if shm.is_dir() else None))
    work.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()[0]
    t_start = time.monotonic()
    env = dict(os.environ, NO_COLOR="1")
    env.pop("TUFPI_LOG", None)
    tufpi = str(a.tufpi)
    res: dict = {"targets": n, "bins": 2 ** a.bins_bit_length, "runs": []}
    pg = Postgres(a.pg_url)
    try:
        jsonl = work / "targets.jsonl"
        log(f"writing {n:,} records to {jsonl} ...")
        write_jsonl(jsonl, n)
        bits = ["--bins-bit-length", str(a.bins_bit_length)]

        # Interleaved runs: a change of the machine's load hits every configuration alike.
        for r in range(max(a.reps, 1)):
            run: dict = {"scaled": {}}
            log(f"run {r + 1}: embedded: repo init ({2 ** a.bins_bit_length:,} bins) ...")
            emb = work / f"embedded-{r}"
            elog = work / "embedded.log"
            run["emb_init"] = timed([tufpi, "repo", "init", "--repo", str(emb), "--dev-keys", *bits], env, elog)
            log(f"run {r + 1}: embedded: repo import of {n:,} targets ...")
            run["emb_import"] = timed([tufpi, "repo", "import", "--repo", str(emb), "--from-jsonl", str(jsonl)],
                                      dict(env, TUFPI_LOG="tufpi_repo::import=debug"), elog)
            if r == 0:
                a.mean_bin = res["mean_bin_bytes"] = mean_bin_size(emb / "metadata")
            if not a.keep:
                shutil.rmtree(emb, ignore_errors=True)
            for kind in servers:
                run["scaled"][kind] = scaled(kind, a, work, env, pg, jsonl, bits, n, r == 0)
            res["runs"].append(run)
    finally:
        pg.drop_all()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(res, a, work, load_start, t_start, servers)


def report(res: dict, a, work: Path, load_start: float, t_start: float, servers: list[str]) -> None:
    n = res["targets"]
    load_end = os.getloadavg()[0]
    runs = res["runs"]
    # Details (phases, CPU, requests, rates) from the first run; walls as medians over the runs.
    ei = runs[0]["emb_import"]
    sc = runs[0]["scaled"]

    def wall(k: str | None, what: str) -> float:
        return statistics.median(r["emb_" + what]["wall_s"] if k is None else r["scaled"][k][what]["wall_s"]
                                 for r in runs)
    label = {"moto": "PG+moto", "s3s": "PG+s3s"}
    print()
    print(f"scale-out repository benchmark: tufpi repo init + import of {n:,} targets, embedded vs PostgreSQL + S3 "
          f"({', '.join(servers)}), loopback ({time.monotonic() - t_start:.0f} s)")
    print(f"machine: {os.cpu_count()} CPUs, 1-min load average {load_start:.2f} at start, {load_end:.2f} at end"
          + ("  (busy: other work shares the cores)" if max(load_start, load_end) > 1.5 else ""))
    print(f"{res['bins']:,} succinct bins, ed25519, sha256 + blake2b-256; work in {work} "
          f"({'tmpfs' if str(work).startswith('/dev/shm') else 'disk'}); records as bench/repo_bench.py")
    if len(runs) > 1:
        print(f"{len(runs)} interleaved runs: wall times are medians; the details below are of the first run")
    print()
    hdr = f"{'scenario':<34}{'embedded s':>11}" + "".join(f"{label[k] + ' s':>12}{'ratio':>8}" for k in servers) \
        + f"   {'goal'}"
    print(hdr)
    print("-" * len(hdr))
    for name, what, goal in (("repo init (empty bins)", "init", ""),
                             (f"repo import of {n:,} targets", "import", "<= 2x")):
        e = wall(None, what)
        row = f"{name:<34}{e:>11.2f}"
        verdicts = []
        for k in servers:
            s = wall(k, what)
            row += f"{s:>12.2f}{s / e:>7.2f}x"
            if goal:
                verdicts.append(f"{label[k]} {'met' if s / e <= 2 else 'MISSED'}")
        print(row + (f"   {goal}: " + ", ".join(verdicts) if goal else ""))
    # The same S3 requests (counted in moto's log) on each server alone, at its measured rates.
    s3req = sc["moto"]["import"]["s3"] if "moto" in sc else {}
    puts, gets = s3req.get("PUT", 0), s3req.get("GET", 0)
    for k in servers if s3req else []:
        m = sc[k]
        lim = puts / m["put_rate"] + gets / m["get_rate"]
        print(f"{'limit: ' + k + ' alone, those reqs':<34}{'':>11}{lim:>12.2f}{'':>8}   "
              f"{puts:,} PUT at {m['put_rate']:.0f}/s + {gets:,} GET at {m['get_rate']:.0f}/s "
              f"({res['mean_bin_bytes']:,} B objects, 8 connections)")
    print()
    print("where the import's time goes (phases from its debug log; CPU seconds of each process):")
    rows = [("embedded", ei, None)] + [(label[k], sc[k]["import"], k) for k in servers]
    for name, r, k in rows:
        ph = ", ".join(f"{p} {s:.2f} s" for p, s in r["phases"].items()) or "no phase lines"
        extra = ""
        if k:
            extra = (f"; {k} {r['server_cpu_s']:.1f} CPU s ({r['server_cpu_s'] / r['wall_s']:.0%} of a core), "
                     f"PostgreSQL {r['pg_cpu_s']:.1f} CPU s")
        print(f"  {name:<9} {r['wall_s']:6.2f} s wall: {ph}; tufpi {r['user_s']:.1f} user + {r['sys_s']:.1f} sys "
              f"CPU s, {r['rss_mb']:.0f} MB peak RSS{extra}")
    if "moto" in sc:
        st = sc["moto"]["import"].get("s3_status", {})
        nreq = sum(st.values())
        w = sc["moto"]["import"]["wall_s"]
        print(f"  S3 requests of the import (moto's log): {', '.join(f'{k} {v:,}' for k, v in sorted(st.items()))} "
              f"= {nreq:,} in {w:.1f} s ({nreq / w:.0f}/s)")
    for k in servers:
        if "perf_dso" in sc[k]:
            print()
            print(f"perf, {label[k]} import: CPU samples of tufpi by shared object, then by symbol (self time):")
            for ln in sc[k]["perf_dso"] + [""] + sc[k]["perf_sym"]:
                print(f"  {ln}")
    print()
    for k in servers:
        r = wall(k, "import") / wall(None, "import")
        each = ""
        if len(runs) > 1:
            each = "; each run: " + ", ".join(
                f"{x['scaled'][k]['import']['wall_s'] / x['emb_import']['wall_s']:.2f}x" for x in runs)
        print(f"goal: {label[k]} import <= 2x embedded: {'met' if r <= 2 else 'MISSED'} ({r:.2f}x{each})")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
