"""What PyPI's Warehouse does with RSTUF (warehouse/tuf/__init__.py): on a project change it posts
the project's simple detail page as one target (path = normalized project name, length,
blake2b-256) to POST /api/v1/artifacts and polls GET /api/v1/task?task_id= once a second, 20
times, until SUCCESS. Then python-tuf's ngclient, from the bootstrap root, finds each project's
page with exactly those hashes; updates replace the hash, deletes remove the target. Also
deferred publishing (publish_artifacts=false, then POST /api/v1/artifacts/publish)."""

from __future__ import annotations

import time

from rstuf_util import Api, blake2b_256, fresh_updater, simple_detail_page

PROJECTS = ["requests", "tufpi-demo", "zope-interface", "a", "numpy"]


class WarehouseClient:
    """Warehouse's RSTUF client, call for call: post_artifacts then wait_for_success (20 × 1 s,
    PENDING/RUNNING/RECEIVED/STARTED keep it polling, anything else but SUCCESS is an error)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.polls = 0
        # Seconds from each post to the poll that saw SUCCESS.
        self.durations: list[float] = []

    def post_artifacts(self, payload: dict) -> str:
        r = self.api.post("/api/v1/artifacts", payload)
        assert 200 <= r.status < 300, str(r)  # resp.raise_for_status()
        data = (r.json or {}).get("data")
        assert data, f"RSTUFNoBootstrapError: {r}"  # 200 but no "data": not bootstrapped
        return data["task_id"]

    def wait_for_success(self, task_id: str, delay: float = 1.0) -> float:
        """Seconds from the first poll to SUCCESS."""
        t0 = time.monotonic()
        for _ in range(20):
            self.polls += 1
            state = self.api.task(task_id)["state"]
            if state == "SUCCESS":
                return time.monotonic() - t0
            assert state in ("PENDING", "RUNNING", "RECEIVED", "STARTED"), f"RSTUFError: task {task_id} {state}"
            time.sleep(delay)
        raise AssertionError(f"RSTUFError: task {task_id} not SUCCESS after 20 polls")

    def update_metadata(self, project: str, page: bytes, key: str = "artifacts") -> str:
        """update_metadata(project): the project's detail page as its single target."""
        payload = {key: [{"path": project, "info": {"length": len(page), "hashes": {"blake2b-256": blake2b_256(page)}}}]}
        t0 = time.monotonic()
        task_id = self.post_artifacts(payload)
        self.wait_for_success(task_id)
        self.durations.append(time.monotonic() - t0)
        return task_id


def verify_projects(server, directory, pages: dict[str, bytes], gone: tuple[str, ...] = ()) -> None:
    """A fresh ngclient from 1.root.json: each project's target has its page's exact length and
    blake2b-256; `gone` projects have no target."""
    client = fresh_updater(server.metadata_url, directory)
    client.refresh()
    for project, page in pages.items():
        ti = client.get_targetinfo(project)
        assert ti is not None, f"target {project} not found by ngclient"
        assert ti.length == len(page), project
        assert ti.hashes == {"blake2b-256": blake2b_256(page)}, project
        # The client checks a download against them too: the page itself verifies.
        ti.verify_length_and_hashes(page)
    for project in gone:
        assert client.get_targetinfo(project) is None, f"deleted target {project} still listed"


def test_warehouse_add_update_delete(ceremonies, serve, scratch):
    server = serve()
    api = server.api
    api.run("/api/v1/bootstrap", ceremonies["signed_rsa"]["payload"])
    wh = WarehouseClient(api)

    pages = {p: simple_detail_page(p, [f"{p}-1.0.tar.gz"]) for p in PROJECTS}
    for project, page in pages.items():
        wh.update_metadata(project, page)
    # Each task was done by the first few polls, nowhere near Warehouse's 20 polls.
    print(f"Warehouse client: {wh.polls} polls for {len(PROJECTS)} tasks, "
          f"post -> SUCCESS seen {['%.2f' % d for d in wh.durations]} s")
    assert wh.polls <= 3 * len(PROJECTS) and max(wh.durations) < 5, (wh.polls, wh.durations)
    verify_projects(server, scratch / "c1", pages)

    # A new release changes the page: same path, new length and hash.
    pages["requests"] = simple_detail_page("requests", ["requests-1.0.tar.gz", "requests-2.0-py3-none-any.whl"])
    wh.update_metadata("requests", pages["requests"])
    verify_projects(server, scratch / "c2", pages)

    # The project is deleted.
    task_id = api.submit("/api/v1/artifacts/delete", {"artifacts": ["zope-interface"]})
    wh.wait_for_success(task_id)
    del pages["zope-interface"]
    verify_projects(server, scratch / "c3", pages, gone=("zope-interface",))


def test_warehouse_legacy_targets_key(ceremonies, serve, scratch):
    """Warehouse's code as merged posts its payload under "targets" (RSTUF's name before 1.0),
    not "artifacts". A drop-in that Warehouse uses unchanged must take it as RSTUF took it."""
    server = serve()
    server.api.run("/api/v1/bootstrap", ceremonies["signed_rsa"]["payload"])
    page = simple_detail_page("legacy", ["legacy-1.0.tar.gz"])
    WarehouseClient(server.api).update_metadata("legacy", page, key="targets")
    verify_projects(server, scratch / "c", {"legacy": page})


