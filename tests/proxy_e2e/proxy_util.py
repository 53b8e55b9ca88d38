"""Helpers for the proxy end-to-end tests: distributions with dependencies (wheels, and
sdists that build with a tiny in-tree PEP 517 backend, so no build tools come from the
index), uploads over HTTP, a `tufpi proxy` process, and a "mirror" between proxy and index
that forwards honestly until a test tells it to tamper."""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import io
import json
import signal
import tarfile
import threading
import urllib.parse
import zipfile
from pathlib import Path
from typing import Callable

from e2e_util import TufpiProcess, multipart, post, upload_form

EPOCH = (2024, 1, 1, 0, 0, 0)


def dist_name(name: str) -> str:
    return name.replace("-", "_").replace(".", "_").lower()


def metadata_text(name: str, version: str, requires: list[str]) -> str:
    deps = "".join(f"Requires-Dist: {r}\n" for r in requires)
    return (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            f"Summary: tufpi proxy test project\nRequires-Python: >=3.8\n{deps}\n")


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def wheel_bytes(name: str, version: str, requires: list[str], module_text: str | None = None,
                payload: bytes = b"") -> tuple[str, bytes]:
    """(filename, bytes) of a pure-Python wheel."""
    dist = dist_name(name)
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}/__init__.py": (module_text or f'__version__ = "{version}"\n').encode(),
        **({f"{dist}/data.bin": payload} if payload else {}),
        f"{info}/METADATA": metadata_text(name, version, requires).encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tufpi-e2e\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{p},{_record_hash(b)},{len(b)}\n" for p, b in files.items()) + f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for p, b in files.items():
            z.writestr(zipfile.ZipInfo(p, EPOCH), b, compress_type=zipfile.ZIP_DEFLATED)
    return f"{dist}-{version}-py3-none-any.whl", out.getvalue()


# An in-tree build backend: builds the wheel with the standard library only.
BACKEND = '''
import base64, hashlib, os, zipfile
NAME, VERSION, REQUIRES = {name!r}, {version!r}, {requires!r}
DIST = NAME.replace("-", "_").replace(".", "_").lower()
INFO = DIST + "-" + VERSION + ".dist-info"
METADATA = {metadata!r}
WHEEL = "Wheel-Version: 1.0\\nGenerator: tufpi-e2e-backend\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"

def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    d = os.path.join(metadata_directory, INFO)
    os.makedirs(d, exist_ok=True)
    for n, t in (("METADATA", METADATA), ("WHEEL", WHEEL)):
        with open(os.path.join(d, n), "w") as f:
            f.write(t)
    return INFO

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, DIST, "__init__.py"), "rb") as f:
        files = {{DIST + "/__init__.py": f.read()}}
    files[INFO + "/METADATA"] = METADATA.encode()
    files[INFO + "/WHEEL"] = WHEEL.encode()
    rec = ""
    for p, b in files.items():
        h = base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b"=").decode()
        rec += p + ",sha256=" + h + "," + str(len(b)) + "\\n"
    files[INFO + "/RECORD"] = (rec + INFO + "/RECORD,,\\n").encode()
    name = DIST + "-" + VERSION + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for p, b in files.items():
            z.writestr(p, b)
    return name
'''


def sdist_bytes(name: str, version: str, requires: list[str]) -> tuple[str, bytes]:
    """(filename, bytes) of an sdist whose in-tree backend needs nothing to build."""
    dist = dist_name(name)
    root = f"{dist}-{version}"
    meta = metadata_text(name, version, requires)
    deps = ", ".join(json.dumps(r) for r in requires)
    files = {
        f"{root}/PKG-INFO": meta.encode(),
        f"{root}/pyproject.toml": (
            '[build-system]\nrequires = []\nbuild-backend = "tufpi_e2e_backend"\nbackend-path = ["."]\n\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = [{deps}]\n'
        ).encode(),
        f"{root}/tufpi_e2e_backend.py": BACKEND.format(name=name, version=version, requires=requires,
                                                       metadata=meta).encode(),
        f"{root}/{dist}/__init__.py": f'__version__ = "{version}"\nFROM_SDIST = True\n'.encode(),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as t:
        for p, b in files.items():
            ti = tarfile.TarInfo(p)
            ti.size = len(b)
            ti.mtime = 1704067200
            t.addfile(ti, io.BytesIO(b))
    return f"{root}.tar.gz", out.getvalue()


def upload(server, token: str, name: str, version: str, filename: str, data: bytes) -> None:
    ct, body = multipart(upload_form(name, version, filename, data), (filename, data))
    status, reason, text = post(server.base, body, ct, token)
    assert status == 200, (status, reason, text)


class Proxy(TufpiProcess):
    """`tufpi proxy` on 127.0.0.1 (any free port)."""

    stop_signal = signal.SIGINT
    log = "tufpi_proxy=info,warn"

    def __init__(self, bin_: Path, upstream: str, root: Path, cache: Path, *extra: str) -> None:
        super().__init__()
        self.args = [str(bin_), "proxy", "--upstream", upstream, "--root", str(root),
                     "--cache-dir", str(cache), "--listen", "127.0.0.1:0", *extra]
        self.cache = cache

    def command(self) -> list[str]:
        return self.args

    def start(self, timeout: float = 30.0) -> "Proxy":
        return super().start(timeout)

    @property
    def index_url(self) -> str:
        return f"{self.base}/simple/"

    def get(self, path: str, accept: str | None = None, ua: str | None = None,
            method: str = "GET") -> tuple[int, str, dict, bytes]:
        """GET (or `method`) without following redirects: (status, reason phrase, headers,
        body); `ua`: the User-Agent to send."""
        return self.request(path, accept, ua, method)


# (status, content type, body) a mirror rule answers with; None: forward honestly.
Answer = tuple[int, str, bytes]


class Mirror:
    """An HTTP server between the proxy and the index. It forwards every GET honestly unless
    `rule(path, fetch)` returns an answer; `fetch(path)` gets the honest one to tamper with."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.rule: Callable[[str, Callable[[str], Answer]], Answer | None] | None = None
        self.seen: list[str] = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                mirror.seen.append(self.path)
                rule = mirror.rule
                answer = rule(self.path, mirror.fetch) if rule else None
                status, ctype, body = answer or mirror.fetch(self.path)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:
                pass  # the proxy hangs up on oversized answers: expected, not news

        self.server = Quiet(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fetch(self, path: str) -> Answer:
        c = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.getheader("Content-Type") or "application/octet-stream", r.read()
        finally:
            c.close()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
