"""Fixtures for the `tufpi repo` interop tests: repositories are built with the tufpi CLI
(binary from $TUFPI_BIN, default target/debug/tufpi); python-tuf's ngclient (the reference
client) and tufpi's own client resolve and download targets from them over a loopback HTTP
server."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from repo_util import Repo  # noqa: E402


@pytest.fixture(scope="session")
def tufpi_bin() -> Path:
    env = os.environ.get("TUFPI_BIN")
    path = Path(env) if env else HERE.parent.parent / "target" / "debug" / "tufpi"
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"tufpi binary not found at {path}: build it and set TUFPI_BIN", pytrace=False)
    return path.resolve()


def _scratch_base() -> Path:
    """$TUFPI_TEST_TMPDIR, else /dev/shm when present, else the system temp dir. Repositories
    write thousands of fsynced files; on a disk mounted with `discard` deleting them later
    (pytest prunes old tmp_path trees) costs seconds, on tmpfs nothing."""
    env = os.environ.get("TUFPI_TEST_TMPDIR")
    if env:
        return Path(env)
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())


@pytest.fixture
def scratch(request):
    """A fresh directory for one test, removed afterwards unless the test failed."""
    base = _scratch_base() / "tufpi-repo-interop"
    base.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix=request.node.name[:40] + "-", dir=base))
    yield d
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(f"kept {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    if rep.when == "call":
        item.rep_call = rep
    return rep


@pytest.fixture
def make_repo(tufpi_bin, scratch):
    """make_repo(name, *init_args) -> an initialised Repo under the test's scratch dir."""
    repos: list[Repo] = []

    def make(name: str, *init_args: str) -> Repo:
        base = scratch / name
        base.mkdir()
        r = Repo(tufpi_bin, base)
        r.init(*init_args)
        repos.append(r)
        return r

    yield make
    for r in repos:
        r.close()
