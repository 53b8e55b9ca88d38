"""Where tests put their scratch directories (shared by every conftest)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def scratch_base() -> Path:
    """$TUFPI_TEST_TMPDIR, else /dev/shm when present, else the system temp dir. Repositories
    write thousands of fsynced files; on a disk mounted with `discard` deleting them later
    costs seconds, on tmpfs nothing."""
    env = os.environ.get("TUFPI_TEST_TMPDIR")
    if env:
        return Path(env)
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())
