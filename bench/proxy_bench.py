"""Proxy benchmark: `pip install` of a set of small packages through `tufpi proxy` versus
directly from the `tufpi serve` index it verifies, and the proxy's verified-file throughput,
in one run. Both servers are release builds on loopback; the index uses the PEP 458 layout
(16,384 bins), so every proxy refresh pays for the real snapshot size.

Measured (medians of --reps runs, each a fresh `pip install --no-cache-dir --target`):
  direct:      pip -> index
  proxy cold:  pip -> a proxy just started on an empty cache dir -> index (every page and
               file downloaded and verified during the install)
  proxy warm:  pip -> the same proxy again (files verified from its cache, metadata
               refreshed at most once per interval, by page and file requests alike)
Throughput: one large distribution fetched through the proxy cold (download + verify +
cache) and warm (cache, verified from the file, then streamed and re-checked), against the index directly; and many small files
fetched by 8 concurrent clients through the warm proxy.

Goal: proxy wall time <= 1.1x direct. Run it via scripts/bench-proxy.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "proxy_e2e"), str(ROOT / "tests" / "index_e2e")]

from proxy_util import upload, wheel_bytes  # noqa: E402

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


class Proc:
    """A tufpi server process; `base` is read from its ' listening on http://' line."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=dict(os.environ, TUFPI_LOG="warn"))
        self.lines: list[str] = []
        self.base = ""
        ready = threading.Event()

        def pump() -> None:
            for line in self.proc.stdout:
                self.lines.append(line)
                if " listening on http://" in line and not self.base:
                    self.base = line.split(" listening on ", 1)[1].split()[0].rstrip("/")
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(600) or not self.base:
            self.stop()
            raise SystemExit("did not start:\n" + "".join(self.lines))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def get(base: str, path: str) -> bytes:
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    try:
        c.request("GET", path, headers={"Accept": JSON_TYPE})
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            raise SystemExit(f"GET {base}{path}: {r.status} {r.reason}")
        return body
    finally:
        c.close()


def wait_published(index: Proc, timeout: float = 120) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        h = json.loads(get(index.base, "/health"))
        if h["pending_changes"] == 0 and h["publisher"]["state"] == "idle":
            return
        time.sleep(0.05)
    raise SystemExit("index did not publish in time")


