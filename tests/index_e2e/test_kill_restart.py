"""Restart safety: SIGKILL `tufpi serve` in the middle of a burst of concurrent uploads, at
several points, restart it on the same data directory, and check that every upload that was
answered 200 is listed, downloadable with its sha256 and signed (python-tuf's ngclient from
a fresh trusted root), and that every other upload is either entirely there or entirely
absent, with no unreferenced file left on disk; the publisher resumes what was queued."""

from __future__ import annotations

import hashlib
import json
import queue
import sqlite3
import threading

from e2e_util import build_sdist, build_wheel, multipart, post, upload_form
from test_index_e2e import JSON_TYPE, updater

PROJECTS = ("crash-a", "crash_b")
WORKERS = 8


def norm(name: str) -> str:
    return name.replace("_", "-").lower()


def package_target(data: bytes, filename: str) -> str:
    b2 = hashlib.blake2b(data, digest_size=32).hexdigest()
    return f"packages/{b2[:2]}/{b2[2:4]}/{b2[4:]}/{filename}"


class Upload:
    def __init__(self, project: str, version: str, path) -> None:
        self.project = project
        self.version = version
        self.filename = path.name
        self.data = path.read_bytes()
        self.sha256 = hashlib.sha256(self.data).hexdigest()
        self.target = package_target(self.data, self.filename)
        self.status: int | None = None  # None: not answered (refused connection, reset…)

    def send(self, base: str, token: str) -> int:
        ct, body = multipart(upload_form(self.project, self.version, self.filename, self.data),
                             (self.filename, self.data))
        return post(base, body, ct, token)[0]


def make_uploads(work, run: int, n: int) -> list[Upload]:
    out = []
    for i in range(n):
        project = PROJECTS[i % len(PROJECTS)]
        version = f"{run}.{i}"
        d = work / f"r{run}-{i}"
        d.mkdir(parents=True)
        # Mostly wheels (core metadata extracted: two package targets), some sdists.
        path = build_sdist(d, project, version) if i % 4 == 3 else build_wheel(d, project, version)
        out.append(Upload(project, version, path))
    return out


def burst(server, token: str, uploads: list[Upload], kill_at: tuple[str, int]) -> None:
    """Upload concurrently; SIGKILL the server after `n` 200s (`("acks", n)`) or once `n`
    uploads have been sent (`("sent", n)`: whatever is in flight then)."""
    todo: queue.Queue[Upload] = queue.Queue()
    for u in uploads:
        todo.put(u)
    acks = threading.Semaphore(0)
    sent = threading.Semaphore(0)

    def worker() -> None:
        while True:
            try:
                u = todo.get_nowait()
            except queue.Empty:
                return
            sent.release()
            try:
                u.status = u.send(server.base, token)
            except OSError:
                u.status = None
            if u.status == 200:
                acks.release()

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    what, n = kill_at
    for _ in range(n):
        assert (acks if what == "acks" else sent).acquire(timeout=30), "uploads stalled"
    server.proc.kill()
    server.proc.wait()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)


def pages(server) -> dict[str, dict]:
    """Every listed file: filename -> page entry (with the project)."""
    out = {}
    for p in PROJECTS:
        status, _, body = server.get(f"/simple/{norm(p)}/", JSON_TYPE)
        if status == 404:
            continue
        assert status == 200, body
        for f in json.loads(body)["files"]:
            out[f["filename"]] = dict(f, project=norm(p))
    return out


def all_signed_targets(server) -> dict[str, str]:
    """Every target of the current snapshot (timestamp -> snapshot -> each role): path ->
    sha256. Signatures are ngclient's business; this is about the set."""
    ts = json.loads(server.get("/metadata/timestamp.json")[2])
    v = ts["signed"]["meta"]["snapshot.json"]["version"]
    snap = json.loads(server.get(f"/metadata/{v}.snapshot.json")[2])
    out = {}
    for name, meta in snap["signed"]["meta"].items():
        st, _, body = server.get(f"/metadata/{meta['version']}.{name}")
        assert st == 200, name
        for path, t in json.loads(body)["signed"]["targets"].items():
            out[path] = t["hashes"]["sha256"]
    return out


