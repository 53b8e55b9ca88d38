"""One process instead of five services: stopped and started again over the same data
directory, `tufpi repo serve` is still bootstrapped, answers for tasks it ran before, and
carries on from the published versions (an ngclient that followed it before keeps following)."""

from __future__ import annotations

from rstuf_util import RepoServe, fresh_updater, http, updater


def test_restart_keeps_everything(ceremonies, serve, scratch):
    server = serve()
    api = server.api
    api.run("/api/v1/bootstrap", ceremonies["signed_rsa"]["payload"])
    task_id = api.submit("/api/v1/artifacts", {"artifacts": [
        {"path": "kept", "info": {"length": 4, "hashes": {"blake2b-256": "44" * 32}}}]})
    api.wait(task_id)
    root = http("GET", f"{server.metadata_url}/1.root.json").body
    client = updater(server.metadata_url, root, scratch / "client")
    client.refresh()

    server.stop()
    again = RepoServe(server.bin, server.data_dir, server.key_dir).start()
    try:
        api = again.api
        assert api.bootstrapped()
        data = api.task(task_id)
        assert data["state"] == "SUCCESS" and data["result"]["status"] is True, data
        api.run("/api/v1/artifacts", {"artifacts": [
            {"path": "after-restart", "info": {"length": 5, "hashes": {"blake2b-256": "55" * 32}}}]})
        # The same client, now pointed at the new port, follows on from what it verified.
        client = updater(again.metadata_url, b"", scratch / "client")
        client.refresh()
        assert client.get_targetinfo("kept") is not None
        assert client.get_targetinfo("after-restart") is not None
        fresh_updater(again.metadata_url, scratch / "fresh").refresh()
        assert again.alive()
    finally:
        again.stop()
