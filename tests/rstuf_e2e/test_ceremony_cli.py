"""The `rstuf` CLI's own flows against `tufpi repo serve`: a ceremony payload made by
`rstuf admin ceremony` bootstrapped with `rstuf admin send bootstrap`, `rstuf task info`,
`rstuf artifact add/delete`, distributed signing with `rstuf admin metadata sign`, and a root
rotation with an online-key change through `rstuf admin metadata update`. python-tuf's ngclient
verifies the published metadata after each step."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest
from static_server import Server as StaticServer
from tuf.api.metadata import Metadata, Root

from rstuf_util import (
    CEREMONIES,
    KeyFiles,
    add_key_steps,
    ceremony_steps,
    fresh_updater,
    http,
    online_key_steps,
    sign_steps,
    task_id_in,
    updater,
)


def check_ceremony_payload(payload: dict, bins: int, online: KeyFiles, signers: list[KeyFiles]) -> None:
    """What the CLI wrote is RSTUF's bootstrap payload: settings per role in days, bins, and root
    v1 naming the online key by `fn:<keyid>`, signed by `signers`."""
    roles = payload["settings"]["roles"]
    assert roles["bins"]["number_of_delegated_bins"] == bins
    assert {r: roles[r]["expiration"] for r in ("root", "timestamp", "snapshot", "targets")} == {
        "root": 365, "timestamp": 1, "snapshot": 1, "targets": 365}
    root = Metadata.from_dict(copy.deepcopy(payload["metadata"]["root"]))
    assert isinstance(root.signed, Root) and root.signed.version == 1
    assert root.signed.roles["root"].threshold == 2
    assert {s.keyid for s in root.signatures.values()} == {k.keyid for k in signers}
    online_key = root.signed.keys[root.signed.roles["timestamp"].keyids[0]]
    assert online_key.keyid == online.keyid
    assert online_key.scheme == online.tuf_key.scheme
    assert online_key.unrecognized_fields["x-rstuf-online-key-uri"] == f"fn:{online.keyid}"


@pytest.mark.parametrize("name,scheme", [
    ("signed_rsa", "rsassa-pss-sha256"),
    ("signed_ed25519", "ed25519"),
    ("signed_ecdsa", "ecdsa-sha2-nistp256"),
])
def test_ceremony_send_bootstrap_task_info(name, scheme, ceremonies, keys, rstuf, serve, scratch):
    bins, online, signers = CEREMONIES[name]
    payload = ceremonies[name]["payload"]
    check_ceremony_payload(payload, bins, keys[online], [keys[s] for s in signers])
    assert keys[online].tuf_key.scheme == scheme
    payload_file = scratch / "ceremony-payload.json"
    payload_file.write_text(json.dumps(payload))

    server = serve()
    assert not server.api.bootstrapped()
    sent = rstuf.run("admin", "--api-server", server.base, "send", "bootstrap", payload_file)
    print(f"$ rstuf admin --api-server URL send bootstrap ceremony-payload.json\n{sent.stdout}")
    assert sent.returncode == 0, sent.stdout
    assert "Bootstrap completed" in sent.stdout, sent.stdout
    task_id = task_id_in(sent.stdout)
    assert server.api.bootstrapped()

    info = rstuf.run("task", "info", task_id, "--api-server", server.base)
    print(f"$ rstuf task info {task_id} --api-server URL\n{info.stdout}")
    assert info.returncode == 0 and "Task status: SUCCESS" in info.stdout, info.stdout

    # The published root is the ceremony's, and a TUF client starting from it verifies the
    # online roles signed with the online key's scheme, down to every hash bin.
    published = http("GET", f"{server.metadata_url}/1.root.json")
    assert published.status == 200, str(published)
    root = Metadata.from_bytes(published.body)
    assert root.signed == Metadata.from_dict(copy.deepcopy(payload["metadata"]["root"])).signed
    client = fresh_updater(server.metadata_url, scratch / "client")
    client.refresh()
    targets = client._trusted_set.targets
    succinct = targets.delegations.succinct_roles
    # RSTUF's layout: targets delegates to succinct hash bins named bins-<hex prefix>.
    assert succinct is not None and succinct.name_prefix == "bins"
    assert len(list(succinct.get_roles())) == bins
    assert succinct.keyids == [keys[online].keyid]
    assert client.get_targetinfo("nothing-here") is None
    if name == "signed_rsa":
        print(ceremonies[name]["transcript"])


def test_artifact_add_delete_cli(ceremonies, rstuf, serve, scratch):
    """`rstuf artifact add FILE` then `rstuf artifact delete PATH`, each followed by
    `rstuf task info`; ngclient sees the file with the length and blake2b-256 the CLI sent, then
    no more."""
    server = serve()
    server.api.run("/api/v1/bootstrap", ceremonies["signed_rsa"]["payload"])
    client = fresh_updater(server.metadata_url, scratch / "client")
    client.refresh()

    files = scratch / "files"
    f = files / "releases" / "demo" / "demo-1.0.tar.gz"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"not really a tarball, but bytes with a hash\n" * 100)
    added = rstuf.run("artifact", "add", f, "-p", "releases/demo", "--api-server", server.base)
    print(f"$ rstuf artifact add demo-1.0.tar.gz -p releases/demo --api-server URL\n{added.stdout}")
    assert added.returncode == 0, added.stdout
    info = rstuf.run("task", "info", task_id_in(added.stdout), "--api-server", server.base)
    assert info.returncode == 0 and "Task status: SUCCESS" in info.stdout, info.stdout

    client = fresh_updater(server.metadata_url, scratch / "client")
    client.refresh()
    ti = client.get_targetinfo("releases/demo/demo-1.0.tar.gz")
    assert ti is not None, "the artifact the CLI added is not in the published metadata"
    assert ti.length == f.stat().st_size
    assert ti.hashes == {"blake2b-256": hashlib.blake2b(f.read_bytes(), digest_size=32).hexdigest()}

    # The CLI's own TUF client (trust on first use of 1.root.json) downloads and verifies it
    # from where the content repository serves it.
    artifacts = StaticServer(files)
    try:
        got = rstuf.run("artifact", "download", "releases/demo/demo-1.0.tar.gz", "-m", server.metadata_url,
                        "-a", artifacts.base + "/", "-P", scratch / "downloads")
    finally:
        artifacts.close()
    print(f"$ rstuf artifact download releases/demo/demo-1.0.tar.gz -m URL/metadata -a URL -P downloads\n{got.stdout}")
    assert got.returncode == 0 and "Successfully completed artifact download" in got.stdout, got.stdout
    downloaded = list((scratch / "downloads").iterdir())
    assert len(downloaded) == 1 and downloaded[0].read_bytes() == f.read_bytes()

    deleted = rstuf.run("artifact", "delete", "releases/demo/demo-1.0.tar.gz", "--api-server", server.base)
    assert deleted.returncode == 0, deleted.stdout
    info = rstuf.run("task", "info", task_id_in(deleted.stdout), "--api-server", server.base)
    assert info.returncode == 0 and "Task status: SUCCESS" in info.stdout, info.stdout
    client = fresh_updater(server.metadata_url, scratch / "client")
    client.refresh()
    assert client.get_targetinfo("releases/demo/demo-1.0.tar.gz") is None


def test_das_bootstrap_signed_by_cli(ceremonies, keys, rstuf, serve, scratch):
    """Root threshold 2 signed by one key: bootstrap is accepted but waits; GET /metadata/sign
    shows root pending; `rstuf admin metadata sign` adds root2's signature and the repository is
    published; ngclient verifies root v1 with both signatures."""
    server = serve()
    api = server.api
    payload_file = scratch / "ceremony-das.json"
    payload_file.write_text(json.dumps(ceremonies["das"]["payload"]))
    sent = rstuf.run("admin", "--api-server", server.base, "send", "bootstrap", payload_file)
    assert sent.returncode == 0, sent.stdout

    r = api.get("/api/v1/bootstrap")
    assert r.status == 200 and r.json["data"]["bootstrap"] is False, str(r)
    if "state" in r.json["data"]:
        assert r.json["data"]["state"] == "signing", str(r)
    pending = api.get("/api/v1/metadata/sign")
    assert pending.status == 200, str(pending)
    md = pending.json["data"]["metadata"]
    assert "root" in md, str(pending)
    assert [s["keyid"] for s in md["root"]["signatures"]] == [keys["root1"].keyid]
    # Nothing is published and nothing accepted until root is signed to threshold.
    assert http("GET", f"{server.metadata_url}/1.root.json").status == 404
    refused = api.post("/api/v1/artifacts", {"artifacts": [
        {"path": "p", "info": {"length": 1, "hashes": {"blake2b-256": "00" * 32}}}]})
    assert refused.status == 404, str(refused)

    steps = [["select", "Select a role to sign", "root"]] + sign_steps(keys["root2"])
    steps[1] = ["select", "Select key for signing", "root2"]
    code, transcript = rstuf.drive(["admin", "--api-server", server.base, "metadata", "sign"], steps,
                                   scratch / "sign.txt")
    print(f"$ rstuf admin --api-server URL metadata sign\n{transcript}")
    assert code == 0, transcript
    assert "Metadata Signed and sent to the API" in transcript

    assert api.bootstrapped()
    root = Metadata.from_bytes(http("GET", f"{server.metadata_url}/1.root.json").body)
    assert set(root.signatures) == {keys["root1"].keyid, keys["root2"].keyid}
    root.verify_delegate("root", root)
    client = fresh_updater(server.metadata_url, scratch / "client")
    client.refresh()
    api.run("/api/v1/artifacts", {"artifacts": [
        {"path": "after-das", "info": {"length": 3, "hashes": {"blake2b-256": "ab" * 32}}}]})
    client = fresh_updater(server.metadata_url, scratch / "client2")
    client.refresh()
    assert client.get_targetinfo("after-das").hashes == {"blake2b-256": "ab" * 32}


def test_root_rotation_online_key_change_cli(ceremonies, keys, rstuf, serve, scratch):
    """`rstuf admin metadata update`: root1 is replaced by root3 and the online key changes from
    RSA online_rsa to online2; signed by old and new root keys. An ngclient that trusted root v1
    before the update follows to v2 and verifies what the new online key signs."""
    server = serve()
    api = server.api
    api.run("/api/v1/bootstrap", ceremonies["signed_rsa"]["payload"])
    api.run("/api/v1/artifacts", {"artifacts": [
        {"path": "before", "info": {"length": 1, "hashes": {"blake2b-256": "01" * 32}}}]})
    r = http("GET", f"{server.metadata_url}/1.root.json")
    holder = updater(server.metadata_url, r.body, scratch / "holder")
    holder.refresh()
    assert holder.get_targetinfo("before") is not None

    steps = [
        ["ask", "Do you want to change the expiry date", "n"],
        ["ask", "Do you want to change the threshold", "n"],
        ["select", "more keys can be added", "remove"],
        ["select", "Select a key to remove", "root1"],
        ["select", "missing for threshold", "add"],
        *add_key_steps(keys["root3"]),
        ["select", "more keys can be added", "continue"],
        ["ask", "Do you want to change the online key", "y"],
        *online_key_steps(keys["online2"]),
        *sign_steps(keys["root2"]),
        *sign_steps(keys["root1"]),
        *sign_steps(keys["root3"]),
        ["expect", "Metadata Update status"],
    ]
    code, transcript = rstuf.drive(
        ["admin", "--api-server", server.base, "metadata", "update", "--metadata-url", server.metadata_url],
        steps, scratch / "update.txt")
    print(f"$ rstuf admin --api-server URL metadata update --metadata-url URL/metadata\n{transcript}")
    assert code == 0, transcript
    assert "Root metadata update completed" in transcript

    r2 = http("GET", f"{server.metadata_url}/2.root.json")
    assert r2.status == 200, str(r2)
    root2 = Metadata.from_bytes(r2.body)
    assert set(root2.signed.roles["root"].keyids) == {keys["root2"].keyid, keys["root3"].keyid}
    assert root2.signed.roles["timestamp"].keyids == [keys["online2"].keyid]

    api.run("/api/v1/artifacts", {"artifacts": [
        {"path": "after", "info": {"length": 2, "hashes": {"blake2b-256": "02" * 32}}}]})
    holder = updater(server.metadata_url, b"", scratch / "holder")
    holder.refresh()
    assert holder._trusted_set.root.version == 2
    # The timestamp the holder verified (and cached) is signed by the new online key only.
    ts = Metadata.from_file(str(scratch / "holder" / "timestamp.json"))
    assert set(ts.signatures) == {keys["online2"].keyid}
    assert holder.get_targetinfo("before") is not None
    assert holder.get_targetinfo("after").hashes == {"blake2b-256": "02" * 32}
    fresh = fresh_updater(server.metadata_url, scratch / "fresh")
    fresh.refresh()
    assert fresh.get_targetinfo("after") is not None


def test_root_update_signed_later_cli(ceremonies, keys, rstuf, serve, scratch):
    """`rstuf admin metadata update` changing the online key (ed25519 → ECDSA), signed by root1
    only: root v2 waits; `rstuf admin metadata sign` (which needs the trusted root v1 beside the
    pending v2) adds root2's signature and v2 is published; the ngclient holding v1 follows."""
    server = serve()
    api = server.api
    api.run("/api/v1/bootstrap", ceremonies["signed_ed25519"]["payload"])
    holder = updater(server.metadata_url, http("GET", f"{server.metadata_url}/1.root.json").body,
                     scratch / "holder")
    holder.refresh()

    steps = [
        ["ask", "Do you want to change the expiry date", "n"],
        ["ask", "Do you want to change the threshold", "n"],
        ["select", "more keys can be added", "continue"],
        ["ask", "Do you want to change the online key", "y"],
        *online_key_steps(keys["online_ecdsa"]),
        *sign_steps(keys["root1"]),
        ["select", "Select a key for signing or continue", "continue"],
        ["expect", "Metadata Update status"],
    ]
    code, transcript = rstuf.drive(
        ["admin", "--api-server", server.base, "metadata", "update", "--metadata-url", server.metadata_url],
        steps, scratch / "update.txt")
    assert code == 0, transcript
    pending = api.get("/api/v1/metadata/sign").json["data"]["metadata"]
    assert pending["root"]["signed"]["version"] == 2 and pending["trusted_root"]["signed"]["version"] == 1
    assert http("GET", f"{server.metadata_url}/2.root.json").status == 404

    steps = [["select", "Select a role to sign", "root"], ["select", "Select key for signing", "root2"],
             *sign_steps(keys["root2"])[1:]]
    code, transcript = rstuf.drive(["admin", "--api-server", server.base, "metadata", "sign"], steps,
                                   scratch / "sign.txt")
    assert code == 0 and "Metadata Signed and sent to the API" in transcript, transcript

    api.run("/api/v1/artifacts", {"artifacts": [
        {"path": "signed-later", "info": {"length": 3, "hashes": {"blake2b-256": "03" * 32}}}]})
    holder = updater(server.metadata_url, b"", scratch / "holder")
    holder.refresh()
    assert holder._trusted_set.root.version == 2
    ts = Metadata.from_file(str(scratch / "holder" / "timestamp.json"))
    assert set(ts.signatures) == {keys["online_ecdsa"].keyid}
    assert holder.get_targetinfo("signed-later") is not None