def pip_run(pip: Path, env: dict, index_url: str, target: Path, reqs: list[str]) -> float:
    shutil.rmtree(target, ignore_errors=True)
    t0 = time.perf_counter()
    r = subprocess.run([str(pip), "install", "--no-cache-dir", "--quiet",
                        "--index-url", index_url, "--target", str(target), *reqs],
                       capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"pip install via {index_url} failed:\n{r.stdout}{r.stderr}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tufpi", required=True)
    ap.add_argument("--pip", required=True)
    ap.add_argument("--packages", type=int, default=24)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--big-mib", type=int, default=64)
    ap.add_argument("--small-files", type=int, default=200)
    a = ap.parse_args()
    pip = Path(a.pip)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    work = Path(tempfile.mkdtemp(prefix="tufpi-proxy-bench-"))
    procs: list[Proc] = []
    try:
        t0 = time.monotonic()
        index = Proc([a.tufpi, "serve", "--data-dir", str(work / "data"), "--listen", "127.0.0.1:0"])
        procs.append(index)
        print(f"index (16,384 bins) up in {time.monotonic() - t0:.1f}s at {index.base}")
        token = subprocess.run([a.tufpi, "token", "create", "--data-dir", str(work / "data")],
                               check=True, capture_output=True, text=True).stdout.strip()

        class S:
            base = index.base

        # N small packages: each of the first half depends on one of the second half, so pip
        # resolves dependencies (and fetches PEP 658 metadata) as it would in real life.
        n = a.packages
        names = [f"bench-pkg-{i:02d}" for i in range(n)]
        for i, name in enumerate(names):
            deps = [names[i + n // 2]] if i < n // 2 else []
            fn, data = wheel_bytes(name, "1.0", deps, payload=os.urandom(4096))
            upload(S, token, name, "1.0", fn, data)
        big_fn, big = wheel_bytes("bench-big", "1.0", [], payload=os.urandom(a.big_mib << 20))
        upload(S, token, "bench-big", "1.0", big_fn, big)
        wait_published(index)
        reqs = names[: n // 2]
        root = work / "data" / "repo" / "metadata" / "1.root.json"

        def start_proxy(cache: Path) -> Proc:
            p = Proc([a.tufpi, "proxy", "--upstream", index.base, "--root", str(root),
                      "--cache-dir", str(cache), "--listen", "127.0.0.1:0"])
            procs.append(p)
            return p

        direct, cold, warm = [], [], []
        pip_run(pip, env, f"{index.base}/simple/", work / "t", reqs)  # warm-up: pip's imports
        for rep in range(a.reps):
            direct.append(pip_run(pip, env, f"{index.base}/simple/", work / "t", reqs))
            p = start_proxy(work / f"cache{rep}")
            cold.append(pip_run(pip, env, f"{p.base}/simple/", work / "t", reqs))
            warm.append(pip_run(pip, env, f"{p.base}/simple/", work / "t", reqs))
            p.stop()
            procs.remove(p)
        installed = len([d for d in (work / "t").iterdir() if d.name.endswith(".dist-info")])
        md, mc, mw = (statistics.median(x) for x in (direct, cold, warm))
        print(f"\npip install of {len(reqs)} requirements ({installed} packages installed), "
              f"median of {a.reps}:")
        print(f"  direct from the index    {md * 1000:8.0f} ms")
        print(f"  through the proxy, cold  {mc * 1000:8.0f} ms   ratio {mc / md:.3f}x")
        print(f"  through the proxy, warm  {mw * 1000:8.0f} ms   ratio {mw / md:.3f}x   (goal <= 1.1x)")

        # Throughput: the big file, then many small files concurrently.
        p = start_proxy(work / "cache-tp")
        page = json.loads(get(index.base, "/simple/bench-big/"))
        path = "/" + page["files"][0]["url"].removeprefix("../../")
        size = len(big)

        def timed(base: str) -> float:
            t = time.perf_counter()
            body = get(base, path)
            dt = time.perf_counter() - t
            assert hashlib.sha256(body).digest() == hashlib.sha256(big).digest()
            return dt

        td = statistics.median(timed(index.base) for _ in range(3))
        tc = timed(p.base)
        tw = statistics.median(timed(p.base) for _ in range(3))
        mib = size / (1 << 20)
        print(f"\nverified-file throughput, one {mib:.0f} MiB file:")
        print(f"  direct from the index    {mib / td:8.0f} MiB/s")
        print(f"  proxy cold (download, verify, cache)  {mib / tc:8.0f} MiB/s   ratio {tc / td:.2f}x time")
        print(f"  proxy warm (cache, re-verify)         {mib / tw:8.0f} MiB/s   ratio {tw / td:.2f}x time")

        small = []
        for name in names:
            pg = json.loads(get(index.base, f"/simple/{name}/"))
            u = "/" + pg["files"][0]["url"].removeprefix("../../")
            small += [u, u + ".metadata"]
        jobs = (small * (a.small_files // len(small) + 1))[: a.small_files]
        for base in (p.base,):  # warm the cache once
            for u in small:
                get(base, u)

        def rate(base: str) -> float:
            t = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(8) as ex:
                list(ex.map(lambda u: get(base, u), jobs))
            return len(jobs) / (time.perf_counter() - t)

        rd, rp = rate(index.base), rate(p.base)
        print(f"\nsmall files, 8 concurrent clients, {len(jobs)} requests:")
        print(f"  direct from the index    {rd:8.0f} files/s")
        print(f"  proxy (verified, cached) {rp:8.0f} files/s   ratio {rd / rp:.2f}x time")
    finally:
        for pr in procs:
            pr.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
