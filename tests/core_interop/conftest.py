"""Fixtures for the tufpi <-> python-tuf interop tests.

The binary under test comes from $TUFPI_BIN (scripts/test sets it); when unset, the workspace's
target/debug/tufpi is used if it exists.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from interop_util import Tufpi, TufpiKey  # noqa: E402


@pytest.fixture(scope="session")
def tufpi(tufpi_bin: Path) -> Tufpi:
    return Tufpi(tufpi_bin)


@pytest.fixture
def keygen(tufpi: Tufpi, tmp_path: Path):
    """keygen(scheme, name=None) -> a fresh TufpiKey under this test's tmp dir."""
    counter = iter(range(1_000_000))

    def make(scheme: str, name: str | None = None) -> TufpiKey:
        return tufpi.keygen(scheme, tmp_path / "keys", name or f"{scheme}-{next(counter)}")

    return make
