"""`tufpi proxy` keeps projects apart (issue 10, finding 3): no network fetch happens under a
lock another lookup waits for. A bin the upstream is slow to serve stalls only the projects
it lists; a flood of unknown project names fetches each bin once and does not slow an honest
project whose page is already resolved; `/health` reports a refresh that hangs.

The slow upstream is the mirror between proxy and index: it holds chosen requests back."""

from __future__ import annotations

import collections
import hashlib
import threading
import time
import uuid

from proxy_util import upload, wheel_bytes

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
# The test index's repository (`--bins-bit-length 8`): 256 succinct hash bins, bin-00 … bin-ff.
BIN_BITS = 8


def root_of(server):
    return server.data / "repo" / "metadata" / "1.root.json"


def publish(s, token, name: str, version: str = "1.0") -> None:
    filename, data = wheel_bytes(name, version, [])
    upload(s, token, name, version, filename, data)
    s.wait_published()


def bin_of(project: str) -> str:
    """The bin (TAP 15 succinct role) that lists a project's page target."""
    digest = hashlib.sha256(f"simple/{project}/vnd.pypi.simple.v1.json".encode()).digest()
    width = len(f"{(1 << BIN_BITS) - 1:x}")
    return f"bin-{int.from_bytes(digest[:4], 'big') >> (32 - BIN_BITS):0{width}x}"


def bins_in(paths: list[str]) -> set[str]:
    """The bins fetched, from metadata paths such as /metadata/3.bin-0a.json."""
    return {p.rsplit(".", 2)[-2] for p in paths if ".bin-" in p}


def metadata_fetches(paths: list[str]) -> collections.Counter:
    return collections.Counter(p for p in paths if p.startswith("/metadata/"))


def settle(m, quiet: float = 0.4) -> None:
    """Wait until the mirror has seen no request for `quiet` seconds (the proxy's look-ahead
    after a page loads the bins of its files in the background)."""
    deadline = time.monotonic() + 10
    n = -1
    while n != len(m.seen) and time.monotonic() < deadline:
        n = len(m.seen)
        time.sleep(quiet)


def timed_get(p, path: str) -> tuple[int, float]:
    t0 = time.monotonic()
    status = p.get(path, JSON_TYPE)[0]
    return status, time.monotonic() - t0


def test_a_stalled_bin_does_not_stall_other_projects(serve, proxy, mirror):
    s = serve()
    token = s.token()
    publish(s, token, "honest-cached")
    publish(s, token, "stalled-proj")
    assert bin_of("honest-cached") != bin_of("stalled-proj")
    m = mirror(s.base)
    # Interval 0: the honest request below refreshes too (root probe, timestamp).
    p = proxy(m.base, root_of(s), "--refresh-interval", "0")
    assert p.get("/simple/honest-cached/", JSON_TYPE)[0] == 200
    stalled = f".{bin_of('stalled-proj')}.json"
    hit, release = threading.Event(), threading.Event()

    def stall(path, fetch):
        if path.endswith(stalled):
            hit.set()
            release.wait(15)
        return None

    m.rule = stall
    slow: list[int] = []
    t = threading.Thread(target=lambda: slow.append(p.get("/simple/stalled-proj/", JSON_TYPE)[0]))
    t.start()
    try:
        assert hit.wait(10), m.seen
        status, took = timed_get(p, "/simple/honest-cached/")
        health = p.get("/health")
    finally:
        release.set()
        t.join(30)
    assert status == 200 and took < 1.0, (status, took)
    # One project's slow bin is not a failing proxy.
    assert health[0] == 200, health
    # The stalled project is answered (verified) once its bin arrives.
    assert slow == [200], slow
    assert sum(q.endswith(stalled) for q in m.seen) == 1, m.seen


