"""python-tuf's ngclient (and tufpi's own client) against repositories built with `tufpi repo`."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from repo_util import Repo, hashes_of

# A mix of paths: PyPI-like content-addressed packages, simple index pages, top-level files.
SAMPLE = {
    "packages/ab/cd/ef0123/demo-1.0-py3-none-any.whl": b"wheel bytes " * 50,
    "packages/12/34/567890/demo-1.0.tar.gz": b"sdist bytes\n" * 7,
    "simple/demo/index.html": b"<html>demo</html>\n",
    "simple/other-pkg/vnd.pypi.simple.v1.json": b'{"files": []}',
    "top.txt": b"top level\n",
    "a/b/c/d/e/deep.txt": b"",  # empty file
}


def more(n: int, tag: str) -> dict[str, bytes]:
    return {f"packages/{i % 13:02x}/{tag}/pkg{i}-{tag}.whl": f"{tag}:{i}".encode() * (i % 5 + 1) for i in range(n)}


def add_all(repo: Repo, targets: dict[str, bytes], *, by_hash_every: int = 2) -> None:
    for k, (path, data) in enumerate(targets.items()):
        repo.add(path, data, by_hash=(k % by_hash_every == 1))


def tufpi_client(repo: Repo, client_dir: Path, paths: list[str]) -> subprocess.CompletedProcess:
    """tufpi's own client: init with 1.root.json, then download `paths` (verified)."""
    s = repo.serve()
    meta = client_dir / "meta"
    dl = client_dir / "dl"
    meta.mkdir(parents=True, exist_ok=True)
    dl.mkdir(parents=True, exist_ok=True)
    common = ["client", "--metadata-dir", str(meta), "--metadata-url", f"{s.base}/metadata/"]
    if not (meta / "root.json").exists():
        repo.run(*common, "init", str(repo.meta / "1.root.json"))
    args = [*common, "--target-base-url", f"{s.base}/targets/", "--target-dir", str(dl)]
    for p in paths:
        args += ["--target-name", p]
    return repo.run(*args, "download", check=False)


def check_tufpi_client(repo: Repo, client_dir: Path) -> None:
    paths = sorted(repo.content)
    p = tufpi_client(repo, client_dir, paths)
    assert p.returncode == 0, p.stdout + p.stderr
    got = sorted(f.read_bytes() for f in (client_dir / "dl").iterdir())
    assert got == sorted(repo.content[x] for x in paths)


def check_layout(repo: Repo, *, bins: int, hash_prefix: bool, targets_online: bool) -> None:
    snap = repo.snapshot()["meta"]
    names = set(snap)
    bin_names = {n for n in names if n not in ("targets.json", "bins.json")}
    assert len(bin_names) == bins
    assert ("bins.json" in names) != targets_online
    t = json.loads((repo.meta / f"{snap['targets.json']['version']}.targets.json").read_bytes())
    deleg = t["signed"]["delegations"]
    if not targets_online:
        assert [r["name"] for r in deleg["roles"]] == ["bins"]
        b = json.loads((repo.meta / f"{snap['bins.json']['version']}.bins.json").read_bytes())
        deleg = b["signed"]["delegations"]
    if hash_prefix:
        assert "succinct_roles" not in deleg
        assert len(deleg["roles"]) == bins
        assert {r["name"] + ".json" for r in deleg["roles"]} == bin_names
    else:
        assert "roles" not in deleg
        assert deleg["succinct_roles"]["bit_length"] == bins.bit_length() - 1


@pytest.mark.parametrize("bits", [4, 14])
def test_succinct_bins(make_repo, tmp_path, bits):
    repo = make_repo("r", "--bins-bit-length", str(bits))
    add_all(repo, SAMPLE)
    out = repo.publish()
    assert f"published {len(SAMPLE)} changes" in out, out
    check_layout(repo, bins=1 << bits, hash_prefix=False, targets_online=False)
    u = repo.check_all(tmp_path / "ng")
    assert u.get_targetinfo("packages/not/there.whl") is None
    check_tufpi_client(repo, tmp_path / "own")


@pytest.mark.parametrize("bits", [4, 6])
def test_hash_prefix_bins(make_repo, tmp_path, bits):
    repo = make_repo("r", "--bins-bit-length", str(bits), "--hash-prefix-bins")
    add_all(repo, {**SAMPLE, **more(40, "hp")})
    repo.publish()
    check_layout(repo, bins=1 << bits, hash_prefix=True, targets_online=False)
    u = repo.check_all(tmp_path / "ng")
    assert u.get_targetinfo("nope") is None
    check_tufpi_client(repo, tmp_path / "own")


@pytest.mark.parametrize("extra", [[], ["--hash-prefix-bins"]])
def test_targets_online(make_repo, tmp_path, extra):
    repo = make_repo("r", "--bins-bit-length", "5", "--targets-online", *extra)
    add_all(repo, SAMPLE)
    repo.publish()
    check_layout(repo, bins=32, hash_prefix=bool(extra), targets_online=True)
    repo.check_all(tmp_path / "ng")
    check_tufpi_client(repo, tmp_path / "own")
    # More targets: targets itself is not re-signed for them, only bins.
    add_all(repo, more(10, "late"))
    repo.publish()
    assert repo.snapshot()["meta"]["targets.json"]["version"] == 1
    repo.check_all(tmp_path / "ng", bootstrap=False)
    repo.check_all(tmp_path / "ng2")


