"""Helpers for the index end-to-end tests: distributions written by hand (wheel and sdist,
as the wheel and sdist specs lay them out), a `tufpi serve` process, raw uploads over HTTP."""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import signal
import sqlite3
import subprocess
import tarfile
import threading
import time
import urllib.parse
import zipfile
from pathlib import Path

# The demo project, as uploaded (its normalised name is tufpi-demo).
PROJECT = "Tufpi_Demo"
VERSION = "0.1.0"

# A fixed time for archive entries: the same inputs give the same bytes.
EPOCH = (2024, 1, 1, 0, 0, 0)


def metadata_text(name: str, version: str) -> str:
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {name}\n"
        f"Version: {version}\n"
        "Summary: A tiny project for tufpi's index tests\n"
        "Requires-Python: >=3.8\n"
        "\n"
    )


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def build_wheel(out: Path, name: str, version: str, module: str | None = None, payload: bytes = b"") -> Path:
    """A pure-Python wheel: the module (with `payload` as data.bin if given), METADATA, WHEEL
    and RECORD."""
    dist = name.replace("-", "_").replace(".", "_")
    module = module or dist.lower()
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{info}/METADATA": metadata_text(name, version).encode(),
        **({f"{module}/data.bin": payload} if payload else {}),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tufpi-e2e\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{p},{_record_hash(b)},{len(b)}\n" for p, b in files.items())
    record += f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    path = out / f"{dist.lower()}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for p, b in files.items():
            z.writestr(zipfile.ZipInfo(p, EPOCH), b, compress_type=zipfile.ZIP_DEFLATED)
    return path


def build_sdist(out: Path, name: str, version: str) -> Path:
    """An sdist: NAME-VERSION/ with PKG-INFO, pyproject.toml and the module."""
    dist = name.replace("-", "_").replace(".", "_").lower()
    root = f"{dist}-{version}"
    files = {
        f"{root}/PKG-INFO": metadata_text(name, version).encode(),
        f"{root}/pyproject.toml": (
            '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\n'
        ).encode(),
        f"{root}/{dist}/__init__.py": f'__version__ = "{version}"\n'.encode(),
    }
    return write_targz(out / f"{root}.tar.gz", list(files.items()))


def write_targz(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A .tar.gz of `members` (name, bytes) in this order, names as given (duplicates too)."""
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as t:
        for p, b in members:
            ti = tarfile.TarInfo(p)
            ti.size = len(b)
            ti.mtime = 1704067200
            t.addfile(ti, io.BytesIO(b))
    return path


class TufpiProcess:
    """A long-running `tufpi` command on 127.0.0.1 (any free port): started, its output kept,
    its base URL read from its "listening on http://…" line, stopped with `stop_signal`."""

    stop_signal = signal.SIGTERM
    log = "warn"

    def __init__(self) -> None:
        self.output: list[str] = []
        self.proc: subprocess.Popen | None = None
        self.base = ""

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 60.0):
        self.output = []
        self.base = ""
        env = dict(os.environ, TUFPI_LOG=os.environ.get("TUFPI_LOG", self.log))
        args = self.command()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env)
        ready = threading.Event()

        def pump() -> None:
            assert self.proc and self.proc.stdout
            for line in self.proc.stdout:
                self.output.append(line)
                if " listening on http://" in line and not self.base:
                    self.base = line.split(" listening on ", 1)[1].split()[0].rstrip("/")
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or not self.base:
            self.stop()
            raise RuntimeError(f"{' '.join(args[:2])} did not start:\n" + self.text)
        return self

    @property
    def text(self) -> str:
        return "".join(self.output)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def request(self, path: str, accept: str | None = None, ua: str | None = None,
                method: str = "GET") -> tuple[int, str, dict, bytes]:
        """`method` (GET) without following redirects: (status, reason phrase, headers with
        lowercase names, body); `ua`: the User-Agent to send."""
        u = urllib.parse.urlsplit(self.base)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        headers = {"Accept": accept} if accept else {}
        if ua:
            headers["User-Agent"] = ua
        try:
            c.request(method, path, headers=headers)
            r = c.getresponse()
            return r.status, r.reason, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()


class Server(TufpiProcess):
    """`tufpi serve` on 127.0.0.1 (any free port) over a data directory."""

    def __init__(self, bin_: Path, data: Path, *extra: str) -> None:
        super().__init__()
        self.bin = bin_
        self.data = data
        self.extra = extra

    def command(self) -> list[str]:
        return [str(self.bin), "serve", "--data-dir", str(self.data), "--listen", "127.0.0.1:0",
                "--bins-bit-length", "8", *self.extra]

    def token(self, project: str | None = None) -> str:
        args = [str(self.bin), "token", "create", "--data-dir", str(self.data)]
        if project:
            args += ["--project", project]
        out = subprocess.run(args, check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def get(self, path: str, accept: str | None = None) -> tuple[int, dict, bytes]:
        """GET without following redirects: (status, headers, body)."""
        status, _, headers, body = self.request(path, accept)
        return status, headers, body

    def health(self) -> dict:
        return json.loads(self.get("/health")[2])

    def wait_published(self, timeout: float = 5.0) -> float:
        """Seconds until nothing is pending and the publisher is idle."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            h = self.health()
            if h["pending_changes"] == 0 and h["publisher"]["state"] == "idle":
                return time.monotonic() - t0
            time.sleep(0.02)
        raise AssertionError(f"not published within {timeout}s: {self.health()}")

    def stored(self) -> tuple[list[str], int]:
        """Every file under packages/ and tmp/, and the number of files in index.db."""
        files = sorted(
            str(p.relative_to(self.data))
            for area in ("packages", "tmp")
            for p in (self.data / area).rglob("*")
            if p.is_file()
        )
        con = sqlite3.connect(f"file:{self.data / 'index.db'}?mode=ro", uri=True)
        try:
            n = con.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        finally:
            con.close()
        return files, n


def multipart(fields: list[tuple[str, str]], file: tuple[str, bytes] | None) -> tuple[str, bytes]:
    boundary = "tufpi-e2e-" + hashlib.sha256(os.urandom(8)).hexdigest()[:16]
    out = io.BytesIO()
    for k, v in fields:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    if file:
        name, data = file
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", out.getvalue()


def upload_form(name: str, version: str, filename: str, data: bytes) -> list[tuple[str, str]]:
    return [
        (":action", "file_upload"), ("protocol_version", "1"), ("name", name), ("version", version),
        ("filetype", "bdist_wheel" if filename.endswith(".whl") else "sdist"),
        ("pyversion", "py3" if filename.endswith(".whl") else "source"),
        ("metadata_version", "2.1"), ("sha256_digest", hashlib.sha256(data).hexdigest()),
    ]


def post(base: str, body: bytes, content_type: str, token: str | None,
         content_length: int | None = None) -> tuple[int, str, str]:
    """POST /legacy/: (status, reason phrase, body text)."""
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    headers = {"Content-Type": content_type, "Content-Length": str(content_length if content_length is not None else len(body))}
    if token is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()
    try:
        c.request("POST", "/legacy/", body=body, headers=headers)
        r = c.getresponse()
        return r.status, r.reason, r.read().decode(errors="replace")
    finally:
        c.close()
