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


def test_second_server_on_same_dir_refused(ceremonies, serve):
    """RSTUF's writer has no fencing; one tufpi process owns its data directory: a second
    `tufpi repo serve` on it exits with an error naming the lock, and the first keeps serving."""
    import subprocess

    from rstuf_util import free_port

    server = serve()
    server.api.run("/api/v1/bootstrap", ceremonies["signed_ed25519"]["payload"])
    second = subprocess.run(
        [str(server.bin), "repo", "serve", "--listen", f"127.0.0.1:{free_port()}", "--data-dir",
         str(server.data_dir), "--online-key-dir", str(server.key_dir)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert second.returncode != 0, second
    assert "lock" in (second.stdout + second.stderr).lower(), second
    server.api.run("/api/v1/artifacts", {"artifacts": [
        {"path": "still-one-writer", "info": {"length": 1, "hashes": {"blake2b-256": "66" * 32}}}]})
