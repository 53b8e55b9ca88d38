"""Fixtures for the `tufpi serve` end-to-end tests: the stock clients (twine, pip, uv, pinned
in requirements.txt) in their own venv (.venv-e2e at the repository root, or $TUFPI_E2E_VENV,
made once and reused while the pins are unchanged), the tufpi binary ($TUFPI_BIN, default
target/debug/tufpi), servers on free loopback ports over temp data directories."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from e2e_util import PROJECT, VERSION, Server, build_sdist, build_wheel  # noqa: E402


class Clients:
    """The e2e venv's executables and the environment to run them in (no user or global
    pip/uv configuration, no keyring, nothing cached between runs)."""

    def __init__(self, venv: Path, cache: Path) -> None:
        self.venv = venv
        self.python = venv / "bin" / "python"
        self.twine = venv / "bin" / "twine"
        self.pip = venv / "bin" / "pip"
        self.uv = venv / "bin" / "uv"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "TWINE_"))}
        env.update(
            PIP_CONFIG_FILE=os.devnull,
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            UV_NO_CONFIG="1",
            UV_CACHE_DIR=str(cache / "uv"),
            UV_PYTHON_DOWNLOADS="never",
            PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
            NO_COLOR="1",
        )
        self.env = env

    def run(self, *args, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=self.env,
                              timeout=timeout, check=check)


@pytest.fixture(scope="session")
def clients(tmp_path_factory) -> Clients:
    reqs = HERE / "requirements.txt"
    venv = Path(os.environ.get("TUFPI_E2E_VENV", ROOT / ".venv-e2e"))
    stamp = venv / ".tufpi-e2e-stamp"
    want = hashlib.sha256(reqs.read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text().strip() != want:
        if venv.exists():
            shutil.rmtree(venv)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "-r", str(reqs)],
            check=True,
        )
        stamp.write_text(want + "\n")
    return Clients(venv, tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def dists(tmp_path_factory) -> dict[str, Path]:
    """The demo project's wheel and sdist, plus a second version's wheel."""
    out = tmp_path_factory.mktemp("dist")
    v2 = out / "v2"
    v2.mkdir()
    return {
        "wheel": build_wheel(out, PROJECT, VERSION),
        "sdist": build_sdist(out, PROJECT, VERSION),
        "wheel2": build_wheel(v2, PROJECT, "0.2.0"),
    }


@pytest.fixture
def serve(tufpi_bin, scratch):
    """serve(*extra_args, data=None) -> a started Server (stopped at teardown)."""
    servers: list[Server] = []

    def start(*extra: str, data: Path | None = None) -> Server:
        s = Server(tufpi_bin, data or scratch / f"data{len(servers)}", *extra).start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()
