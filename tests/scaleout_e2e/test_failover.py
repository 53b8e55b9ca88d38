"""Failover: three replicas, a burst of N uploads all sent at once, spread over them, and kill -9 of the
leader (the replica whose /health says leader) at an exact point of a publish — the moment
the S3 proxy sees the S3 server accept its write of a bin, of the snapshot, or of
timestamp.json (before the leader reads the answer). A standby's /health says leader and a
newer timestamp.json is in the bucket within 5 s; afterwards every upload answered 200 is
listed, signed and downloadable on every replica (the killed one restarted); no versioned
metadata object was written twice (successful writes per key, counted by the S3 proxy); a
client polling timestamp.json round-robin over the replicas never sees its version go down.

Quick (CI): 20 uploads, one kill point (the snapshot); TUFPI_SCALEOUT_FULL=1: 60 uploads at
each of the three points."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

from scaleout_util import (FULL, VERSIONED, TimestampPoller, burst, check_everywhere, leader_of,
                           make_uploads, post_upload, versioned_written_twice, wait_for, wait_signed,
                           write_counts)

TTL = "2s"
N = 60 if FULL else 20
POINTS = ("bin", "snapshot", "timestamp") if FULL else ("snapshot",)
PROJECTS = ("fail-a", "fail_b", "fail-c")
BOUND = 5.0


def write_at(point: str, bucket: str):
    """Whether an exchange is the S3 server accepting the publish write at `point`."""
    def match(ex) -> bool:
        if ex.status is None or not 200 <= ex.status < 300 or not ex.is_object_write:
            return False
        key = ex.key(bucket) or ""
        if point == "timestamp":
            return key == "metadata/timestamp.json"
        m = VERSIONED.match(key)
        if not m:
            return False
        return m.group(2) == "snapshot" if point == "snapshot" else m.group(2).startswith("bin-")
    return match


def bucket_timestamp(cluster) -> int:
    return json.loads(cluster.bucket.get("metadata/timestamp.json"))["signed"]["version"]


def test_failover(cluster, scratch):
    rs = cluster.start(3, "--publish-interval-ms", "50", "--lease-ttl", TTL, "--max-uploads-per-token", "64",
                       "--max-concurrent-uploads", "64")
    token = rs[0].token()
    root = cluster.root()
    bucket = cluster.bucket.name
    everything = []
    figures = []
    with TimestampPoller(rs) as poller:
        for run, point in enumerate(POINTS):
            leader = leader_of(rs)
            others = [r for r in rs if r is not leader]
            uploads = make_uploads(scratch / "dists", run, N, PROJECTS)
            extra = make_uploads(scratch / "extra", 100 + run, 1, PROJECTS)
            match = write_at(point, bucket)
            armed, killed = threading.Event(), threading.Event()
            at: dict = {}

            def hook(ex, leader=leader, match=match, armed=armed, killed=killed, at=at):
                if armed.is_set() and not killed.is_set() and match(ex):
                    os.kill(leader.pid, signal.SIGKILL)
                    at.update(t=time.monotonic(), key=ex.key(bucket))
                    killed.set()

            def measure(killed=killed, at=at, others=others, extra=extra):
                if not killed.wait(120):
                    return
                t_kill = at["t"]
                v_dead = bucket_timestamp(cluster)  # the last the dead leader wrote
                # Something for the new leader to publish, whatever the burst has left.
                for _ in range(50):
                    st, _, _ = post_upload(others[0].base, extra[0], token)
                    extra[0].statuses.append(st)
                    if st == 200:
                        break
                    time.sleep(0.2)
                while time.monotonic() - t_kill < 60 and ("leader" not in at or "published" not in at):
                    if "leader" not in at:
                        new = [r for r in others if r.is_leader(timeout=1)]
                        if new:
                            at.update(leader=time.monotonic() - t_kill, new=new[0].name)
                    if "published" not in at and bucket_timestamp(cluster) > v_dead:
                        at.update(published=time.monotonic() - t_kill, v_dead=v_dead)
                    time.sleep(0.05)

            cluster.s3_proxy.hooks.append(hook)
            m = threading.Thread(target=measure, daemon=True)
            m.start()
            # All N at once (one client thread each), spread round-robin over the replicas.
            burst(rs, token, uploads, workers=N, retry_for=20,
                  on_ack=lambda n, armed=armed: n >= max(2, N // 4) and armed.set())
            assert killed.wait(30), f"the leader never wrote at {point} after the burst began"
            m.join(90)
            cluster.s3_proxy.hooks.remove(hook)
            leader.kill9()
            acked = [u for u in uploads + extra if u.acked]
            # An answer lost with the killed leader, retried elsewhere and refused as already
            # there: it landed (once), so it must be listed, served and signed everywhere too.
            landed = [u for u in uploads + extra
                      if not u.acked and u.refusals and "already exists" in u.refusals[-1]]
            statuses = sorted({s for u in uploads for s in u.statuses})
            print(f"kill at {point} ({at['key']}): {len(acked)}/{N + 1} acknowledged (+{len(landed)} refused "
                  f"on retry as already there), statuses {statuses}; "
                  f"{at.get('new')} leader after {at.get('leader', float('nan')):.2f}s, timestamp "
                  f"v{at.get('v_dead')}+ published after {at.get('published', float('nan')):.2f}s")
            for u in uploads + extra:
                if u.refusals:
                    print(f"  {u.filename}: answers {u.statuses}, {u.refusals}")
            figures.append((point, at.get("leader"), at.get("published")))
            assert "leader" in at and "published" in at, at
            assert at["published"] <= BOUND and at["leader"] <= BOUND, at
            assert len(acked) >= N // 2, statuses
            everything += acked + landed
            # The killed replica comes back (as a standby) on its data directory.
            leader.start()
            wait_signed(rs, root, everything, scratch / f"wait{run}", timeout=30)
            check_everywhere(rs, root, everything, PROJECTS, scratch / f"check{run}", download_all=False)
        time.sleep(0.5)
    assert len(poller.seen) > 20, poller.seen
    twice, n_versioned = versioned_written_twice(cluster.s3_proxy, bucket)
    counts = write_counts(cluster.s3_proxy, bucket)
    refused = sum(s == 412 for st in counts.values() for s in st)
    print(f"failover (kill point, new leader s, new timestamp s): {figures}; versioned metadata keys "
          f"written {n_versioned}, written twice {len(twice)}; 412 refusals {refused}; timestamp.json "
          f"writes {len(counts.get('metadata/timestamp.json', []))}; poller saw {len(poller.seen)} "
          f"timestamps ({poller.summary()}), going down {len(poller.decreases())} times across replicas; bucket timestamp v{bucket_timestamp(cluster)}")
    assert not twice, twice
    wait_for(lambda: leader_of(rs), 30, "a leader at the end")
    # One replica never goes back; nor does a client whose requests go to any replica.
    assert not poller.decreases_per_replica(), (poller.decreases_per_replica()[:5], poller.timeline())
    assert not poller.decreases(), (poller.decreases()[:5], poller.timeline())
