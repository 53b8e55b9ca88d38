"""Bad input, answered as RSTUF answers it: before bootstrap the artifact endpoints say 404;
payloads that do not validate get 422 naming the field, and nothing is queued or published; a
bootstrap whose root signature is bad ends in a failed task with a message and leaves the server
bootstrappable; a second bootstrap is refused; garbage gets 4xx, never a crash (the `serve`
fixture checks every server is still running at the end)."""

from __future__ import annotations

import copy
import json

from rstuf_util import fresh_updater, http

ONE = {"artifacts": [{"path": "p", "info": {"length": 1, "hashes": {"blake2b-256": "00" * 32}}}]}


def test_before_bootstrap(serve):
    server = serve()
    api = server.api
    r = api.get("/api/v1/bootstrap")
    assert r.status == 200 and r.json["data"]["bootstrap"] is False, str(r)
    for path, body in (("/api/v1/artifacts", ONE), ("/api/v1/artifacts/delete", {"artifacts": ["p"]})):
        r = api.post(path, body)
        assert r.status == 404, str(r)
        assert "bootstrap" in r.body.decode().lower(), str(r)
    for name in ("1.root.json", "timestamp.json"):
        r = http("GET", f"{server.metadata_url}/{name}")
        assert r.status == 404, str(r)


def test_invalid_payloads_are_422_naming_the_field(ceremonies, serve, scratch):
    server = serve()
    api = server.api
    # Before bootstrap: a bootstrap payload without settings.
    bad_bootstrap = copy.deepcopy(ceremonies["signed_ed25519"]["payload"])
    del bad_bootstrap["settings"]
    r = api.post("/api/v1/bootstrap", bad_bootstrap)
    assert r.status == 422 and "settings" in r.body.decode(), str(r)
    assert not api.bootstrapped()

    api.run("/api/v1/bootstrap", ceremonies["signed_ed25519"]["payload"])
    client = fresh_updater(server.metadata_url, scratch / "c0")
    client.refresh()
    ts_version = client._trusted_set.timestamp.version

    def art(**info):
        return {"artifacts": [{"path": "p", "info": info}]}

    cases = [
        ("/api/v1/artifacts", {}, "artifacts"),
        ("/api/v1/artifacts", {"artifacts": "p"}, "artifacts"),
        ("/api/v1/artifacts", {"artifacts": [{"info": {"length": 1, "hashes": {"sha256": "00"}}}]}, "path"),
        ("/api/v1/artifacts", art(length="one", hashes={"blake2b-256": "00" * 32}), "length"),
        ("/api/v1/artifacts", art(length=1), "hashes"),
        ("/api/v1/artifacts", art(length=1, hashes={"blake2b-256": "00" * 32}, custom="x"), "custom"),
        ("/api/v1/artifacts/delete", {"artifacts": [1, 2]}, "artifacts"),
        ("/api/v1/artifacts/delete", {}, "artifacts"),
        ("/api/v1/metadata", {"metadata": {"root": {"signed": {}}}}, "signatures"),
        ("/api/v1/metadata/sign", {"role": "root"}, "signature"),
    ]
    for path, body, field in cases:
        r = api.post(path, body)
        assert r.status == 422, f"{json.dumps(body)}: {r}"
        detail = r.json and r.json.get("detail")
        assert detail, f"no detail in {r}"
        assert field in json.dumps(detail), f"422 for {json.dumps(body)} does not name {field!r}: {r}"
    r = api.post("/api/v1/artifacts", raw=b'{"artifacts": [')
    assert r.status == 422, str(r)

    client = fresh_updater(server.metadata_url, scratch / "c1")
    client.refresh()
    assert client._trusted_set.timestamp.version == ts_version, "a refused payload changed the repository"
    assert client.get_targetinfo("p") is None


