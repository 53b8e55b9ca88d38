"""The repository moves on under python-tuf: root rotations (v1 -> v2 -> v3 with key changes),
new targets published, and `tufpi client` follows, storing exactly the bytes served."""

from __future__ import annotations

import pytest
from client_util import SCHEMES, Client, PyRepo, assert_metadata_matches, ngclient_download

ED, P256, P384, RSA = SCHEMES


def _repo(keys, tmp_path, consistent: bool, compact: bool = False) -> PyRepo:
    return PyRepo(
        tmp_path / "repo",
        {
            "root": [keys.get(ED, 20)],
            "timestamp": [keys.get(P256, 20)],
            "snapshot": [keys.get(P384, 20)],
            "targets": [keys.get(RSA, 0)],
        },
        consistent=consistent,
        compact=compact,
    )


def _rotate_twice(repo: PyRepo, keys) -> None:
    # v2: new root key type (ed25519 -> P-384) and a new timestamp key.
    assert repo.rotate_root({"root": [keys.get(P384, 21)], "timestamp": [keys.get(ED, 21)]}) == 2
    # v3: two root keys (threshold 2, P-256 + RSA), new snapshot and targets keys.
    assert (
        repo.rotate_root(
            {
                "root": [keys.get(P256, 22), keys.get(RSA, 1)],
                "snapshot": [keys.get(ED, 22)],
                "targets": [keys.get(P256, 23)],
            }
        )
        == 3
    )


@pytest.mark.parametrize("consistent,transport", [(True, "http"), (False, "file"), (True, "file")])
def test_root_rotation_followed_from_v1(tufpi_bin, keys, serve, tmp_path, consistent, transport):
    """A client that only knows root v1 walks v2 and v3 (each signed by the previous and the
    new root keys) and then trusts metadata signed by the v3 keys only."""
    repo = _repo(keys, tmp_path, consistent)
    repo.add_target("a.txt", b"A\n")
    repo.publish()
    _rotate_twice(repo, keys)
    repo.add_target("b.txt", b"B\n")
    repo.publish()
    urls = serve(repo.base, transport)

    client = Client(tufpi_bin, tmp_path, urls)
    client.init(repo.root_path(1))
    r = client.refresh()
    assert "root v3" in r.stdout, r.describe()
    assert client.metadata_dir.joinpath("root.json").read_bytes() == repo.roots[3]
    assert_metadata_matches(client, repo, {"root", "timestamp", "snapshot", "targets"})
    client.download("a.txt", "b.txt")
    assert client.target_path("b.txt").read_bytes() == b"B\n"
    if transport == "http":
        assert ngclient_download(urls, repo.roots[1], ["a.txt", "b.txt"], tmp_path) == {
            "a.txt": b"A\n",
            "b.txt": b"B\n",
        }


@pytest.mark.parametrize("consistent,transport", [(True, "http"), (False, "http")])
def test_rotation_after_trusting_old_timestamp(tufpi_bin, keys, serve, tmp_path, consistent, transport):
    """The client trusts timestamp/snapshot v1 signed by the old keys, then the repository
    rotates root (new timestamp and snapshot keys) and publishes: the client follows."""
    repo = _repo(keys, tmp_path, consistent)
    repo.add_target("a.txt", b"A\n")
    repo.publish()
    urls = serve(repo.base, transport)
    client = Client(tufpi_bin, tmp_path, urls)
    client.init(repo.root_path(1))
    client.download("a.txt")
    assert_metadata_matches(client, repo, {"root", "timestamp", "snapshot", "targets"})

    _rotate_twice(repo, keys)
    repo.add_target("c.txt", b"C\n" * 1000)
    repo.publish()
    r = client.refresh()
    assert "root v3, timestamp v2" in r.stdout, r.describe()
    assert_metadata_matches(client, repo, {"root", "timestamp", "snapshot", "targets"})
    client.download("c.txt")
    assert client.target_path("c.txt").read_bytes() == b"C\n" * 1000