def test_das_stop_sign_cli(ceremonies, rstuf, serve, scratch):
    """`rstuf admin metadata stop-sign` drops a bootstrap waiting for signatures; the server can
    then be bootstrapped again."""
    server = serve()
    api = server.api
    api.run("/api/v1/bootstrap", ceremonies["das"]["payload"])
    steps = [
        ["select", "Select which metadata signing process to stop", "root"],
        ["ask", "Do you still want to stop signing process for root", "y"],
        ["expect", "Signing process for root deleted"],
    ]
    code, transcript = rstuf.drive(["admin", "--api-server", server.base, "metadata", "stop-sign"], steps,
                                   scratch / "stop.txt")
    assert code == 0, transcript
    assert api.get("/api/v1/bootstrap").json["data"]["bootstrap"] is False
    api.run("/api/v1/bootstrap", ceremonies["signed_ecdsa"]["payload"])
    fresh_updater(server.metadata_url, scratch / "c").refresh()


def test_ceremony_sent_by_cli(keys, rstuf, serve, scratch):
    """`rstuf admin --api-server URL ceremony` (no --dry-run): the CLI posts the bootstrap itself
    and waits for the task; 16 bins, RSA-PSS online key."""
    server = serve()
    steps = ceremony_steps(16, [keys["root1"], keys["root2"]], keys["online_rsa"], [keys["root1"], keys["root2"]])
    steps[-1] = ["expect", "Ceremony done"]
    code, transcript = rstuf.drive(["admin", "--api-server", server.base, "ceremony", "--out", scratch / "out.json"],
                                   steps, scratch / "ceremony.txt")
    assert code == 0, transcript
    assert "Bootstrap status:  SUCCESS" in transcript, transcript
    assert server.api.bootstrapped()
    client = fresh_updater(server.metadata_url, scratch / "c")
    client.refresh()
    assert len(list(client._trusted_set.targets.delegations.succinct_roles.get_roles())) == 16
