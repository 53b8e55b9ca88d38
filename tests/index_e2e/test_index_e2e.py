"""`tufpi serve` end to end with stock clients: twine uploads, pip and uv install, python-tuf's
ngclient (the reference TUF client, default settings) and `tufpi client` verify the signed
pages and files; refusals through twine and plain HTTP; restart."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from e2e_util import PROJECT, VERSION, build_wheel, multipart, post, upload_form
from tuf.ngclient import Updater

NORM = "tufpi-demo"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
PAGE_TARGET = f"simple/{NORM}/vnd.pypi.simple.v1.json"


def twine(clients, server, token: str, *files: Path):
    r = clients.run(clients.twine, "upload", "--non-interactive", "--disable-progress-bar",
                    "--repository-url", f"{server.base}/legacy/", "-u", "__token__", "-p", token, *files)
    return r.returncode, r.stdout + r.stderr


def updater(server, work: Path) -> Updater:
    """A fresh ngclient (default config: consistent-snapshot hash-prefixed target names),
    bootstrapped with the repository's first root."""
    md, td = work / "md", work / "targets"
    md.mkdir(parents=True)
    td.mkdir()
    root = (server.data / "repo" / "metadata" / "1.root.json").read_bytes()
    u = Updater(metadata_dir=str(md), metadata_base_url=f"{server.base}/metadata/",
                target_base_url=f"{server.base}/", target_dir=str(td), bootstrap=root)
    u.refresh()
    return u


def wait_for_target(server, work: Path, target: str, sha256: str, timeout: float = 2.0) -> float:
    """Seconds until ngclient verifies `target` with this sha256 (fresh client each try)."""
    t0 = time.monotonic()
    n = 0
    while True:
        n += 1
        info = updater(server, work / f"try{n}").get_targetinfo(target)
        if info is not None and info.hashes.get("sha256") == sha256:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{target} not signed with sha256 {sha256} within {timeout}s")
        time.sleep(0.05)


def page_json(server) -> tuple[bytes, dict]:
    status, headers, body = server.get(f"/simple/{NORM}/", JSON_TYPE)
    assert status == 200, body
    assert headers["content-type"] == JSON_TYPE
    return body, json.loads(body)


