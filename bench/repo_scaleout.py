"""Scale-out repository benchmark (issue 13), `scripts/bench-repo --scaleout`: `tufpi repo init`
and a `tufpi repo import --from-jsonl` of N targets (default 1,000,000) on the embedded backend
(SQLite + files in DIR) and on PostgreSQL + S3 (moto), in one run, the same records in both:
record i as bench/repo_bench.py (and the Rust side, bench/src/repo/records.rs) makes it, PyPI-
like paths with sha256 + blake2b-256. Goal: the PostgreSQL + S3 import <= 2x the embedded one.

Each command is timed as a whole (wall), with its CPU time and peak RSS (wait4); during the
scaled-out ones also moto's and PostgreSQL's CPU time and the S3 requests moto logged. The
limit row: moto alone storing as many objects of the import's mean metadata object size as the
import PUT (its PutObject rate measured here, times that count): moto is a Python server and
may be what bounds the scaled-out import. The embedded repository and the JSONL live in the
work directory (default /dev/shm when present; moto keeps objects in memory too); the database
made here is dropped WITH (FORCE), moto stopped by its PID.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f} s] {msg}", file=sys.stderr, flush=True)


def write_jsonl(path: Path, n: int) -> None:
    with open(path, "w") as f:
        for i in range(n):
            p, length, hashes = record(i)
            f.write(json.dumps({"path": p, "length": length, "hashes": hashes}, separators=(",", ":")) + "\n")


def timed(argv: list[str], env: dict, logf: Path, watch: list[int] | None = None) -> dict:
    """Run argv to completion: wall s, its CPU s and peak RSS MB, and the CPU s of `watch`."""
    c0 = cpu_seconds(watch or [])
    t0 = time.monotonic()
    with open(logf, "ab") as out:
        out.write(f"==== {' '.join(argv)}\n".encode())
        out.flush()
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise SystemExit(f"{argv[1:4]} failed ({p.returncode}); its output:\n{logf.read_text()[-3000:]}")
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "rss_mb": ru.ru_maxrss / 1024,
            "watch_cpu_s": cpu_seconds(watch or []) - c0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tufpi", type=Path, default=HERE.parent / "target" / "release" / "tufpi")
    ap.add_argument("--targets", type=int, help="targets imported (default 1,000,000; quick 100,000)")
    ap.add_argument("--quick", action="store_true", help="100,000 targets in 4,096 bins: about 2 minutes")
    ap.add_argument("--bins-bit-length", type=int, help="2^N bins (default 14: 16,384; quick 12)")
    ap.add_argument("--pg-url", default=os.environ.get("TUFPI_TEST_PG_URL", PG_DEFAULT))
    ap.add_argument("--work", type=Path, help="work directory (default a new one in /dev/shm when present)")
    ap.add_argument("--json", type=Path, help="also write all measurements here")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    n = a.targets or (100_000 if a.quick else 1_000_000)
    a.bins_bit_length = a.bins_bit_length or (12 if a.quick else 14)
    if not a.tufpi.is_file():
        raise SystemExit(f"missing {a.tufpi} (cargo build --release -p tufpi)")
    shm = Path("/dev/shm")
    work = a.work or Path(tempfile.mkdtemp(prefix="tufpi-repo-scaleout-", dir=shm if shm.is_dir() else None))
    work.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()[0]
    t_start = time.monotonic()
    env = dict(os.environ, NO_COLOR="1")
    tufpi = str(a.tufpi)
    res: dict = {"targets": n}
    pg = Postgres(a.pg_url)
    s3 = None
    try:
        jsonl = work / "targets.jsonl"
        log(f"writing {n:,} records to {jsonl} ...")
        write_jsonl(jsonl, n)
        bits = ["--bins-bit-length", str(a.bins_bit_length)]

        log(f"embedded: repo init ({2 ** a.bins_bit_length:,} bins) ...")
        emb = work / "embedded"
        res["emb_init"] = timed([tufpi, "repo", "init", "--repo", str(emb), "--dev-keys", *bits], env, work / "embedded.log")
        log(f"embedded: repo import of {n:,} targets ...")
        res["emb_import"] = timed([tufpi, "repo", "import", "--repo", str(emb), "--from-jsonl", str(jsonl)], env,
                                  work / "embedded.log")
        # The import's metadata objects: the newest version of each bin (+ snapshot, timestamp).
        mdir = emb / "metadata"
        newest: dict[str, tuple[int, int]] = {}
        for f in mdir.iterdir():
            parts = f.name.split(".", 1)
            if parts[0].isdigit():
                v, role = int(parts[0]), parts[1]
                if v > newest.get(role, (0, 0))[0]:
                    newest[role] = (v, f.stat().st_size)
        bins = [s for r, (_, s) in newest.items() if r.startswith("bin-")]
        mean_bin = int(sum(bins) / max(len(bins), 1))
        res["mean_bin_bytes"] = mean_bin
        if not a.keep:
            shutil.rmtree(emb, ignore_errors=True)

        log("starting the S3 test server (moto) ...")
        s3 = S3Server(work)
        dep = Deployment(pg, s3, "repo")
        denv = dep.env(env)
        d = work / "scaled"
        log(f"PostgreSQL + S3: repo init ({2 ** a.bins_bit_length:,} bins) ...")
        off = s3.log_offset()
        res["so_init"] = timed([tufpi, "repo", "init", "--repo", str(d), "--dev-keys", *bits, *dep.args()], denv,
                               work / "scaled.log", [s3.pid])
        res["so_init"]["s3"] = dict(s3.requests_since(off, dep.bucket))
        log(f"PostgreSQL + S3: repo import of {n:,} targets ...")
        off = s3.log_offset()
        m0, p0 = cpu_seconds([s3.pid]), postgres_cpu()
        res["so_import"] = timed([tufpi, "repo", "import", "--repo", str(d), "--from-jsonl", str(jsonl), *dep.args()],
                                 denv, work / "scaled.log")
        res["so_import"]["moto_cpu_s"] = cpu_seconds([s3.pid]) - m0
        res["so_import"]["pg_cpu_s"] = postgres_cpu() - p0
        res["so_import"]["s3"] = dict(s3.requests_since(off, dep.bucket))
        puts = res["so_import"]["s3"].get("PUT", 0)
        k = min(max(puts, 1), 2000)
        log(f"moto alone: {k} PutObjects and GetObjects of {mean_bin:,} bytes at concurrency 8 ...")
        lim_bucket = "tufpi-bench-limit-repo"
        s3.create_bucket(lim_bucket)
        res["moto_put_rate"] = s3.put_rate(lim_bucket, k, mean_bin, 8)
        res["moto_get_rate"] = s3.put_rate(lim_bucket, k, mean_bin, 8, "GET")
        dep.drop()
    finally:
        pg.drop_all()
        if s3:
            s3.stop()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)

    load_end = os.getloadavg()[0]
    ei, ii = res["emb_import"], res["so_import"]
    ratio = ii["wall_s"] / ei["wall_s"]
    puts, gets = ii["s3"].get("PUT", 0), ii["s3"].get("GET", 0)
    lim_s = puts / res["moto_put_rate"] + gets / res["moto_get_rate"]
    print()
    print(f"scale-out repository benchmark: tufpi repo init + import of {n:,} targets, embedded vs PostgreSQL + S3 "
          f"(moto), loopback ({time.monotonic() - t_start:.0f} s)")
    print(f"machine: {os.cpu_count()} CPUs, 1-min load average {load_start:.2f} at start, {load_end:.2f} at end"
          + ("  (busy: other work shares the cores)" if max(load_start, load_end) > 1.5 else ""))
    print(f"{2 ** a.bins_bit_length:,} succinct bins, ed25519, sha256 + blake2b-256; embedded in {work} "
          f"({'tmpfs' if str(work).startswith('/dev/shm') else 'disk'}); records as bench/repo_bench.py")
    print()
    hdr = f"{'scenario':<36}{'embedded s':>11}{'PG+S3 s':>9}{'ratio':>9}   {'goal':<14}{'PG+S3: tufpi CPU s / RSS MB, S3 requests':<40}"
    print(hdr)
    print("-" * len(hdr))
    for label, e, s, goal in (("repo init (empty bins)", res["emb_init"], res["so_init"], ""),
                              (f"repo import of {n:,} targets", ei, ii, "<= 2x")):
        r = s["wall_s"] / e["wall_s"]
        met = ("met" if r <= 2 else "MISSED") if goal else ""
        reqs = ", ".join(f"{m} {v:,}" for m, v in sorted(s["s3"].items()))
        print(f"{label:<36}{e['wall_s']:>11.2f}{s['wall_s']:>9.2f}{r:>8.2f}x   {(goal + ' ' + met).strip():<14}"
              f"{s['cpu_s']:.1f} / {s['rss_mb']:.0f}, {reqs}")
    print(f"{'limit: moto alone, the import S3 reqs':<36}{'':>11}{lim_s:>9.2f}{'':>9}   {'':<14}"
          f"{puts:,} PUT at {res['moto_put_rate']:.0f}/s + {gets:,} GET at {res['moto_get_rate']:.0f}/s "
          f"({res['mean_bin_bytes']:,} B objects, 8 connections)")
    print()
    nreq = sum(ii["s3"].values())
    print(f"PG+S3 import: {nreq:,} S3 requests in {ii['wall_s']:.1f} s = {nreq / ii['wall_s']:.0f}/s "
          f"(moto alone: PUT {res['moto_put_rate']:.0f}/s, GET {res['moto_get_rate']:.0f}/s at 8 connections)")
    print(f"embedded import: {ei['cpu_s']:.1f} CPU s, {ei['rss_mb']:.0f} MB peak RSS; PG+S3 import: moto "
          f"{ii['moto_cpu_s']:.1f} CPU s ({ii['moto_cpu_s'] / ii['wall_s']:.0%} of a core), PostgreSQL "
          f"{ii['pg_cpu_s']:.1f} CPU s")
    if lim_s >= 0.5 * ii["wall_s"] or ii["moto_cpu_s"] / ii["wall_s"] >= 0.8:
        print(f"note: moto (one Python process) accounts for much of the PG+S3 time: its requests alone take "
              f"{lim_s:.1f} s of the import's {ii['wall_s']:.1f} s; a real S3 endpoint would not bound it this way")
    print(f"goal: PG+S3 import <= 2x embedded: {'met' if ratio <= 2 else 'MISSED'} ({ratio:.2f}x)")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
