"""python-tuf writes a repository; `tufpi client init/refresh/download` must read it, over
HTTP and file://, with consistent snapshots on and off, indented and compact JSON, every key
type as signer of every top-level role, and all three delegation styles."""

from __future__ import annotations

import hashlib
import os

import pytest
from client_util import (
    SCHEMES,
    Client,
    PyRepo,
    assert_metadata_matches,
    ngclient_download,
)

ED, P256, P384, RSA = SCHEMES

# Each top-level role signed by each key type across the cases.
KEY_MIXES = [
    {"root": [ED], "timestamp": [P256], "snapshot": [P384], "targets": [RSA]},
    {"root": [P256], "timestamp": [P384], "snapshot": [RSA], "targets": [ED]},
    {"root": [P384], "timestamp": [RSA], "snapshot": [ED], "targets": [P256]},
    {"root": [RSA], "timestamp": [ED], "snapshot": [P256], "targets": [P384]},
    # Thresholds above 1 with mixed key types.
    {"root": [ED, RSA], "timestamp": [P384, P256], "snapshot": [ED], "targets": [RSA, P384]},
]

TARGETS = {
    "hello.txt": b"hello, tuf\n",
    "a/b/c.txt": b"nested target\n" * 10,
    "empty.bin": b"",
    "sub/dir/blob.dat": os.urandom(100_000),
}
# Names ngclient does not URL-encode (it sends target paths as they are); tufpi does.
ODD_TARGETS = {
    "with space+plus~x.txt": b"odd name\n",
    "caf\u00e9/\u00fcber.txt": "unicode path\n".encode(),
    "100%20real?q=1#frag.txt": b"reserved URL characters\n",
}


def signers_for(keys, mix: dict[str, list[str]]) -> dict:
    # Distinct keys per role even when two roles use the same scheme.
    out = {}
    for i, (role, schemes) in enumerate(mix.items()):
        out[role] = [keys.get(s, i) for s in schemes]
    return out


CASES = [
    pytest.param(consistent, compact, transport, mix, id=f"{'cs' if consistent else 'nocs'}-{'compact' if compact else 'indent'}-{transport}-mix{mix}")
    for i, (consistent, compact, transport) in enumerate(
        (c, k, t) for c in (True, False) for k in (False, True) for t in ("http", "file")
    )
    for mix in [i % len(KEY_MIXES)]
] + [pytest.param(True, False, "http", 4, id="cs-indent-http-mix4"), pytest.param(False, True, "file", 4, id="nocs-compact-file-mix4")]


@pytest.mark.parametrize("consistent,compact,transport,mix", CASES)
def test_top_level_repository(tufpi_bin, keys, serve, tmp_path, consistent, compact, transport, mix):
    repo = PyRepo(
        tmp_path / "repo",
        signers_for(keys, KEY_MIXES[mix]),
        consistent=consistent,
        compact=compact,
        meta_hashes=bool(mix % 2),
    )
    for name, data in {**TARGETS, **ODD_TARGETS}.items():
        repo.add_target(name, data)
    repo.publish()
    if compact:
        assert b"\n" not in repo.latest["snapshot"]
    else:
        assert b'\n "signatures"' in repo.latest["snapshot"]
    urls = serve(repo.base, transport)

    client = Client(tufpi_bin, tmp_path, urls)
    client.init(repo.root_path(1))
    assert client.metadata_files() == {"root.json": repo.roots[1]}
    r = client.refresh()
    assert "timestamp v1" in r.stdout, r.describe()
    assert_metadata_matches(client, repo, {"root", "timestamp", "snapshot", "targets"})

    names = list(TARGETS) + list(ODD_TARGETS)
    client.download(*names)
    for n in names:
        assert client.target_path(n).read_bytes() == repo.target_data[n], n
    assert sorted(p.name for p in client.target_dir.iterdir()) == sorted(
        client.target_path(n).name for n in names
    )
    # A second download finds them cached.
    r = client.download(*names)
    assert r.stdout.count("cached") == len(names), r.describe()
    assert_metadata_matches(client, repo)

    if transport == "http":
        served = serve.servers[-1].requests
        if consistent:
            # tufpi fetched hash-prefixed target copies, versioned snapshot/targets.
            h = hashlib.sha256(TARGETS["sub/dir/blob.dat"]).hexdigest()
            h512 = hashlib.sha512(TARGETS["sub/dir/blob.dat"]).hexdigest()
            assert any(p in (f"/targets/sub/dir/{h}.blob.dat", f"/targets/sub/dir/{h512}.blob.dat") for p in served), served
            assert "/metadata/1.snapshot.json" in served
            assert "/metadata/1.targets.json" in served
        else:
            assert "/targets/sub/dir/blob.dat" in served
            assert "/metadata/snapshot.json" in served
        ng = ngclient_download(urls, repo.roots[1], list(TARGETS), tmp_path)
        assert ng == {n: TARGETS[n] for n in TARGETS}


