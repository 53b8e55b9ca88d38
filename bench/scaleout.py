"""The scale-out deployment the benchmarks run on (issue 13), shared by bench/scaleout_bench.py
(`scripts/bench-index --scaleout`) and bench/repo_scaleout.py (`scripts/bench-repo --scaleout`):
the S3 test server (moto, scripts/s3-server, started here and stopped by its PID), a PostgreSQL
database per run (created and dropped WITH (FORCE) here, through psql), buckets, replicas of
`tufpi serve`, and moto's own PUT rate (the limit row: moto is a Python server). Stdlib only.
"""

from __future__ import annotations

import collections
import http.client
import os
import re
import secrets
import signal
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PG_DEFAULT = "postgres://postgres@127.0.0.1:5432/postgres"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
           "AWS_DEFAULT_REGION": "us-east-1"}
# moto checks no signature but answers an anonymous object request 403: any SigV4 header does.
S3_AUTH = ("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, "
           "SignedHeaders=host, Signature=0")
# moto (werkzeug) logs one line per request: ... "PUT /bucket/key HTTP/1.1" 200 -
_REQ_LINE = re.compile(r'"(GET|PUT|POST|HEAD|DELETE) (\S+) HTTP/[\d.]+" (\d+)')


class S3Server:
    """An S3 server on a free loopback port (scripts/s3-server), stopped by its PID: moto (the
    default; it logs every request, which the benchmarks count) or, with kind="s3s", s3s-fs
    (pure Rust, much faster; unauthenticated, so clients skip signing; logs no requests)."""

    def __init__(self, work: Path, kind: str = "moto") -> None:
        self.kind = kind
        self.dir = work / ("s3" if kind == "moto" else f"s3-{kind}")
        r = subprocess.run([str(ROOT / "scripts" / "s3-server"), "start", str(self.dir)],
                           capture_output=True, text=True, env=dict(os.environ, TUFPI_S3_SERVER=kind))
        if r.returncode != 0:
            raise SystemExit(f"scripts/s3-server ({kind}) did not start:\n{r.stdout}{r.stderr}")
        self.endpoint = (self.dir / "endpoint").read_text().strip()
        self.pid = int((self.dir / "pid").read_text().strip())
        u = urllib.parse.urlsplit(self.endpoint)
        self.host, self.port = u.hostname, u.port
        # Extra client environment the server needs (s3s: AWS_SKIP_SIGNATURE=true).
        self.client_env: dict[str, str] = {}
        env_file = self.dir / "env"
        if env_file.is_file():
            for line in env_file.read_text().splitlines():
                if "=" in line:
                    k, v = line.split("=", 1)
                    self.client_env[k.strip()] = v.strip()
        # moto wants some SigV4 header on object requests; s3s-fs refuses signed requests.
        self.auth = {"Authorization": S3_AUTH} if kind == "moto" else {}

    @property
    def logs_requests(self) -> bool:
        """Whether its log has a line per request (moto)."""
        return self.kind == "moto"

    def stop(self) -> None:
        subprocess.run([str(ROOT / "scripts" / "s3-server"), "stop", str(self.dir)], capture_output=True)

    def conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    def create_bucket(self, name: str) -> None:
        c = self.conn()
        c.request("PUT", f"/{name}")
        r = c.getresponse()
        r.read()
        c.close()
        if r.status not in (200, 409):
            raise SystemExit(f"creating bucket {name}: HTTP {r.status}")

    def log_offset(self) -> int:
        try:
            return (self.dir / "log").stat().st_size
        except OSError:
            return 0

    def requests_since(self, offset: int, bucket: str | None = None, skip_get: str | None = None) -> collections.Counter:
        """Requests moto logged since `offset` (of `bucket` when given), by method; GETs and
        HEADs of keys under `skip_get` (a benchmark's own reads, direct or through a replica)
        left out."""
        out: collections.Counter = collections.Counter()
        with open(self.dir / "log", "rb") as f:
            f.seek(offset)
            for line in f.read().decode(errors="replace").splitlines():
                m = _REQ_LINE.search(line)
                if m and (bucket is None or m.group(2).startswith(f"/{bucket}/") or m.group(2).startswith(f"/{bucket}?")):
                    if skip_get and m.group(1) in ("GET", "HEAD") and m.group(2).startswith(f"/{bucket}/{skip_get}"):
                        continue
                    out[m.group(1)] += 1
        return out

    def put_rate(self, bucket: str, n: int, size: int, conc: int, method: str = "PUT") -> float:
        """PutObject of `n` objects of `size` bytes over `conc` keep-alive connections (threads
        here; moto does far more work per request than this client): objects per second.
        method="GET": GetObject of the objects a PUT run stored."""
        body = os.urandom(size) if method == "PUT" else None
        nxt = iter(range(n))
        lock = threading.Lock()
        errors: list[str] = []

        def worker() -> None:
            c = self.conn()
            while True:
                with lock:
                    i = next(nxt, None)
                if i is None:
                    break
                if method == "PUT":
                    c.request("PUT", f"/{bucket}/limit/{i:08d}", body=body,
                              headers={**self.auth, "Content-Length": str(size), "If-None-Match": "*"})
                else:
                    c.request("GET", f"/{bucket}/limit/{i:08d}", headers=self.auth)
                r = c.getresponse()
                r.read()
                if r.status != 200 and not errors:
                    errors.append(f"HTTP {r.status}")
            c.close()

        ts = [threading.Thread(target=worker) for _ in range(conc)]
        t0 = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        dt = time.monotonic() - t0
        if errors:
            raise SystemExit(f"{self.kind} {method} limit run failed: {errors[0]}")
        return n / dt


