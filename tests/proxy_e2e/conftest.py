"""Fixtures for the `tufpi proxy` end-to-end tests. The stock clients, the tufpi binary, the
scratch directories and `tufpi serve` come from tests/index_e2e (same pinned venv,
.venv-e2e); this adds the proxy and the malicious mirror."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
INDEX_E2E = HERE.parent / "index_e2e"
for p in (HERE, INDEX_E2E):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

_spec = importlib.util.spec_from_file_location("index_e2e_conftest", INDEX_E2E / "conftest.py")
_index = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_index)

# Re-exported: the index tests' clients and servers (tests/conftest.py has the rest).
clients = _index.clients
serve = _index.serve

from proxy_util import Mirror, Proxy  # noqa: E402


@pytest.fixture
def proxy(tufpi_bin, scratch):
    """proxy(upstream, root, *extra) -> a started Proxy (stopped at teardown)."""
    started: list[Proxy] = []

    def start(upstream: str, root: Path, *extra: str, cache: Path | None = None) -> Proxy:
        p = Proxy(tufpi_bin, upstream, root, cache or scratch / f"proxy-cache{len(started)}", *extra)
        started.append(p.start())
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def mirror():
    """mirror(upstream) -> a started Mirror (stopped at teardown)."""
    started: list[Mirror] = []

    def start(upstream: str) -> Mirror:
        m = Mirror(upstream)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()
