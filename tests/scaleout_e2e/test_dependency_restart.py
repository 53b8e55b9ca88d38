"""Dependency restarts: during a burst of uploads over two replicas, the proxy in front of
PostgreSQL (then, in the second case, of the S3 server) is cut — open connections reset, new
ones refused, as when the server restarts — for 6 s (11 s for S3), and restored. Uploads meanwhile are
answered 503 with Retry-After (at least one is; none gets a 500 or any other 5xx), a client
that retries after Retry-After gets every upload in, twine's own retries succeed, and
nothing acknowledged is lost: listed, served and signed on both replicas afterwards."""

from __future__ import annotations

import threading
import time

import pytest
from scaleout_util import (FULL, TimestampPoller, burst, check_everywhere, leader_of, make_uploads,
                           versioned_written_twice, wait_signed)
from test_index_e2e import twine

N = 40 if FULL else 20
# How long each dependency is away. A replica waits up to 5 s for a PostgreSQL connection before
# it answers 503, so a shorter PostgreSQL outage is mostly ridden out without one: 6 s shows
# the 503s (and outlasts the 2 s lease). An upload's writes wait out an unreachable S3 store
# for 8 s (a short outage costs twine nothing): 11 s shows the 503s.
CUT = {"postgres": 6.0, "s3": 11.0}


@pytest.mark.parametrize("dep", ["postgres", "s3"])
def test_dependency_restart(cluster, clients, scratch, dep):
    rs = cluster.start(2, "--publish-interval-ms", "50", "--lease-ttl", "2s", "--max-uploads-per-token", "64")
    token = rs[0].token()
    root = cluster.root()
    proxy = cluster.pg_proxy if dep == "postgres" else cluster.s3_proxy
    projects = (f"{dep}-a", f"{dep}_b")
    uploads = make_uploads(scratch / "d", 0, N, projects)
    by_twine = make_uploads(scratch / "t", 1, 2 * len(rs), projects)
    twine_results: dict[str, tuple[int, str]] = {}
    health_during: dict[str, dict] = {}
    cut_at = max(2, N // 4)
    started = threading.Event()

    def twine_run(r, files):
        t0 = time.monotonic()
        rc, text = twine(clients, r, token, *[u.path for u in files])
        twine_results[r.name] = rc, f"[twine took {time.monotonic() - t0:.2f}s, started {t0 - cut_t[0]:.2f}s into the cut]\n{text}"
        (scratch / f"twine-{r.name}.txt").write_text(twine_results[r.name][1])

    cut_t = [0.0]

    def probe(r):
        t1 = time.monotonic()
        try:
            h = r.health(timeout=15)
            health_during[r.name] = {"answered_in_s": round(time.monotonic() - t1, 2),
                                     **{k: h.get(k) for k in ("status", "database", "storage")}}
        except OSError as e:
            health_during[r.name] = {"error": repr(e)}

    def outage():
        proxy.cut()
        cut_t[0] = time.monotonic()
        started.set()
        t0 = time.monotonic()
        # twine during the outage: one run per replica, as a user would.
        ts = [threading.Thread(target=twine_run, args=(r, by_twine[i::len(rs)])) for i, r in enumerate(rs)]
        for t in ts:
            t.start()
        # /health during the outage, asked in the background: the restore keeps its time.
        hs = [threading.Thread(target=probe, args=(r,), daemon=True) for r in rs]
        time.sleep(1.0)
        for h in hs:
            h.start()
        time.sleep(max(0.0, CUT[dep] - (time.monotonic() - t0)))
        proxy.restore()
        cut_t.append(time.monotonic() - t0)
        for t in ts + hs:
            t.join(180)

    out = threading.Thread(target=outage, daemon=True)
    with TimestampPoller(rs) as poller:
        burst(rs, token, uploads, workers=8, retry_for=60,
              on_ack=lambda n: n == cut_at and out.start())
        assert started.is_set(), "the burst ended before the cut"
        out.join(240)
        assert not out.is_alive()
        statuses = [s for u in uploads for s in u.statuses]
        got = {s: statuses.count(s) for s in sorted(set(statuses))}
        with_retry_after = sum(1 for u in uploads for s, ra in zip(u.statuses, u.retry_after)
                               if s == 503 and ra)
        print(f"{dep} cut for {cut_t[1]:.2f}s after {cut_at} acks: answers {got}, 503 with Retry-After "
              f"{with_retry_after}, {sum(1 for u in uploads if u.acked)}/{N} acknowledged; twine: "
              + ", ".join(f"{n} rc={rc}" for n, (rc, _) in twine_results.items()))
        print("health during the cut:", health_during)
        for n, (rc, text) in twine_results.items():
            if "503" in text or "Retry" in text:
                print(f"twine through {n}:", *[ln for ln in text.splitlines() if "Retry" in ln or "503" in ln][:6],
                      sep="\n  ")
        assert not [s for s in statuses if s >= 500 and s != 503], got
        assert 0 not in got, f"unanswered uploads: {got}"
        # A 503 (or a reset) whose upload committed all the same — the answer to COMMIT lost
        # with the connection — is refused on retry as already there: it landed, so it must
        # be entirely there, like every acknowledged one.
        landed = [u for u in uploads if not u.acked and u.refusals and "already exists" in u.refusals[-1]]
        for u in landed:
            print(f"  {u.filename}: answers {u.statuses}, then {u.refusals[-1]}")
        not_in = [(u.filename, u.statuses, u.refusals) for u in uploads if not u.acked and u not in landed]
        assert not not_in, not_in
        twine_ok = {n for n, (rc, _) in twine_results.items() if rc == 0}
        for i, r in enumerate(rs):
            if r.name in twine_ok:
                for u in by_twine[i::len(rs)]:
                    u.statuses.append(200)
        acked = [u for u in uploads + by_twine if u.acked] + landed
        wait_signed(rs, root, acked, scratch / "w", timeout=30)
        check_everywhere(rs, root, acked, projects, scratch / "check", download_all=False)
    twice, n = versioned_written_twice(cluster.s3_proxy, cluster.bucket.name)
    print(f"versioned metadata keys written {n}, twice {len(twice)}; timestamps seen: {poller.summary()}")
    assert not twice, twice
    for r in rs:
        h = r.health()
        assert h.get("status") == "ok", (r.name, h)
    leader_of(rs, 15)  # one replica, and only one, says it leads
    assert with_retry_after >= 1, f"no 503 with Retry-After during the {dep} outage: {got}"
    for n, (rc, text) in twine_results.items():
        assert rc == 0, f"twine through {n} during the {dep} outage:\n{text}"
    # One replica never goes back; nor does a client whose requests go to any replica.
    assert not poller.decreases_per_replica(), (poller.decreases_per_replica()[:5], poller.timeline())
    assert not poller.decreases(), (poller.decreases()[:5], poller.timeline())
