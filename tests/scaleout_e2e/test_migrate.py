"""Moving up: an embedded `tufpi serve` takes uploads (twine), pip installs from it and
python-tuf's ngclient trusts it; `tufpi migrate` copies it to PostgreSQL + S3; two scale-out
replicas then serve it. The same ngclient (its trusted metadata kept on disk, never
re-bootstrapped) refreshes through each replica with versions continuing, the same token
uploads again, and pip and uv install old and new releases through each replica."""

from __future__ import annotations

import json
import shutil
import subprocess

from scaleout_util import Replica, make_uploads, norm, wait_for
from test_index_e2e import twine
from tuf.ngclient import Updater

PROJECT = "moving-up"


class Embedded(Replica):
    """`tufpi serve` on its data directory alone (SQLite and files): what is migrated."""

    def deployment_args(self) -> list[str]:
        return []

    def command(self) -> list[str]:
        return [str(self.bin), "serve", "--data-dir", str(self.data), "--listen", "127.0.0.1:0",
                "--bins-bit-length", "8", *self.extra]


def ngclient(r: Replica, md, work, root: bytes | None) -> Updater:
    work.mkdir(parents=True)
    u = Updater(metadata_dir=str(md), metadata_base_url=f"{r.base}/metadata/", target_base_url=f"{r.base}/",
                target_dir=str(work), bootstrap=root)
    u.refresh()
    return u


def installs(clients, r: Replica, version: str, scratch) -> None:
    module = norm(PROJECT).replace("-", "_")
    for tool in ("pip", "uv"):
        t = scratch / f"{tool}-{r.name}-{version}"
        if tool == "pip":
            res = clients.run(clients.pip, "install", "--no-cache-dir", "--index-url", f"{r.base}/simple/",
                              "--target", t, f"{PROJECT}=={version}")
        else:
            res = clients.run(clients.uv, "pip", "install", "--no-cache", "--index-url", f"{r.base}/simple/",
                              "--python", clients.python, "--target", t, f"{PROJECT}=={version}")
        assert res.returncode == 0, f"{tool} through {r.name}: {res.stdout}{res.stderr}"
        assert f'"{version}"' in (t / module / "__init__.py").read_text()


def test_an_embedded_index_moves_up(cluster, clients, scratch):
    old = Embedded(cluster.bin, "embedded", scratch, "", "", "", cluster.keys_dir)
    cluster.replicas.append(old)  # killed by PID at teardown like the others
    old.start()
    token = old.token(PROJECT)
    before = make_uploads(scratch / "dists-before", 1, 2, (PROJECT,))
    rc, out = twine(clients, old, token, *[u.path for u in before])
    assert rc == 0, out
    root = (old.data / "repo" / "metadata" / "1.root.json").read_bytes()
    md = scratch / "ng-md"
    md.mkdir()
    n = [0]

    def signed(r: Replica, ups) -> bool:
        n[0] += 1
        u = ngclient(r, md, scratch / f"ng-{n[0]}", root if n[0] == 1 else None)
        return all((i := u.get_targetinfo(up.target)) is not None and i.hashes["sha256"] == up.sha256
                   for up in ups)
    wait_for(lambda: signed(old, before), 15, "the embedded index signs the uploads")
    installs(clients, old, before[0].version, scratch)
    v_before = old.timestamp_version()
    assert old.stop() == 0

    # Migrate (the embedded server is stopped), then serve from PostgreSQL + S3.
    res = subprocess.run([str(cluster.bin), "migrate", "--data-dir", str(old.data), "--database",
                          cluster.database_url, "--storage", cluster.storage_url, "--storage-endpoint",
                          f"http://{cluster.s3_proxy.address}"],
                         capture_output=True, text=True, env=old.env(), timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    print(res.stdout)
    # The keys stay local: the operator gives each replica a copy (migrate prints where).
    assert str(old.data / "repo" / "keys") in res.stdout + res.stderr
    shutil.copytree(old.data / "repo" / "keys", cluster.keys_dir, dirs_exist_ok=True)
    rs = [cluster.replica("--publish-interval-ms", "50") for _ in range(2)]
    # The same root in the bucket; the same timestamp served.
    assert cluster.root() == root
    assert rs[0].timestamp_version() == v_before

    # The same ngclient refreshes through each replica: versions continue, nothing re-bootstrapped.
    for r in rs:
        assert signed(r, before), r.name
        installs(clients, r, before[0].version, scratch)

    # The same token uploads through a replica; the same client sees it signed.
    after = make_uploads(scratch / "dists-after", 2, 1, (PROJECT,))
    rc, out = twine(clients, rs[1], token, *[u.path for u in after])
    assert rc == 0, out
    wait_for(lambda: signed(rs[0], before + after), 15, "the upload after the migration signed")
    assert rs[0].timestamp_version() > v_before
    for r in rs:
        installs(clients, r, after[0].version, scratch)

    # `tufpi project` next to the replicas: the yank commits in PostgreSQL, the leader signs it.
    res = subprocess.run([str(cluster.bin), "project", "yank", "--data-dir", str(scratch / "admin"),
                          *rs[0].deployment_args(), PROJECT, before[0].version, "--reason", "moved"],
                         capture_output=True, text=True, env=rs[0].env(), timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "signed by the leading replica" in res.stdout, res.stdout
    for r in rs:
        st, _, body = r.get(f"/simple/{norm(PROJECT)}/", "application/vnd.pypi.simple.v1+json")
        assert st == 200
        files = {f["filename"]: f for f in json.loads(body)["files"]}
        assert files[before[0].filename]["yanked"] == "moved", (r.name, files)