def test_upload_install_and_verify(serve, clients, dists, tufpi_bin, scratch):
    s = serve()
    # First start: loud development-key notice, trusted root, client command lines.
    root = s.data / "repo" / "metadata" / "1.root.json"
    assert "DEVELOPMENT KEYS" in s.text and str(root) in s.text, s.text
    for cmd in ("twine upload --repository-url", "pip install --index-url", "uv pip install --index-url"):
        assert f"{cmd} {s.base}/" in s.text, s.text

    token = s.token(PROJECT)
    rc, out = twine(clients, s, token, dists["wheel"], dists["sdist"])
    assert rc == 0, out
    acked = time.monotonic()
    body, page = page_json(s)
    assert sorted(f["filename"] for f in page["files"]) == sorted([dists["sdist"].name, dists["wheel"].name])
    # Signed within a second or so of the acknowledgement (ngclient, default settings).
    elapsed = wait_for_target(s, scratch / "ng", PAGE_TARGET, hashlib.sha256(body).hexdigest())
    print(f"signed {elapsed:.3f}s after the first check, {time.monotonic() - acked:.3f}s after twine returned")
    assert time.monotonic() - acked < 2.5, elapsed

    # pip and uv install from the index (JSON pages, relative URLs, PEP 658 metadata).
    pip_target = scratch / "pip-target"
    r = clients.run(clients.pip, "install", "--no-cache-dir", "--index-url", f"{s.base}/simple/",
                    "--target", pip_target, NORM)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f'"{VERSION}"' in (pip_target / "tufpi_demo" / "__init__.py").read_text()
    uv_target = scratch / "uv-target"
    r = clients.run(clients.uv, "pip", "install", "--no-cache", "--index-url", f"{s.base}/simple/",
                    "--python", clients.python, "--target", uv_target, NORM)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f'"{VERSION}"' in (uv_target / "tufpi_demo" / "__init__.py").read_text()

    # ngclient verifies and downloads the pages, the wheel and its core metadata.
    u = updater(s, scratch / "ng-final")
    wheel = next(f for f in page["files"] if f["filename"].endswith(".whl"))
    wheel_target = wheel["url"].removeprefix("../../")
    assert wheel_target.startswith("packages/")
    wheel_bytes = dists["wheel"].read_bytes()
    expected = {
        PAGE_TARGET: body,
        f"simple/{NORM}/vnd.pypi.simple.v1.html": s.get(f"/simple/{NORM}/", "text/html")[2],
        wheel_target: wheel_bytes,
        wheel_target + ".metadata": s.get("/" + wheel_target + ".metadata")[2],
    }
    for target, content in expected.items():
        info = u.get_targetinfo(target)
        assert info is not None, target
        # sha256 alone by default: every TUF client verifies it (--target-hashes adds more).
        assert set(info.hashes) == {"sha256"}
        with open(u.download_target(info), "rb") as f:
            assert f.read() == content, target
    assert hashlib.sha256(expected[wheel_target + ".metadata"]).hexdigest() == wheel["core-metadata"]["sha256"]
    b2 = hashlib.blake2b(wheel_bytes, digest_size=32).hexdigest()
    assert wheel_target == f"packages/{b2[:2]}/{b2[2:4]}/{b2[4:]}/{dists['wheel'].name}"

    # tufpi's own client, the same way.
    md, out_dir = scratch / "tufpi-md", scratch / "tufpi-out"
    md.mkdir()
    out_dir.mkdir()
    r = clients.run(tufpi_bin, "client", "--metadata-dir", md, "init", root)
    assert r.returncode == 0, r.stderr
    r = clients.run(tufpi_bin, "client", "--metadata-url", f"{s.base}/metadata/", "--metadata-dir", md,
                    "--target-base-url", f"{s.base}/", "--target-dir", out_dir,
                    "--target-name", PAGE_TARGET, "--target-name", wheel_target, "download")
    assert r.returncode == 0, r.stdout + r.stderr
    got = sorted(p.read_bytes() for p in out_dir.iterdir())
    assert got == sorted([body, wheel_bytes])

    h = s.health()
    assert h["status"] == "ok" and h["pending_changes"] == 0 and h["files"] == 2, h
    assert h["snapshot"]["version"] >= 2 and h["timestamp"]["expires"].endswith("Z"), h


def test_simple_api_and_restart(serve, clients, dists, scratch):
    s = serve()
    token = s.token()
    rc, out = twine(clients, s, token, dists["wheel"])
    assert rc == 0, out
    # PEP 503 normalisation: 301 to the normalised name.
    status, headers, _ = s.get("/simple/Tufpi_Demo/")
    assert status == 301 and headers["location"] == f"/simple/{NORM}/"
    # PEP 691 negotiation, PEP 700 and PEP 658/714 fields.
    body, page = page_json(s)
    assert page["meta"]["api-version"] == "1.1" and page["name"] == NORM
    assert page["versions"] == [VERSION]
    (f,) = page["files"]
    data = dists["wheel"].read_bytes()
    assert f["size"] == len(data) and f["hashes"] == {"sha256": hashlib.sha256(data).hexdigest()}
    assert f["upload-time"].endswith("Z") and f["yanked"] is False
    assert f["requires-python"] == ">=3.8"
    status, _, meta = s.get("/" + f["url"].removeprefix("../../") + ".metadata")
    assert status == 200 and hashlib.sha256(meta).hexdigest() == f["core-metadata"]["sha256"]
    status, headers, html = s.get(f"/simple/{NORM}/", "text/html")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert f'data-core-metadata="sha256={f["core-metadata"]["sha256"]}"' in html.decode()
    assert 'data-requires-python="&gt;=3.8"' in html.decode()
    assert s.get(f"/simple/{NORM}/?format={JSON_TYPE}", "text/html")[2] == body
    assert s.get(f"/simple/{NORM}/", "application/xml")[0] == 406
    s.wait_published()

    # Restart: everything acknowledged is there, no new keys, and uploads go on.
    assert s.stop() == 0
    s2 = serve(data=s.data)
    assert "DEVELOPMENT KEYS" not in s2.text
    assert page_json(s2)[0] == body
    rc, out = twine(clients, s2, token, dists["wheel2"])
    assert rc == 0, out
    body2, page2 = page_json(s2)
    assert page2["versions"] == [VERSION, "0.2.0"]
    wait_for_target(s2, scratch / "ng", PAGE_TARGET, hashlib.sha256(body2).hexdigest())
    # The first page stays served under its hash: older snapshots still name it.
    old = f"/simple/{NORM}/{hashlib.sha256(body).hexdigest()}.vnd.pypi.simple.v1.json"
    assert s2.get(old)[2] == body