def test_a_flood_of_unknown_names(serve, proxy, mirror):
    s = serve()
    token = s.token()
    publish(s, token, "honest-flood")
    m = mirror(s.base)
    # No refresh during the test: only the flood's bins are fetched.
    p = proxy(m.base, root_of(s), "--refresh-interval", "600")
    assert p.get("/simple/honest-flood/", JSON_TYPE)[0] == 200
    settle(m)
    names = [f"nope-{uuid.uuid4().hex[:12]}" for _ in range(40)]
    start = len(m.seen)
    # The bins not loaded yet (the honest page's and its files', looked ahead, are).
    bins = {bin_of(n) for n in names} - bins_in(m.seen[:start])

    def slow_bins(path, fetch):
        if ".bin-" in path:
            time.sleep(0.3)
        return None

    m.rule = slow_bins
    answers: list[int] = []

    def flood(offset: int) -> None:
        for n in names[offset:] + names[:offset]:
            answers.append(p.get(f"/simple/{n}/", JSON_TYPE)[0])

    threads = [threading.Thread(target=flood, args=(i * 5,)) for i in range(8)]
    for t in threads:
        t.start()
    honest = []
    try:
        deadline = time.monotonic() + 10
        while not any(".bin-" in q for q in m.seen[start:]) and time.monotonic() < deadline:
            time.sleep(0.01)
        for _ in range(6):
            honest.append(timed_get(p, "/simple/honest-flood/"))
            time.sleep(0.05)
    finally:
        for t in threads:
            t.join(60)
    assert all(st == 200 for st, _ in honest), honest
    took = sorted(t for _, t in honest)
    assert took[len(took) // 2] < 0.25 and took[-1] < 1.0, took
    assert answers == [404] * (8 * len(names)), collections.Counter(answers)
    # Each bin fetched once however many requests wanted it at once, nothing else fetched.
    fetched = metadata_fetches(m.seen[start:])
    assert all(c == 1 for c in fetched.values()), fetched
    assert bins_in(list(fetched)) == bins and len(fetched) == len(bins), (fetched, bins)
    # Asked again: answered from memory, the upstream not asked at all.
    seen = len(m.seen)
    for n in names:
        assert p.get(f"/simple/{n}/", JSON_TYPE)[0] == 404
    assert m.seen[seen:] == [], m.seen[seen:]


def test_what_is_remembered_goes_with_new_metadata(serve, proxy, mirror):
    s = serve()
    token = s.token()
    publish(s, token, "steady-proj")
    assert bin_of("steady-proj") != bin_of("late-proj")
    m = mirror(s.base)
    p = proxy(m.base, root_of(s), "--refresh-interval", "0")
    assert p.get("/simple/steady-proj/", JSON_TYPE)[0] == 200
    # Not in the signed metadata: remembered as missing, while the snapshot stays the same.
    for _ in range(2):
        assert p.get("/simple/late-proj/", JSON_TYPE)[0] == 404
    assert sum(q.endswith(f".{bin_of('late-proj')}.json") for q in m.seen) == 1, m.seen
    # A new snapshot lists it: found at once.
    publish(s, token, "late-proj")
    status, _, _, body = p.get("/simple/late-proj/", JSON_TYPE)
    assert status == 200 and b"late_proj-1.0-py3-none-any.whl" in body, (status, body)
    # A changed bin is fetched again, whatever was verified before.
    publish(s, token, "steady-proj", "2.0")
    status, _, _, body = p.get("/simple/steady-proj/", JSON_TYPE)
    assert status == 200 and b"steady_proj-2.0-py3-none-any.whl" in body, (status, body)
    assert p.get("/simple/late-proj/", JSON_TYPE)[0] == 200


def test_health_reports_a_stuck_refresh(serve, proxy, mirror):
    s = serve()
    m = mirror(s.base)
    # A refresh running longer than half the fetch timeout (3 s here) is stuck.
    p = proxy(m.base, root_of(s), "--refresh-interval", "0", "--fetch-timeout", "6")
    assert p.get("/health")[0] == 200
    hit, release = threading.Event(), threading.Event()

    def stall(path, fetch):
        if path.startswith("/metadata/timestamp.json"):
            hit.set()
            release.wait(15)
        return None

    m.rule = stall
    waiting: list[int] = []
    t = threading.Thread(target=lambda: waiting.append(p.get("/simple/anything/", JSON_TYPE)[0]))
    t.start()
    try:
        assert hit.wait(10), m.seen
        t0 = time.monotonic()
        status, body = 200, b""
        while time.monotonic() - t0 < 5.5:
            status, _, _, body = p.get("/health")
            if status == 503:
                break
            time.sleep(0.2)
        stuck_after = time.monotonic() - t0
    finally:
        m.rule = None
        release.set()
        t.join(30)
    assert status == 503 and b"refresh has been in progress" in body, (status, body)
    assert 2.5 < stuck_after < 5.5, stuck_after
    # The refresh completes; the lookup that waited for it is answered; healthy again.
    assert waiting == [404], waiting
    assert p.get("/simple/anything/", JSON_TYPE)[0] == 404
    status, _, _, body = p.get("/health")
    assert status == 200 and body.startswith(b"ok: "), body
