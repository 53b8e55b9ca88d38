"""Yank, unyank and remove end to end: `tufpi project` next to a running server and with none,
the HTTP API; pip and uv skip a yanked release unless pinned with ==; python-tuf's ngclient
and `tufpi client` see the re-signed pages and no longer find removed files."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import subprocess
import urllib.parse

from e2e_util import PROJECT, VERSION
from test_index_e2e import JSON_TYPE, NORM, PAGE_TARGET, page_json, twine, updater, wait_for_target

HTML_TARGET = f"simple/{NORM}/vnd.pypi.simple.v1.html"


def project_cmd(tufpi_bin, data, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(tufpi_bin), "project", *args, "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=60)


def manage(server, token: str | None, project: str, action: str, **fields) -> tuple[int, str]:
    """POST /manage/project/<project>/<action> with a form body: (status, body text)."""
    u = urllib.parse.urlsplit(server.base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if token:
        headers["Authorization"] = "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()
    try:
        c.request("POST", f"/manage/project/{project}/{action}", body=urllib.parse.urlencode(fields),
                  headers=headers)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def installed_version(clients, server, tool: str, target, spec: str) -> str:
    if tool == "pip":
        cmd = [clients.pip, "install", "--no-cache-dir", "--index-url", f"{server.base}/simple/",
               "--target", target, spec]
    else:
        cmd = [clients.uv, "pip", "install", "--no-cache", "--index-url", f"{server.base}/simple/",
               "--python", clients.python, "--target", target, spec]
    r = clients.run(*cmd)
    assert r.returncode == 0, r.stdout + r.stderr
    text = (target / "tufpi_demo" / "__init__.py").read_text()
    return text.split('"')[1]


def signed_pages_match(server, work):
    """ngclient (fresh root) resolves both page targets to the pages served now."""
    for target, accept in ((PAGE_TARGET, JSON_TYPE), (HTML_TARGET, "text/html")):
        body = server.get(f"/simple/{NORM}/", accept)[2]
        wait_for_target(server, work / target.rsplit(".", 1)[1], target, hashlib.sha256(body).hexdigest())


def test_yank_and_remove(serve, clients, dists, tufpi_bin, scratch):
    s = serve()
    token = s.token(PROJECT)
    rc, out = twine(clients, s, token, dists["wheel"], dists["sdist"], dists["wheel2"])
    assert rc == 0, out
    s.wait_published()

    # Yank 0.2.0 from the CLI while the server runs: signed by the server's publisher.
    r = project_cmd(tufpi_bin, s.data, "yank", PROJECT, "0.2.0", "--reason", "broken build")
    assert r.returncode == 0, r.stderr
    assert f"yanked {dists['wheel2'].name} (reason: broken build)" in r.stdout, r.stdout
    assert "signed by the running server: snapshot v" in r.stdout, r.stdout
    _, page = page_json(s)
    yanked = {f["filename"]: f["yanked"] for f in page["files"]}
    assert yanked == {dists["wheel"].name: False, dists["sdist"].name: False, dists["wheel2"].name: "broken build"}
    html = s.get(f"/simple/{NORM}/", "text/html")[2].decode()
    assert f'data-yanked="broken build">{dists["wheel2"].name}</a>' in html
    signed_pages_match(s, scratch / "ng-yank")

    # pip and uv skip the yanked release, unless it is pinned with ==.
    for tool in ("pip", "uv"):
        assert installed_version(clients, s, tool, scratch / f"{tool}-any", NORM) == VERSION
        assert installed_version(clients, s, tool, scratch / f"{tool}-pinned", f"{NORM}==0.2.0") == "0.2.0"

    # Again: nothing changes. Nothing matched: exit 1, one line.
    r = project_cmd(tufpi_bin, s.data, "yank", PROJECT, "0.2.0", "--reason", "broken build")
    assert r.returncode == 0 and "unchanged" in r.stdout and "nothing changed" in r.stdout, r.stdout
    r = project_cmd(tufpi_bin, s.data, "yank", PROJECT, "9.9")
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert 'No release "9.9" of project "tufpi-demo"' in r.stderr, r.stderr
    r = project_cmd(tufpi_bin, s.data, "remove", PROJECT)
    assert r.returncode == 1 and "--all" in r.stderr, r.stderr

    # Unyank and remove over HTTP with the project's token.
    st, text = manage(s, token, NORM, "unyank", version="0.2.0")
    assert st == 200 and json.loads(text)["changed"] == [dists["wheel2"].name], text
    st, text = manage(s, None, NORM, "remove", filename=dists["sdist"].name)
    assert st == 401, text
    st, text = manage(s, s.token("someone-else"), NORM, "remove", filename=dists["sdist"].name)
    assert st == 403 and "may only manage project" in text, text
    sdist_url = next(f["url"] for f in page["files"] if f["filename"] == dists["sdist"].name)
    sdist_target = sdist_url.removeprefix("../../")
    st, text = manage(s, token, NORM, "remove", filename=dists["sdist"].name)
    assert st == 200 and json.loads(text)["changed"] == [dists["sdist"].name], text
    body, page = page_json(s)
    assert sorted(f["filename"] for f in page["files"]) == sorted([dists["wheel"].name, dists["wheel2"].name])
    assert all(f["yanked"] is False for f in page["files"])
    assert s.get("/" + sdist_target)[0] == 404
    signed_pages_match(s, scratch / "ng-remove")
    u = updater(s, scratch / "ng-gone")
    assert u.get_targetinfo(sdist_target) is None
    # The filename stays used.
    rc, out = twine(clients, s, token, dists["sdist"])
    assert rc != 0 and "File already exists" in out, out

    # tufpi's own client: the page verifies, the removed file is no target.
    root = s.data / "repo" / "metadata" / "1.root.json"
    md, out_dir = scratch / "tufpi-md", scratch / "tufpi-out"
    md.mkdir()
    out_dir.mkdir()
    assert clients.run(tufpi_bin, "client", "--metadata-dir", md, "init", root).returncode == 0

    def tufpi_client(target: str):
        return clients.run(tufpi_bin, "client", "--metadata-url", f"{s.base}/metadata/", "--metadata-dir", md,
                           "--target-base-url", f"{s.base}/", "--target-dir", out_dir,
                           "--target-name", target, "download")

    r = tufpi_client(PAGE_TARGET)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [p.read_bytes() for p in out_dir.iterdir()] == [body]
    r = tufpi_client(sdist_target)
    assert r.returncode == 1, r.stdout + r.stderr

    # No server: the CLI publishes itself; a restarted server serves the result.
    assert s.stop() == 0
    r = project_cmd(tufpi_bin, s.data, "remove", NORM, "--all")
    assert r.returncode == 0, r.stderr
    assert "removed project tufpi-demo" in r.stdout and "signed: snapshot v" in r.stdout, r.stdout
    s2 = serve(data=s.data)
    assert s2.get(f"/simple/{NORM}/", JSON_TYPE)[0] == 404
    assert NORM not in s2.get("/simple/", JSON_TYPE)[2].decode()
    u = updater(s2, scratch / "ng-project-gone")
    for target in (PAGE_TARGET, HTML_TARGET, sdist_target):
        assert u.get_targetinfo(target) is None, target
    assert s2.health()["files"] == 0
