"""Three replicas of `tufpi serve` on one PostgreSQL database and one S3 bucket: twine uploads
spread over all three, pip and uv install through each, and python-tuf's ngclient and
`tufpi client` verify through each from 1.root.json (read from the bucket, out of band): fresh
clients, and one of each kept throughout, moving from replica to replica; every
replica reports the database and storage, and exactly one the publisher lease."""

from __future__ import annotations

import hashlib
import json

from scaleout_util import (FULL, JSON_TYPE, check_everywhere, leader_of, make_uploads, norm,
                           versioned_written_twice, wait_for, wait_signed)
from test_index_e2e import twine
from tuf.ngclient import Updater

PROJECTS = ("scale-a", "scale_b")


def test_three_replicas(cluster, clients, tufpi_bin, scratch):
    rs = cluster.start(3, "--publish-interval-ms", "50")
    leader = leader_of(rs)
    token = rs[0].token()
    per = 4 if FULL else 2
    uploads = make_uploads(scratch / "dists", 1, 3 * per, PROJECTS)
    root = cluster.root()
    # One ngclient throughout: bootstrapped once from 1.root.json, its trusted metadata kept
    # on disk, refreshing through whichever replica took the last upload.
    md = scratch / "ng-throughout"
    md.mkdir()
    refreshes = [0]

    def signed_through(r, share) -> bool:
        refreshes[0] += 1
        td = scratch / f"ng-throughout-t{refreshes[0]}"
        td.mkdir()
        u = Updater(metadata_dir=str(md), metadata_base_url=f"{r.base}/metadata/", target_base_url=f"{r.base}/",
                    target_dir=str(td), bootstrap=root if refreshes[0] == 1 else None)
        u.refresh()
        return all((i := u.get_targetinfo(x.target)) is not None and i.hashes["sha256"] == x.sha256 for x in share)

    # twine: one run per replica, its share of the files.
    for i, r in enumerate(rs):
        share = uploads[i::3]
        rc, out = twine(clients, r, token, *[u.path for u in share])
        assert rc == 0, f"twine through {r.name}: {out}"
        for u in share:
            u.statuses.append(200)
            u.replica = r.name
        wait_for(lambda: signed_through(r, share), 10, f"ngclient throughout: {r.name}'s uploads signed")
    assert {u.replica for u in uploads} == {r.name for r in rs}
    waited = wait_signed(rs, root, uploads, scratch / "wait")
    print(f"all {len(uploads)} uploads signed {waited:.2f}s after the last twine returned")
    check_everywhere(rs, root, uploads, PROJECTS, scratch / "check")

    # pip and uv install through each replica (a wheel: the index has no build backend).
    wheels = [u for u in uploads if u.filename.endswith(".whl")]
    for r in rs:
        for project in PROJECTS:
            want = next(u for u in reversed(wheels) if u.project == project)
            module = norm(project).replace("-", "_")
            spec = f"{norm(project)}=={want.version}"
            t = scratch / f"pip-{r.name}-{module}"
            res = clients.run(clients.pip, "install", "--no-cache-dir", "--index-url", f"{r.base}/simple/",
                              "--target", t, spec)
            assert res.returncode == 0, f"pip through {r.name}: {res.stdout}{res.stderr}"
            assert f'"{want.version}"' in (t / module / "__init__.py").read_text()
            t = scratch / f"uv-{r.name}-{module}"
            res = clients.run(clients.uv, "pip", "install", "--no-cache", "--index-url", f"{r.base}/simple/",
                              "--python", clients.python, "--target", t, spec)
            assert res.returncode == 0, f"uv through {r.name}: {res.stdout}{res.stderr}"
            assert f'"{want.version}"' in (t / module / "__init__.py").read_text()

    # tufpi's own client, initialised once from 1.root.json, through each replica in turn: a
    # page and a wheel.
    (scratch / "1.root.json").write_bytes(root)
    md = scratch / "tufpi-md"
    md.mkdir()
    res = clients.run(tufpi_bin, "client", "--metadata-dir", md, "init", scratch / "1.root.json")
    assert res.returncode == 0, res.stderr
    for r in rs:
        out_dir = scratch / f"tufpi-out-{r.name}"
        out_dir.mkdir()
        st, _, page = r.get(f"/simple/{norm(PROJECTS[0])}/", JSON_TYPE)
        assert st == 200
        page_target = f"simple/{norm(PROJECTS[0])}/vnd.pypi.simple.v1.json"
        res = clients.run(tufpi_bin, "client", "--metadata-url", f"{r.base}/metadata/", "--metadata-dir", md,
                          "--target-base-url", f"{r.base}/", "--target-dir", out_dir,
                          "--target-name", page_target, "--target-name", wheels[0].target, "download")
        assert res.returncode == 0, f"tufpi client through {r.name}: {res.stdout}{res.stderr}"
        assert sorted(p.read_bytes() for p in out_dir.iterdir()) == sorted([page, wheels[0].data])

    # Every replica: database and storage reachable; one leader, one term.
    hs = {r.name: r.health() for r in rs}
    print("health:", json.dumps(hs, indent=1, sort_keys=True))
    leaders = [n for n, h in hs.items() if h["publisher"].get("leader")]
    assert leaders == [leader.name], hs
    for n, h in hs.items():
        assert h.get("status") == "ok", (n, h)
        assert "database" in h and "storage" in h, (n, h)
    (lease,) = [row for row in cluster.leases() if row[0] == "publisher"]
    assert hs[leader.name]["publisher"].get("term") == lease[2], (hs[leader.name], lease)
    print(f"leader {leader.name}, lease {lease}; uploads by replica:",
          {r.name: sum(u.replica == r.name for u in uploads) for r in rs},
          "sha256 of 1.root.json", hashlib.sha256(root).hexdigest()[:16])
    twice, _ = versioned_written_twice(cluster.s3_proxy, cluster.bucket.name)
    assert not twice, twice
