"""Fencing: SIGSTOP the leader in the middle of a publish (the moment the S3 server has
accepted its write of a bin, before the leader reads the answer) for longer than its lease,
let the standby take the lease and publish, then SIGCONT the old leader: its next write is
refused (its log says so: fenced by the lease term, or timestamp.json replaced / a failed
precondition), it is no longer leader, and the repository stays consistent: every upload
answered 200 is listed, served and signed on both replicas (python-tuf from 1.root.json),
timestamp versions never went down, and no versioned metadata object was written twice."""

from __future__ import annotations

import json
import re
import threading
import time

from scaleout_util import (VERSIONED, TimestampPoller, burst, check_everywhere, leader_of, make_uploads,
                           versioned_written_twice, wait_for, wait_signed)

TTL = 2.0
PROJECTS = ("fence-a", "fence_b")
REFUSAL = re.compile(r"fenced|precondition|replaced", re.I)


def bucket_timestamp(cluster) -> int:
    return json.loads(cluster.bucket.get("metadata/timestamp.json"))["signed"]["version"]


def test_fencing(cluster, scratch):
    rs = cluster.start(2, "--publish-interval-ms", "50", "--lease-ttl", f"{TTL:g}s",
                       "--max-uploads-per-token", "64")
    token = rs[0].token()
    root = cluster.root()
    bucket = cluster.bucket.name
    old = leader_of(rs)
    (standby,) = [r for r in rs if r is not old]
    first = make_uploads(scratch / "d", 0, 4, PROJECTS)
    burst(rs, token, first, workers=4)
    assert all(u.acked for u in first), [u.statuses for u in first]
    wait_signed(rs, root, first, scratch / "w0")

    stopped = threading.Event()
    at: dict = {}

    def hook(ex):
        if stopped.is_set() or ex.status is None or not 200 <= ex.status < 300 or not ex.is_object_write:
            return
        m = VERSIONED.match(ex.key(bucket) or "")
        if m and m.group(2).startswith("bin-"):
            old.sigstop()
            at.update(t=time.monotonic(), key=ex.key(bucket))
            stopped.set()

    with TimestampPoller(rs) as poller:
        cluster.s3_proxy.hooks.append(hook)
        during = make_uploads(scratch / "d", 1, 6, PROJECTS)
        burst([standby], token, during, workers=3)
        assert stopped.wait(20), "the leader wrote no bin"
        cluster.s3_proxy.hooks.remove(hook)
        v_stop = bucket_timestamp(cluster)
        log_mark = len(old.log())
        print(f"SIGSTOP {old.name} (pid {old.pid}) after its write of {at['key']}; timestamp v{v_stop}")
        # The standby takes the lapsed lease and publishes (more uploads to publish, too).
        later = make_uploads(scratch / "d", 2, 4, PROJECTS)
        burst([standby], token, later, workers=2)
        wait_for(lambda: standby.is_leader(), 4 * TTL + 5, "the standby takes the lease")
        t_leader = time.monotonic() - at["t"]
        wait_for(lambda: bucket_timestamp(cluster) > v_stop, 15, "the standby publishes")
        t_pub = time.monotonic() - at["t"]
        lease = [row for row in cluster.leases() if row[0] == "publisher"]
        print(f"{standby.name} leader {t_leader:.2f}s after the stop, published timestamp "
              f"v{bucket_timestamp(cluster)} after {t_pub:.2f}s; lease {lease}")
        time.sleep(max(0.0, TTL + 0.5 - (time.monotonic() - at["t"])))
        old.sigcont()
        t_cont = time.monotonic()
        refusal = wait_for(lambda: [ln for ln in old.log()[log_mark:].splitlines() if REFUSAL.search(ln)],
                           10, f"{old.name}'s refusal in its log after SIGCONT")
        print(f"{old.name} after SIGCONT ({time.monotonic() - t_cont:.2f}s):", *refusal[:3], sep="\n  ")
        assert not old.is_leader(), old.health()
        assert standby.is_leader(), standby.health()
        # Uploads go on, through both replicas.
        after = make_uploads(scratch / "d", 3, 4, PROJECTS)
        burst(rs, token, after, workers=4)
        acked = [u for u in first + during + later + after if u.acked]
        assert len(acked) == len(first + during + later + after), \
            [(u.filename, u.statuses) for u in during + later + after if not u.acked]
        wait_signed(rs, root, acked, scratch / "w1")
        check_everywhere(rs, root, acked, PROJECTS, scratch / "check")
        time.sleep(0.3)
    twice, n = versioned_written_twice(cluster.s3_proxy, bucket)
    print(f"versioned metadata keys written {n}, twice {len(twice)}; poller saw {len(poller.seen)} "
          f"timestamps ({poller.summary()}), going down {len(poller.decreases())} times across replicas; bucket timestamp v{bucket_timestamp(cluster)}")
    assert not twice, twice
    # One replica never goes back; nor does a client whose requests go to any replica.
    assert not poller.decreases_per_replica(), (poller.decreases_per_replica()[:5], poller.timeline())
    assert not poller.decreases(), (poller.decreases()[:5], poller.timeline())
