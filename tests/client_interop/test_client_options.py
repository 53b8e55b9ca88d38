"""The client's extra flags on python-tuf repositories, each checked against what python-tuf's
ngclient does with the same setting: --no-hash-prefix, --max-delegations,
--max-root-rotations; and expired metadata."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from client_util import SCHEMES, Client, PyRepo, Urls
from tuf.api.exceptions import RepositoryError
from tuf.ngclient import Updater, UpdaterConfig

ED, P256, P384, RSA = SCHEMES


def _repo(keys, tmp_path, consistent: bool = True) -> PyRepo:
    return PyRepo(
        tmp_path / "repo",
        {r: [keys.get(ED, 50 + i)] for i, r in enumerate(("root", "timestamp", "snapshot", "targets"))},
        consistent=consistent,
    )


def _ng(urls: Urls, root: bytes, tmp_path, name: str, **config) -> Updater:
    d = tmp_path / f"ng-{name}"
    d.mkdir()
    (d / "t").mkdir()
    return Updater(str(d), urls.metadata, str(d / "t"), urls.targets, config=UpdaterConfig(**config), bootstrap=root)


def test_no_hash_prefix(tufpi_bin, keys, serve, tmp_path):
    """PyPI-style: consistent snapshots, but targets are fetched at their (content-addressed)
    path as they are."""
    repo = _repo(keys, tmp_path)
    data = b"wheel bytes\n" * 100
    name = f"packages/ab/cd/{hashlib.sha256(data).hexdigest()}/demo-1.0-py3-none-any.whl"
    repo.add_target(name, data)
    repo.publish()
    urls = serve(repo.base, "http")
    requests = serve.servers[-1].requests
    client = Client(tufpi_bin, tmp_path, urls)
    client.init(repo.root_path(1))

    # Only the hash-prefixed copies exist: --no-hash-prefix asks for the plain path, 404.
    r = client.download_run(name, extra=("--no-hash-prefix",))
    assert r.returncode == 1, r.describe()
    assert "not found" in r.stderr and "404" in r.stderr, r.describe()
    assert f"/targets/{name}" in requests
    assert not client.target_path(name).exists()

    (repo.targets_dir / name).write_bytes(data)
    requests.clear()
    client.download(name, extra=("--no-hash-prefix",))
    assert client.target_path(name).read_bytes() == data
    assert [p for p in requests if p.startswith("/targets/")] == [f"/targets/{name}"]

    u = _ng(urls, repo.roots[1], tmp_path, "nohash", prefix_targets_with_hash=False)
    info = u.get_targetinfo(name)
    assert open(u.download_target(info), "rb").read() == data


def test_max_delegations(tufpi_bin, keys, serve, tmp_path):
    """targets -> d1 -> d2 -> d3 (the target is in d3): with --max-delegations 2 the walk
    stops before d3 (not found), with 3 it gets there; ngclient agrees on both."""
    repo = _repo(keys, tmp_path)
    repo.delegate("targets", "d1", [keys.get(P256, 51)], paths=["deep/*"])
    repo.delegate("d1", "d2", [keys.get(P384, 51)], paths=["deep/*"])
    repo.delegate("d2", "d3", [keys.get(RSA, 0)], paths=["deep/*"])
    repo.add_target("deep/x.txt", b"deep\n", "d3")
    repo.publish()
    urls = serve(repo.base, "http")

    client = Client(tufpi_bin, tmp_path, urls)
    client.init(repo.root_path(1))
    r = client.download_run("deep/x.txt", extra=("--max-delegations", "2"))
    assert r.returncode == 1 and "not found" in r.stderr, r.describe()
    assert not (client.metadata_dir / "d3.json").exists()
    assert _ng(urls, repo.roots[1], tmp_path, "2", max_delegations=2).get_targetinfo("deep/x.txt") is None

    client.download("deep/x.txt", extra=("--max-delegations", "3"))
    assert client.target_path("deep/x.txt").read_bytes() == b"deep\n"
    assert client.metadata_dir.joinpath("d3.json").read_bytes() == repo.latest["d3"]
    assert _ng(urls, repo.roots[1], tmp_path, "3", max_delegations=3).get_targetinfo("deep/x.txt") is not None


def test_max_root_rotations(tufpi_bin, keys, serve, tmp_path):
    """Root v1 -> v2 -> v3 where v3 changes the snapshot key: with --max-root-rotations 1 the
    client stops at v2 (and the v3-signed snapshot then fails); the next default refresh goes
    on to v3. ngclient behaves the same."""
    repo = _repo(keys, tmp_path)
    repo.add_target("a.txt", b"A\n")
    repo.publish()
    repo.rotate_root({"root": [keys.get(P256, 52)]})
    repo.rotate_root({"root": [keys.get(P384, 52)], "snapshot": [keys.get(RSA, 0)]})
    repo.publish()
    urls = serve(repo.base, "http")

    client = Client(tufpi_bin, tmp_path, urls)
    client.init(repo.root_path(1))
    r = client.refresh_run("--max-root-rotations", "1")
    assert r.returncode == 1, r.describe()
    assert "snapshot" in r.stderr, r.describe()
    assert client.metadata_dir.joinpath("root.json").read_bytes() == repo.roots[2]

    with pytest.raises(RepositoryError):
        _ng(urls, repo.roots[1], tmp_path, "rot1", max_root_rotations=1).refresh()

    r = client.refresh()
    assert "root v3" in r.stdout, r.describe()
    assert client.metadata_dir.joinpath("root.json").read_bytes() == repo.roots[3]


@pytest.mark.parametrize("role", ["timestamp", "snapshot", "targets"])
def test_expired_metadata_refused(tufpi_bin, keys, serve, tmp_path, role):
    repo = _repo(keys, tmp_path)
    repo.add_target("a.txt", b"A\n")
    repo.md[role].signed.expires = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=1)
    repo.publish()
    urls = serve(repo.base, "file")
    client = Client(tufpi_bin, tmp_path, urls)
    client.init(repo.root_path(1))
    r = client.download_run("a.txt")
    assert r.returncode == 1, r.describe()
    assert "expired" in r.stderr and role in r.stderr, r.describe()
    assert not client.target_path("a.txt").exists()
