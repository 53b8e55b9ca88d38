"""tough checks the main suite leaves out. test_clients_interop.py runs tough as a client on the
--hash-prefix-bins layouts (every target byte for byte, a tampered one refused for its sha256).
This file adds what it doesn't cover: an empty target, a body longer than the signed length, a
name the metadata doesn't list, and several failures in one run, each on its own line, while
the good targets still download."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for d in (HERE, HERE.parent / "repo_interop"):
    if str(d) not in sys.path:
        sys.path.insert(0, str(d))

from repo_util import Repo  # noqa: E402
from tough import failures, run_tough, tough_out_path, tough_target_path  # noqa: E402

# Flat names and names with directories (PyPI-like), and an empty one. tough fetches
# `SHA256.<whole path>` (tough.tough_target_path), so a copy sits there too.
TARGETS = {
    "top.txt": b"top level\n",
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
        p = r.targets / tough_target_path(path, data)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    r.publish()
    yield r
    r.close()


def test_tough_refuses_each_bad_target_alone(repo, scratch):
    """Longer than signed: length exceeded. Unknown name: not found. Each failure is its own
    line; the untouched targets (the empty one too) still download."""
    longer = "packages/ab/cd/ef0123/demo-1.0.tar.gz"
    good = ["empty.txt", "simple/demo/index.html", "top.txt"]
    (repo.targets / tough_target_path(longer, TARGETS[longer])).write_bytes(TARGETS[longer] + b"x")

    s = repo.serve()
    out = scratch / "out"
    p = run_tough(repo.meta / "1.root.json", f"{s.base}/metadata/", f"{s.base}/targets/",
                  [longer, "nope.txt", *good], out, scratch / "datastore")
    assert p.returncode == 1, p.stdout + p.stderr
    f = failures(p)
    assert set(f) == {longer, "nope.txt"}, p.stderr
    assert "exceeded" in f[longer].lower(), f[longer]
    assert "not found" in f["nope.txt"], f["nope.txt"]
    # Nothing unverified left behind; the good ones saved.
    for name in good:
        assert tough_out_path(out, name).read_bytes() == TARGETS[name], name
    assert sorted(x.name for x in out.iterdir()) == sorted(tough_out_path(out, n).name for n in good)
    # tough walked the delegation chain targets -> bins -> bin-N, all 16 bins loaded up front.
    reqs = set(s.requests)
    assert "/metadata/1.bins.json" in reqs
    assert sum(1 for r in reqs if r.startswith("/metadata/") and ".bin-" in r) == 16