def test_bootstrap_with_bad_signature_fails(ceremonies, serve, scratch):
    server = serve()
    api = server.api
    payload = copy.deepcopy(ceremonies["signed_rsa"]["payload"])
    sig = payload["metadata"]["root"]["signatures"][0]
    sig["sig"] = ("0" if sig["sig"][0] != "0" else "1") + sig["sig"][1:]
    r = api.post("/api/v1/bootstrap", payload)
    if r.status == 202:
        data = api.final(r.json["data"]["task_id"])
        assert data["state"] in ("FAILURE", "ERRORED"), data
        result = data.get("result") or {}
        text = json.dumps(result).lower()
        assert result.get("error") or result.get("message"), data
        assert "signature" in text, f"the failure does not say what was wrong: {data}"
    else:
        assert r.status == 422 and "signature" in r.body.decode().lower(), str(r)
    assert not api.bootstrapped()
    assert http("GET", f"{server.metadata_url}/1.root.json").status == 404

    # The server still bootstraps from a good payload afterwards.
    api.run("/api/v1/bootstrap", ceremonies["signed_rsa"]["payload"])
    fresh_updater(server.metadata_url, scratch / "c").refresh()


def test_second_bootstrap_refused(ceremonies, serve):
    server = serve()
    api = server.api
    api.run("/api/v1/bootstrap", ceremonies["signed_rsa"]["payload"])
    root_before = http("GET", f"{server.metadata_url}/1.root.json").body
    r = api.post("/api/v1/bootstrap", ceremonies["signed_ecdsa"]["payload"])
    assert r.status != 202 and not ((r.json or {}).get("data") or {}).get("task_id"), str(r)
    assert r.status < 500, str(r)
    assert http("GET", f"{server.metadata_url}/1.root.json").body == root_before


def test_garbage_never_crashes(ceremonies, serve):
    server = serve()
    api = server.api
    api.run("/api/v1/bootstrap", ceremonies["signed_ed25519"]["payload"])
    deep = b"[" * 100_000 + b"]" * 100_000
    probes = [
        ("POST", "/api/v1/artifacts", b"\xff\xfe\x00garbage"),
        ("POST", "/api/v1/artifacts", deep),
        ("POST", "/api/v1/artifacts", json.dumps({"artifacts": [{"path": "p", "info": {
            "length": 10**30, "hashes": {"blake2b-256": "00"}}}]}).encode()),
        ("POST", "/api/v1/artifacts", json.dumps({"artifacts": [{"path": "", "info": {
            "length": -1, "hashes": {}}}]}).encode()),
        ("POST", "/api/v1/bootstrap", b"null"),
        ("POST", "/api/v1/metadata", json.dumps({"metadata": {"root": {"signed": {}, "signatures": []}}}).encode()),
        ("POST", "/api/v1/metadata/sign", json.dumps({"role": "root", "signature": {"keyid": "x", "sig": "y"}}).encode()),
        ("GET", "/api/v1/task?task_id=" + "x" * 5000, None),
        ("GET", "/api/v1/task", None),
        ("DELETE", "/api/v1/artifacts", None),
        ("GET", "/api/v1/nothing-here", None),
        ("GET", "/metadata/../../etc/passwd", None),
        ("GET", "/metadata/%2e%2e/%2e%2e/etc/passwd", None),
    ]
    for method, path, raw in probes:
        r = http(method, f"{server.base}{path}", raw=raw)
        assert r.status < 500, str(r)
        if "passwd" in path:
            assert r.status in (400, 404), str(r)
    # Tasks that were accepted (if any) end; the server still works.
    api.run("/api/v1/artifacts", ONE)
    assert api.bootstrapped()


def test_unknown_task_id(ceremonies, serve):
    """RSTUF (Celery) answers an unknown task id as PENDING; a 404 is as clear. Never a 5xx."""
    server = serve()
    r = server.api.get("/api/v1/task?task_id=0123456789abcdef0123456789abcdef")
    assert r.status in (200, 404), str(r)
    if r.status == 200:
        assert r.json["data"]["state"] == "PENDING", str(r)
