#!/usr/bin/env python3
"""Soak test of `tufpi serve` and `tufpi proxy` (issue 10).

For --minutes N it holds a mixed load on an index and on a verifying proxy in front of it:

- uploads (multipart POST /legacy/ as twine sends them: wheels and sdists written in memory),
- yanks of uploaded files (POST /manage/project/<p>/yank),
- page GETs (PEP 691 JSON and HTML) and file downloads from the index,
- page and file GETs through the proxy (which refreshes its TUF metadata as it goes),
- slow clients: a few hundred connections to each server that send a partial request head and
  trickle header lines, reconnecting when closed, so the connection cap (--max-connections) is
  really under pressure,

while it kills the index with SIGKILL at random moments and restarts it on the same data
directory and port. Memory (VmRSS, VmHWM) of both servers is sampled from /proc all along.

Checks, during the run and at the end (exit status 1 if any fails):

- nothing acknowledged is lost: every upload answered 200 is on its project's page (JSON)
  with its sha256, is a signed TUF target with that sha256 and downloads with it; every yank
  answered 200 shows on the page (JSON and HTML); a page fetched after an acknowledgement
  already lists it, and an acknowledged file is never answered 404;
- every signed target verifies: a fresh python-tuf ngclient, bootstrapped with the
  repository's 1.root.json, resolves every target the served metadata lists and downloads
  it (length and hashes checked by ngclient); the signed set is exactly the listed files,
  their core metadata and the pages served; nothing unreferenced under packages/;
- honest requests kept their latency bound: p99 of page and file GETs (index and proxy) that
  do not overlap a kill/restart window (kill .. listening again + grace) is under --p99-bound,
  and none of them failed;
- memory stayed bounded: peak RSS of the server (any of its lives) and of the proxy under
  --rss-bound-mb;
- neither process panicked or exited by itself, valid uploads were never refused other than
  with 429/503, the proxy serves the final pages after a refresh.

Standalone: the standard library and python-tuf (tests/requirements.txt).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import io
import itertools
import json
import os
import random
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback
import urllib.parse
import zipfile
from pathlib import Path

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
EPOCH = (2024, 1, 1, 0, 0, 0)
HONEST_KINDS = ("index-page", "index-file", "proxy-page", "proxy-file")
T0 = time.monotonic()


def now() -> float:
    return time.monotonic()


def log(msg: str) -> None:
    print(f"[soak {now() - T0:7.1f}s] {msg}", flush=True)


# ----------------------------------------------------------------------------------------
# Distributions, written in memory as the wheel and sdist specs lay them out


def metadata_text(name: str, version: str) -> str:
    return (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            "Summary: tufpi soak test project\nRequires-Python: >=3.8\n\n")


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def dist_name(name: str) -> str:
    return name.replace("-", "_").replace(".", "_").lower()


def wheel_bytes(name: str, version: str, payload: bytes) -> tuple[str, bytes]:
    dist = dist_name(name)
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{dist}/data.bin": payload,
        f"{info}/METADATA": metadata_text(name, version).encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tufpi-soak\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{p},{_record_hash(b)},{len(b)}\n" for p, b in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for p, b in files.items():
            z.writestr(zipfile.ZipInfo(p, EPOCH), b, compress_type=zipfile.ZIP_DEFLATED)
    return f"{dist}-{version}-py3-none-any.whl", out.getvalue()


def sdist_bytes(name: str, version: str, payload: bytes) -> tuple[str, bytes]:
    dist = dist_name(name)
    root = f"{dist}-{version}"
    files = {
        f"{root}/PKG-INFO": metadata_text(name, version).encode(),
        f"{root}/pyproject.toml": (
            '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\n').encode(),
        f"{root}/{dist}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{root}/{dist}/data.bin": payload,
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as t:
        for p, b in files.items():
            ti = tarfile.TarInfo(p)
            ti.size = len(b)
            ti.mtime = 1704067200
            t.addfile(ti, io.BytesIO(b))
    return f"{root}.tar.gz", out.getvalue()


def multipart(fields: list[tuple[str, str]], filename: str, data: bytes) -> tuple[str, bytes]:
    boundary = "tufpi-soak-" + os.urandom(8).hex()
    out = io.BytesIO()
    for k, v in fields:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{filename}"\r\n'
              "Content-Type: application/octet-stream\r\n\r\n".encode())
    out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", out.getvalue()


def upload_fields(name: str, version: str, filename: str, data: bytes) -> list[tuple[str, str]]:
    wheel = filename.endswith(".whl")
    return [
        (":action", "file_upload"), ("protocol_version", "1"), ("name", name), ("version", version),
        ("filetype", "bdist_wheel" if wheel else "sdist"), ("pyversion", "py3" if wheel else "source"),
        ("metadata_version", "2.1"), ("summary", "tufpi soak test project"),
        ("sha256_digest", hashlib.sha256(data).hexdigest()),
    ]


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ----------------------------------------------------------------------------------------
# HTTP


class Answer:
    __slots__ = ("status", "headers", "body", "error", "t0", "t1")

    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body = b""
        self.error: str | None = None
        self.t0 = self.t1 = 0.0


def request(port: int, method: str, path: str, headers: dict | None = None,
            body: bytes | None = None, timeout: float = 30.0) -> Answer:
    """One request on a new connection; never raises for network errors (`error` is set)."""
    a = Answer()
    a.t0 = now()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        a.body = r.read()
        a.status = r.status
        a.headers = {k.lower(): v for k, v in r.getheaders()}
    except (OSError, http.client.HTTPException) as e:
        a.error = f"{type(e).__name__}: {e}"
    finally:
        c.close()
        a.t1 = now()
    return a


def basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------------------
# Processes


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a live process, kB (empty if gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


class Proc:
    """A `tufpi` server process: output appended to a log file, ready once it prints its
    "listening on http://…" line."""

    def __init__(self, name: str, args: list[str], logfile: Path, log_level: str) -> None:
        self.name = name
        self.args = args
        self.logfile = logfile
        self.log_level = log_level
        self.proc: subprocess.Popen | None = None
        self.lives = 0
        self.peak_rss_kb = 0
        self.lock = threading.Lock()
        self.expected_exit = False
        self.unexpected_exits: list[str] = []
        self.warnings: list[tuple[str, int]] = []

    def start(self, timeout: float = 120.0) -> float:
        env = dict(os.environ, TUFPI_LOG=self.log_level, RUST_BACKTRACE="1")
        out = open(self.logfile, "a", buffering=1)
        self.lives += 1
        out.write(f"===== {self.name} life {self.lives} (soak t={now() - T0:.1f}s) =====\n")
        proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env)
        ready = threading.Event()

        def pump() -> None:
            assert proc.stdout
            for line in proc.stdout:
                out.write(line)
                if " listening on http://" in line:
                    ready.set()
            out.close()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        with self.lock:
            self.proc = proc
            self.expected_exit = False
        if not ready.wait(timeout) or proc.poll() is not None:
            raise RuntimeError(f"{self.name} did not start (see {self.logfile})")
        return now()

    @property
    def pid(self) -> int | None:
        p = self.proc
        return p.pid if p is not None and p.poll() is None else None

    def sample(self) -> None:
        pid = self.pid
        if pid is not None:
            st = proc_status(pid)
            self.peak_rss_kb = max(self.peak_rss_kb, st.get("VmRSS", 0), st.get("VmHWM", 0))

    def check_alive(self) -> None:
        """Record an exit nobody asked for."""
        with self.lock:
            p = self.proc
            if p is not None and not self.expected_exit and p.poll() is not None:
                self.unexpected_exits.append(f"{self.name} (pid {p.pid}) exited by itself with {p.returncode}")
                self.expected_exit = True

    def kill9(self) -> float:
        with self.lock:
            p = self.proc
            assert p is not None
            self.expected_exit = True
            self.sample()
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
            t = now()
        p.wait()
        return t

    def stop(self) -> int | None:
        with self.lock:
            p = self.proc
            self.expected_exit = True
        if p is None:
            return None
        self.sample()
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode


# ----------------------------------------------------------------------------------------
# Shared state of the run


class Upload:
    __slots__ = ("project", "version", "filename", "sha256", "target", "wheel", "t_ack")

    def __init__(self, project: str, version: str, filename: str, data: bytes) -> None:
        self.project = project
        self.version = version
        self.filename = filename
        self.sha256 = hashlib.sha256(data).hexdigest()
        b2 = hashlib.blake2b(data, digest_size=32).hexdigest()
        self.target = f"packages/{b2[:2]}/{b2[2:4]}/{b2[4:]}/{filename}"
        self.wheel = filename.endswith(".whl")
        self.t_ack = 0.0


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.stop_kills = threading.Event()
        # (kind, t0, t1, outcome): outcome an HTTP status or "error"
        self.requests: list[tuple[str, float, float, int | str]] = []
        self.failures: list[str] = []
        self.acked: list[Upload] = []
        self.acked_by_project: dict[str, list[Upload]] = {}
        self.unknown: list[Upload] = []
        self.not_sent = 0
        self.refused: dict[int, int] = {}
        self.yank_acked: dict[str, float] = {}  # filename -> time of the 200
        self.yank_requested: set[str] = set()
        self.yank_unknown = 0
        # Kill windows: [t_kill, t_ready]; t_ready None while down.
        self.windows: list[list[float | None]] = []
        self.restart_secs: list[float] = []
        self.counter = itertools.count(1)
        self.hog_stats = {"opened": 0, "closed_by_server": 0, "refused": 0}
        self.up = threading.Event()

    def record(self, kind: str, a: Answer) -> None:
        with self.lock:
            self.requests.append((kind, a.t0, a.t1, a.status if a.status is not None else "error"))

    def fail(self, msg: str) -> None:
        with self.lock:
            if len(self.failures) < 1000:
                self.failures.append(msg)
        log(f"FAILURE: {msg}")

    def in_window(self, t0: float, t1: float, grace: float) -> bool:
        with self.lock:
            for k, r in self.windows:
                end = (r if r is not None else float("inf")) + grace
                if t0 <= end and t1 >= k:
                    return True
        return False

    def acked_files(self, project: str) -> list[Upload]:
        with self.lock:
            return list(self.acked_by_project.get(project, ()))


# ----------------------------------------------------------------------------------------
# Load


def guarded(run: Run, name: str, fn, *a) -> threading.Thread:
    def body() -> None:
        try:
            fn(*a)
        except Exception:  # a bug in the soak script itself: fail loudly
            run.fail(f"worker {name} crashed:\n{traceback.format_exc()}")
    t = threading.Thread(target=body, name=name, daemon=True)
    t.start()
    return t


def uploader(run: Run, wid: int, port: int, token: str, projects: list[str]) -> None:
    rng = random.Random(run.args.seed * 1000 + wid)
    auth = basic(token)
    while not run.stop.is_set():
        n = next(run.counter)
        project = rng.choice(projects)
        version = f"1.{n}"
        size = rng.choice((0, 1, 200, 4096, 20_000, 60_000)) if rng.random() < 0.95 else 600_000
        payload = rng.randbytes(size)
        build = sdist_bytes if rng.random() < 0.25 else wheel_bytes
        filename, data = build(project, version, payload)
        up = Upload(norm(project), version, filename, data)
        ct, body = multipart(upload_fields(project, version, filename, data), filename, data)
        a = request(port, "POST", "/legacy/", {"Content-Type": ct, "Authorization": auth}, body, timeout=60)
        run.record("upload", a)
        if a.status == 200:
            up.t_ack = a.t1
            with run.lock:
                run.acked.append(up)
                run.acked_by_project.setdefault(up.project, []).append(up)
        elif a.status is None:
            # Refused connection: never sent (the index is down). Otherwise in flight when
            # the index was killed: unknown, it may or may not be there.
            with run.lock:
                if a.error and a.error.startswith("ConnectionRefusedError"):
                    run.not_sent += 1
                else:
                    run.unknown.append(up)
            time.sleep(0.2)
        else:
            with run.lock:
                run.refused[a.status] = run.refused.get(a.status, 0) + 1
            if a.status not in (429, 503):
                run.fail(f"valid upload {filename} refused: {a.status} {a.body[:300]!r}")
            time.sleep(0.2)
        time.sleep(rng.uniform(0, run.args.upload_pause))


def yanker(run: Run, port: int, token: str) -> None:
    rng = random.Random(run.args.seed * 1000 + 500)
    auth = basic(token)
    while not run.stop.wait(rng.uniform(0.5, 2 * run.args.yank_every)):
        with run.lock:
            cands = [u for u in run.acked[-200:] if u.filename not in run.yank_requested]
            if not cands:
                continue
            up = rng.choice(cands)
            run.yank_requested.add(up.filename)
        body = urllib.parse.urlencode({"filename": up.filename, "reason": "soak yank"}).encode()
        a = request(port, "POST", f"/manage/project/{up.project}/yank",
                    {"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth}, body)
        run.record("yank", a)
        if a.status == 200:
            with run.lock:
                run.yank_acked[up.filename] = a.t1
        elif a.status is None:
            with run.lock:
                run.yank_unknown += 1
        else:
            run.fail(f"yank of {up.filename} refused: {a.status} {a.body[:300]!r}")


def check_file(run: Run, where: str, a: Answer, expected_sha: str, name: str) -> None:
    if a.status == 200 and hashlib.sha256(a.body).hexdigest() != expected_sha:
        run.fail(f"{where}: {name} served with sha256 {hashlib.sha256(a.body).hexdigest()}, expected {expected_sha}")


def index_reader(run: Run, wid: int, port: int, projects: list[str]) -> None:
    rng = random.Random(run.args.seed * 1000 + 100 + wid)
    while not run.stop.is_set():
        project = norm(rng.choice(projects))
        as_json = rng.random() < 0.6
        # What was acknowledged before this request started must be on the page.
        before = {u.filename: u for u in run.acked_files(project)}
        with run.lock:
            yanked_before = {f for f, t in run.yank_acked.items() if f in before}
        a = request(port, "GET", f"/simple/{project}/", {"Accept": JSON_TYPE if as_json else "text/html"})
        run.record("index-page", a)
        if a.status is None:
            time.sleep(0.2)
            continue
        files: list[dict] = []
        if a.status == 200:
            if as_json:
                files = json.loads(a.body)["files"]
                listed = {f["filename"]: f for f in files}
                for fn, up in before.items():
                    f = listed.get(fn)
                    if f is None:
                        run.fail(f"index page of {project} does not list {fn}, acknowledged "
                                 f"{a.t0 - up.t_ack:.2f}s before the request")
                    elif f["hashes"]["sha256"] != up.sha256:
                        run.fail(f"index page of {project} lists {fn} with the wrong sha256")
                    elif fn in yanked_before and f.get("yanked") in (False, None):
                        run.fail(f"index page of {project}: {fn} not yanked, yank acknowledged before")
            else:
                html = a.body.decode(errors="replace")
                for fn in before:
                    if f">{fn}</a>" not in html:
                        run.fail(f"index HTML page of {project} does not list acknowledged {fn}")
        elif a.status == 404:
            if before:
                run.fail(f"index page of {project} answered 404 after {len(before)} acknowledged uploads")
        elif a.status is not None:
            run.fail(f"index page of {project}: unexpected {a.status} {a.body[:200]!r}")
        # A file: an acknowledged one (must be there) or one the page lists.
        if before and (rng.random() < 0.5 or not files):
            up = rng.choice(list(before.values()))
            path, sha, acked = up.target, up.sha256, True
        elif files:
            f = rng.choice(files)
            path, sha, acked = f["url"].removeprefix("../../"), f["hashes"]["sha256"], False
        else:
            time.sleep(0.05)
            continue
        fa = request(port, "GET", "/" + path)
        run.record("index-file", fa)
        check_file(run, "index", fa, sha, path)
        if fa.status == 404 and acked:
            run.fail(f"index answered 404 for acknowledged file {path}")
        elif fa.status not in (None, 200, 404):
            run.fail(f"index file {path}: unexpected {fa.status}")
        time.sleep(rng.uniform(0, run.args.read_pause))


def proxy_reader(run: Run, wid: int, port: int, projects: list[str]) -> None:
    rng = random.Random(run.args.seed * 1000 + 200 + wid)
    while not run.stop.is_set():
        project = norm(rng.choice(projects))
        as_json = rng.random() < 0.6
        a = request(port, "GET", f"/simple/{project}/", {"Accept": JSON_TYPE if as_json else "text/html"})
        run.record("proxy-page", a)
        if a.status is None:
            time.sleep(0.2)
            continue
        files: list[dict] = []
        if a.status == 200 and as_json:
            files = json.loads(a.body)["files"]
        elif a.status == 200:
            html = a.body.decode(errors="replace")
            for m in re.finditer(r'href="([^"#]+)#sha256=([0-9a-f]{64})"', html):
                files.append({"url": m.group(1), "hashes": {"sha256": m.group(2)}})
        elif a.status not in (None, 404, 502, 503):
            run.fail(f"proxy page of {project}: unexpected {a.status} {a.body[:200]!r}")
        if files:
            f = rng.choice(files)
            url = urllib.parse.urljoin(f"/simple/{project}/", f["url"])
            fa = request(port, "GET", url)
            run.record("proxy-file", fa)
            check_file(run, "proxy", fa, f["hashes"]["sha256"], url)
            if fa.status not in (None, 200, 502, 503):
                run.fail(f"proxy file {url} listed on its page: unexpected {fa.status} {fa.body[:200]!r}")
        time.sleep(rng.uniform(0, run.args.read_pause))


class Hog:
    __slots__ = ("addr", "sock", "state", "next_try", "last_sent")

    def __init__(self, addr: tuple[str, int]) -> None:
        self.addr = addr
        self.sock: socket.socket | None = None
        self.state = "closed"
        self.next_try = 0.0
        self.last_sent = 0.0


def hogs(run: Run, ports: list[int]) -> None:
    """Slow clients: `--hogs` connections to each port, each sends a partial request head and
    then a header line every few seconds, never finishing it; reconnects (at most
    `--hog-rate` connections a second in all) whenever a server closes one."""
    sel = selectors.DefaultSelector()
    slots = [Hog(("127.0.0.1", p)) for p in ports for _ in range(run.args.hogs)]
    random.Random(run.args.seed).shuffle(slots)
    budget = 0.0
    last = now()
    rate = run.args.hog_rate
    stats = run.hog_stats

    def close(h: Hog, by_server: bool) -> None:
        if h.sock is not None:
            try:
                sel.unregister(h.sock)
            except (KeyError, ValueError):
                pass
            h.sock.close()
        h.sock = None
        h.state = "closed"
        h.next_try = now() + 0.05
        if by_server:
            stats["closed_by_server"] += 1

    while not run.stop.is_set():
        t = now()
        budget = min(budget + (t - last) * rate, rate)
        last = t
        for h in slots:
            if budget < 1:
                break
            if h.state == "closed" and h.next_try <= t:
                budget -= 1
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                err = s.connect_ex(h.addr)
                if err not in (0, 115):  # EINPROGRESS
                    s.close()
                    stats["refused"] += 1
                    h.next_try = t + 0.5
                    continue
                h.sock = s
                h.state = "connecting"
                sel.register(s, selectors.EVENT_WRITE, h)
        for key, _ in sel.select(timeout=0.05):
            h = key.data
            if h.state == "connecting":
                err = h.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    stats["refused"] += 1
                    close(h, False)
                    h.next_try = now() + 0.5
                    continue
                try:
                    h.sock.send(b"GET /simple/ HTTP/1.1\r\nHost: soak\r\n")
                except OSError:
                    close(h, True)
                    continue
                stats["opened"] += 1
                h.state = "open"
                h.last_sent = now()
                sel.modify(h.sock, selectors.EVENT_READ, h)
            else:
                try:
                    data = h.sock.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    close(h, True)
                # else: an error response before the close; the EOF follows
        t = now()
        for h in slots:
            if h.state == "open" and t - h.last_sent > run.args.hog_trickle:
                try:
                    h.sock.send(b"X-Slow: 1\r\n")
                    h.last_sent = t
                except OSError:
                    close(h, True)
    for h in slots:
        close(h, False)
    sel.close()


def killer(run: Run, server: Proc) -> None:
    rng = random.Random(run.args.seed * 1000 + 900)
    while not run.stop_kills.wait(rng.uniform(run.args.kill_min, run.args.kill_max)):
        run.up.clear()
        t_kill = server.kill9()
        with run.lock:
            run.windows.append([t_kill, None])
        log(f"kill -9 index (life {server.lives}); restarting")
        time.sleep(rng.uniform(0, run.args.max_down))
        for attempt in range(5):
            try:
                t_ready = server.start()
                break
            except RuntimeError as e:
                run.fail(f"restart attempt {attempt + 1} failed: {e}")
                server.stop()
                time.sleep(1)
        else:
            run.fail("the index could not be restarted")
            run.stop.set()
            return
        with run.lock:
            run.windows[-1][1] = t_ready
        run.restart_secs.append(t_ready - t_kill)
        run.up.set()


def sampler(run: Run, procs: list[Proc]) -> None:
    while not run.stop.wait(0.25):
        for p in procs:
            p.sample()
            p.check_alive()


# ----------------------------------------------------------------------------------------
# Final checks


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * len(s) + 0.5)) - 1))]


def wait_published(port: int, timeout: float) -> dict:
    deadline = now() + timeout
    h: dict = {}
    while now() < deadline:
        a = request(port, "GET", "/health")
        if a.status is not None and a.body:
            h = json.loads(a.body)
            if h.get("pending_changes") == 0 and h.get("publisher", {}).get("state") == "idle":
                return h
        time.sleep(0.1)
    raise AssertionError(f"index not published within {timeout}s: {h}")


def signed_targets(port: int) -> dict[str, tuple[str, int]]:
    """Every target the served metadata lists (timestamp -> snapshot -> each role): path ->
    (sha256, length). ngclient checks the signatures; this is the set to resolve."""
    ts = json.loads(request(port, "GET", "/metadata/timestamp.json").body)
    v = ts["signed"]["meta"]["snapshot.json"]["version"]
    snap = json.loads(request(port, "GET", f"/metadata/{v}.snapshot.json").body)
    out = {}
    for name, meta in snap["signed"]["meta"].items():
        a = request(port, "GET", f"/metadata/{meta['version']}.{name}")
        assert a.status == 200, (name, a.status)
        for path, t in json.loads(a.body)["signed"]["targets"].items():
            out[path] = (t["hashes"]["sha256"], t["length"])
    return out


def final_checks(run: Run, port: int, proxy_port: int, data: Path, work: Path,
                 projects: list[str]) -> dict:
    from tuf.ngclient import Updater

    figures: dict = {}
    health = wait_published(port, 120)
    if health.get("status") != "ok":
        run.fail(f"index /health at the end: {health}")
    # Pages.
    listed: dict[str, dict] = {}
    page_sha: dict[str, str] = {}
    html_pages: dict[str, str] = {}
    for p in map(norm, projects):
        for kind, accept in (("json", JSON_TYPE), ("html", "text/html")):
            a = request(port, "GET", f"/simple/{p}/", {"Accept": accept})
            if a.status == 404 and not run.acked_files(p):
                continue
            if a.status != 200:
                run.fail(f"final page {p} ({kind}): {a.status} {a.error}")
                continue
            page_sha[f"simple/{p}/vnd.pypi.simple.v1.{kind}"] = hashlib.sha256(a.body).hexdigest()
            if kind == "json":
                for f in json.loads(a.body)["files"]:
                    listed[f["filename"]] = dict(f, project=p)
            else:
                html_pages[p] = a.body.decode()
    # Nothing acknowledged lost.
    lost = 0
    for up in run.acked:
        f = listed.get(up.filename)
        if f is None:
            lost += 1
            run.fail(f"LOST: {up.filename} ({up.project}) was acknowledged but is not listed")
        elif f["hashes"]["sha256"] != up.sha256 or f["url"] != "../../" + up.target:
            lost += 1
            run.fail(f"LOST: {up.filename} listed with other bytes: {f}")
    yanks_lost = 0
    for fn in run.yank_acked:
        f = listed.get(fn)
        if f is None or f.get("yanked") in (False, None):
            yanks_lost += 1
            run.fail(f"LOST: the yank of {fn} was acknowledged but the page says {f and f.get('yanked')!r}")
        elif 'data-yanked="' not in next((ln for ln in html_pages.get(f["project"], "").splitlines()
                                          if f">{fn}</a>" in ln), ""):
            yanks_lost += 1
            run.fail(f"LOST: the yank of {fn} is not on the HTML page")
    figures["lost_uploads"] = lost
    figures["lost_yanks"] = yanks_lost
    acked_names = {u.filename for u in run.acked}
    figures["unknown_present"] = sum(1 for u in run.unknown if u.filename in listed)
    figures["listed_files"] = len(listed)
    figures["listed_unacked"] = sum(1 for fn in listed if fn not in acked_names)
    # The signed set is exactly the listed files, their core metadata and the pages served.
    signed = signed_targets(port)
    expected = {f["url"].removeprefix("../../"): f["hashes"]["sha256"] for f in listed.values()}
    expected.update({f["url"].removeprefix("../../") + ".metadata": f["core-metadata"]["sha256"]
                     for f in listed.values() if isinstance(f.get("core-metadata"), dict)})
    expected.update(page_sha)
    signed_sha = {k: v[0] for k, v in signed.items()}
    if signed_sha != expected:
        diff = sorted(set(signed_sha.items()) ^ set(expected.items()))
        run.fail(f"signed targets differ from what is served ({len(diff)} entries), e.g. {diff[:5]}")
    on_disk = {str(p.relative_to(data)) for p in (data / "packages").rglob("*") if p.is_file()}
    want_disk = {t for t in expected if t.startswith("packages/")}
    if on_disk != want_disk:
        run.fail(f"packages/ on disk differs from the signed files: {sorted(on_disk ^ want_disk)[:5]}")
    # Every signed target verifies with python-tuf's ngclient from the first root.
    t_ng = now()
    md, td = work / "ngclient" / "metadata", work / "ngclient" / "targets"
    md.mkdir(parents=True)
    td.mkdir(parents=True)
    u = Updater(metadata_dir=str(md), metadata_base_url=f"http://127.0.0.1:{port}/metadata/",
                target_base_url=f"http://127.0.0.1:{port}/", target_dir=str(td),
                bootstrap=(data / "repo" / "metadata" / "1.root.json").read_bytes())
    u.refresh()
    verified = 0
    for i, (path, (sha, length)) in enumerate(sorted(signed.items())):
        try:
            info = u.get_targetinfo(path)
            if info is None or info.hashes.get("sha256") != sha or info.length != length:
                run.fail(f"ngclient: {path} resolves to {info}, the metadata lists {sha}")
                continue
            local = u.download_target(info, filepath=str(td / f"t{i}"))
            if hashlib.sha256(Path(local).read_bytes()).hexdigest() != sha:
                run.fail(f"ngclient: {path} downloaded with the wrong sha256")
                continue
            Path(local).unlink()
            verified += 1
        except Exception as e:
            run.fail(f"ngclient: {path} does not verify: {type(e).__name__}: {e}")
    figures["signed_targets"] = len(signed)
    figures["verified_targets"] = verified
    figures["ngclient_secs"] = now() - t_ng
    # The proxy catches up: after a refresh it serves the final pages.
    deadline = now() + 30
    pending = {p for p in map(norm, projects) if any(f["project"] == p for f in listed.values())}
    while pending and now() < deadline:
        for p in sorted(pending):
            a = request(proxy_port, "GET", f"/simple/{p}/", {"Accept": JSON_TYPE})
            if a.status == 200 and {f["filename"] for f in json.loads(a.body)["files"]} == \
                    {fn for fn, f in listed.items() if f["project"] == p}:
                pending.discard(p)
        if pending:
            time.sleep(0.5)
    if pending:
        run.fail(f"the proxy does not serve the final pages of {sorted(pending)} after 30s")
    a = request(proxy_port, "GET", "/health")
    if a.status != 200:
        run.fail(f"proxy /health at the end: {a.status} {a.body[:200]!r}")
    return figures


# ----------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("TUFPI_BIN", "target/debug/tufpi"))
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--work-dir", help="kept afterwards (default: a temporary dir, kept on failure)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--projects", type=int, default=8)
    ap.add_argument("--uploaders", type=int, default=3)
    ap.add_argument("--index-readers", type=int, default=2)
    ap.add_argument("--proxy-readers", type=int, default=2)
    ap.add_argument("--upload-pause", type=float, default=0.3, help="max think time, s")
    ap.add_argument("--read-pause", type=float, default=0.05, help="max think time, s")
    ap.add_argument("--yank-every", type=float, default=2.0, help="mean seconds between yanks")
    ap.add_argument("--hogs", type=int, default=300, help="slow connections held on each server")
    ap.add_argument("--hog-rate", type=float, default=100.0, help="slow connections opened per second at most")
    ap.add_argument("--hog-trickle", type=float, default=5.0, help="seconds between a slow client's header lines")
    ap.add_argument("--max-connections", type=int, default=256)
    ap.add_argument("--kill-min", type=float, default=8.0, help="seconds between kills, at least")
    ap.add_argument("--kill-max", type=float, default=30.0, help="seconds between kills, at most")
    ap.add_argument("--max-down", type=float, default=1.5, help="seconds the index stays down, at most")
    ap.add_argument("--grace", type=float, default=3.0,
                    help="seconds after a restart still counted in its window (latency figures)")
    ap.add_argument("--p99-bound", type=float, default=1.0, help="seconds")
    ap.add_argument("--rss-bound-mb", type=float, default=500.0)
    ap.add_argument("--log-level", default="warn", help="TUFPI_LOG of both servers")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 30)
    tufpi = str(Path(args.bin).resolve())
    if args.work_dir:
        work = Path(args.work_dir).resolve()
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="tufpi-soak-"))
    data, cache = work / "data", work / "proxy-cache"
    port, proxy_port = free_port(), free_port()
    while proxy_port == port:
        proxy_port = free_port()
    log(f"seed {args.seed}, {args.minutes} min, work dir {work}, index :{port}, proxy :{proxy_port}")
    run = Run(args)
    conn = ["--max-connections", str(args.max_connections)]
    server = Proc("index", [tufpi, "serve", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}",
                            "--bins-bit-length", "8", "--retention-secs", "60",
                            "--gc-interval-secs", "15", *conn], work / "index.log", args.log_level)
    proxy = Proc("proxy", [tufpi, "proxy", "--upstream", f"http://127.0.0.1:{port}",
                           "--root", str(data / "repo" / "metadata" / "1.root.json"),
                           "--listen", f"127.0.0.1:{proxy_port}", "--cache-dir", str(cache),
                           "--fetch-timeout", "20", *conn], work / "proxy.log", args.log_level)
    figures: dict = {}
    try:
        server.start()
        run.up.set()
        token = subprocess.run([tufpi, "token", "create", "--data-dir", str(data)], check=True,
                               capture_output=True, text=True).stdout.strip()
        proxy.start()
        projects = [f"Soak_P{i}" if i % 2 else f"soak-p{i}" for i in range(args.projects)]
        threads = []
        for i in range(args.uploaders):
            threads.append(guarded(run, f"upload{i}", uploader, run, i, port, token, projects))
        for i in range(args.index_readers):
            threads.append(guarded(run, f"index{i}", index_reader, run, i, port, projects))
        for i in range(args.proxy_readers):
            threads.append(guarded(run, f"proxy{i}", proxy_reader, run, i, proxy_port, projects))
        threads.append(guarded(run, "yank", yanker, run, port, token))
        threads.append(guarded(run, "hogs", hogs, run, [port, proxy_port]))
        samp = guarded(run, "sampler", sampler, run, [server, proxy])
        kill_thread = guarded(run, "killer", killer, run, server)
        t_start = now()
        end = t_start + args.minutes * 60
        next_report = t_start + 30
        while now() < end and not run.stop.is_set():
            time.sleep(min(1.0, max(0.0, end - now())))
            if now() >= next_report:
                next_report += 30
                with run.lock:
                    n, acks = len(run.requests), len(run.acked)
                log(f"{n} requests, {acks} uploads acknowledged, {len(run.windows)} kills, "
                    f"peak RSS index {server.peak_rss_kb / 1024:.0f} MB proxy {proxy.peak_rss_kb / 1024:.0f} MB, "
                    f"hogs {run.hog_stats}")
        # Stop killing first (a kill in progress ends with a restart), then the load.
        run.stop_kills.set()
        kill_thread.join(180)
        run.stop.set()
        for t in threads:
            t.join(120)
        samp.join(10)
        duration = now() - t_start
        server.check_alive()
        proxy.check_alive()
        log("load stopped; final checks")
        figures = final_checks(run, port, proxy_port, data, work, projects)
        server.sample()
        proxy.sample()
    except Exception:
        run.fail(f"soak aborted:\n{traceback.format_exc()}")
        duration = now() - T0
    finally:
        run.stop.set()
        run.stop_kills.set()
        proxy.stop()
        server.stop()
    for p in (server, proxy):
        for msg in p.unexpected_exits:
            run.fail(msg)
        text = p.logfile.read_text(errors="replace") if p.logfile.exists() else ""
        if "panicked" in text:
            run.fail(f"{p.name} panicked: see {p.logfile}: "
                     + next(ln for ln in text.splitlines() if "panicked" in ln))
        # Warnings are reported, not failed on (the proxy warns for every failed upstream
        # fetch while the index is down).
        plain = [re.sub(r"\x1b\[[0-9;]*m", "", ln) for ln in text.splitlines()]
        warned = [ln for ln in plain if " WARN " in ln or " ERROR " in ln]
        kinds: dict[str, int] = {}
        for ln in warned:
            k = re.sub(r"https?://\S+|\d+", "#", ln.split(" ", 1)[-1])[:110]
            kinds[k] = kinds.get(k, 0) + 1
        p.warnings = sorted(kinds.items(), key=lambda kv: -kv[1])

    # Figures.
    by_kind: dict[str, list[int]] = {}
    honest: dict[str, list[float]] = {}
    honest_errors: list[str] = []
    for kind, t0, t1, outcome in run.requests:
        c = by_kind.setdefault(kind, [0, 0])
        c[0] += 1
        if outcome == "error" or (isinstance(outcome, int) and outcome >= 500):
            c[1] += 1
        if kind in HONEST_KINDS and not run.in_window(t0, t1, args.grace):
            if outcome == "error" or (isinstance(outcome, int) and outcome >= 500):
                honest_errors.append(f"{kind} at {t0 - T0:.1f}s: {outcome}")
            else:
                honest.setdefault(kind, []).append(t1 - t0)
    all_honest = [x for v in honest.values() for x in v]
    print()
    print("==== tufpi soak ====")
    print(f"duration            {duration:.0f} s ({args.minutes} min of load), seed {args.seed}, work dir {work}")
    total = sum(c[0] for c in by_kind.values())
    print(f"requests            {total}: " + ", ".join(
        f"{k} {c[0]}" + (f" ({c[1]} unanswered or 5xx)" if c[1] else "") for k, c in sorted(by_kind.items())))
    print(f"uploads             {len(run.acked)} acknowledged, {len(run.unknown)} in flight at a kill "
          f"(unanswered), {run.not_sent} not sent (index down), refused {run.refused or 'never'}; yanks {len(run.yank_acked)} acknowledged, {run.yank_unknown} unanswered")
    print(f"slow clients        {args.hogs} per server; {run.hog_stats['opened']} connections opened, "
          f"{run.hog_stats['closed_by_server']} closed by the servers, {run.hog_stats['refused']} refused")
    rs = run.restart_secs
    print(f"kills               {len(run.windows)} (kill -9 of the index; back listening after "
          f"{(sum(rs) / len(rs)) if rs else 0:.2f} s on average, {max(rs) if rs else 0:.2f} s at most)")
    print(f"peak RSS            index {server.peak_rss_kb / 1024:.1f} MB (over {server.lives} lives), "
          f"proxy {proxy.peak_rss_kb / 1024:.1f} MB; bound {args.rss_bound_mb:.0f} MB")
    for k in HONEST_KINDS:
        xs = honest.get(k, [])
        print(f"honest {k:<12} n={len(xs):<6} p50 {percentile(xs, 50) * 1000:7.1f} ms   "
              f"p99 {percentile(xs, 99) * 1000:7.1f} ms   max {max(xs, default=0) * 1000:7.1f} ms")
    p50, p99 = percentile(all_honest, 50), percentile(all_honest, 99)
    print(f"honest all          n={len(all_honest)} p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
          f"(bound {args.p99_bound * 1000:.0f} ms; outside kill windows + {args.grace:.0f} s grace); "
          f"{len(honest_errors)} failed")
    for p in (server, proxy):
        n = sum(c for _, c in p.warnings)
        print(f"{p.name + ' log':<20}{n} warnings/errors" + "".join(
            f"\n    {c:6d} x {k}" for k, c in p.warnings[:4]))
    if figures:
        print(f"final               {figures['listed_files']} files listed ({figures['listed_unacked']} "
              f"never acknowledged, {figures['unknown_present']} of the unanswered uploads present); "
              f"{figures['verified_targets']}/{figures['signed_targets']} signed targets verified by "
              f"python-tuf ngclient in {figures['ngclient_secs']:.1f} s")
        print(f"nothing lost        {'yes' if figures['lost_uploads'] == 0 and figures['lost_yanks'] == 0 else 'NO'}"
              f" ({len(run.acked)} acknowledged uploads, {len(run.yank_acked)} acknowledged yanks checked; "
              f"{figures['lost_uploads']} uploads and {figures['lost_yanks']} yanks lost)")
    # Bounds.
    if not all_honest:
        run.fail("no honest request measured")
    for k in HONEST_KINDS:
        xs = honest.get(k, [])
        if xs and percentile(xs, 99) >= args.p99_bound:
            run.fail(f"honest {k} p99 {percentile(xs, 99):.3f}s >= {args.p99_bound}s")
    if honest_errors:
        run.fail(f"{len(honest_errors)} honest requests failed outside kill windows: {honest_errors[:10]}")
    for p in (server, proxy):
        if p.peak_rss_kb / 1024 >= args.rss_bound_mb:
            run.fail(f"{p.name} peak RSS {p.peak_rss_kb / 1024:.0f} MB >= {args.rss_bound_mb:.0f} MB")
    if not run.acked:
        run.fail("no upload was acknowledged")
    if len(run.windows) == 0 and args.minutes * 60 > args.kill_max:
        run.fail("the index was never killed")
    if figures and figures["verified_targets"] != figures["signed_targets"]:
        run.fail("not every signed target verified")
    if run.failures:
        print(f"\nFAILED: {len(run.failures)} check(s) failed (logs in {work}):")
        for f in run.failures[:50]:
            print("  - " + f.replace("\n", "\n    "))
        return 1
    print("\nPASSED: every check held")
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
