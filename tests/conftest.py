"""Fixtures every test directory shares: the tufpi binary under test, a scratch directory per
test (kept when the test fails), and the report hook that tells the two apart."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Helpers shared by several test directories (static_server) import from here.
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from scratch import scratch_base  # noqa: E402


@pytest.fixture(scope="session")
def tufpi_bin() -> Path:
    """$TUFPI_BIN (scripts/test sets it), else debug/tufpi under $CARGO_TARGET_DIR or the
    workspace's target/."""
    env = os.environ.get("TUFPI_BIN")
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    path = Path(env) if env else target / "debug" / "tufpi"
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"tufpi binary not found at {path}: build it and set TUFPI_BIN", pytrace=False)
    return path.resolve()


@pytest.fixture
def scratch(request):
    """A fresh directory for one test (under tufpi-<test dir>/), removed afterwards unless the
    test failed."""
    base = scratch_base() / f"tufpi-{request.node.path.parent.name.replace('_', '-')}"
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
