"""Client benchmark: the `tufpi client` CLI vs python-tuf's ngclient, side by side, on one
PyPI-sized repository served by one loopback server.

The repository (built once with python-tuf, cached under bench/out/client-repo): consistent
snapshots, ed25519 keys, top-level targets delegating to 16,384 succinct hash bins
(bit_length 14, name_prefix "bin"), 100,000 PyPI-like targets
(`packages/xx/yy/<hash>/<name>-1.0-py3-none-any.whl`, length + sha256), one of which is real:
256 KiB of bytes stored as `packages/…/<sha256>.<name>`.

Measured, each as a fresh process, as a user pays it (process start, imports included):
  cold: empty metadata dir -> `tufpi client init` + `tufpi client download` of the real target,
        vs `python -c` ngclient: Updater(bootstrap=root) -> refresh -> get_targetinfo ->
        download_target;
  warm: metadata dir already populated, nothing changed on the server -> `tufpi client
        refresh` vs `python -c` ngclient Updater(bootstrap=None) -> refresh.
The server counts the bytes it sends per client run (metadata and targets separately).

Run it via scripts/bench-client (builds the release binary, sets up the venv).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import socket
import socketserver
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote

HERE = Path(__file__).resolve().parent
REPO_FORMAT = 3  # bump when the repository layout/content below changes

BIT_LENGTH = 14
N_TARGETS = 100_000
REAL_SIZE = 256 * 1024
SEED = 458


# ---------------------------------------------------------------- repository (built once)


def build_repo(out: Path) -> dict:
    from datetime import datetime, timezone

    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import (
        Delegations,
        Metadata,
        MetaFile,
        Root,
        Snapshot,
        SuccinctRoles,
        TargetFile,
        Targets,
        Timestamp,
    )
    from tuf.api.serialization.json import JSONSerializer

    t0 = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    mdir = out / "metadata"
    tdir = out / "targets"
    mdir.mkdir(parents=True)
    tdir.mkdir(parents=True)
    expires = datetime(2035, 1, 1, tzinfo=timezone.utc)
    ser = JSONSerializer()  # python-tuf's default: indented, sorted keys
    signers = {r: CryptoSigner.generate_ed25519() for r in ("root", "timestamp", "snapshot", "targets", "bins")}

    root = Root(expires=expires, consistent_snapshot=True)
    for r in ("root", "timestamp", "snapshot", "targets"):
        root.add_key(signers[r].public_key, r)

    sr = SuccinctRoles([], 1, BIT_LENGTH, "bin")
    targets = Targets(expires=expires)
    targets.delegations = Delegations(keys={}, succinct_roles=sr)
    targets.add_key(signers["bins"].public_key)
    bins = {name: Targets(expires=expires) for name in sr.get_roles()}

    rng = random.Random(SEED)
    for i in range(N_TARGETS):
        h = rng.randbytes(32).hex()  # like warehouse's blake2b_256 path digest
        path = f"packages/{h[:2]}/{h[2:4]}/{h[4:]}/project{i}-1.0-py3-none-any.whl"
        tf = TargetFile(rng.randint(2_000, 5_000_000), {"sha256": rng.randbytes(32).hex()}, path)
        bins[sr.get_role_for_target(path)].targets[path] = tf

    real_data = rng.randbytes(REAL_SIZE)
    h = rng.randbytes(32).hex()
    real_name = f"packages/{h[:2]}/{h[2:4]}/{h[4:]}/realproject-1.0-py3-none-any.whl"
    real = TargetFile.from_data(real_name, real_data, ["sha256"])
    real_bin = sr.get_role_for_target(real_name)
    bins[real_bin].targets[real_name] = real
    d, _, b = real_name.rpartition("/")
    (tdir / d).mkdir(parents=True)
    (tdir / d / f"{real.hashes['sha256']}.{b}").write_bytes(real_data)

    snapshot = Snapshot(expires=expires)
    for name, t in bins.items():
        md = Metadata(t)
        md.sign(signers["bins"])
        (mdir / f"1.{name}.json").write_bytes(md.to_bytes(ser))
        snapshot.meta[f"{name}.json"] = MetaFile(1)
    snapshot.meta["targets.json"] = MetaFile(1)

    def write(signed, role: str, fname: str) -> bytes:
        md = Metadata(signed)
        md.sign(signers[role])
        data = md.to_bytes(ser)
        (mdir / fname).write_bytes(data)
        return data

    write(targets, "targets", "1.targets.json")
    snap_bytes = write(snapshot, "snapshot", "1.snapshot.json")
    ts = Timestamp(expires=expires)
    ts.snapshot_meta = MetaFile(1)
    write(ts, "timestamp", "timestamp.json")
    root_bytes = write(root, "root", "1.root.json")
    (mdir / "root.json").write_bytes(root_bytes)

    params = {
        "format": REPO_FORMAT,
        "bit_length": BIT_LENGTH,
        "targets": N_TARGETS + 1,
        "real_target": real_name,
        "real_bin": real_bin,
        "real_sha256": real.hashes["sha256"],
        "snapshot_bytes": len(snap_bytes),
        "build_seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "params.json").write_text(json.dumps(params, indent=1))
    return params


def load_or_build(out: Path, rebuild: bool) -> dict:
    pfile = out / "params.json"
    if not rebuild and pfile.is_file():
        params = json.loads(pfile.read_text())
        if params.get("format") == REPO_FORMAT and (out / "metadata" / "1.root.json").is_file():
            return params
    print(f"building the repository under {out} (once) ...", file=sys.stderr, flush=True)
    params = build_repo(out)
    print(f"built in {params['build_seconds']} s", file=sys.stderr, flush=True)
    return params


# ---------------------------------------------------------------- server


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests: list[tuple[str, int, int]] = []

    def record(self, path: str, status: int, n: int) -> None:
        with self.lock:
            self.requests.append((path, status, n))

    def summary(self) -> dict:
        with self.lock:
            reqs = list(self.requests)
        meta = [r for r in reqs if r[0].startswith("/metadata/")]
        return {
            "requests": len(reqs),
            "metadata_bytes": sum(r[2] for r in meta),
            "target_bytes": sum(r[2] for r in reqs if r[0].startswith("/targets/")),
            "paths": [f"{p} {s} {n}" for p, s, n in reqs],
        }


class FastHandler(socketserver.BaseRequestHandler):
    """Minimal HTTP/1.1 static GET server: keep-alive, TCP_NODELAY, files cached in memory,
    one sendall per response."""

    def handle(self) -> None:
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        srv: FastServer = self.server  # type: ignore[assignment]
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            try:
                method, target, version = lines[0].split(b" ", 2)
            except ValueError:
                return
            close = version == b"HTTP/1.0" or any(
                line.lower().replace(b" ", b"") == b"connection:close" for line in lines[1:]
            )
            path = unquote(target.split(b"?", 1)[0].decode("latin-1"), encoding="utf-8")
            body = srv.lookup(path) if method in (b"GET", b"HEAD") else None
            status = 200 if body is not None else 404
            if body is None:
                body = b""
            header = (
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Content-Type: application/octet-stream\r\n"
                + ("Connection: close\r\n" if close else "")
                + "\r\n"
            ).encode()
            try:
                sock.sendall(header + (body if method == b"GET" else b""))
            except OSError:
                return
            srv.stats.record(path, status, len(body) if method == b"GET" else 0)
            if close:
                return


class FastServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), FastHandler)
        self.root = root.resolve()
        self.cache: dict[str, bytes | None] = {}
        self.stats = Stats()

    def lookup(self, path: str) -> bytes | None:
        if path in self.cache:
            return self.cache[path]
        rel = path.lstrip("/")
        data = None
        if rel and ".." not in rel.split("/"):
            f = self.root / rel
            if f.is_file():
                data = f.read_bytes()
        self.cache[path] = data
        return data

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


# ---------------------------------------------------------------- clients

NG_COLD = """
import sys
from tuf.ngclient import Updater
mdir, murl, tdir, turl, root, name = sys.argv[1:]
with open(root, "rb") as f:
    bootstrap = f.read()