def test_publish_again_new_and_existing_clients(make_repo, tmp_path):
    repo = make_repo("r", "--bins-bit-length", "4")
    add_all(repo, SAMPLE)
    repo.publish()
    repo.check_all(tmp_path / "a")
    ts1 = repo.timestamp()["version"]
    before = {k: v["version"] for k, v in repo.snapshot()["meta"].items()}

    added = more(30, "second")
    for path, data in added.items():
        repo.add(path, data, publish=True)  # one publish per add: many versions
    assert repo.timestamp()["version"] == ts1 + len(added)
    after = {k: v["version"] for k, v in repo.snapshot()["meta"].items()}
    assert after["targets.json"] == before["targets.json"] and after["bins.json"] == before["bins.json"]
    assert any(after[k] > before[k] for k in before)

    # A new client sees everything.
    repo.check_all(tmp_path / "b")
    # The existing client updates incrementally from its cached metadata: it fetches the new
    # timestamp, snapshot and changed bins, not the unchanged targets/bins roles.
    server = repo.serve()
    server.requests.clear()
    u = repo.check_all(tmp_path / "a", bootstrap=False, download=False)
    fetched = [r.rsplit("/", 1)[-1] for r in server.requests if r.startswith("/metadata/")]
    assert "timestamp.json" in fetched
    assert f"{after['targets.json']}.targets.json" not in fetched, fetched
    assert f"{after['bins.json']}.bins.json" not in fetched, fetched
    trusted = json.loads((tmp_path / "a" / "meta" / "timestamp.json").read_bytes())["signed"]["version"]
    assert trusted == repo.timestamp()["version"]
    for path in added:
        assert u.get_targetinfo(path) is not None


def test_remove(make_repo, tmp_path):
    repo = make_repo("r", "--bins-bit-length", "4")
    add_all(repo, SAMPLE)
    repo.publish()
    u = repo.check_all(tmp_path / "old")
    gone = "simple/demo/index.html"
    assert u.get_targetinfo(gone) is not None
    repo.remove(gone, publish=True)
    repo.remove("top.txt")
    repo.publish()
    for client, boot in [("old", False), ("new", True)]:
        u = repo.check_all(tmp_path / client, bootstrap=boot, download=(client == "new"))
        assert u.get_targetinfo(gone) is None, client
        assert u.get_targetinfo("top.txt") is None, client
    p = tufpi_client(repo, tmp_path / "own", [gone])
    assert p.returncode == 1, p.stdout + p.stderr
    check_tufpi_client(repo, tmp_path / "own2")


def test_refresh_resigns_every_bin_within_48h(make_repo, tmp_path):
    repo = make_repo("r", "--bins-bit-length", "4")
    add_all(repo, SAMPLE)
    repo.publish()
    repo.check_all(tmp_path / "ng")
    check_tufpi_client(repo, tmp_path / "own")
    snap1 = repo.snapshot()
    ts1 = repo.timestamp()
    # Nothing is within 6 h: no-op.
    out = repo.repo("refresh", "--margin-hours", "6").stdout
    assert "refreshed 0 bins" in out, out
    assert repo.timestamp() == ts1
    out = repo.repo("refresh", "--margin-hours", "48").stdout
    assert "refreshed 16 bins" in out, out
    snap2 = repo.snapshot()
    assert snap2["version"] == snap1["version"] + 1
    assert repo.timestamp()["version"] == ts1["version"] + 1
    for name, m in snap1["meta"].items():
        bump = 0 if name in ("targets.json", "bins.json") else 1
        assert snap2["meta"][name]["version"] == m["version"] + bump, name
        role = name.removesuffix(".json")
        md = json.loads((repo.meta / f"{snap2['meta'][name]['version']}.{role}.json").read_bytes())
        assert md["signed"]["version"] == snap2["meta"][name]["version"]
    # Targets listed unchanged; clients (existing and new) still fine.
    assert repo.bin_targets() == {
        n.removesuffix(".json"): json.loads((repo.meta / f"{m['version']}.{n}").read_bytes())["signed"]["targets"]
        for n, m in snap1["meta"].items()
        if n not in ("targets.json", "bins.json")
    }
    repo.check_all(tmp_path / "ng", bootstrap=False)
    repo.check_all(tmp_path / "ng2")
    check_tufpi_client(repo, tmp_path / "own")


