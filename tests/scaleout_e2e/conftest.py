"""Fixtures for the scale-out end-to-end tests (issue 13): replicas of `tufpi serve
--database postgres://… --storage s3://…` on one PostgreSQL database (a fresh one per test,
dropped afterwards) and one S3 bucket (fresh per test) of the S3 test server
($TUFPI_TEST_S3_ENDPOINT, which scripts/test starts, or one started here with
scripts/s3-server). The replicas reach both through TCP proxies started here (dep_proxy), so a
test can cut and restore either dependency, and the S3 proxy counts every object write.

The stock clients (twine, pip, uv) are the index tests' (tests/index_e2e, venv .venv-e2e).
Quick by default; TUFPI_SCALEOUT_FULL=1 runs the full sizes (60 uploads, three kill points).

    cargo build -p tufpi
    TUFPI_BIN=target/debug/tufpi .venv/bin/python -m pytest -q -s tests/scaleout_e2e

$TUFPI_TEST_PG_URL: the PostgreSQL server (default postgres@127.0.0.1:5432, trust auth; a
database tufpi_e2e_<random> is made per test and dropped WITH (FORCE) after it);
$TUFPI_TEST_S3_ENDPOINT: a running S3 test server; $TUFPI_SCALEOUT_LOG: the replicas' TUFPI_LOG
(default info; each replica's log is <scratch>/rN.log, kept when a test fails). Skipped when
PostgreSQL or the S3 server cannot be had, unless $CI or $TUFPI_REQUIRE_S3 is set."""

from __future__ import annotations

import importlib.util
import os
import secrets
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
INDEX_E2E = HERE.parent / "index_e2e"
for p in (HERE, INDEX_E2E):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

_spec = importlib.util.spec_from_file_location("index_e2e_conftest_scaleout", INDEX_E2E / "conftest.py")
_index = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_index)

# Re-exported: the index tests' stock clients (tests/conftest.py has tufpi_bin and scratch).
clients = _index.clients

from dep_proxy import TcpProxy  # noqa: E402
from scaleout_util import Bucket, Replica, wait_for  # noqa: E402

DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres"
REQUIRED = bool(os.environ.get("CI") or os.environ.get("TUFPI_REQUIRE_S3"))


def _unavailable(what: str) -> None:
    if REQUIRED:
        pytest.fail(f"{what} (required here)", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="session")
def s3_endpoint():
    """$TUFPI_TEST_S3_ENDPOINT, else a moto server started here for the session (by PID)."""
    env = os.environ.get("TUFPI_TEST_S3_ENDPOINT")
    if env:
        yield env.rstrip("/")
        return
    d = Path(tempfile.mkdtemp(prefix="tufpi-scaleout-s3-"))
    r = subprocess.run([str(ROOT / "scripts" / "s3-server"), "start", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        _unavailable(f"scripts/s3-server did not start: {r.stderr[-2000:]}")
    try:
        yield (d / "endpoint").read_text().strip()
    finally:
        subprocess.run([str(ROOT / "scripts" / "s3-server"), "stop", str(d)], capture_output=True)


@pytest.fixture(scope="session")
def pg_admin():
    """A connection URL to the PostgreSQL server's maintenance database ($TUFPI_TEST_PG_URL,
    as the Rust tests take it, default postgres@127.0.0.1:5432)."""
    import psycopg

    url = os.environ.get("TUFPI_TEST_PG_URL", DEFAULT_PG)
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as c:
            c.execute("SELECT 1")
    except psycopg.Error as e:
        _unavailable(f"PostgreSQL at {urllib.parse.urlsplit(url).hostname} unreachable: {e}")
    return url


def with_database(url: str, db: str, hostport: str | None = None) -> str:
    u = urllib.parse.urlsplit(url)
    netloc = u.netloc
    if hostport:
        netloc = (netloc.rsplit("@", 1)[0] + "@" if "@" in netloc else "") + hostport
    return urllib.parse.urlunsplit((u.scheme, netloc, "/" + db, u.query, u.fragment))


@pytest.fixture
def pg_db(pg_admin):
    """A fresh database (tufpi_e2e_<random>), dropped WITH (FORCE) afterwards."""
    import psycopg

    name = f"tufpi_e2e_{secrets.token_hex(6)}"
    with psycopg.connect(pg_admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(pg_admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Cluster:
    """One deployment: the database, the bucket, the proxies in front of both, a shared keys
    directory, and the replicas started on them (every one killed by PID at teardown)."""

    def __init__(self, bin_: Path, work: Path, pg_admin: str, db: str, s3_endpoint: str) -> None:
        self.bin = bin_
        self.work = work
        self.db = db
        self.s3_endpoint = s3_endpoint
        self.bucket = Bucket(s3_endpoint, f"tufpi-e2e-{secrets.token_hex(6)}")
        self.bucket.create()
        pg = urllib.parse.urlsplit(pg_admin)
        self.pg_proxy = TcpProxy(pg.hostname or "127.0.0.1", pg.port or 5432, name="pg-proxy")
        s3 = urllib.parse.urlsplit(s3_endpoint)
        self.s3_proxy = TcpProxy(s3.hostname, s3.port, http=True, name="s3-proxy")
        self.database_url = with_database(pg_admin, db, self.pg_proxy.address)
        self.storage_url = f"s3://{self.bucket.name}"
        self.keys_dir = work / "keys"
        self.keys_dir.mkdir()
        self.replicas: list[Replica] = []
        self.pg_admin = pg_admin

    def replica(self, *extra: str, start: bool = True) -> Replica:
        r = Replica(self.bin, f"r{len(self.replicas)}", self.work, self.database_url, self.storage_url,
                    f"http://{self.s3_proxy.address}", self.keys_dir, *extra)
        self.replicas.append(r)
        return r.start() if start else r

    def start(self, n: int, *extra: str) -> list[Replica]:
        """n replicas: the first alone (it makes the repository), then the others."""
        first = self.replica(*extra)
        wait_for(lambda: first.timestamp_version(timeout=5), 60, "the first replica publishes", 0.1)
        rest = [self.replica(*extra, start=False) for _ in range(n - 1)]
        for r in rest:
            r.start()
        return [first, *rest]

    def root(self) -> bytes:
        """1.root.json, read from the bucket directly: the trust anchor, out of band."""
        data = self.bucket.get("metadata/1.root.json")
        assert data, "no metadata/1.root.json in the bucket"
        return data

    def leases(self) -> list[tuple]:
        import psycopg

        with psycopg.connect(with_database(self.pg_admin, self.db), autocommit=True) as c:
            return c.execute("SELECT name, holder, term, expires_at FROM lease ORDER BY name").fetchall()

    def close(self) -> None:
        for r in self.replicas:
            try:
                r.sigcont()
            except OSError:
                pass
            r.kill9()
        for p in (self.pg_proxy, self.s3_proxy):
            p.close()
        self.bucket.delete_all()


@pytest.fixture
def cluster(tufpi_bin, scratch, pg_admin, pg_db, s3_endpoint):
    c = Cluster(tufpi_bin, scratch, pg_admin, pg_db, s3_endpoint)
    try:
        yield c
    finally:
        c.close()