def test_refusals(serve, clients, dists, scratch):
    s = serve("--max-upload-size", "65536")
    token = s.token()
    rc, out = twine(clients, s, token, dists["wheel"])
    assert rc == 0, out
    s.wait_published()
    before = s.stored()

    def refused_by_twine(tok: str, path: Path, message: str) -> None:
        rc, out = twine(clients, s, tok, path)
        assert rc != 0 and message in out, out
        assert s.stored() == before

    refused_by_twine("tufpi-not-a-token", dists["sdist"], "Invalid or unknown upload token")
    refused_by_twine(s.token("someone-else"), dists["sdist"], 'may only upload to project "someone-else"')
    # The very same file again (a retry whose answer was lost) succeeds, storing nothing, as
    # on PyPI; other bytes under a name already used are refused.
    rc, out = twine(clients, s, token, dists["wheel"])
    assert rc == 0, out
    assert s.stored() == before
    other = scratch / "same-name"
    other.mkdir()
    respun = build_wheel(other, PROJECT, VERSION, payload=b"other bytes")
    assert respun.name == dists["wheel"].name
    refused_by_twine(token, respun, "File already exists")
    big = build_wheel(scratch, PROJECT, "9.0", payload=os.urandom(100_000))
    refused_by_twine(token, big, "File too large")

    wheel = dists["wheel"].read_bytes()
    sdist = dists["sdist"].read_bytes()

    def refused(status: int, message: str, body_ct=None, token_=token, **kw) -> None:
        ct, body = body_ct
        st, reason, text = post(s.base, body, ct, token_, **kw)
        assert st == status and message in text and message in reason, (st, reason, text)
        assert s.stored() == before

    def form(name, version, filename, data, **override):
        fields = [(k, override.get(k, v)) for k, v in upload_form(name, version, filename, data)]
        return multipart(fields, (filename, data))

    whl2 = "tufpi_demo-0.3.0-py3-none-any.whl"
    refused(401, "Authentication required", form(PROJECT, "0.3.0", whl2, wheel), token_=None)
    refused(400, "is for project \"other\"", form(PROJECT, "0.3.0", "other-0.3.0-py3-none-any.whl", wheel))
    refused(400, "has version \"0.4.0\"", form(PROJECT, "0.3.0", "tufpi_demo-0.4.0-py3-none-any.whl", wheel))
    refused(400, "Invalid version \"0.3.0-final!\"", form(PROJECT, "0.3.0-final!", whl2, wheel))
    refused(400, "does not match a digest", form(PROJECT, "0.3.0", "tufpi_demo-0.3.0.tar.gz", sdist, sha256_digest="0" * 64))
    refused(400, "Invalid filename", form(PROJECT, "0.3.0", "../tufpi_demo-0.3.0.tar.gz", sdist))
    refused(400, "Invalid filename", form(PROJECT, "0.3.0", "..\\tufpi_demo-0.3.0.tar.gz", sdist))
    refused(400, "Wheel metadata has version", form(PROJECT, "0.3.0", whl2, wheel))
    refused(400, "Malformed multipart upload", ("multipart/form-data; boundary=xyz", b"--xyz\r\nnot a part"))
    refused(400, "Malformed multipart upload", ("text/plain", b"hello"))
    # A declared length far over the limit is refused before any body is read.
    refused(413, "File too large", ("multipart/form-data; boundary=xyz", b""), content_length=1 << 40)
    assert s.health()["files"] == 1
