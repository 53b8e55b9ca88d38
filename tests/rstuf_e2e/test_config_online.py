"""GET/PUT /api/v1/config (the online roles' expiry policy) and POST /api/v1/metadata/online (a
new version of online roles now), as RSTUF's API answers them; ngclient verifies the result."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tuf.api.metadata import Metadata

from rstuf_util import fresh_updater, http


def published(server, name: str) -> Metadata:
    r = http("GET", f"{server.metadata_url}/{name}")
    assert r.status == 200, str(r)
    return Metadata.from_bytes(r.body)


def test_config_and_forced_online_update(ceremonies, serve, scratch):
    server = serve()
    api = server.api
    r = api.get("/api/v1/config")
    assert r.status == 404, f"config before bootstrap: {r}"

    api.run("/api/v1/bootstrap", ceremonies["signed_rsa"]["payload"])
    r = api.get("/api/v1/config")
    assert r.status == 200, str(r)
    config = r.json["data"]
    assert config.get("timestamp_expiration") == 1, config
    assert config.get("bins_expiration") == 1, config
    assert config.get("number_of_delegated_bins") == 8, config

    put = api.put("/api/v1/config", {"settings": {"expiration": {"timestamp": 7, "bins": 3}}})
    assert put.status == 202 and put.json["message"] == "Settings successfully submitted.", str(put)
    api.wait(put.json["data"]["task_id"])
    config = api.get("/api/v1/config").json["data"]
    assert config.get("timestamp_expiration") == 7 and config.get("bins_expiration") == 3, config

    ts_before = published(server, "timestamp.json").signed
    snap_before = published(server, f"{ts_before.snapshot_meta.version}.snapshot.json").signed
    r = api.post("/api/v1/metadata/online", {"roles": ["timestamp", "snapshot", "bins"]})
    assert r.status == 202 and r.json["message"] == "Force online metadata update accepted.", str(r)
    api.wait(r.json["data"]["task_id"])

    ts = published(server, "timestamp.json").signed
    assert ts.version > ts_before.version
    # The new expiry policy applies to what is signed from now on.
    assert ts.expires > datetime.now(timezone.utc) + timedelta(days=6), ts.expires
    snap = published(server, f"{ts.snapshot_meta.version}.snapshot.json").signed
    assert snap.version > snap_before.version
    bins = [name for name in snap.meta if name.startswith("bins")]
    assert len(bins) == 8
    assert all(snap.meta[b].version > snap_before.meta[b].version for b in bins), "bins were not bumped"
    one_bin = published(server, f"{snap.meta[bins[0]].version}.{bins[0]}").signed
    assert one_bin.expires > datetime.now(timezone.utc) + timedelta(days=2), one_bin.expires

    # An empty list bumps every online role.
    api.run("/api/v1/metadata/online", {"roles": []})
    assert published(server, "timestamp.json").signed.version > ts.version
    client = fresh_updater(server.metadata_url, scratch / "c")
    client.refresh()