def test_task_result_shape(ceremonies, serve):
    """The task answer as RSTUF gives it: data.task_id, state, result {task, status, details,
    last_update}; readable right after the 202 and on both URL spellings (the CLI's
    /api/v1/task/?task_id= and Warehouse's /api/v1/task?task_id=)."""
    server = serve()
    api = server.api
    api.run("/api/v1/bootstrap", ceremonies["signed_ed25519"]["payload"])
    r = api.post("/api/v1/artifacts/", {"artifacts": [
        {"path": "x/y.whl", "info": {"length": 5, "hashes": {"blake2b-256": "cd" * 32}, "custom": {"k": "v"}}}]})
    assert r.status == 202, str(r)
    body = r.json
    assert body["message"] == "New Artifact(s) successfully submitted.", str(r)
    assert body["data"]["artifacts"] == ["x/y.whl"], str(r)
    task_id = body["data"]["task_id"]
    first = api.get(f"/api/v1/task/?task_id={task_id}")
    assert first.status == 200 and first.json["data"]["task_id"] == task_id, str(first)
    assert first.json["data"]["state"] in ("PENDING", "RECEIVED", "STARTED", "RUNNING", "PRE_RUN", "SUCCESS")
    data = api.wait(task_id)
    result = data["result"]
    assert result["status"] is True
    assert result.get("task") == "add_artifacts", data
    assert "x/y.whl" in result["details"]["added_artifacts"], data
    assert result.get("last_update"), data


def test_deferred_publish(ceremonies, serve, scratch):
    """publish_artifacts=false: the add task succeeds but nothing is published; POST
    /api/v1/artifacts/publish publishes everything pending (adds and a removal)."""
    server = serve()
    api = server.api
    api.run("/api/v1/bootstrap", ceremonies["signed_ecdsa"]["payload"])
    api.run("/api/v1/artifacts", {"artifacts": [
        {"path": "old", "info": {"length": 1, "hashes": {"blake2b-256": "11" * 32}}}]})
    version = fresh_updater(server.metadata_url, scratch / "c0")
    version.refresh()
    ts_before = version._trusted_set.timestamp.version

    r = api.post("/api/v1/artifacts", {"publish_artifacts": False, "artifacts": [
        {"path": f"batch/{i}", "info": {"length": i + 1, "hashes": {"blake2b-256": f"{i:02x}" * 32}}}
        for i in range(5)]})
    assert r.status == 202, str(r)
    assert r.json["message"].startswith("New Artifact(s) successfully submitted."), str(r)
    api.wait(r.json["data"]["task_id"])
    api.wait(api.submit("/api/v1/artifacts/delete", {"artifacts": ["old"], "publish_artifacts": False}))

    client = fresh_updater(server.metadata_url, scratch / "c1")
    client.refresh()
    assert client._trusted_set.timestamp.version == ts_before, "unpublished changes were published"
    assert client.get_targetinfo("batch/0") is None
    assert client.get_targetinfo("old") is not None

    api.wait(api.submit("/api/v1/artifacts/publish/", None, message="Publish artifacts successfully submitted."))
    client = fresh_updater(server.metadata_url, scratch / "c2")
    client.refresh()
    for i in range(5):
        ti = client.get_targetinfo(f"batch/{i}")
        assert ti is not None and ti.length == i + 1 and ti.hashes == {"blake2b-256": f"{i:02x}" * 32}
    assert client.get_targetinfo("old") is None


def test_add_task_id_to_custom(ceremonies, serve, scratch):
    """add_task_id_to_custom: the target's custom carries added_by_task_id next to the custom
    the client sent."""
    server = serve()
    api = server.api
    api.run("/api/v1/bootstrap", ceremonies["signed_ed25519"]["payload"])
    task_id = api.submit("/api/v1/artifacts", {"add_task_id_to_custom": True, "artifacts": [
        {"path": "c/one", "info": {"length": 1, "hashes": {"blake2b-256": "ee" * 32}, "custom": {"team": "a"}}},
        {"path": "c/two", "info": {"length": 2, "hashes": {"blake2b-256": "ef" * 32}}}]})
    api.wait(task_id)
    client = fresh_updater(server.metadata_url, scratch / "c")
    client.refresh()
    assert client.get_targetinfo("c/one").custom == {"added_by_task_id": task_id, "team": "a"}
    assert client.get_targetinfo("c/two").custom == {"added_by_task_id": task_id}


def test_50_clients_50_artifacts_at_once(ceremonies, serve, scratch):
    """RSTUF's heaviest CI scenario (it must finish within 600 s): 50 clients post 50 artifacts
    each at the same moment and wait for their tasks; every artifact is verifiable afterwards."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    server = serve()
    api = server.api
    api.run("/api/v1/bootstrap", ceremonies["signed_rsa"]["payload"])
    start = threading.Barrier(50)

    def client(c: int) -> float:
        body = {"artifacts": [
            {"path": f"load/{c}/{i}", "info": {"length": c * 100 + i, "hashes": {"blake2b-256": f"{c:02x}{i:02x}" * 16}}}
            for i in range(50)]}
        start.wait()
        t0 = time.monotonic()
        api.wait(api.submit("/api/v1/artifacts", body), timeout=120)
        return time.monotonic() - t0

    t0 = time.monotonic()
    with ThreadPoolExecutor(50) as pool:
        latencies = list(pool.map(client, range(50)))
    wall = time.monotonic() - t0
    print(f"\n50 clients x 50 artifacts at once: all SUCCESS in {wall:.2f} s wall, slowest task "
          f"{max(latencies):.2f} s (RSTUF: must finish within 600 s; measured 247 s with retries)")

    client_ = fresh_updater(server.metadata_url, scratch / "c")
    client_.refresh()
    for c in range(50):
        for i in range(50):
            ti = client_.get_targetinfo(f"load/{c}/{i}")
            assert ti is not None and ti.length == c * 100 + i, f"load/{c}/{i}"
            assert ti.hashes == {"blake2b-256": f"{c:02x}{i:02x}" * 16}
