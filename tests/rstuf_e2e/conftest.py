"""Fixtures for the RSTUF drop-in tests: the real `rstuf` CLI (pinned in
tests/rstuf-requirements.txt) in its own venv (.venv-rstuf at the repository root, or
$TUFPI_RSTUF_VENV, made once and reused while the pins are unchanged: the CLI's dependencies may
not agree with the main venv's tuf==7.0.1); root and online keys as PEM files; ceremony payloads
made by the CLI's interactive `rstuf admin ceremony`; `tufpi repo serve` processes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from rstuf_util import CEREMONIES, RepoServe, Rstuf, ceremony_steps, install_online_key, make_key  # noqa: E402


@pytest.fixture(scope="session")
def rstuf_venv() -> Path:
    reqs = ROOT / "tests" / "rstuf-requirements.txt"
    venv = Path(os.environ.get("TUFPI_RSTUF_VENV", ROOT / ".venv-rstuf"))
    stamp = venv / ".tufpi-rstuf-stamp"
    want = hashlib.sha256(reqs.read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text().strip() != want:
        if venv.exists():
            shutil.rmtree(venv)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "-r", str(reqs)], check=True)
        stamp.write_text(want + "\n")
    return venv


@pytest.fixture(scope="session")
def rstuf(rstuf_venv, tmp_path_factory) -> Rstuf:
    return Rstuf(rstuf_venv, tmp_path_factory.mktemp("rstuf-home"))


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> dict:
    """Root keys (encrypted PEM, as the CLI asks for a password): root1 ed25519, root2 ECDSA
    P-256, root3 ed25519 (rotated in). Online keys (unencrypted): RSA (RSA-PSS), ed25519, ECDSA,
    and online2 (RSA) that a root update switches to."""
    d = tmp_path_factory.mktemp("keys")
    spec = {
        "root1": ("ed25519", True), "root2": ("ecdsa", True), "root3": ("ed25519", True),
        "online_rsa": ("rsa", False), "online_ed25519": ("ed25519", False),
        "online_ecdsa": ("ecdsa", False), "online2": ("rsa", False),
    }
    return {name: make_key(d, name, kind, enc) for name, (kind, enc) in spec.items()}


@pytest.fixture(scope="session")
def key_dir(keys, tmp_path_factory) -> Path:
    """The online-key directory every server gets: each online key as `fn:<keyid>` names it
    (the new online key is there before the root that names it, as RSTUF's docs ask)."""
    d = tmp_path_factory.mktemp("online-keys")
    for name, key in keys.items():
        if name.startswith("online"):
            install_online_key(key, d)
    return d


@pytest.fixture(scope="session")
def ceremonies(rstuf, keys, tmp_path_factory) -> dict:
    """name -> {"payload": the CLI's ceremony-payload.json, "transcript": what it showed}, each
    made by `rstuf admin ceremony --dry-run --out FILE` answered in a pseudo-terminal."""
    d = tmp_path_factory.mktemp("ceremonies")

    def one(name: str):
        bins, online, signers = CEREMONIES[name]
        out = d / f"{name}.json"
        steps = ceremony_steps(bins, [keys["root1"], keys["root2"]], keys[online], [keys[s] for s in signers])
        code, transcript = rstuf.drive(["admin", "ceremony", "--dry-run", "--out", str(out)], steps,
                                       d / f"{name}.txt")
        assert code == 0 and out.exists(), f"rstuf admin ceremony ({name}) failed ({code}):\n{transcript}"
        return name, {"payload": json.loads(out.read_text()), "transcript": transcript}

    with ThreadPoolExecutor(2) as pool:
        return dict(pool.map(one, CEREMONIES))


@pytest.fixture
def serve(tufpi_bin, scratch, key_dir):
    """serve(*extra_args) -> a started RepoServe over a fresh data dir. At teardown every server
    must still be running (no input crashes it), then it is stopped."""
    servers: list[RepoServe] = []

    def start(*extra: str) -> RepoServe:
        s = RepoServe(tufpi_bin, scratch / f"data{len(servers)}", key_dir, *extra).start()
        servers.append(s)
        return s

    yield start
    dead = [s for s in servers if s.crashed()]
    for s in servers:
        s.stop()
    assert not dead, "tufpi repo serve exited during the test:\n" + "\n".join(s.log() for s in dead)