u = Updater(mdir, murl, tdir, turl, bootstrap=bootstrap)
u.refresh()
info = u.get_targetinfo(name)
assert info is not None, name
if u.find_cached_target(info) is None:
    u.download_target(info)
"""

NG_WARM = """
import sys
from tuf.ngclient import Updater
mdir, murl = sys.argv[1:]
Updater(mdir, murl, bootstrap=None).refresh()
"""


def run(argv: list[str], expect_rc: int = 0) -> tuple[float, float]:
    """Run a process to completion; (wall ms, user+sys CPU ms)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True)
    wall = (time.perf_counter() - t0) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != expect_rc:
        raise SystemExit(
            f"failed (rc={p.returncode}): {' '.join(argv)}\n{p.stdout.decode()}\n{p.stderr.decode()}"
        )
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu


class Bench:
    def __init__(self, args, params: dict, server: FastServer) -> None:
        self.tufpi = str(args.tufpi)
        self.python = args.python
        self.params = params
        self.server = server
        self.repo = args.repo
        self.work = args.out / "client-work"
        self.murl = f"{server.base}/metadata/"
        self.turl = f"{server.base}/targets/"
        self.root = str(args.repo / "metadata" / "1.root.json")
        self.name = params["real_target"]
        self.real_sha = params["real_sha256"]

    def fresh(self, who: str) -> tuple[Path, Path]:
        d = self.work / who
        if d.exists():
            shutil.rmtree(d)
        (d / "targets").mkdir(parents=True)
        (d / "metadata").mkdir(parents=True)
        return d / "metadata", d / "targets"

    def check_target(self, tdir: Path) -> None:
        import hashlib
        from urllib.parse import quote

        data = (tdir / quote(self.name, safe="")).read_bytes()
        assert hashlib.sha256(data).hexdigest() == self.real_sha, "wrong target bytes"

    def tufpi_cold(self) -> dict:
        mdir, tdir = self.fresh("tufpi")
        self.server.stats.reset()
        w1, c1 = run([self.tufpi, "client", "--metadata-dir", str(mdir), "init", self.root])
        w2, c2 = run(
            [
                self.tufpi, "client", "--metadata-url", self.murl, "--metadata-dir", str(mdir),
                "--target-name", self.name, "--target-dir", str(tdir),
                "--target-base-url", self.turl, "download",
            ]
        )
        self.check_target(tdir)
        return {"wall": w1 + w2, "cpu": c1 + c2, "init_wall": w1, "download_wall": w2, **self.server.stats.summary()}

    def python_cold(self) -> dict:
        mdir, tdir = self.fresh("python")
        self.server.stats.reset()
        w, c = run(
            [self.python, "-c", NG_COLD, str(mdir), self.murl, str(tdir), self.turl, self.root, self.name]
        )
        self.check_target(tdir)
        return {"wall": w, "cpu": c, **self.server.stats.summary()}

    def tufpi_warm(self) -> dict:
        mdir = self.work / "tufpi" / "metadata"
        self.server.stats.reset()
        w, c = run([self.tufpi, "client", "--metadata-url", self.murl, "--metadata-dir", str(mdir), "refresh"])
        return {"wall": w, "cpu": c, **self.server.stats.summary()}

    def python_warm(self) -> dict:
        mdir = self.work / "python" / "metadata"
        self.server.stats.reset()
        w, c = run([self.python, "-c", NG_WARM, str(mdir), self.murl])
        return {"wall": w, "cpu": c, **self.server.stats.summary()}

    def python_startup(self) -> float:
        return run([self.python, "-c", "import tuf.ngclient"])[0]

    def tufpi_breakdown(self, reps: int) -> dict[str, float]:
        """Where a warm tufpi refresh goes, each part as its own process (medians, wall ms):
        the bare process (`--version`), the same plus the HTTP client setup (a refresh that
        stops at the missing root.json), and parse + verify of the trusted snapshot
        (`metadata verify snapshot.json`)."""
        mdir = self.work / "tufpi" / "metadata"
        empty = self.work / "empty"
        empty.mkdir(exist_ok=True)
        parts = {
            "process (tufpi --version)": ([self.tufpi, "--version"], 0),
            "process + HTTP client setup": (
                [self.tufpi, "client", "--metadata-url", self.murl, "--metadata-dir", str(empty), "refresh"], 1
            ),
            "process + snapshot parse+verify": (
                [self.tufpi, "metadata", "verify", str(mdir / "snapshot.json"), "--delegator", str(mdir / "root.json")], 0
            ),
        }
        out = {}
        for label, (argv, rc) in parts.items():
            run(argv, rc)
            out[label] = statistics.median(run(argv, rc)[0] for _ in range(reps))
        out["(/bin/true, for scale)"] = statistics.median(run(["/bin/true"])[0] for _ in range(reps))
        return out