def test_import_jsonl_equals_one_by_one(make_repo, tmp_path):
    targets = {**SAMPLE, **more(60, "jl")}
    a = make_repo("a", "--bins-bit-length", "4")
    b = make_repo("b", "--bins-bit-length", "4")
    lines = []
    for path, data in targets.items():
        lines.append(json.dumps({"path": path, "length": len(data), "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}))
        a.put_target(path, data)
    f = tmp_path / "targets.jsonl"
    f.write_text("\n".join(lines) + "\n\n")  # a trailing blank line is fine
    out = a.repo("import", "--from-jsonl", str(f)).stdout
    assert f"imported {len(targets)} targets" in out, out
    for k, (path, data) in enumerate(targets.items()):
        b.add(path, data, by_hash=True, publish=(k % 20 == 0))
    b.publish("--batch", "7")
    assert a.bin_targets() == b.bin_targets()
    assert sum(len(t) for t in a.bin_targets().values()) == len(targets)
    a.check_all(tmp_path / "ng")
    check_tufpi_client(a, tmp_path / "own")

    # A second import into the now non-empty bins: new paths, replaced ones (new content),
    # and a path given twice (the last line wins), against the same done one by one.
    second = more(30, "jl2")
    replaced = {p: b"replaced " + p.encode() for p in list(targets)[::5]}
    first_dup = {"packages/dup/d-1.0.whl": b"first"}
    last_dup = {"packages/dup/d-1.0.whl": b"second"}
    lines = []
    for batch in (second, replaced, first_dup, last_dup):
        for path, data in batch.items():
            lines.append(json.dumps({"path": path, "length": len(data), "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}))
    f2 = tmp_path / "second.jsonl"
    f2.write_text("\n".join(lines) + "\n")
    out = a.repo("import", "--from-jsonl", str(f2)).stdout
    assert f"imported {len(lines)} targets" in out, out
    for batch in (second, replaced, last_dup):
        for path, data in batch.items():
            a.put_target(path, data)
            b.add(path, data, by_hash=True, publish=False)
    b.publish()
    assert a.bin_targets() == b.bin_targets()
    assert sum(len(t) for t in a.bin_targets().values()) == len(targets) + len(second) + 1
    a.check_all(tmp_path / "ng2")
    check_tufpi_client(a, tmp_path / "own2")


def test_import_jsonl_custom(make_repo, tmp_path):
    repo = make_repo("r", "--bins-bit-length", "3")
    data = b"with custom\n"
    custom = {"requires-python": ">=3.9", "yanked": False, "n": [1, 2, {"x": None}]}
    rec = {"path": "packages/c/custom-1.0.whl", "length": len(data), "hashes": hashes_of(data), "custom": custom}
    f = tmp_path / "c.jsonl"
    f.write_text(json.dumps(rec) + "\n")
    repo.repo("import", "--from-jsonl", str(f))
    repo.put_target(rec["path"], data)
    u = repo.check_all(tmp_path / "ng")
    info = u.get_targetinfo(rec["path"])
    assert info.custom == custom
    # The repository lists its target hashes (sha256 by default) of the digests it is given.
    assert info.hashes == {"sha256": hashes_of(data)["sha256"]}


def test_import_dir_equals_one_by_one(make_repo, tmp_path):
    src = tmp_path / "tree"
    targets = {**SAMPLE, **more(25, "dir")}
    for path, data in targets.items():
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_bytes(data)
    a = make_repo("a", "--bins-bit-length", "4", "--hash-prefix-bins")
    b = make_repo("b", "--bins-bit-length", "4", "--hash-prefix-bins")
    out = a.repo("import", "--from-dir", str(src)).stdout
    assert f"imported {len(targets)} targets" in out, out
    for path, data in targets.items():
        a.put_target(path, data)
    for k, (path, data) in enumerate(sorted(targets.items())):
        b.add(path, data, publish=(k % 10 == 3))  # --file: the target hashes (sha256)
    b.publish()
    assert a.bin_targets() == b.bin_targets()
    listed = {p: t for bt in a.bin_targets().values() for p, t in bt.items()}
    assert set(listed) == set(targets)
    for p, t in listed.items():
        assert t == {"length": len(targets[p]), "hashes": {"sha256": hashes_of(targets[p])["sha256"]}}, p
    a.check_all(tmp_path / "ng")
    check_tufpi_client(a, tmp_path / "own")


def test_tufpi_client_existing_dir_updates(make_repo, tmp_path):
    repo = make_repo("r", "--bins-bit-length", "4")
    add_all(repo, SAMPLE)
    repo.publish()
    check_tufpi_client(repo, tmp_path / "own")
    add_all(repo, more(8, "own"))
    repo.publish()
    # Same client dir: refreshes from its cached state, downloads the new ones.
    check_tufpi_client(repo, tmp_path / "own")
    p = tufpi_client(repo, tmp_path / "own", ["not/there.whl"])
    assert p.returncode == 1, p.stdout + p.stderr


ODD = {
    "packages/x/name with space-1.0.tar.gz": b"space",
    "packages/\u00e9/\u00fcn\u00efc\u00f6de-1.0.whl": b"unicode",
    "packages/x/a+b~c=d-1.0.whl": b"plus tilde equals",
}


def test_odd_target_names(make_repo, tmp_path):
    repo = make_repo("r", "--bins-bit-length", "4")
    add_all(repo, ODD)
    repo.publish()
    repo.check_all(tmp_path / "ng")
    check_tufpi_client(repo, tmp_path / "own")
