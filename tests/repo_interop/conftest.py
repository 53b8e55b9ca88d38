"""Fixtures for the `tufpi repo` interop tests: repositories are built with the tufpi CLI
(binary from $TUFPI_BIN, default target/debug/tufpi); python-tuf's ngclient (the reference
client) and tufpi's own client resolve and download targets from them over a loopback HTTP
server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from repo_util import Repo  # noqa: E402


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