def med(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tufpi", type=Path, default=HERE.parent / "target" / "release" / "tufpi")
    ap.add_argument("--python", default=sys.executable, help="python with tuf installed (ngclient side)")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--repo", type=Path, default=None, help="default: OUT/client-repo")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the cached repository")
    ap.add_argument("--cold-reps", type=int, default=7)
    ap.add_argument("--warm-reps", type=int, default=15)
    ap.add_argument("--json", type=Path, help="also write all measurements here")
    args = ap.parse_args()
    args.repo = args.repo or args.out / "client-repo"
    if not args.tufpi.is_file():
        raise SystemExit(f"no tufpi binary at {args.tufpi} (cargo build --release -p tufpi)")

    params = load_or_build(args.repo, args.rebuild)
    load_start = os.getloadavg()[0]
    server = FastServer(args.repo)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    b = Bench(args, params, server)

    # Warm-up (page cache, server file cache), not counted.
    b.tufpi_cold()
    b.python_cold()

    cold_t, cold_p, warm_t, warm_p = [], [], [], []
    for _ in range(args.cold_reps):  # interleaved, so both see the same machine state
        cold_t.append(b.tufpi_cold())
        cold_p.append(b.python_cold())
    # Both metadata dirs now hold the state after a cold run: warm refreshes from there.
    b.tufpi_warm()
    b.python_warm()
    for i in range(max(args.warm_reps, args.cold_reps)):
        warm_t.append(b.tufpi_warm())
        if i < args.cold_reps:
            warm_p.append(b.python_warm())
    startup = statistics.median(b.python_startup() for _ in range(5))
    breakdown = b.tufpi_breakdown(max(args.warm_reps, 5))
    server.shutdown()

    def fmt_bytes(n: float) -> str:
        return f"{n / 1024:,.1f} KiB"

    ct, cp = med(cold_t, "wall"), med(cold_p, "wall")
    wt, wp = med(warm_t, "wall"), med(warm_p, "wall")
    print()
    print(
        f"repository: {params['targets']:,} targets in {2 ** params['bit_length']:,} succinct bins, "
        f"snapshot {fmt_bytes(params['snapshot_bytes'])}, consistent snapshots, ed25519; "
        f"target {REAL_SIZE // 1024} KiB in {params['real_bin']}"
    )
    load_end = os.getloadavg()[0]
    print(
        f"machine: {os.cpu_count()} CPUs, 1-min load average {load_start:.2f} at start, {load_end:.2f} at end"
        + ("  (busy machine: wall times are inflated; the CPU-time rows are steadier)" if max(load_start, load_end) > 1.0 else "")
    )
    print(f"tufpi: {args.tufpi}   python: {args.python}   (medians; cold n={args.cold_reps}, warm n={len(warm_t)}/{len(warm_p)})")
    print()
    hdr = f"{'scenario':<34}{'tufpi':>12}{'python-tuf':>14}{'ratio py/tufpi':>16}   goal"
    print(hdr)
    print("-" * (len(hdr) + 22))
    cold_ok = cp / ct >= 20
    warm_ok = wt <= 2.0
    print(f"{'cold refresh+download, wall ms':<34}{ct:>12.1f}{cp:>14.1f}{cp / ct:>15.1f}x   >= 20x: {'met' if cold_ok else 'MISSED'}")
    print(f"{'  tufpi: init / download, wall ms':<34}{med(cold_t, 'init_wall'):>6.1f} / {med(cold_t, 'download_wall'):.1f}")
    print(f"{'cold, CPU ms (user+sys)':<34}{med(cold_t, 'cpu'):>12.1f}{med(cold_p, 'cpu'):>14.1f}{med(cold_p, 'cpu') / med(cold_t, 'cpu'):>15.1f}x")
    print(f"{'warm refresh, wall ms':<34}{wt:>12.2f}{wp:>14.1f}{wp / wt:>15.1f}x   tufpi <= 2 ms: {'met' if warm_ok else 'MISSED'}")
    print(f"{'warm, CPU ms (user+sys)':<34}{med(warm_t, 'cpu'):>12.2f}{med(warm_p, 'cpu'):>14.1f}{med(warm_p, 'cpu') / max(med(warm_t, 'cpu'), 1e-9):>15.1f}x")
    print(f"{'python start + import tuf.ngclient':<34}{'':>12}{startup:>14.1f}")
    print(f"{'cold: metadata bytes fetched':<34}{fmt_bytes(med(cold_t, 'metadata_bytes')):>12}{fmt_bytes(med(cold_p, 'metadata_bytes')):>14}")
    print(f"{'cold: requests (meta+target)':<34}{med(cold_t, 'requests'):>12.0f}{med(cold_p, 'requests'):>14.0f}")
    print(f"{'warm: metadata bytes fetched':<34}{fmt_bytes(med(warm_t, 'metadata_bytes')):>12}{fmt_bytes(med(warm_p, 'metadata_bytes')):>14}")
    print(f"{'warm: requests':<34}{med(warm_t, 'requests'):>12.0f}{med(warm_p, 'requests'):>14.0f}")
    print()
    print("tufpi cold requests:  " + "; ".join(cold_t[-1]["paths"]))
    print("python cold requests: " + "; ".join(cold_p[-1]["paths"]))
    print("tufpi warm requests:  " + "; ".join(warm_t[-1]["paths"]))
    print("python warm requests: " + "; ".join(warm_p[-1]["paths"]))
    print("tufpi warm wall ms, all runs: " + ", ".join(f"{r['wall']:.2f}" for r in warm_t))
    print()
    print("tufpi warm refresh breakdown (separate processes, median wall ms):")
    for label, ms in breakdown.items():
        print(f"  {label:<34}{ms:>8.2f}")
    if args.json:
        args.json.write_text(
            json.dumps({"params": params, "cold_tufpi": cold_t, "cold_python": cold_p, "warm_tufpi": warm_t, "warm_python": warm_p}, indent=1)
        )


if __name__ == "__main__":
    main()