class Postgres:
    """Databases on the shared PostgreSQL server, made and dropped (only ours) through psql."""

    def __init__(self, admin_url: str = PG_DEFAULT) -> None:
        self.admin = admin_url
        self.made: list[str] = []
        self.psql("SELECT 1")

    def psql(self, sql: str) -> str:
        r = subprocess.run(["psql", self.admin, "-v", "ON_ERROR_STOP=1", "-Atqc", sql],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise SystemExit(f"psql {sql!r}: {r.stderr.strip()}")
        return r.stdout

    def create(self, prefix: str) -> str:
        name = f"{prefix}_{secrets.token_hex(5)}"
        self.psql(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return name

    def drop(self, name: str) -> None:
        if name in self.made:
            self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.made.remove(name)

    def drop_all(self) -> None:
        for name in list(self.made):
            try:
                self.drop(name)
            except SystemExit as e:
                print(f"warning: {e}", flush=True)

    def url(self, db: str) -> str:
        u = urllib.parse.urlsplit(self.admin)
        return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + db, u.query, u.fragment))


def postgres_pids() -> list[int]:
    """The PostgreSQL server's processes (read only: their CPU time is sampled)."""
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if Path(f"/proc/{p}/comm").read_text().strip() in ("postgres", "postmaster"):
                    out.append(int(p))
            except OSError:
                pass
    return out


def postgres_cpu() -> float:
    """CPU seconds of the PostgreSQL server so far: its live processes, plus the backends that
    have exited (the postmaster's reaped children). Differences of two readings count a backend
    that lived through both once; one that ended in between, in full."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = set(postgres_pids())
    for p in pids:
        f = _stat(p)
        if f is None:
            continue
        total += (int(f[11]) + int(f[12])) / tick
        if int(f[1]) not in pids:  # the postmaster: + its reaped children
            total += (int(f[13]) + int(f[14])) / tick
    return total


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (None if the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pids: list[int]) -> float:
    """User+system CPU seconds of exactly these processes (those still alive)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in pids:
        f = _stat(p)
        if f is not None:
            total += (int(f[11]) + int(f[12])) / tick
    return total


class Deployment:
    """What one scaled-out configuration runs on: its database, its bucket, its storage URL."""

    def __init__(self, pg: Postgres, s3: S3Server, tag: str) -> None:
        self.pg, self.s3 = pg, s3
        self.db = pg.create(f"tufpi_bench_{tag}")
        self.bucket = f"tufpi-bench-{tag}-{secrets.token_hex(4)}".replace("_", "-")
        s3.create_bucket(self.bucket)
        self.database_url = pg.url(self.db)
        self.storage_url = f"s3://{self.bucket}"

    def args(self) -> list[str]:
        return ["--database", self.database_url, "--storage", self.storage_url,
                "--storage-endpoint", self.s3.endpoint]

    def env(self, base: dict | None = None) -> dict:
        return dict(base if base is not None else os.environ, **AWS_ENV, **self.s3.client_env)

    def transactions(self) -> dict:
        """PostgreSQL's counts of committed and rolled-back transactions in this database so
        far (each statement outside a transaction counts as one), after its statistics are
        flushed (backends report at most once a second)."""
        time.sleep(1.2)
        c, r = self.pg.psql(f"SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = '{self.db}'").split("|")
        return {"commit": int(c), "rollback": int(r)}

    def drop(self) -> None:
        self.pg.drop(self.db)


class Server:
    """One `tufpi serve` (embedded, or a replica of a Deployment) on a fixed loopback port, so a
    replica killed with -9 comes back at the same address; stopped and killed by its PID only."""

    def __init__(self, name: str, argv: list[str], port: int, log: Path, env: dict) -> None:
        self.name, self.argv, self.port, self.log_path, self.env = name, argv, port, log, env
        self.base = f"http://127.0.0.1:{port}"
        self.p: subprocess.Popen | None = None

    def start(self, timeout: float = 300.0) -> "Server":
        with open(self.log_path, "ab") as log:
            log.write(f"==== start {' '.join(self.argv)}\n".encode())
            log.flush()
            self.p = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      env=self.env)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.p.poll() is not None:
                raise SystemExit(f"{self.name} exited:\n{self.tail()}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/health")
                c.getresponse().read()
                c.close()
                return self
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"{self.name} did not answer within {timeout}s:\n{self.tail()}")

    @property
    def pid(self) -> int:
        assert self.p is not None
        return self.p.pid

    def alive(self) -> bool:
        return self.p is not None and self.p.poll() is None

    def tail(self, n: int = 30) -> str:
        try:
            return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-n:])
        except OSError:
            return ""

    def kill9(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        if self.p is not None:
            self.p.wait(30)

    def stop(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.p.wait(30)
