"""`tufpi proxy` end to end: pip and uv install through the proxy from a `tufpi serve` index
(wheels and an sdist, with dependencies); the simple API it serves; and attacks by a
malicious mirror between proxy and index, each of which must make the install fail with the
proxy's reason, install nothing, and leave the proxy serving honest projects."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from proxy_util import sdist_bytes, upload, wheel_bytes

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"

# name, version, kind, dependencies
PROJECTS = [
    ("Proxy_App", "1.0", "wheel", ["proxy-lib-a", "proxy-lib-b>=1"]),
    ("proxy-lib-a", "1.0", "sdist", ["proxy-lib-c"]),
    ("proxy-lib-b", "1.0", "wheel", []),
    ("proxy-lib-b", "2.0", "wheel", []),
    ("proxy-lib-c", "1.0", "wheel", []),
    ("honest", "1.0", "wheel", []),
    ("victim-wheel", "1.0", "wheel", []),
    ("victim-page", "1.0", "wheel", []),
    ("victim-hash", "1.0", "wheel", []),
]


def build(name: str, version: str, kind: str, deps: list[str]) -> tuple[str, bytes]:
    return (wheel_bytes if kind == "wheel" else sdist_bytes)(name, version, deps)


def root_of(server) -> Path:
    return server.data / "repo" / "metadata" / "1.root.json"


def pip_install(clients, proxy, target: Path, *reqs: str):
    # No --retries: the proxy answers pip's refusals with a status pip does not retry.
    r = clients.run(clients.pip, "install", "--no-cache-dir", "--index-url",
                    proxy.index_url, "--target", target, *reqs)
    return r.returncode, r.stdout + r.stderr


def uv_install(clients, proxy, target: Path, *reqs: str):
    r = subprocess.run(
        [str(clients.uv), "pip", "install", "--no-cache", "--index-url", proxy.index_url,
         "--python", str(clients.python), "--target", str(target), *reqs],
        capture_output=True, text=True, timeout=120, env=dict(clients.env, UV_HTTP_RETRIES="0"))
    return r.returncode, r.stdout + r.stderr


def installed(target: Path) -> list[str]:
    return sorted(p.name for p in target.glob("*") if not p.name.startswith(".")) if target.exists() else []


@pytest.fixture
def world(serve, proxy, mirror):
    """An index with PROJECTS uploaded and signed, a mirror in front of it and a proxy in
    front of the mirror (refreshing on every page request)."""
    s = serve()
    token = s.token()
    for name, version, kind, deps in PROJECTS:
        filename, data = build(name, version, kind, deps)
        upload(s, token, name, version, filename, data)
    s.wait_published()
    m = mirror(s.base)
    p = proxy(m.base, root_of(s), "--refresh-interval", "0")
    return s, m, p, token


def test_install_through_proxy(world, clients, scratch):
    s, m, p, _ = world
    assert f"pip install --index-url {p.base}/simple/" in p.text, p.text
    assert f"uv pip install --index-url {p.base}/simple/" in p.text, p.text
    want = ["proxy_app", "proxy_lib_a", "proxy_lib_b", "proxy_lib_c"]
    for tool, install in (("pip", pip_install), ("uv", uv_install)):
        target = scratch / f"{tool}-target"
        rc, out = install(clients, p, target, "proxy-app")
        assert rc == 0, out
        got = [n for n in installed(target) if not n.endswith(".dist-info")]
        assert got == want, (got, out)
        # The sdist was built from its verified bytes; the newest proxy-lib-b was chosen.
        assert "FROM_SDIST" in (target / "proxy_lib_a" / "__init__.py").read_text()
        assert '"2.0"' in (target / "proxy_lib_b" / "__init__.py").read_text()
    # Every file came through the proxy, verified, and is cached by its signed sha256:
    # 4 distributions and 3 wheels' core metadata (the sdist has none).
    cached = sorted(f.name for f in (p.cache / "files").iterdir())
    assert len(cached) == 7 and all(n.startswith("sha256-") for n in cached), cached


def test_simple_api(world, scratch):
    s, m, p, _ = world
    status, _, h, body = p.get("/simple/proxy-app/", JSON_TYPE)
    assert status == 200 and h["content-type"] == JSON_TYPE, body
    page = json.loads(body)
    _, _, honest = s.get("/simple/proxy-app/", JSON_TYPE)
    honest = json.loads(honest)
    assert page["name"] == "proxy-app" and page["meta"]["api-version"] == honest["meta"]["api-version"]
    (f,) = page["files"]
    (hf,) = honest["files"]
    # Everything but the (already relative) URL as the index signed it.
    assert f == hf and f["url"].startswith("../../packages/")
    # HTML by Accept or ?format=, the same files, hash fragments and PEP 658 attributes.
    for path, accept in (("/simple/proxy-app/", "text/html"), (f"/simple/proxy-app/?format={HTML_TYPE}", JSON_TYPE)):
        status, _, h, html = p.get(path, accept)
        assert status == 200 and "html" in h["content-type"], html
        html = html.decode()
        assert f'href="{f["url"]}#sha256={f["hashes"]["sha256"]}"' in html, html
        assert f'data-core-metadata="sha256={f["core-metadata"]["sha256"]}"' in html, html
    assert p.get("/simple/proxy-app/", "application/json")[0] == 406
    # PEP 503 names: redirects to the normalised page; junk is refused.
    status, _, h, _ = p.get("/simple/Proxy_App/?format=x")
    assert status == 301 and h["location"] == "/simple/proxy-app/?format=x"
    assert p.get("/simple/proxy.app")[0] == 301
    assert p.get("/simple/..%2Fx/")[0] == 404
    # The project list is not signed: explained, not served.
    status, reason, _, body = p.get("/simple/")
    assert status == 404 and b"not covered by the signed TUF metadata" in body
    # Files and their PEP 658 metadata: verified bytes, as uploaded.
    url = "/" + f["url"].removeprefix("../../")
    status, _, _, data = p.get(url)
    assert status == 200 and hashlib.sha256(data).hexdigest() == f["hashes"]["sha256"]
    status, _, _, meta = p.get(url + ".metadata")
    assert status == 200 and hashlib.sha256(meta).hexdigest() == f["core-metadata"]["sha256"]
    assert b"Requires-Dist: proxy-lib-a" in meta
    # Not a target: 404, and the mirror is never even asked.
    asked = len(m.seen)
    assert p.get("/packages/aa/bb/" + "c" * 60 + "/x-1.0.tar.gz")[0] == 404
    assert p.get("/metadata/timestamp.json")[0] == 404
    assert not any("x-1.0" in q for q in m.seen[asked:])
    status, _, _, body = p.get("/health")
    assert status == 200 and body.startswith(b"ok: trusted timestamp v"), body


def check_refused(clients, p, scratch, name: str, project: str, reason: str):
    """pip and uv both fail to install `project`, install nothing, and both print `reason`
    (the proxy's reason phrase); the proxy logs it."""
    for tool, install in (("pip", pip_install), ("uv", uv_install)):
        target = scratch / f"{name}-{tool}"
        rc, out = install(clients, p, target, project)
        assert rc != 0, out
        assert not any(n.startswith(project.replace("-", "_")) for n in installed(target)), out
        assert reason in out, out
        print(f"{name}: {tool} says: " + next(ln for ln in out.splitlines() if reason in ln).strip())
    assert reason in p.text, p.text


def check_honest(clients, p, scratch, name: str, project: str = "honest"):
    target = scratch / f"{name}-honest"
    rc, out = pip_install(clients, p, target, project)
    assert rc == 0, out
    assert (target / project.replace("-", "_") / "__init__.py").is_file()


def tamper(path_part: str, change, suffix: bool = False):
    """A mirror rule that passes `change(body)` for paths containing (or, with `suffix`,
    ending with) `path_part`."""
    def rule(path, fetch):
        if not (path.endswith(path_part) if suffix else path_part in path):
            return None
        status, ctype, body = fetch(path)
        return status, ctype, change(body) if status == 200 else body
    return rule


def test_modified_wheel(world, clients, scratch):
    s, m, p, _ = world
    # Same length, one byte changed: only the hashes can tell.
    m.rule = tamper("victim_wheel-1.0-py3-none-any.whl", lambda b: b[:-30] + bytes([b[-30] ^ 1]) + b[-29:],
                    suffix=True)
    check_refused(clients, p, scratch, "wheel", "victim-wheel", "hash mismatch")
    check_honest(clients, p, scratch, "wheel")
    # Nothing unverified was cached: the honest mirror serves it fine afterwards.
    m.rule = None
    check_honest(clients, p, scratch, "wheel-after", "victim-wheel")


def test_modified_page_extra_file(world, clients, scratch):
    s, m, p, _ = world

    def add_file(body: bytes) -> bytes:
        page = json.loads(body)
        evil = dict(page["files"][0], filename="victim_page-9.0-py3-none-any.whl")
        page["files"].append(evil)
        page["versions"].append("9.0")
        return json.dumps(page).encode()

    m.rule = tamper("/simple/victim-page/", add_file)
    check_refused(clients, p, scratch, "page", "victim-page", "(signed length ")
    check_honest(clients, p, scratch, "page")


def test_modified_page_hash(world, clients, scratch):
    s, m, p, _ = world

    def change_hash(body: bytes) -> bytes:
        page = json.loads(body)
        h = page["files"][0]["hashes"]["sha256"]
        return body.replace(h.encode(), hashlib.sha256(b"evil").hexdigest().encode())

    m.rule = tamper("/simple/victim-hash/", change_hash)
    check_refused(clients, p, scratch, "hash", "victim-hash", "hash mismatch")
    check_honest(clients, p, scratch, "hash")


def test_unsigned_extra_project(world, clients, scratch):
    s, m, p, _ = world
    filename, data = wheel_bytes("evil", "1.0", [])
    page = json.dumps({"meta": {"api-version": "1.1"}, "name": "evil", "files": [
        {"filename": filename, "url": f"/packages/ev/il/{'e' * 60}/{filename}",
         "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}]}).encode()

    def rule(path, fetch):
        if "/simple/evil/" in path:
            return 200, JSON_TYPE, page
        if path.endswith(filename):
            return 200, "application/octet-stream", data
        return None

    m.rule = rule
    for tool, install in (("pip", pip_install), ("uv", uv_install)):
        target = scratch / f"evil-{tool}"
        rc, out = install(clients, p, target, "evil")
        assert rc != 0 and not installed(target), out
    status, _, _, body = p.get("/simple/evil/")
    assert status == 404 and b"not in the signed TUF metadata" in body, body
    assert p.get(f"/packages/ev/il/{'e' * 60}/{filename}")[0] == 404
    # The proxy never even asked the mirror for the unsigned project.
    assert not any("evil" in q for q in m.seen), m.seen
    check_honest(clients, p, scratch, "evil")


def test_rolled_back_timestamp(world, clients, scratch):
    s, m, p, token = world
    old = m.fetch("/metadata/timestamp.json")
    check_honest(clients, p, scratch, "before")
    # The index moves on; the proxy follows it...
    filename, data = wheel_bytes("later", "1.0", [])
    upload(s, token, "later", "1.0", filename, data)
    s.wait_published()
    check_honest(clients, p, scratch, "later", "later")
    # ...then the mirror offers the older timestamp.
    m.rule = lambda path, fetch: old if path.startswith("/metadata/timestamp.json") else None
    check_refused(clients, p, scratch, "rollback", "later", "rollback refused")
    m.rule = None
    check_honest(clients, p, scratch, "after")


def test_oversized_metadata(world, clients, scratch):
    s, m, p, _ = world
    m.rule = tamper("/metadata/timestamp.json", lambda b: b + b" " * 20_000)
    check_refused(clients, p, scratch, "oversized", "honest", "endless data refused")
    m.rule = None
    check_honest(clients, p, scratch, "after")


def test_freeze(serve, proxy, mirror, clients, scratch, tufpi_bin):
    """Replayed metadata after its expiry. The index here signs online roles for a few
    seconds only (set in its repository's settings before it starts), so expiry comes soon."""
    data = scratch / "freeze-data"
    subprocess.run([str(tufpi_bin), "repo", "init", "--repo", str(data / "repo"), "--dev-keys",
                    "--bins-bit-length", "8"], check=True, capture_output=True)
    con = sqlite3.connect(data / "repo" / "state.db")
    with con:
        n = con.execute("UPDATE settings SET value = '6' WHERE key = 'online_expiry_s'").rowcount
    con.close()
    assert n == 1
    s = serve(data=data)
    token = s.token()

    def publish(name: str) -> None:
        filename, body = wheel_bytes(name, "1.0", [])
        upload(s, token, name, "1.0", filename, body)
        s.wait_published()

    publish("fresh")
    m = mirror(s.base)
    p = proxy(m.base, root_of(s), "--refresh-interval", "0")
    check_honest(clients, p, scratch, "fresh", "fresh")
    # A proxy that would not refresh for an hour, its file cached before the freeze.
    lazy = proxy(m.base, root_of(s), "--refresh-interval", "3600")
    status, _, _, body = lazy.get("/simple/fresh/", "application/vnd.pypi.simple.v1+json")
    assert status == 200, body
    file_path = "/" + json.loads(body)["files"][0]["url"].removeprefix("../../")
    assert lazy.get(file_path)[0] == 200

    # The mirror freezes: from now on it replays the metadata it has.
    frozen = {"/metadata/timestamp.json": m.fetch("/metadata/timestamp.json")}

    def replay(path, fetch):
        if path.startswith("/metadata/"):
            return frozen.setdefault(path, fetch(path))
        return None

    m.rule = replay
    ts = json.loads(frozen["/metadata/timestamp.json"][2])
    expires = datetime.strptime(ts["signed"]["expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    time.sleep(max(0.0, (expires - datetime.now(timezone.utc)).total_seconds()) + 1.0)
    publish("fresh2")  # the honest index has newer metadata; the mirror hides it
    check_refused(clients, p, scratch, "freeze", "fresh2", "freeze refused")
    # Expired metadata is refreshed at once, whatever the interval, and never answered from:
    # not even a cached file.
    status, reason, _, body = lazy.get(file_path)
    assert status == 502 and "freeze refused" in reason, (status, reason, body)
    status, _, _, body = lazy.get("/health")
    assert status == 503 and b"freeze refused" in body, body
    m.rule = None
    check_honest(clients, p, scratch, "thawed", "fresh2")
