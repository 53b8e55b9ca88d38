"""Fixtures for the clients interop tests: tuf-js (installed here with `npm ci` once per
session), python-tuf's ngclient, tufpi's own client and tough (interop/tough-client, built with
cargo at its first run), side by side against every repository layout tufpi writes
(clients_util: LAYOUTS; tough reads only some, tough.TOUGH_LAYOUTS). Each layout is built once per session, in its own
directory, and torn down (servers stopped by their process or thread) when the tests move on
to the next layout."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from clients_util import LAYOUTS, TUFJS_DIR, Client, Site, build, make_clients  # noqa: E402
from scratch import scratch_base  # noqa: E402

STAMP = TUFJS_DIR / "node_modules" / ".tufpi-stamp"


@pytest.fixture(scope="session")
def session_scratch():
    base = scratch_base() / "tufpi-clients-interop"
    base.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix="session-", dir=base))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _tufjs_stamp(node: str) -> str:
    """What node_modules was installed from: the lockfile and the Node version."""
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    lock = (TUFJS_DIR / "package-lock.json").read_bytes()
    return hashlib.sha256(lock + version.encode()).hexdigest()


@pytest.fixture(scope="session")
def node() -> str | None:
    """Node with tuf-js installed in tufjs/node_modules (`npm ci`, skipped when node_modules
    was installed from this lockfile by this Node already); None without node on PATH."""
    node = shutil.which("node")
    if node is None:
        return None
    want = _tufjs_stamp(node)
    if not (STAMP.is_file() and STAMP.read_text().strip() == want):
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("node is installed but npm is not: can't install tuf-js", pytrace=False)
        p = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=TUFJS_DIR,
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            pytest.fail(f"npm ci in {TUFJS_DIR} failed:\n{p.stdout}\n{p.stderr}", pytrace=False)
        STAMP.write_text(want + "\n")
    return node


@pytest.fixture(scope="session")
def clients(tufpi_bin, node) -> dict[str, Client]:
    return make_clients(tufpi_bin, node)


@pytest.fixture(scope="session", params=LAYOUTS)
def site(request, tufpi_bin, session_scratch) -> Site:
    """Each layout, built once (tests are grouped by it) and closed after its tests."""
    layout = request.param
    s = build(layout, tufpi_bin, session_scratch / layout)
    yield s
    s.close()
    shutil.rmtree(session_scratch / layout, ignore_errors=True)


@pytest.fixture
def work(scratch):
    """work(name) -> a fresh (not yet created) dir for one client run."""
    n = [0]

    def make(name: str) -> Path:
        n[0] += 1
        return scratch / f"{n[0]}-{name}"

    return make
