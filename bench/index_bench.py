"""Index load benchmark (issue 5): `tufpi serve` side by side with pypiserver serving the same
files, in one run, measured by one load generator (bench/src/bin/index_load.rs).

  pages:   GET /simple/<project>/ (PEP 503 HTML, `Accept: text/html`) of projects picked at
           random, over C keep-alive HTTP/1.1 connections, back to back for a fixed time after
           a warm-up; only 200 responses count. Goal: tufpi >= 10x pypiserver's requests/s.
  uploads: streams of twine-style uploads (multipart POST) at a concurrency or two; uploads/s,
           and for tufpi the time from each upload's 200 response to the first
           /metadata/timestamp.json read whose snapshot's bin lists the file's target path.
           Goal: p99 <= 1 s.

The files: N projects x V versions x (wheel + sdist), small, built here. tufpi gets them through
its upload API (`POST /legacy/`, token auth), pypiserver as files in its package directory;
then each upload stream goes to both. Both servers then hold the same files (checked).

pypiserver runs two ways (its docs' recommendations): `pypi-server run --server auto` (waitress,
with the watchdog-backed `cached-dir` backend of `pypiserver[cache]`), and gunicorn
(`gunicorn -w 2 'pypiserver:app(roots=[...])'`, sync workers); the better one is the
baseline. One more run with `--hash-algo off` (pages without hash fragments: less work, not the
same pages) is shown for reference.

CPU: on a machine with >= 2 CPUs every server runs pinned to CPU 0 and the load generator to
CPU 1 (`taskset`), so each server gets one core and the load generator another; --no-pin turns
that off. Run it via scripts/bench-index (builds release, sets up .venv-bench-index).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent

# ---------------------------------------------------------------- distributions


# The same wheel and sdist builders as the end-to-end tests.
sys.path.insert(0, str(HERE.parent / "tests" / "index_e2e"))
from e2e_util import build_sdist, build_wheel  # noqa: E402


def build_set(out: Path, prefix: str, projects: int, versions: int) -> tuple[Path, list[str], list[Path]]:
    """`projects` x `versions` x (wheel, sdist) under out/; a manifest for index_load (versions
    outermost, so consecutive uploads go to different projects); the project names."""
    out.mkdir(parents=True, exist_ok=True)
    names = [f"{prefix}-{i:04d}" for i in range(projects)]
    lines, files = [], []
    for v in range(versions):
        version = f"1.{v}.0"
        for name in names:
            for path, ft, pyv in (
                (build_wheel(out, name, version), "bdist_wheel", "py3"),
                (build_sdist(out, name, version), "sdist", "source"),
            ):
                lines.append(f"{path}\t{name}\t{version}\t{ft}\t{pyv}")
                files.append(path)
    manifest = out / "manifest.tsv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest, names, files


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def cpu_of_tree(pid: int) -> float:
    """User+system CPU seconds of `pid` and its direct children (gunicorn's workers)."""
    tick = os.sysconf("SC_CLK_TCK")

    def stat(p: str) -> list[str] | None:
        try:
            text = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            return None
        return text[text.rindex(")") + 2:].split()

    total = 0.0
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        f = stat(p)
        # Fields after "(comm)": state ppid ... utime(12th) stime(13th), 0-based 11 and 12.
        if f and (int(p) == pid or int(f[1]) == pid):
            total += (int(f[11]) + int(f[12])) / tick
    return total


class Proc:
    """A server process with its output in a log file."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict | None = None, cwd: Path | None = None):
        self.name = name
        self.log = log
        self.fh = open(log, "w")
        self.p = subprocess.Popen(argv, stdout=self.fh, stderr=subprocess.STDOUT, env=env, cwd=cwd)

    def alive(self) -> bool:
        return self.p.poll() is None

    def tail(self) -> str:
        try:
            return "".join(self.log.read_text().splitlines(True)[-30:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.fh.close()


def wait_http(proc: Proc, url: str, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not proc.alive():
            raise SystemExit(f"{proc.name} exited:\n{proc.tail()}")
        try:
            if http_get(url, 2.0)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    proc.stop()
    raise SystemExit(f"{proc.name} did not answer {url} within {timeout}s:\n{proc.tail()}")


# ---------------------------------------------------------------- the benchmark


class Bench:
    def __init__(self, args) -> None:
        self.a = args
        cpus = sorted(os.sched_getaffinity(0))
        self.pin = not args.no_pin and len(cpus) >= 2 and shutil.which("taskset") is not None
        self.server_cpus = str(cpus[0])
        self.loadgen_cpus = str(cpus[1]) if len(cpus) >= 2 else str(cpus[0])

    def server_prefix(self) -> list[str]:
        return ["taskset", "-c", self.server_cpus] if self.pin else []

    def loadgen(self, *argv: str) -> dict:
        cmd = (["taskset", "-c", self.loadgen_cpus] if self.pin else []) + [str(self.a.loadgen), *argv]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"index_load failed ({' '.join(cmd)}):\n{r.stderr}")
        return json.loads(r.stdout)

    def pages(self, proc: Proc, base: str, paths: Path) -> dict:
        """The page load, with the server's CPU use over the measured window."""
        out: dict = {}

        def sample() -> None:
            time.sleep(self.a.warmup)
            c0, t0 = cpu_of_tree(proc.p.pid), time.monotonic()
            time.sleep(self.a.duration)
            c1, t1 = cpu_of_tree(proc.p.pid), time.monotonic()
            out["server_cpu_s"] = c1 - c0
            out["server_cpu_wall_s"] = t1 - t0

        th = threading.Thread(target=sample)
        th.start()
        r = self.loadgen(
            "pages", "--url", base, "--paths", str(paths), "--connections", str(self.a.connections),
            "--duration", str(self.a.duration), "--warmup", str(self.a.warmup),
        )
        th.join()
        r.update(out)
        r["server_cpu_frac"] = out["server_cpu_s"] / out["server_cpu_wall_s"]
        r["server_cpu_us_per_req"] = out["server_cpu_s"] / max(r["ok"], 1) * 1e6
        if r["first_error"] or r["non200"]:
            print(f"  note: {r['non200']} non-200, {r['errors']} errors; first error: {r['first_error']}", file=sys.stderr)
        return r

    def uploads(self, base: str, manifest: Path, conc: int, path: str, token: str | None, watch: bool) -> dict:
        argv = ["uploads", "--url", base, "--manifest", str(manifest), "--connections", str(conc), "--path", path]
        if token:
            argv += ["--token", token]
        if watch:
            argv += ["--watch", "--poll-ms", str(self.a.poll_ms)]
        r = self.loadgen(*argv)
        if r["failed"]:
            raise SystemExit(f"{r['failed']} of {r['n']} uploads to {base}{path} failed; first: {r['first_error']}")
        if watch and (r["signed"]["error"] or r["signed"]["unsigned"]):
            raise SystemExit(f"signing watch failed: {r['signed']}")
        return r


T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f} s] {msg}", file=sys.stderr, flush=True)


