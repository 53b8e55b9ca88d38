"""`tufpi proxy` hardening, end to end: files follow the index's metadata without page
traffic, one upstream download per file however often clients hang up and retry, a bound
on parallel downloads, HEAD without a download, pip's page workaround only for pages, cache
headers, and no upstream credentials in errors or logs."""

from __future__ import annotations

import hashlib
import http.client
import json
import subprocess
import threading
import time
import urllib.parse

import pytest
from proxy_util import upload, wheel_bytes

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
PIP_UA = "pip/24.0 {\"installer\":{\"name\":\"pip\"}}"


def root_of(server):
    return server.data / "repo" / "metadata" / "1.root.json"


def publish(s, token, name: str, version: str = "1.0", payload: bytes = b"") -> str:
    filename, data = wheel_bytes(name, version, [], payload=payload)
    upload(s, token, name, version, filename, data)
    s.wait_published()
    return filename


def file_url(p, project: str) -> tuple[str, dict]:
    status, _, _, body = p.get(f"/simple/{project}/", JSON_TYPE)
    assert status == 200, body
    (f,) = json.loads(body)["files"]
    return "/" + f["url"].removeprefix("../../"), f


def test_removed_file_goes_without_page_traffic(serve, proxy, tufpi_bin):
    s = serve()
    token = s.token()
    filename = publish(s, token, "gone-soon")
    p = proxy(s.base, root_of(s), "--refresh-interval", "1")
    url, f = file_url(p, "gone-soon")
    status, _, h, data = p.get(url)
    sha = f["hashes"]["sha256"]
    assert status == 200 and hashlib.sha256(data).hexdigest() == sha
    # Named by its content (packages/<b2[0:2]>/<b2[2:4]>/<b2[4:]>/NAME): immutable. The index
    # signs sha256 alone, so the proxy computed the BLAKE2b-256 itself from the verified bytes;
    # a download is verified whole before the headers go out, so even the first response
    # knows it. Its PEP 658 metadata is not named by its own digest.
    b2 = hashlib.blake2b(data, digest_size=32).hexdigest()
    assert "".join(url.split("/")[2:5]) == b2, url
    assert "immutable" in h["cache-control"] and h["etag"] == f'"sha256-{sha}"', h
    status, _, h, _ = p.get(url + ".metadata")
    assert status == 200 and h["cache-control"] == "no-cache", h
    # The verified digest is recorded in the cache file's name; a hit checks it again with the
    # signed sha256 (the cache directory is not trusted) and is immutable too.
    cached = p.cache / "files" / f"sha256-{sha}.blake2b-256-{b2}"
    assert cached.is_file(), sorted(x.name for x in (p.cache / "files").iterdir())
    inode = cached.stat().st_ino
    status, _, h, again = p.get(url)
    assert status == 200 and again == data and "immutable" in h["cache-control"], h
    # A proxy started on the same cache (a restart) serves the hit as immutable, not
    # downloading it again. HEAD verifies no bytes, so only a signed blake2b-256 would make it
    # immutable: sha256 alone signed, it says no-cache.
    p2 = proxy(s.base, root_of(s), cache=p.cache)
    status, _, h, again = p2.get(url)
    assert status == 200 and again == data and "immutable" in h["cache-control"], h
    assert cached.stat().st_ino == inode
    status, _, h, _ = p2.get(url, method="HEAD")
    assert status == 200 and h["cache-control"] == "no-cache", h
    r = subprocess.run([str(tufpi_bin), "project", "remove", "--data-dir", str(s.data), "--file", filename],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    s.wait_published()
    time.sleep(1.2)
    # No page request since: the file lookup itself refreshes once the interval has passed.
    status, _, _, body = p.get(url)
    assert status == 404 and b"not in the signed TUF metadata" in body, (status, body)
    assert p.get(url, method="HEAD")[0] == 404


def test_one_download_per_file_and_a_bound(serve, proxy, mirror, scratch):
    s = serve()
    token = s.token()
    for name in ("slow-a", "slow-b", "slow-c"):
        publish(s, token, name, payload=b"x" * 200_000)
    m = mirror(s.base)
    p = proxy(m.base, root_of(s), "--refresh-interval", "0", "--max-downloads", "1")
    urls = {name: file_url(p, name) for name in ("slow-a", "slow-b", "slow-c")}
    active, peak, lock = [0], [0], threading.Lock()

    def slow(path, fetch):
        if not path.endswith(".whl"):
            return None
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(1.5)
            return fetch(path)
        finally:
            with lock:
                active[0] -= 1

    m.rule = slow
    url_a, f_a = urls["slow-a"]
    # HEAD: the signed length, nothing downloaded.
    status, _, h, body = p.get(url_a, method="HEAD")
    assert status == 200 and int(h["content-length"]) == f_a["size"] and body == b"", h
    assert not any(q.endswith(".whl") for q in m.seen), m.seen
    # Clients that hang up and retry: still one upstream download of the file.
    u = urllib.parse.urlsplit(p.base)
    for _ in range(3):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=0.3)
        try:
            c.request("GET", url_a)
            with pytest.raises(OSError):
                c.getresponse().read()
        finally:
            c.close()
    status, _, _, data = p.get(url_a)
    assert status == 200 and hashlib.sha256(data).hexdigest() == f_a["hashes"]["sha256"]
    assert sum(q.endswith(f_a["filename"]) for q in m.seen) == 1, m.seen
    # Two other files at once, one download slot: one after the other.
    results = {}

    def get(name):
        results[name] = p.get(urls[name][0])[0]

    threads = [threading.Thread(target=get, args=(n,)) for n in ("slow-b", "slow-c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"slow-b": 200, "slow-c": 200} and peak[0] == 1, (results, peak)


def test_pip_workaround_is_for_pages_only(serve, proxy, mirror):
    s = serve()
    token = s.token()
    publish(s, token, "victim-ua")
    m = mirror(s.base)
    p = proxy(m.base, root_of(s), "--refresh-interval", "0")

    def evil(path, fetch):
        if "/simple/victim-ua/" in path:
            status, ctype, body = fetch(path)
            return status, ctype, body.replace(b'"victim-ua"', b'"victim-uA"')
        return None

    m.rule = evil
    # The page itself, to pip: a 200 whose Content-Type carries the reason, no links.
    status, _, h, body = p.get("/simple/victim-ua/", ua=PIP_UA)
    assert status == 200 and "tufpi-refused=" in h["content-type"] and b"href" not in body, (h, body)
    # The page's target file, asked for as a file: a file refusal, 403 to pip, 502 to others.
    target = "/simple/victim-ua/vnd.pypi.simple.v1.json"
    status, reason, h, body = p.get(target, ua=PIP_UA)
    assert status == 403 and "hash mismatch" in reason and h["content-type"].startswith("text/plain;"), (
        status, h, body)
    assert p.get(target)[0] == 502


def test_no_credentials_in_errors(serve, proxy, mirror, tufpi_bin, scratch):
    s = serve()
    m = mirror(s.base)
    m.rule = lambda path, fetch: (500, "text/plain", b"down") if path.startswith("/metadata/") else None
    host = m.base.removeprefix("http://")
    p = proxy(f"http://alice:s3cr3t@{host}", root_of(s), "--refresh-interval", "0")
    status, reason, _, body = p.get("/simple/anything/")
    assert status == 502 and "upstream failed" in reason, (status, reason, body)
    assert f"http://{host}/metadata/" in body.decode(), body
    status, _, _, health = p.get("/health")
    assert status == 503 and health.startswith(b"failing: upstream failed"), health
    for text in (reason, body.decode(), health.decode(), p.text):
        assert "s3cr3t" not in text and "alice" not in text, text
    # A query or fragment in a base URL is refused at start, without showing credentials.
    for extra in (["--upstream", f"http://bob:pw@{host}/?token=abc"],
                  ["--upstream", m.base, "--metadata-url", f"http://bob:pw@{host}/metadata/#x"],
                  ["--upstream", m.base, "--target-base-url", f"http://{host}/?pw"]):
        args = [str(tufpi_bin), "proxy", "--root", str(root_of(s)), "--cache-dir",
                str(scratch / "bad-cache"), "--listen", "127.0.0.1:0", *extra]
        r = subprocess.run(args, capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "query or fragment" in r.stderr, r.stderr
        assert "pw" not in r.stderr and "abc" not in r.stderr, r.stderr


def test_root_differs_from_the_cache(serve, proxy, scratch):
    s = serve()
    s2 = serve()
    cache = scratch / "shared-cache"
    p = proxy(s.base, root_of(s), cache=cache)
    p.stop()
    # Another root on the same cache: the cache's chain is used, and the log says so.
    p2 = proxy(s.base, root_of(s2), cache=cache)
    assert "is NOT the root the trust store" in p2.text, p2.text
