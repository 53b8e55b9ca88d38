"""Distributed signing and root updates through the REST API with payloads made by
securesystemslib and python-tuf (what `rstuf admin send sign/update` post): POST
/api/v1/metadata/sign completes a bootstrap or a root update waiting for signatures,
/metadata/sign/delete aborts one, POST /api/v1/metadata rotates root keys and changes the online
key. An ngclient that trusted root v1 keeps verifying throughout."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

from tuf.api.metadata import Metadata, Root

from rstuf_util import Api, fresh_updater, http, updater


def das_bootstrap(api: Api, payload: dict) -> None:
    api.run("/api/v1/bootstrap", payload)
    r = api.get("/api/v1/bootstrap")
    assert r.status == 200 and r.json["data"]["bootstrap"] is False, str(r)


def pending(api: Api, role: str = "root") -> dict:
    r = api.get("/api/v1/metadata/sign")
    assert r.status == 200, str(r)
    md = (r.json.get("data") or {}).get("metadata") or {}
    assert role in md, f"no {role} pending: {r}"
    return md


def sign_payload(role_md: dict, key) -> dict:
    """The CLI's SignPayload: one signature over the pending role's signed part."""
    md = Metadata.from_dict(copy.deepcopy(role_md))
    sig = md.sign(key.signer(), append=True)
    return {"role": "root", "signature": sig.to_dict()}


def test_das_sign_via_api(ceremonies, keys, serve, scratch):
    server = serve()
    api = server.api
    das_bootstrap(api, ceremonies["das"]["payload"])
    md = pending(api)
    # An unrelated key's signature is refused (the task fails), and root still waits.
    bad = sign_payload(md["root"], keys["root3"])
    task_id = api.submit("/api/v1/metadata/sign", bad, message="Metadata sign accepted.")
    final = api.final(task_id)
    assert final["state"] in ("FAILURE", "ERRORED"), final
    assert not api.bootstrapped()

    api.run("/api/v1/metadata/sign", sign_payload(md["root"], keys["root2"]))
    assert api.bootstrapped()
    r = api.get("/api/v1/metadata/sign")
    assert r.status == 200, str(r)
    assert "root" not in ((r.json.get("data") or {}).get("metadata") or {}), str(r)
    client = fresh_updater(server.metadata_url, scratch / "c")
    client.refresh()
    assert client._trusted_set.root.version == 1


def test_das_abort_then_bootstrap_again(ceremonies, serve, scratch):
    """POST /metadata/sign/delete drops the pending bootstrap; a new bootstrap is then taken."""
    server = serve()
    api = server.api
    das_bootstrap(api, ceremonies["das"]["payload"])
    api.run("/api/v1/metadata/sign/delete", {"role": "root"})
    assert api.get("/api/v1/bootstrap").json["data"]["bootstrap"] is False
    # Nothing waits for signatures any more: RSTUF answers 404 (bootstrap not started again).
    r = api.get("/api/v1/metadata/sign")
    assert r.status == 404 or "root" not in ((r.json.get("data") or {}).get("metadata") or {}), str(r)
    api.run("/api/v1/bootstrap", ceremonies["signed_ed25519"]["payload"])
    assert api.bootstrapped()
    fresh_updater(server.metadata_url, scratch / "c").refresh()


def new_root(prev: Metadata, expires_days: int = 365) -> Metadata:
    md = Metadata.from_dict(copy.deepcopy(prev.to_dict()))
    md.signatures.clear()
    md.signed.version += 1
    md.signed.expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=expires_days)
    return md


def change_online_key(root: Root, old, new) -> None:
    key = copy.deepcopy(new.tuf_key)
    key.unrecognized_fields["x-rstuf-online-key-uri"] = f"fn:{new.keyid}"
    key.unrecognized_fields["x-rstuf-key-name"] = new.name
    for role in ("timestamp", "snapshot", "targets"):
        root.revoke_key(old.keyid, role)
        root.add_key(key, role)


def test_root_update_das_and_online_key_change_via_api(ceremonies, keys, serve, scratch):
    """Root v2 (root1 rotated out for root3, online key RSA → ECDSA) posted to /api/v1/metadata
    signed by root2 only: it waits (old and new thresholds unmet) with the trusted root shown
    beside it; signatures by root1 and root3 through /metadata/sign complete it. The ngclient
    holding v1 follows to v2 and verifies the new online key's timestamp."""
    server = serve()
    api = server.api
    api.run("/api/v1/bootstrap", ceremonies["signed_rsa"]["payload"])
    api.run("/api/v1/artifacts", {"artifacts": [
        {"path": "v1-era", "info": {"length": 1, "hashes": {"blake2b-256": "aa" * 32}}}]})
    v1 = http("GET", f"{server.metadata_url}/1.root.json")
    holder = updater(server.metadata_url, v1.body, scratch / "holder")
    holder.refresh()

    prev = Metadata.from_bytes(v1.body)
    md = new_root(prev)
    root = md.signed
    root.revoke_key(keys["root1"].keyid, "root")
    root3 = copy.deepcopy(keys["root3"].tuf_key)
    root3.unrecognized_fields["x-rstuf-key-name"] = "root3"
    root.add_key(root3, "root")
    change_online_key(root, keys["online_rsa"], keys["online_ecdsa"])
    md.sign(keys["root2"].signer(), append=True)

    r = api.post("/api/v1/metadata", {"metadata": {"root": md.to_dict()}})
    assert r.status == 202 and r.json["message"] == "Metadata update accepted.", str(r)
    api.wait(r.json["data"]["task_id"])
    waiting = pending(api)
    assert "trusted_root" in waiting, f"the previous root is not shown beside the pending one: {waiting.keys()}"
    assert waiting["trusted_root"]["signed"]["version"] == 1
    assert http("GET", f"{server.metadata_url}/2.root.json").status == 404

    for signer in ("root1", "root3"):
        api.run("/api/v1/metadata/sign", sign_payload(pending(api)["root"], keys[signer]))
    published = http("GET", f"{server.metadata_url}/2.root.json")
    assert published.status == 200, str(published)
    assert set(Metadata.from_bytes(published.body).signatures) == {
        keys["root1"].keyid, keys["root2"].keyid, keys["root3"].keyid}

    api.run("/api/v1/artifacts", {"artifacts": [
        {"path": "v2-era", "info": {"length": 2, "hashes": {"blake2b-256": "bb" * 32}}}]})
    holder = updater(server.metadata_url, b"", scratch / "holder")
    holder.refresh()
    assert holder._trusted_set.root.version == 2
    ts = Metadata.from_file(str(scratch / "holder" / "timestamp.json"))
    assert set(ts.signatures) == {keys["online_ecdsa"].keyid}
    assert holder.get_targetinfo("v1-era") is not None
    assert holder.get_targetinfo("v2-era").hashes == {"blake2b-256": "bb" * 32}


def test_root_update_fully_signed_via_api(ceremonies, keys, serve, scratch):
    """A fully signed root v2 (threshold 2 → 1, same keys) is published at once by the task."""
    server = serve()
    api = server.api
    api.run("/api/v1/bootstrap", ceremonies["signed_ed25519"]["payload"])
    v1 = http("GET", f"{server.metadata_url}/1.root.json")
    holder = updater(server.metadata_url, v1.body, scratch / "holder")
    holder.refresh()
    md = new_root(Metadata.from_bytes(v1.body))
    md.signed.roles["root"].threshold = 1
    md.sign(keys["root1"].signer(), append=True)
    md.sign(keys["root2"].signer(), append=True)
    api.run("/api/v1/metadata", {"metadata": {"root": md.to_dict()}})
    assert http("GET", f"{server.metadata_url}/2.root.json").status == 200
    holder = updater(server.metadata_url, b"", scratch / "holder")
    holder.refresh()
    assert holder._trusted_set.root.roles["root"].threshold == 1