def listed_files(html: bytes) -> set[str]:
    """File names linked from a PEP 503 page."""
    out = set()
    for part in html.decode(errors="replace").split("<a ")[1:]:
        text = part.split(">", 1)[1].split("</a>", 1)[0]
        out.add(text.strip())
    return out


def wait_idle(base: str, timeout: float = 60.0) -> dict:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        h = json.loads(http_get(f"{base}/health")[1])
        if h["pending_changes"] == 0 and h["publisher"]["state"] == "idle":
            return h
        time.sleep(0.05)
    raise SystemExit(f"tufpi publisher not idle after {timeout}s: {h}")


def pip_version(python: str, dist: str) -> str:
    r = subprocess.run([python, "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tufpi", type=Path, default=HERE.parent / "target" / "release" / "tufpi")
    ap.add_argument("--loadgen", type=Path, default=HERE.parent / "target" / "release" / "index_load")
    ap.add_argument("--venv", type=Path, default=HERE.parent / ".venv-bench-index")
    ap.add_argument("--work", type=Path, default=HERE / "out" / "index-bench",
                    help="work directory (on disk: tufpi fsyncs every upload; default bench/out/index-bench)")
    ap.add_argument("--quick", action="store_true", help="small and short: a smoke check in < 1 minute")
    ap.add_argument("--projects", type=int, help="seed projects (default 200; quick 30)")
    ap.add_argument("--versions", type=int, help="versions per seed project (default 3; quick 2)")
    ap.add_argument("--upload-projects", type=int, help="projects per upload stream (x2 versions x2 files; default 100; quick 10)")
    ap.add_argument("--upload-conc", default="1,8", help="upload stream concurrencies (default 1,8)")
    ap.add_argument("--seed-conc", type=int, default=4, help="concurrency of the seed upload to tufpi")
    ap.add_argument("--connections", type=int, default=32, help="page load: keep-alive connections")
    ap.add_argument("--duration", type=float, help="page load: measured seconds (default 10; quick 2)")
    ap.add_argument("--warmup", type=float, help="page load: warm-up seconds (default 2; quick 0.5)")
    ap.add_argument("--rounds", type=int, help="page load rounds over all servers; best counts (default 2; quick 1)")
    ap.add_argument("--gunicorn-workers", type=int, default=2)
    ap.add_argument("--no-gunicorn", action="store_true")
    ap.add_argument("--poll-ms", type=float, default=5.0, help="signing watch: timestamp.json poll interval")
    ap.add_argument("--no-pin", action="store_true", help="do not pin servers and load generator to CPUs")
    ap.add_argument("--json", type=Path, help="also write all measurements here")
    ap.add_argument("--keep", action="store_true", help="keep the data directories (tufpi's is ~0.5 GB after a full run)")
    a = ap.parse_args()
    q = a.quick
    a.projects = a.projects or (30 if q else 200)
    a.versions = a.versions or (2 if q else 3)
    a.upload_projects = a.upload_projects or (10 if q else 100)
    a.duration = a.duration or (2.0 if q else 10.0)
    a.warmup = a.warmup or (0.5 if q else 2.0)
    a.rounds = a.rounds or (1 if q else 2)
    concs = [int(c) for c in a.upload_conc.split(",") if c.strip()]
    py = str(a.venv / "bin" / "python")
    for p in (a.tufpi, a.loadgen):
        if not p.is_file():
            raise SystemExit(f"missing {p} (cargo build --release -p tufpi -p tufpi-bench)")
    b = Bench(a)
    t_start = time.monotonic()
    load_start = os.getloadavg()[0]

    if a.work.exists():
        log(f"removing the previous {a.work} ...")
        shutil.rmtree(a.work)
    a.work.mkdir(parents=True)
    log(f"building {a.projects} x {a.versions} x 2 seed files and {len(concs)} upload stream(s) of "
        f"{a.upload_projects} x 2 x 2 under {a.work} ...")
    seed_manifest, seed_names, seed_files = build_set(a.work / "dists" / "seed", "bench-proj", a.projects, a.versions)
    streams = []
    for c in concs:
        m, names, files = build_set(a.work / "dists" / f"up-c{c}", f"bench-up-c{c}", a.upload_projects, 2)
        streams.append((c, m, names, files))
    all_names = seed_names + [n for s in streams for n in s[2]]
    paths = a.work / "paths.txt"
    paths.write_text("".join(f"/simple/{n}/\n" for n in all_names))
    n_files = len(seed_files) + sum(len(s[3]) for s in streams)
    results: dict = {"tufpi": {}, "waitress": {}, "nohash": {}, "gunicorn": {}}

    # Every server stays up until the end: the page loads then run in rounds, one server after
    # the other in each round, and each server's best round counts (the same rule for all), so a
    # burst of other work on the machine does not decide the result.
    procs: dict[str, tuple[Proc, str]] = {}
    try:
        # -------------------------------------------------------- tufpi: uploads
        data = a.work / "tufpi-data"
        # The default level (warn), plus the publisher's one line per publish.
        env = dict(os.environ, TUFPI_LOG=os.environ.get("TUFPI_LOG", "warn,tufpi_index::publisher=info"), NO_COLOR="1")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log(f"tufpi serve on {base} (16,384 bins) ...")
        tp = Proc("tufpi serve", b.server_prefix() + [str(a.tufpi), "serve", "--data-dir", str(data), "--listen",
                                                      f"127.0.0.1:{port}",
                                                      # one token drives every upload stream
                                                      "--max-uploads-per-token", "64",
                                                      "--max-concurrent-uploads", "64"], a.work / "tufpi.log", env=env)
        procs["tufpi"] = (tp, base)
        wait_http(tp, f"{base}/health")
        token = subprocess.run([str(a.tufpi), "token", "create", "--data-dir", str(data)], check=True,
                               capture_output=True, text=True, env=env).stdout.strip().splitlines()[-1]
        for key, m, c in [("seed", seed_manifest, a.seed_conc)] + [(f"up{c}", m, c) for c, m, _, _ in streams]:
            log(f"  {'seed' if key == 'seed' else 'upload stream'}: {len(m.read_text().splitlines())} uploads "
                f"at concurrency {c} ...")
            v0 = wait_idle(base)["snapshot"]["version"]
            results["tufpi"][key] = b.uploads(base, m, c, "/legacy/", token, True)
            results["tufpi"][key]["snapshots"] = wait_idle(base)["snapshot"]["version"] - v0

        # -------------------------------------------------------- pypiserver (waitress): uploads
        pkgs = a.work / "pypiserver-packages"
        pkgs.mkdir()
        for f in seed_files:
            shutil.copy2(f, pkgs / f.name)

        def start_pypi(key: str, label: str, argv: list[str]) -> str:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            log(f"{label} on {base} ...")
            p = Proc(label, b.server_prefix() + [x.replace("{port}", str(port)) for x in argv],
                     a.work / f"pypiserver-{key}.log")
            procs[key] = (p, base)
            wait_http(p, f"{base}/simple/")
            return base

        pypi_run = [str(a.venv / "bin" / "pypi-server"), "run", "-i", "127.0.0.1", "-p", "{port}", "-a", ".", "-P", ".",
                    "--server", "auto", "--backend", "cached-dir"]
        base = start_pypi("waitress", "pypiserver (waitress)", pypi_run + [str(pkgs)])
        for c, m, _, files in streams:
            log(f"  upload stream: {len(files)} uploads at concurrency {c} ...")
            results["waitress"][f"up{c}"] = b.uploads(base, m, c, "/", None, False)
        if len(list(pkgs.iterdir())) != n_files:
            raise SystemExit(f"pypiserver holds {len(list(pkgs.iterdir()))} files, expected {n_files}")
        wait_idle(procs["tufpi"][1])
        sample = all_names[:: max(1, len(all_names) // 20)]
        tufpi_pages = {n: listed_files(http_get(f"{procs['tufpi'][1]}/simple/{n}/")[1]) for n in sample}
        pypi_pages = {n: listed_files(http_get(f"{base}/simple/{n}/")[1]) for n in sample}
        diff = [n for n in sample if tufpi_pages[n] != pypi_pages[n] or not tufpi_pages[n]]
        if diff:
            raise SystemExit(f"the servers list different files for {diff[:3]}: {tufpi_pages[diff[0]]} vs {pypi_pages[diff[0]]}")

        # -------------------------------------------------------- the other pypiserver setups
        start_pypi("nohash", "pypiserver (waitress, --hash-algo off)", pypi_run + ["--hash-algo", "off", str(pkgs)])
        if not a.no_gunicorn:
            app = f"pypiserver:app(roots=[{str(pkgs)!r}], authenticate=[], password_file='.')"
            start_pypi("gunicorn", f"pypiserver (gunicorn, {a.gunicorn_workers} sync workers)",
                       [str(a.venv / "bin" / "gunicorn"), "-w", str(a.gunicorn_workers), "-b", "127.0.0.1:{port}",
                        "--log-level", "warning", app])

        # -------------------------------------------------------- page loads, in rounds
        home = a.work / "home.txt"
        home.write_text("/\n")
        runs = [(k, k, paths) for k in procs] + [("home", "tufpi", home)]
        for r in range(a.rounds):
            for key, server, pfile in runs:
                p, base = procs[server]
                what = "GET / (static text: the HTTP stack's ceiling)" if key == "home" else "pages"
                log(f"round {r + 1}/{a.rounds}: {p.name}: {what}, {a.connections} connections, "
                    f"{a.warmup:g} s warm-up + {a.duration:g} s ...")
                res = b.pages(p, base, pfile)
                res["round"] = r + 1
                results.setdefault("page_runs", {}).setdefault(key, []).append(res)
        for key, rs in results["page_runs"].items():
            best_run = max(rs, key=lambda x: x["rps"])
            if key == "home":
                results["tufpi"]["home"] = best_run
            else:
                results[key]["pages"] = best_run
    finally:
        for p, _ in procs.values():
            p.stop()
        if not a.keep:
            # Every snapshot version stays (consistent snapshots, no GC here): ~0.5 MB each.
            for d in ("tufpi-data", "pypiserver-packages", "dists"):
                shutil.rmtree(a.work / d, ignore_errors=True)

    # ------------------------------------------------------------ report
    load_end = os.getloadavg()[0]
    vers = {d: pip_version(py, d) for d in ("pypiserver", "waitress", "gunicorn", "watchdog")}
    tp_pages = results["tufpi"]["pages"]
    pv = f"pypiserver {vers['pypiserver']}"
    # Baselines serving the same pages as tufpi's (links with sha256 fragments)...
    base_rows = [("waitress", f"{pv} + waitress {vers['waitress']} (4 threads)")]
    if "pages" in results["gunicorn"]:
        base_rows.append(("gunicorn", f"{pv} + gunicorn {vers['gunicorn']} ({a.gunicorn_workers} sync wkrs)"))
    # ... and one that leaves the hashes out (less work, pages pip cannot hash-check).
    info_rows = [("nohash", f"{pv} + waitress, --hash-algo off *")]
    best_key = max((k for k, _ in base_rows), key=lambda k: results[k]["pages"]["rps"])
    best = results[best_key]["pages"]
    ratio = tp_pages["rps"] / best["rps"] if best["rps"] else float("inf")
    nh = results["nohash"]["pages"]
    ratio_nh = tp_pages["rps"] / nh["rps"] if nh["rps"] else float("inf")

    print()
    print(f"index load benchmark: tufpi serve vs pypiserver, loopback, {'quick' if q else 'full'} run "
          f"({time.monotonic() - t_start:.0f} s)")
    print(f"files: {n_files:,} ({len(seed_files):,} seed = {a.projects} projects x {a.versions} versions x wheel+sdist, "
          f"+ {sum(len(s[3]) for s in streams):,} from the upload streams) in {len(all_names):,} projects; "
          f"the same files on both servers (checked on {len(tufpi_pages)} pages)")
    pin = (f"each server pinned to CPU {b.server_cpus}, the load generator (1 thread) to CPU {b.loadgen_cpus}"
           if b.pin else "no CPU pinning")
    print(f"machine: {os.cpu_count()} CPUs; {pin}; 1-min load average {load_start:.2f} at start, {load_end:.2f} at end"
          + ("  (busy: other work shares the cores)" if max(load_start, load_end) > 1.5 else ""))
    print(f"tufpi: 16,384 succinct bins, ed25519, consistent snapshots, every upload fsynced; work dir {a.work}")
    print(f"pypiserver: run --server auto (= waitress) --backend cached-dir (watchdog {vers['watchdog']}), "
          f"-a . -P . (no auth); gunicorn as its docs show")
    print()
    print(f"simple pages: GET /simple/<random project>/ (HTML), {a.connections} keep-alive HTTP/1.1 connections, "
          f"{a.warmup:g} s warm-up + {a.duration:g} s measured, 200s only; "
          + (f"best of {a.rounds} rounds over all servers" if a.rounds > 1 else "1 round"))
    hdr = (f"{'server':<52}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'bytes':>7}{'fail':>6}"
           f"{'srv CPU':>8}{'CPU us/req':>11}{'ldgen':>7}")
    print(hdr)
    print("-" * len(hdr))

    def page_row(label: str, r: dict) -> None:
        print(f"{label:<52}{r['rps']:>9,.0f}{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}{r['mean_body_bytes']:>7,.0f}"
              f"{r['non200'] + r['errors']:>6}{r['server_cpu_frac'] * 100:>7.0f}%{r['server_cpu_us_per_req']:>11.0f}"
              f"{r['loadgen_cpu'] * 100:>6.0f}%")

    page_row("tufpi serve", tp_pages)
    for k, label in base_rows + info_rows:
        page_row(label, results[k]["pages"])
    page_row("tufpi serve, GET / (static text: HTTP stack ceiling)", results["tufpi"]["home"])
    print("* links without #sha256= fragments: not the same pages (pip cannot check hashes); shown for reference")
    print("pypiserver builds every page from a listing of its whole directory (and its watchdog cache is dropped on any "
          "file event,\n  its own reads for hashing included), so its cost per page grows with the number of files")
    print("srv CPU = the server's CPU time / wall time over the measured window (its core: 100%); ldgen = the load generator's")
    if a.rounds > 1:
        for key, rs in results["page_runs"].items():
            label = "tufpi GET /" if key == "home" else ("tufpi" if key == "tufpi" else f"pypiserver {key}")
            print(f"  rounds, {label}: " + ", ".join(f"{x['rps']:,.0f} req/s ({x['server_cpu_frac'] * 100:.0f}% CPU)" for x in rs))
    pages_ok = ratio >= 10
    cpu_ratio = best["server_cpu_us_per_req"] / tp_pages["server_cpu_us_per_req"]
    print(f"ratio tufpi / best pypiserver with the same pages ({best_key}): {ratio:.1f}x    goal >= 10x: "
          f"{'met' if pages_ok else 'MISSED'}    (vs --hash-algo off: {ratio_nh:.1f}x)")
    print(f"server CPU per page, pypiserver ({best_key}) / tufpi: {cpu_ratio:.1f}x (vs --hash-algo off: "
          f"{nh['server_cpu_us_per_req'] / tp_pages['server_cpu_us_per_req']:.1f}x)")
    print()
    print("uploads: twine's multipart POST of one ~1 KB file each, back to back on each connection")
    hdr = (f"{'server':<24}{'conc':>5}{'files':>7}{'uploads/s':>11}{'p50 ms':>9}{'p99 ms':>9}"
           f"   {'200 -> signed in timestamp, ms: p50 / p99 / max':<50}{'snapshots  read gap max'}")
    print(hdr)
    print("-" * len(hdr))
    worst_p99 = 0.0
    rows = [("tufpi", "seed", a.seed_conc)] + [("tufpi", f"up{c}", c) for c in concs] + [("waitress", f"up{c}", c) for c in concs]
    for who, key, c in rows:
        r = results[who][key]
        label = ("tufpi serve" if who == "tufpi" else "pypiserver (waitress)") + (" (seed)" if key == "seed" else "")
        s = r.get("signed")
        sig, extra = "n/a (nothing signed)", ""
        if s:
            sig = f"{s['p50_ms']:>7.0f} / {s['p99_ms']:>5.0f} / {s['max_ms']:>5.0f}   ({s['n']} of {r['ok']} signed)"
            worst_p99 = max(worst_p99, s["p99_ms"])
            extra = f"{r['snapshots']:>9}{s['max_poll_gap_ms']:>10.0f} ms"
        print(f"{label:<24}{c:>5}{r['n']:>7}{r['rate']:>11.1f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}   {sig:<50}{extra}")
    for c in concs:
        t, w = results["tufpi"][f"up{c}"]["rate"], results["waitress"][f"up{c}"]["rate"]
        print(f"ratio tufpi / pypiserver uploads/s at concurrency {c}: {t / w:.2f}x")
    signed_ok = worst_p99 <= 1000
    print(f"signed = the first read of /metadata/timestamp.json (read every {a.poll_ms:g} ms; 'read gap max' = the longest "
          f"time between two reads) whose snapshot's bin lists the file's target path; snapshots = versions made;\n"
          f"  each read on a new connection, so the watch never waits on a delayed ACK")
    print(f"upload -> signed, worst p99 over the streams: {worst_p99:.0f} ms    goal <= 1000 ms: "
          f"{'met' if signed_ok else 'MISSED'}")
    print()
    print(f"goals: simple pages >= 10x pypiserver: {'met' if pages_ok else 'MISSED'} ({ratio:.1f}x); "
          f"upload -> signed p99 <= 1 s: {'met' if signed_ok else 'MISSED'} ({worst_p99:.0f} ms)")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))

if __name__ == "__main__":
    main()
