"""tough (awslabs/tough, the Rust TUF client) reads a `tufpi repo init --hash-prefix-bins`
repository: every target downloaded with identical bytes, tampered targets refused."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for d in (HERE, HERE.parent / "repo_interop"):
    if str(d) not in sys.path:
        sys.path.insert(0, str(d))

from repo_util import Repo  # noqa: E402
from tough import failures, run_tough, tough_out_path, tough_target_path  # noqa: E402

# Flat names and names with directories (PyPI-like). tough fetches `SHA256.<whole path>`, where
# tufpi (like python-tuf) serves `<dir>/SHA256.<base name>`, so a copy sits at tough's path
# too (see tough.tough_target_path); for flat names the two are the same file.
TARGETS = {
    "top.txt": b"top level\n",
    "demo-1.0-py3-none-any.whl": b"wheel bytes " * 500,
    "empty.txt": b"",
    "packages/ab/cd/ef0123/demo-1.0.tar.gz": b"sdist bytes\n" * 70,
    "simple/demo/index.html": b"<html>demo</html>\n",
}


@pytest.fixture
def repo(tufpi_bin, scratch):
    r = Repo(tufpi_bin, scratch / "repo")
    r.init("--hash-prefix-bins", "--bins-bit-length", "4")
    for path, data in TARGETS.items():
        r.add(path, data)
        if "/" in path:
            (r.targets / tough_target_path(path, data)).parent.mkdir(parents=True, exist_ok=True)
            (r.targets / tough_target_path(path, data)).write_bytes(data)
    r.publish()
    yield r
    r.close()


def tough(repo: Repo, scratch: Path, names: list[str], tag: str):
    s = repo.serve()
    out = scratch / tag / "out"
    p = run_tough(
        repo.meta / "1.root.json",
        f"{s.base}/metadata/",
        f"{s.base}/targets/",
        names,
        out,
        scratch / tag / "datastore",
    )
    return p, out


def test_tough_downloads_every_target(repo, scratch):
    p, out = tough(repo, scratch, list(TARGETS), "all")
    assert p.returncode == 0, p.stdout + p.stderr
    for path, data in TARGETS.items():
        assert tough_out_path(out, path).read_bytes() == data, path
    # tough walked the delegation chain targets -> bins -> bin-N, all 16 bins loaded up front.
    reqs = set(repo.serve().requests)
    assert "/metadata/1.bins.json" in reqs
    assert sum(1 for r in reqs if r.startswith("/metadata/") and ".bin-" in r) == 16


def test_tough_refuses_tampered_targets(repo, scratch):
    """Same length, other bytes: sha256 mismatch. Longer: more than the signed length. Unknown
    name: not found. Each failure is its own line; the untouched target still downloads."""
    same_len = "top.txt"
    longer = "packages/ab/cd/ef0123/demo-1.0.tar.gz"
    good = "simple/demo/index.html"
    served = repo.targets
    bad = bytearray(TARGETS[same_len])
    bad[0] ^= 0x01
    (served / tough_target_path(same_len, TARGETS[same_len])).write_bytes(bytes(bad))
    (served / tough_target_path(longer, TARGETS[longer])).write_bytes(TARGETS[longer] + b"x")

    p, out = tough(repo, scratch, [same_len, longer, good, "nope.txt"], "tampered")
    assert p.returncode == 1, p.stdout + p.stderr
    f = failures(p)
    assert set(f) == {same_len, longer, "nope.txt"}, p.stderr
    sha = hashlib.sha256(TARGETS[same_len]).hexdigest()
    assert "Hash mismatch" in f[same_len] and sha in f[same_len], f[same_len]
    assert "exceeded" in f[longer].lower(), f[longer]
    assert "not found" in f["nope.txt"], f["nope.txt"]
    # Nothing unverified left behind; the good one saved.
    assert tough_out_path(out, good).read_bytes() == TARGETS[good]
    assert [x.name for x in out.iterdir()] == [tough_out_path(out, good).name]
