"""Fixtures for the `tufpi client` interop tests: python-tuf writes repositories, served over
HTTP (a ThreadingHTTPServer on loopback, in a thread) or as file:// URLs; the tufpi binary
(from $TUFPI_BIN, default target/debug/tufpi) is the client under test."""

from __future__ import annotations

import functools
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from client_util import KeyPool, Urls  # noqa: E402


@pytest.fixture(scope="session")
def keys() -> KeyPool:
    return KeyPool()


class _Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle + delayed ACK cost
    # ~40 ms per keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def do_GET(self):  # noqa: N802
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()


class Server:
    """A static file server over one directory, recording the request paths."""

    def __init__(self, root: Path) -> None:
        self.httpd = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root))
        )
        self.httpd.daemon_threads = True
        self.httpd.requests = []  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests  # type: ignore[attr-defined]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


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