def _name_in_bin(repo: PyRepo, want_bin: int, stem: str) -> str:
    sr = repo.succinct
    for i in range(100_000):
        name = f"packages/{stem}-{i}.tar.gz"
        if sr.get_role_for_target(name) == f"{sr.name_prefix}-{want_bin:0{sr.suffix_len}x}":
            return name
    raise AssertionError("no name found")


@pytest.mark.parametrize(
    "consistent,transport,bit_length,compact",
    [
        pytest.param(True, "http", 8, False, id="cs-http-8bits"),
        pytest.param(False, "file", 8, True, id="nocs-file-8bits-compact"),
        pytest.param(True, "file", 10, False, id="cs-file-10bits"),
        pytest.param(False, "http", 5, False, id="nocs-http-5bits"),
    ],
)
def test_succinct_bins(tufpi_bin, keys, serve, tmp_path, consistent, transport, bit_length, compact):
    repo = PyRepo(
        tmp_path / "repo",
        signers_for(keys, KEY_MIXES[0]),
        consistent=consistent,
        compact=compact,
        meta_hashes=True,
    )
    repo.delegate_bins(bit_length, [keys.get(ED, 7)])
    sr = repo.succinct
    n_bins = 2**bit_length
    assert len(list(sr.get_roles())) == n_bins
    # Targets in low bins (zero-padded suffixes like bin-00 / bin-003), a middle and the last bin.
    wanted = [0, 3, n_bins // 2 + 1, n_bins - 1]
    names = {}
    for b in wanted:
        n = _name_in_bin(repo, b, f"pkg{b}")
        names[n] = f"content of {n}\n".encode() * (b + 1)
        repo.add_target(n, names[n])
    # A few more spread over random bins.
    for i in range(20):
        n = f"packages/extra/extra-{i}.whl"
        names[n] = os.urandom(64 + i)
        repo.add_target(n, names[n])
    repo.publish()
    assert (repo.meta_dir / (f"1.{sr.name_prefix}-{0:0{sr.suffix_len}x}.json" if consistent else f"bin-{0:0{sr.suffix_len}x}.json")).is_file()
    urls = serve(repo.base, transport)

    client = Client(tufpi_bin, tmp_path, urls)
    client.init(repo.root_path(1))
    client.refresh()
    client.download(*names)
    for n, data in names.items():
        assert client.target_path(n).read_bytes() == data, n
    bins_used = {sr.get_role_for_target(n) for n in names}
    assert f"bin-{0:0{sr.suffix_len}x}" in bins_used
    assert_metadata_matches(client, repo, {"root", "timestamp", "snapshot", "targets", *bins_used})
    # Only the bins on the way were fetched.
    stored_bins = {p.name for p in client.metadata_dir.iterdir() if p.name.startswith("bin-")}
    assert stored_bins == {f"{b}.json" for b in bins_used}

    if transport == "http":
        ng = ngclient_download(urls, repo.roots[1], list(names)[:5], tmp_path)
        assert ng == {n: names[n] for n in list(names)[:5]}


def _hash_prefix(path: str, length: int = 2) -> str:
    return hashlib.sha256(path.encode()).hexdigest()[:length]


@pytest.mark.parametrize(
    "consistent,transport", [(True, "http"), (False, "http"), (True, "file"), (False, "file")]
)
def test_paths_and_hash_prefix_delegations(tufpi_bin, keys, serve, tmp_path, consistent, transport):
    repo = PyRepo(
        tmp_path / "repo",
        signers_for(keys, KEY_MIXES[1]),
        consistent=consistent,
        meta_hashes=not consistent,
    )
    t = {
        "top.txt": (b"top-level\n", "targets"),
        "docs/readme.txt": (b"docs\n", "docs"),
        "docs/deep/guide.txt": (b"guide\n", "docs-deep"),
        "proj/one.whl": (b"one\n" * 100, "team a"),
        "proj/sub/two.whl": (b"two\n", "\u00e9quipe sub"),
    }
    # `paths` delegations (fnmatch globs), nested, and a role name that needs percent-encoding.
    repo.delegate("targets", "docs", [keys.get(P256, 5)], paths=["docs/*"])
    repo.delegate("targets", "docs-deep", [keys.get(RSA, 5)], paths=["docs/deep/*"])
    repo.delegate("targets", "team a", [keys.get(ED, 5), keys.get(P384, 5)], paths=["proj/*", "proj/*/*"], terminating=True)
    repo.delegate("team a", "\u00e9quipe sub", [keys.get(P384, 6)], paths=["proj/sub/*"])
    # `path_hash_prefixes` delegations: hashed targets go to whichever role owns their prefix.
    hashed = {f"hashed/file-{i}.txt": f"hashed {i}\n".encode() for i in range(6)}
    prefixes = sorted({_hash_prefix(p) for p in hashed})
    half = len(prefixes) // 2
    repo.delegate("targets", "hash-lo", [keys.get(ED, 6)], path_hash_prefixes=prefixes[:half])
    repo.delegate("targets", "hash-hi", [keys.get(P256, 6)], path_hash_prefixes=prefixes[half:])
    for p, data in hashed.items():
        role = "hash-lo" if _hash_prefix(p) in prefixes[:half] else "hash-hi"
        t[p] = (data, role)
    for p, (data, role) in t.items():
        repo.add_target(p, data, role)
    repo.publish()
    urls = serve(repo.base, transport)

    client = Client(tufpi_bin, tmp_path, urls)
    client.init(repo.root_path(1))
    client.download(*t)
    for p, (data, _) in t.items():
        assert client.target_path(p).read_bytes() == data, p
    roles = {role for _, role in t.values()}
    assert_metadata_matches(client, repo, {"root", "timestamp", "snapshot", *roles})
    assert (client.metadata_dir / "%C3%A9quipe%20sub.json").is_file()

    # "team a" is terminating for proj/*: a target under proj/ that only a later role lists
    # must not be found.
    repo.delegate("targets", "late", [keys.get(ED, 8)], paths=["proj/*"])
    repo.add_target("proj/late.whl", b"late\n", "late")
    repo.publish()
    r = client.download_run("proj/late.whl")
    assert r.returncode == 1, r.describe()
    assert "not found" in r.stderr, r.describe()
    assert not client.target_path("proj/late.whl").exists()

    if transport == "http":
        names = [p for p in t if p != "proj/late.whl"]
        ng = ngclient_download(urls, repo.roots[1], names, tmp_path)
        assert ng == {p: t[p][0] for p in names}
        # python-tuf agrees that the terminating delegation hides proj/late.whl.
        from tuf.ngclient import Updater

        (tmp_path / "ng2").mkdir()
        u = Updater(str(tmp_path / "ng2"), urls.metadata, bootstrap=repo.roots[1])
        assert u.get_targetinfo("proj/late.whl") is None
