"""Fixtures for the `tufpi client` interop tests: python-tuf writes repositories, served over
HTTP (a ThreadingHTTPServer on loopback, in a thread) or as file:// URLs; the tufpi binary
(from $TUFPI_BIN, default target/debug/tufpi) is the client under test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from client_util import KeyPool, Urls  # noqa: E402
from static_server import Server  # noqa: E402


@pytest.fixture(scope="session")
def keys() -> KeyPool:
    return KeyPool()


@pytest.fixture
def serve():
    """serve(repo_base, transport) -> Urls: "http" starts a loopback server over repo_base,
    "file" gives file:// URLs."""
    servers: list[Server] = []

    def make(base: Path, transport: str) -> Urls:
        if transport == "file":
            # No trailing slash here (the http URLs have one): both must work.
            return Urls(metadata=(base / "metadata").as_uri(), targets=(base / "targets").as_uri())
        s = Server(base)
        servers.append(s)
        return Urls(metadata=f"{s.base}/metadata/", targets=f"{s.base}/targets/")

    make.servers = servers  # type: ignore[attr-defined]
    yield make
    for s in servers:
        s.close()
