"""Negative interop: valid python-tuf repositories whose served bytes are wrong, or that do
not list what is asked for. `tufpi client download` exits exactly 1, says why, and writes
nothing it could not verify."""

from __future__ import annotations

import pytest
from client_util import SCHEMES, Client, PyRepo

ED, P256, P384, RSA = SCHEMES

GOOD = b"the real bytes of the target\n" * 20


def _repo(keys, tmp_path, consistent: bool, bins: bool) -> PyRepo:
    repo = PyRepo(
        tmp_path / "repo",
        {r: [keys.get(s, 40)] for r, s in zip(("root", "timestamp", "snapshot", "targets"), SCHEMES)},
        consistent=consistent,
    )
    if bins:
        repo.delegate_bins(4, [keys.get(ED, 41)])
    repo.add_target("pkg/good.whl", GOOD)
    repo.add_target("pkg/other.whl", b"other\n")
    repo.publish()
    return repo


CASES = [
    pytest.param(True, False, "http", id="cs-http"),
    pytest.param(False, True, "http", id="nocs-bins-http"),
    pytest.param(True, True, "file", id="cs-bins-file"),
    pytest.param(False, False, "file", id="nocs-file"),
]


@pytest.mark.parametrize("consistent,bins,transport", CASES)
def test_tampered_target_same_length(tufpi_bin, keys, serve, tmp_path, consistent, bins, transport):
    repo = _repo(keys, tmp_path, consistent, bins)
    bad = bytearray(GOOD)
    bad[7] ^= 0x01
    repo.tamper_target("pkg/good.whl", bytes(bad))
    urls = serve(repo.base, transport)
    client = Client(tufpi_bin, tmp_path, urls)
    client.init(repo.root_path(1))
    r = client.download_run("pkg/good.whl")
    assert r.returncode == 1, r.describe()
    assert "hash" in r.stderr.lower(), r.describe()
    assert "pkg/good.whl" in r.stderr, r.describe()
    assert not client.target_path("pkg/good.whl").exists()
    # Nothing half-written either.
    assert not client.target_dir.exists() or list(client.target_dir.iterdir()) == []
    # The other target is fine.
    client.download("pkg/other.whl")
    assert client.target_path("pkg/other.whl").read_bytes() == b"other\n"


@pytest.mark.parametrize("consistent,bins,transport", CASES[:2])
@pytest.mark.parametrize("how", ["longer", "shorter"])
def test_tampered_target_other_length(tufpi_bin, keys, serve, tmp_path, consistent, bins, transport, how):
    repo = _repo(keys, tmp_path, consistent, bins)
    repo.tamper_target("pkg/good.whl", GOOD + b"x" if how == "longer" else GOOD[:-1])
    urls = serve(repo.base, transport)
    client = Client(tufpi_bin, tmp_path, urls)
    client.init(repo.root_path(1))
    r = client.download_run("pkg/good.whl")
    assert r.returncode == 1, r.describe()
    if how == "longer":
        # Refused while downloading: more bytes than the trusted length (the error names
        # the URL fetched).
        assert "more than" in r.stderr and "good.whl" in r.stderr, r.describe()
    else:
        assert "pkg/good.whl" in r.stderr and "length" in r.stderr.lower(), r.describe()
    assert not client.target_path("pkg/good.whl").exists()


@pytest.mark.parametrize("consistent,bins,transport", CASES)
def test_target_not_in_metadata(tufpi_bin, keys, serve, tmp_path, consistent, bins, transport):
    repo = _repo(keys, tmp_path, consistent, bins)
    # The bytes are on the server, but no role lists them.
    (repo.targets_dir / "pkg").mkdir(exist_ok=True)
    (repo.targets_dir / "pkg" / "unlisted.whl").write_bytes(b"unlisted\n")
    urls = serve(repo.base, transport)
    client = Client(tufpi_bin, tmp_path, urls)
    client.init(repo.root_path(1))
    r = client.download_run("pkg/unlisted.whl")
    assert r.returncode == 1, r.describe()
    assert "not found" in r.stderr, r.describe()
    assert not client.target_path("pkg/unlisted.whl").exists()
    # A found target before an unknown one is still downloaded; the run still fails.
    r = client.download_run("pkg/other.whl", "pkg/unlisted.whl")
    assert r.returncode == 1, r.describe()
    assert client.target_path("pkg/other.whl").read_bytes() == b"other\n"
    assert not client.target_path("pkg/unlisted.whl").exists()


@pytest.mark.parametrize("transport", ["http", "file"])
def test_tampered_metadata_refused(tufpi_bin, keys, serve, tmp_path, transport):
    """A served targets.json whose signed content was edited after python-tuf signed it."""
    repo = _repo(keys, tmp_path, True, False)
    f = repo.meta_dir / "1.targets.json"
    f.write_bytes(f.read_bytes().replace(b'"length": 6', b'"length": 7'))
    urls = serve(repo.base, transport)
    client = Client(tufpi_bin, tmp_path, urls)
    client.init(repo.root_path(1))
    r = client.download_run("pkg/other.whl")
    assert r.returncode == 1, r.describe()
    assert "targets" in r.stderr, r.describe()
    assert not (client.metadata_dir / "targets.json").exists()
    assert not client.target_path("pkg/other.whl").exists()


def test_error_message_states_the_cause_once(tufpi_bin, keys, serve, tmp_path):
    repo = _repo(keys, tmp_path, True, False)
    bad = bytearray(GOOD)
    bad[0] ^= 0x01
    repo.tamper_target("pkg/good.whl", bytes(bad))
    urls = serve(repo.base, "file")
    client = Client(tufpi_bin, tmp_path, urls)
    client.init(repo.root_path(1))
    r = client.download_run("pkg/good.whl")
    assert r.returncode == 1, r.describe()
    assert r.stderr.count("hash mismatch") == 1, r.describe()