def check_consistent(server, uploads: list[Upload], work) -> tuple[int, int]:
    """The checks after a restart; returns (acknowledged, present without acknowledgement)."""
    server.wait_published(timeout=15)
    listed = pages(server)
    u = updater(server, work)
    for p in PROJECTS:
        status, _, body = server.get(f"/simple/{norm(p)}/", JSON_TYPE)
        if status == 200:
            info = u.get_targetinfo(f"simple/{norm(p)}/vnd.pypi.simple.v1.json")
            assert info is not None and info.hashes["sha256"] == hashlib.sha256(body).hexdigest(), p
    acked = extra = 0
    for up in uploads:
        present = up.filename in listed
        if up.status == 200:
            acked += 1
            assert present, f"{up.filename} was acknowledged but is not listed"
        elif present:
            extra += 1
        status, _, body = server.get("/" + up.target)
        info = u.get_targetinfo(up.target)
        if present:
            # Entirely there: listed, served with the right bytes, signed.
            assert listed[up.filename]["hashes"]["sha256"] == up.sha256
            assert listed[up.filename]["url"] == "../../" + up.target
            assert status == 200 and hashlib.sha256(body).hexdigest() == up.sha256, up.filename
            assert info is not None and info.hashes["sha256"] == up.sha256, up.filename
            if up.filename.endswith(".whl"):
                core = listed[up.filename]["core-metadata"]["sha256"]
                st, _, meta = server.get("/" + up.target + ".metadata")
                assert st == 200 and hashlib.sha256(meta).hexdigest() == core
                assert u.get_targetinfo(up.target + ".metadata").hashes["sha256"] == core
        else:
            # Entirely absent: not served, not signed.
            assert status == 404, up.filename
            assert info is None, up.filename
    # Exactly the listed files (and their core metadata) and the pages are signed.
    signed = all_signed_targets(server)
    expected = {f["url"].removeprefix("../../"): f["hashes"]["sha256"] for f in listed.values()}
    expected.update({f["url"].removeprefix("../../") + ".metadata": f["core-metadata"]["sha256"]
                     for f in listed.values() if "core-metadata" in f})
    for p in PROJECTS:
        for kind, accept in (("json", JSON_TYPE), ("html", "text/html")):
            status, _, body = server.get(f"/simple/{norm(p)}/", accept)
            if status == 200:
                expected[f"simple/{norm(p)}/vnd.pypi.simple.v1.{kind}"] = hashlib.sha256(body).hexdigest()
    assert signed == expected
    h = server.health()
    assert h["status"] == "ok" and h["pending_changes"] == 0, h
    assert h["files"] == len(listed), (h, len(listed))
    assert not any((server.data / "tmp").iterdir()), "temp files left after restart"
    # Nothing unreferenced on disk: the start swept what a kill left between moving a file in
    # and committing it (and temp files of interrupted writes).
    stored = {str(p.relative_to(server.data)) for p in (server.data / "packages").rglob("*") if p.is_file()}
    assert stored == {t for t in expected if t.startswith("packages/")}, stored ^ set(expected)
    con = sqlite3.connect(f"file:{server.data / 'index.db'}?mode=ro", uri=True)
    try:
        page_rows = {r[0] for r in con.execute("SELECT sha256 FROM pages")}
    finally:
        con.close()
    assert {p.name for p in (server.data / "pages").iterdir()} == page_rows
    return acked, extra


def test_kill_during_upload_burst(serve, scratch):
    s = serve("--publish-interval-ms", "50")
    token = s.token()
    data = s.data
    # Kill points: right after the first acknowledgement, deep in the burst, and with many
    # uploads in flight (some mid-commit, the publisher possibly mid-publish).
    kill_points = [("acks", 1), ("acks", 25), ("sent", 30)]
    everything: list[Upload] = []
    for run, kill_at in enumerate(kill_points):
        uploads = make_uploads(scratch / "dists", run, 48)
        burst(s, token, uploads, kill_at)
        answered = [u for u in uploads if u.status == 200]
        s = serve(data=data)
        acked, extra = check_consistent(s, everything + uploads, scratch / f"ng{run}")
        print(f"run {run}: {len(answered)} acknowledged of {len(uploads)}, "
              f"{extra} present without an answer")
        # A client retries what got no 200: each is accepted now, or already there.
        for up in uploads:
            if up.status != 200:
                st = up.send(s.base, token)
                assert st == 200 or (st == 400 and up.filename in pages(s)), (up.filename, st)
                up.status = 200
        everything += uploads
        check_consistent(s, everything, scratch / f"ng{run}-retried")
