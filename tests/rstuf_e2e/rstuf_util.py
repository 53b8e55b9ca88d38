"""Helpers for the RSTUF drop-in tests: a `tufpi repo serve` process, a small client of RSTUF's
REST API (the calls Warehouse and the `rstuf` CLI make), the `rstuf` CLI itself (plain runs and
interactive runs answered by drive_cli.py), keys as PEM files, and python-tuf's ngclient."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.ngclient import Updater, UpdaterConfig

HERE = Path(__file__).resolve().parent
PASSWORD = "hunter2"


# ---------------------------------------------------------------------------------------------
# HTTP


@dataclass
class Reply:
    """One HTTP answer: status, raw body, and the body as JSON when it is JSON."""

    status: int
    body: bytes
    url: str
    method: str

    @property
    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def __str__(self) -> str:
        return f"{self.method} {self.url} -> {self.status} {self.body[:2000]!r}"


def http(method: str, url: str, body=None, raw: bytes | None = None, timeout: float = 120) -> Reply:
    """One request; JSON-encodes `body` (or sends `raw` as is); never raises on an HTTP status."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Reply(r.status, r.read(), url, method)
    except urllib.error.HTTPError as e:
        return Reply(e.code, e.read(), url, method)


class Api:
    """RSTUF's REST API v1 at `base` (http://host:port)."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def get(self, path: str) -> Reply:
        return http("GET", f"{self.base}{path}")

    def post(self, path: str, body=None, raw: bytes | None = None) -> Reply:
        return http("POST", f"{self.base}{path}", body, raw)

    def put(self, path: str, body) -> Reply:
        return http("PUT", f"{self.base}{path}", body)

    def submit(self, path: str, body=None, message: str | None = None) -> str:
        """POST a task (202 + data.task_id, as RSTUF answers every mutating call); its id."""
        r = self.post(path, body)
        assert r.status == 202, str(r)
        j = r.json
        assert j and j.get("data") and j["data"].get("task_id"), str(r)
        if message is not None:
            assert j.get("message") == message, str(r)
        return j["data"]["task_id"]

    def task(self, task_id: str) -> dict:
        """GET /api/v1/task?task_id= (Warehouse's spelling); the `data` object."""
        r = self.get(f"/api/v1/task?task_id={task_id}")
        assert r.status == 200, str(r)
        j = r.json
        assert j and "data" in j and j["data"].get("state"), str(r)
        return j["data"]

    def final(self, task_id: str, timeout: float = 20.0, interval: float = 0.005) -> dict:
        """Poll the task until a final state (SUCCESS, FAILURE, ERRORED, ...); its data."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.task(task_id)
            state = data["state"]
            if state in ("SUCCESS", "FAILURE", "ERRORED", "REVOKED", "REJECTED"):
                return data
            assert state in ("PENDING", "RECEIVED", "STARTED", "RUNNING", "PRE_RUN"), data
            if time.monotonic() > deadline:
                raise AssertionError(f"task {task_id} still {state} after {timeout} s: {data}")
            time.sleep(interval)

    def wait(self, task_id: str, timeout: float = 20.0) -> dict:
        """Poll the task until a final state; assert it is SUCCESS with result.status true."""
        data = self.final(task_id, timeout)
        assert data["state"] == "SUCCESS", f"task {task_id}: {json.dumps(data)}"
        assert (data.get("result") or {}).get("status") is True, data
        return data

    def run(self, path: str, body=None, timeout: float = 20.0) -> dict:
        """Submit a task and wait for its SUCCESS."""
        return self.wait(self.submit(path, body), timeout)

    def bootstrapped(self) -> bool:
        r = self.get("/api/v1/bootstrap")
        assert r.status == 200, str(r)
        return r.json["data"]["bootstrap"] is True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# The server


class RepoServe:
    """`tufpi repo serve` on a free loopback port over `data_dir`, online keys in `key_dir`."""

    def __init__(self, tufpi_bin: Path, data_dir: Path, key_dir: Path, *extra: str) -> None:
        self.bin = tufpi_bin
        self.data_dir = data_dir
        self.key_dir = key_dir
        self.extra = extra
        self.proc: subprocess.Popen | None = None
        # Stopped by the test (not exited by itself).
        self.stopped = False
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self.base = ""

    @property
    def api(self) -> Api:
        return Api(self.base)

    @property
    def metadata_url(self) -> str:
        return f"{self.base}/metadata"

    def start(self, timeout: float = 60.0) -> "RepoServe":
        self.stopped = False
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        args = [str(self.bin), "repo", "serve", "--listen", f"127.0.0.1:{port}",
                "--data-dir", str(self.data_dir), "--online-key-dir", str(self.key_dir), *self.extra]
        env = dict(os.environ, TUFPI_LOG=os.environ.get("TUFPI_LOG", "warn"))
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"{' '.join(args)} exited {self.proc.returncode}:\n{self.log()}")
            try:
                if http("GET", f"{self.base}/api/v1/bootstrap", timeout=2).status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"{' '.join(args)} did not answer in {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def crashed(self) -> bool:
        """Exited without being stopped."""
        return self.proc is not None and not self.stopped and self.proc.poll() is not None

    def stop(self) -> None:
        self.stopped = True
        if self.proc is None or self.proc.poll() is not None:
            return
        # The server runs in a session of its own (start_new_session): signal that group only.
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


# ---------------------------------------------------------------------------------------------
# Keys


@dataclass
class KeyFiles:
    """A key pair as the RSTUF CLI takes it: `pub` (SubjectPublicKeyInfo PEM), `key` (PKCS#8
    PEM, encrypted with PASSWORD for root keys), its TUF key and keyid."""

    name: str
    pub: Path
    key: Path
    tuf_key: SSlibKey
    private: object

    @property
    def keyid(self) -> str:
        return self.tuf_key.keyid

    def signer(self) -> CryptoSigner:
        return CryptoSigner(self.private, self.tuf_key)


def make_key(directory: Path, name: str, kind: str, encrypted: bool) -> KeyFiles:
    """A fresh key of `kind` (ed25519, ecdsa = P-256, rsa = 3072-bit RSA, RSA-PSS scheme)."""
    if kind == "ed25519":
        priv = ed25519.Ed25519PrivateKey.generate()
    elif kind == "ecdsa":
        priv = ec.generate_private_key(ec.SECP256R1())
    elif kind == "rsa":
        priv = rsa.generate_private_key(65537, 3072)
    else:
        raise ValueError(kind)
    enc = serialization.BestAvailableEncryption(PASSWORD.encode()) if encrypted else serialization.NoEncryption()
    key_path = directory / f"{name}.key"
    pub_path = directory / f"{name}.pub"
    key_path.write_bytes(priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc))
    pub_path.write_bytes(priv.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo))
    return KeyFiles(name, pub_path, key_path, SSlibKey.from_crypto(priv.public_key()), priv)


def install_online_key(key: KeyFiles, key_dir: Path) -> None:
    """Where RSTUF's worker looks for `fn:<keyid>`: an unencrypted PKCS#8 PEM file named by the
    keyid in its online-key directory."""
    (key_dir / key.keyid).write_bytes(key.key.read_bytes())


# ---------------------------------------------------------------------------------------------
# The rstuf CLI


class Rstuf:
    """The RSTUF venv's `rstuf` CLI."""

    def __init__(self, venv: Path, home: Path) -> None:
        self.venv = venv
        self.python = venv / "bin" / "python"
        self.exe = venv / "bin" / "rstuf"
        self.home = home
        # Its own config file (never the user's ~/.rstuf.yml).
        self.config = home / "rstuf.yml"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RSTUF_", "PYTHON"))}
        env.update(HOME=str(home), NO_COLOR="1", COLUMNS="200", TERM="dumb")
        self.env = env

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """A non-interactive command; stdout and stderr together in .stdout."""
        return subprocess.run([str(self.exe), "-c", str(self.config), *map(str, args)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=self.env, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def drive(self, args: list[str], steps: list[list], transcript: Path, timeout: float = 120) -> tuple[int, str]:
        """An interactive command answered by drive_cli.py; (exit status, transcript)."""
        script = transcript.with_suffix(".json")
        script.write_text(json.dumps({"argv": [str(self.exe), "-c", str(self.config), *map(str, args)],
                                      "steps": steps, "transcript": str(transcript), "timeout": 60}))
        p = subprocess.run([str(self.python), str(HERE / "drive_cli.py"), str(script)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env=self.env, timeout=timeout)
        text = transcript.read_text() if transcript.exists() else p.stdout
        return p.returncode, text


def task_id_in(output: str) -> str:
    """The task id the CLI printed ("... status: ACCEPTED (<id>)" or "task ID ... is: <id>")."""
    m = re.search(r"ACCEPTED \(([^)\s]+)\)", output) or re.search(r"task ID \(use to check its status\) is: (\S+)",
                                                                 output)
    assert m, f"no task id in the CLI's output:\n{output}"
    return m.group(1)


def add_key_steps(key: KeyFiles) -> list[list]:
    """Answers adding a PEM root key: the key type menu, its public key file, its name."""
    return [
        ["select", "Select a key type", "Key PEM File"],
        ["ask", "PUBLIC", str(key.pub)],
        ["ask", "Please enter key name", key.name],
    ]


def sign_steps(key: KeyFiles) -> list[list]:
    """Answers signing with a PEM root key chosen in the "Select a key for signing" menu."""
    return [
        ["select", "Select a key for signing", key.name],
        ["select", "HSM", "Key PEM File"],
        ["ask", "path.*to encrypted private key", str(key.key)],
        ["ask", "password", PASSWORD],
    ]


def online_key_steps(key: KeyFiles) -> list[list]:
    return [
        ["select", "Select Online Key type", "Key PEM File"],
        ["ask", "PUBLIC", str(key.pub)],
        ["ask", "Please enter key name", key.name],
    ]


# The ceremonies the tests bootstrap from: name -> (bins, online key, root signers).
CEREMONIES = {
    # Threshold 2 of root1 (ed25519) + root2 (ECDSA), both sign; RSA-PSS online key.
    "signed_rsa": (8, "online_rsa", ["root1", "root2"]),
    # The same with an ed25519 and an ECDSA online key.
    "signed_ed25519": (4, "online_ed25519", ["root1", "root2"]),
    "signed_ecdsa": (4, "online_ecdsa", ["root1", "root2"]),
    # Threshold 2, signed by root1 only: the root waits for root2's signature (DAS).
    "das": (4, "online_ed25519", ["root1"]),
}


def ceremony_steps(bins: int, root_keys: list[KeyFiles], online: KeyFiles, signers: list[KeyFiles],
                   threshold: int = 2) -> list[list]:
    """Answers to `rstuf admin ceremony`: default expiries, succinct hash bins, root keys and
    threshold, a PEM online key, root signed by `signers` (fewer than threshold: DAS)."""
    steps: list[list] = [
        ["ask", "days until expiry for 'timestamp' role", ""],
        ["ask", "days until expiry for 'snapshot' role", ""],
        ["ask", "days until expiry for 'targets' role", ""],
        ["select", "RSTUF supports two types of delegations", "Bins (online key only)"],
        ["ask", "days until expiry for 'bins' role", ""],
        ["ask", "number of delegated hash bins", str(bins)],
        ["ask", "days until expiry for 'root' role", ""],
        ["ask", "'root' threshold", str(threshold)],
    ]
    for i, key in enumerate(root_keys):
        if i:
            steps.append(["select", r"(missing for threshold|more keys can be added)", "add"])
        steps += add_key_steps(key)
    steps.append(["select", "more keys can be added", "continue"])
    steps += online_key_steps(online)
    for key in signers:
        steps += sign_steps(key)
    if len(signers) < threshold:
        steps.append(["select", "Select a key for signing or continue", "continue"])
    steps.append(["expect", "Saved result to"])
    return steps


# ---------------------------------------------------------------------------------------------
# TUF clients


def updater(metadata_url: str, root: bytes, directory: Path) -> Updater:
    """python-tuf's ngclient trusting `root`, caching in `directory` (kept between refreshes, so
    one updater follows the repository from its first root on). Targets are not hash-prefixed:
    RSTUF does not host them (its own functional tests configure the same)."""
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "root.json").exists():
        (directory / "root.json").write_bytes(root)
    return Updater(metadata_dir=str(directory), metadata_base_url=metadata_url + "/",
                   target_dir=str(directory / "targets"),
                   config=UpdaterConfig(prefix_targets_with_hash=False), bootstrap=None)


def fresh_updater(metadata_url: str, directory: Path) -> Updater:
    """An ngclient that starts from the published 1.root.json (trust on first use)."""
    r = http("GET", f"{metadata_url}/1.root.json")
    assert r.status == 200, str(r)
    return updater(metadata_url, r.body, directory)


def blake2b_256(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def simple_detail_page(project: str, files: list[str]) -> bytes:
    """A PEP 503 simple detail page, what Warehouse posts as its per-project TUF target."""
    links = "".join(f'    <a href="../../packages/{f}#sha256={hashlib.sha256(f.encode()).hexdigest()}">{f}</a><br/>\n'
                    for f in files)
    return (f"<!DOCTYPE html>\n<html>\n  <head><title>Links for {project}</title></head>\n  <body>\n"
            f"    <h1>Links for {project}</h1>\n{links}  </body>\n</html>\n").encode()