@pytest.mark.parametrize(
    "consistent,compact,transport",
    [(True, False, "http"), (False, False, "http"), (True, True, "file"), (False, True, "file")],
)
def test_new_publish_is_picked_up(tufpi_bin, keys, serve, tmp_path, consistent, compact, transport):
    """After python-tuf publishes a new target (into a bin, so targets, one bin, snapshot and
    timestamp all change), a second refresh + download gets it; the metadata dir then holds
    exactly the newly served bytes."""
    repo = _repo(keys, tmp_path, consistent, compact)
    repo.delegate_bins(6, [keys.get(ED, 30)])
    repo.add_target("packages/first-1.0.tar.gz", b"first\n")
    repo.publish()
    urls = serve(repo.base, transport)
    client = Client(tufpi_bin, tmp_path, urls)
    client.init(repo.root_path(1))
    client.download("packages/first-1.0.tar.gz")
    assert_metadata_matches(client, repo)

    # Nothing changed: a refresh keeps everything as is.
    before = client.metadata_files()
    client.refresh()
    assert client.metadata_files() == before

    # Not published yet.
    r = client.download_run("packages/second-2.0.tar.gz")
    assert r.returncode == 1 and "not found" in r.stderr, r.describe()

    repo.add_target("packages/second-2.0.tar.gz", b"second\n" * 50)
    repo.publish()
    r = client.refresh()
    assert "timestamp v2" in r.stdout, r.describe()
    assert client.metadata_files()["timestamp.json"] == repo.latest["timestamp"]
    assert client.metadata_files()["snapshot.json"] == repo.latest["snapshot"]
    client.download("packages/second-2.0.tar.gz", "packages/first-1.0.tar.gz")
    assert client.target_path("packages/second-2.0.tar.gz").read_bytes() == b"second\n" * 50
    assert client.target_path("packages/first-1.0.tar.gz").read_bytes() == b"first\n"
    bin2 = repo.succinct.get_role_for_target("packages/second-2.0.tar.gz")
    assert_metadata_matches(client, repo, {"root", "timestamp", "snapshot", "targets", bin2})

    # A third publish that only changes one target's bytes: the client gets the new bytes.
    repo.add_target("packages/first-1.0.tar.gz", b"first, rebuilt\n")
    repo.publish()
    client.download("packages/first-1.0.tar.gz")
    assert client.target_path("packages/first-1.0.tar.gz").read_bytes() == b"first, rebuilt\n"
    assert_metadata_matches(client, repo)


def test_expired_intermediate_root_is_fine_expired_final_root_is_not(tufpi_bin, keys, serve, tmp_path):
    """Spec 5.3: only the final root's expiry matters. v2 expired, v3 valid -> ok; then a v4
    that is itself expired -> exit 1, naming root and expiry. ngclient agrees on the first."""
    from datetime import datetime, timedelta, timezone

    from client_util import EXPIRES

    past = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
    repo = _repo(keys, tmp_path, True)
    repo.add_target("a.txt", b"A\n")
    repo.publish()
    repo.md["root"].signed.expires = past
    repo.rotate_root({"root": [keys.get(P256, 60)]})
    repo.md["root"].signed.expires = EXPIRES
    repo.rotate_root({"root": [keys.get(ED, 60)]})
    urls = serve(repo.base, "http")

    client = Client(tufpi_bin, tmp_path, urls)
    client.init(repo.root_path(1))
    r = client.refresh()
    assert "root v3" in r.stdout, r.describe()
    assert ngclient_download(urls, repo.roots[1], ["a.txt"], tmp_path) == {"a.txt": b"A\n"}

    repo.md["root"].signed.expires = past
    repo.rotate_root({"root": [keys.get(P384, 60)]})
    r = client.refresh_run()
    assert r.returncode == 1, r.describe()
    assert "root" in r.stderr and "expired" in r.stderr, r.describe()
