"""python-tuf side of the repository benchmark (bench/src/bin/repo_bench.rs): the same work
with python-tuf 7.0.1 and securesystemslib's CryptoSigner (ed25519), written as compact JSON.

Layout as tufpi's (PEP 458 + TAP 15): root; targets -> bins (path_hash_prefixes 0..f);
bins -> 16,384 succinct bins (bit_length 14, "bin-0000".."bin-3fff"); snapshot; timestamp.
Records are identical to tufpi's (bench/src/repo/records.rs).

Scenarios, each in a child process of its own (peak RSS = ru_maxrss of that process):
  init:   generate keys, build + sign + write 16,384 empty bins, bins, targets, root,
          snapshot, timestamp;
  full:   (keys and top-level roles untimed) N records -> TargetFile into their bins, sign and
          write every bin, snapshot, timestamp; then, in memory, `reps` times: add one target
          to its bin, bump, sign, write bin + snapshot (16,386 entries) + timestamp; then the
          stream: a producer thread appends single-target adds to an in-memory queue for
          `secs` while the publisher takes up to `batch` at a time, re-signs the touched bins,
          snapshot and timestamp; then the same with adds offered at `rate` per second.
Prints `key=value` lines (ms, MB, per second) on stdout.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import resource
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

BIT_LENGTH = 14
QUEUE_CAP = 1_000_000  # stream: the producer waits while this many adds are queued


def emit(key: str, value: float) -> None:
    print(f"{key}={value}", flush=True)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def percentile(xs: list[float], p: float) -> float:
    v = sorted(xs)
    if not v:
        return float("nan")
    rank = max(1, -(-int(p * len(v)) // 100))  # ceil(p/100 * n), nearest rank
    return v[min(rank, len(v)) - 1]


def record(i: int) -> tuple[str, int, dict[str, str]]:
    """Record i, exactly as tufpi's bench makes it."""
    seed = hashlib.sha256(b"tufpi-repo-bench" + i.to_bytes(8, "big")).digest()
    s = seed.hex()
    path = f"packages/{s[:2]}/{s[2:4]}/{s[4:]}/proj-1.0-py3-none-any.whl"
    length = 2000 + int.from_bytes(seed[:8], "big") % 5_000_000
    hashes = {
        "sha256": hashlib.sha256(seed).hexdigest(),
        "blake2b-256": hashlib.blake2b(seed, digest_size=32).hexdigest(),
    }
    return path, length, hashes


class Repo:
    """A PEP 458 repository held in memory, written as consistent-snapshot files."""

    def __init__(self, d: Path) -> None:
        self.mdir = d / "metadata"
        self.mdir.mkdir(parents=True)
        self.ser = JSONSerializer(compact=True)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        self.online_exp = now + timedelta(days=1)
        self.offline_exp = now + timedelta(days=365)
        self.signers = {r: CryptoSigner.generate_ed25519() for r in ("root", "targets", "bins", "online")}
        self.online = self.signers["online"]
        self.sr = SuccinctRoles([self.online.public_key.keyid], 1, BIT_LENGTH, "bin")
        self.bins = {n: Targets(version=1, expires=self.online_exp) for n in self.sr.get_roles()}
        self.snapshot = Snapshot(version=1, expires=self.online_exp)
        self.timestamp = Timestamp(version=1, expires=self.online_exp)

    def write(self, signed, signer, fname: str) -> bytes:
        md = Metadata(signed)
        md.sign(signer)
        data = md.to_bytes(self.ser)
        (self.mdir / fname).write_bytes(data)
        return data

    def write_bin(self, name: str) -> None:
        b = self.bins[name]
        self.write(b, self.online, f"{b.version}.{name}.json")
        self.snapshot.meta[f"{name}.json"] = MetaFile(b.version)

    def write_top(self) -> None:
        """root, targets (-> bins for every path) and bins (-> succinct bin-n)."""
        s = self.signers
        root = Root(expires=self.offline_exp, consistent_snapshot=True)
        root.add_key(s["root"].public_key, "root")
        root.add_key(s["targets"].public_key, "targets")
        for r in ("snapshot", "timestamp"):
            root.add_key(self.online.public_key, r)
        targets = Targets(expires=self.offline_exp)
        bins_key = s["bins"].public_key
        role = DelegatedRole("bins", [bins_key.keyid], 1, True, path_hash_prefixes=[f"{d:x}" for d in range(16)])
        targets.delegations = Delegations({bins_key.keyid: bins_key}, roles={"bins": role})
        bins = Targets(expires=self.offline_exp)
        bins.delegations = Delegations({}, succinct_roles=self.sr)
        bins.add_key(self.online.public_key)
        self.write(bins, s["bins"], "1.bins.json")
        self.write(targets, s["targets"], "1.targets.json")
        self.write(root, s["root"], "1.root.json")
        self.snapshot.meta["bins.json"] = MetaFile(1)
        self.snapshot.meta["targets.json"] = MetaFile(1)

    def write_snapshot_timestamp(self) -> None:
        data = self.write(self.snapshot, self.online, f"{self.snapshot.version}.snapshot.json")
        self.timestamp.snapshot_meta = MetaFile(
            self.snapshot.version, len(data), {"sha256": hashlib.sha256(data).hexdigest()}
        )
        self.write(self.timestamp, self.online, "timestamp.json")

    def add(self, i: int) -> str:
        return self.add_record(record(i))

    def add_record(self, rec: tuple[str, int, dict[str, str]]) -> str:
        path, length, hashes = rec
        name = self.sr.get_role_for_target(path)
        self.bins[name].targets[path] = TargetFile(length, hashes, path)
        return name

    def publish(self, touched) -> None:
        """Re-sign touched bins (next version), then snapshot and timestamp."""
        for name in touched:
            self.bins[name].version += 1
            self.bins[name].expires = self.online_exp
            self.write_bin(name)
        self.snapshot.version += 1
        self.timestamp.version += 1
        self.write_snapshot_timestamp()


def scenario_init(d: Path) -> None:
    t0 = time.perf_counter()
    repo = Repo(d)
    for name in repo.bins:
        repo.write_bin(name)
    repo.write_top()
    repo.write_snapshot_timestamp()
    emit("init_ms", (time.perf_counter() - t0) * 1000)
    emit("init_rss_mb", rss_mb())
    emit("bins", len(repo.bins))


def stream(repo: Repo, secs: float, batch: int, rate: float, prefix: str) -> None:
    """Single-target adds offered as fast as possible (rate 0) or at `rate` per second."""
    first = 2_000_000_000 + sum(len(b.targets) for b in repo.bins.values())
    queue: collections.deque = collections.deque()
    done = threading.Event()
    t0 = time.perf_counter()

    def produce() -> None:
        # Like tufpi's producer: make each record, then queue it (here in memory, bounded).
        i = first
        while time.perf_counter() - t0 < secs:
            if len(queue) >= QUEUE_CAP:
                time.sleep(0.001)
                continue
            if rate > 0:
                wait = t0 + (i - first) / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            queue.append((record(i), time.perf_counter()))
            i += 1
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    lat: list[float] = []
    timestamps = 0
    last_pub = t0
    # The publisher drains the queue for at most 3 x secs; adds still queued then count as
    # enqueued, not published.
    while time.perf_counter() - t0 < 3 * secs:
        if not queue:
            if done.is_set() and not queue:
                break
            time.sleep(0.001)
            continue
        items = [queue.popleft() for _ in range(min(batch, len(queue)))]
        touched = {repo.add_record(r) for r, _ in items}
        repo.publish(sorted(touched))
        last_pub = time.perf_counter()
        timestamps += 1
        lat.extend((last_pub - t) * 1000 for _, t in items)
    producer.join()
    enqueued_total = len(lat) + len(queue)
    span = max(last_pub - t0, secs)
    emit(f"{prefix}_secs", secs)
    emit(f"{prefix}_enqueued", enqueued_total)
    emit(f"{prefix}_enqueue_per_s", enqueued_total / secs)
    emit(f"{prefix}_published", len(lat))
    emit(f"{prefix}_per_s", len(lat) / span)
    emit(f"{prefix}_drain_ms", (span - secs) * 1000)
    emit(f"{prefix}_timestamps", timestamps)
    emit(f"{prefix}_lat_p50_ms", percentile(lat, 50))
    emit(f"{prefix}_lat_p99_ms", percentile(lat, 99))


def scenario_full(d: Path, n: int, reps: int, secs: float, batch: int, rate: float) -> None:
    t0 = time.perf_counter()
    for i in range(n):  # making the records alone (also inside the timed build below)
        record(i)
    emit("full_gen_ms", (time.perf_counter() - t0) * 1000)
    repo = Repo(d)
    repo.write_top()
    t0 = time.perf_counter()
    for i in range(n):
        repo.add(i)
    for name in repo.bins:
        repo.write_bin(name)
    repo.write_snapshot_timestamp()
    emit("full_ms", (time.perf_counter() - t0) * 1000)
    emit("full_rss_mb", rss_mb())
    emit("full_targets", sum(len(b.targets) for b in repo.bins.values()))

    times = []
    for k in range(reps):
        t0 = time.perf_counter()
        repo.publish([repo.add(n + k)])
        times.append((time.perf_counter() - t0) * 1000)
    for q in (50, 90, 99):
        emit(f"one_p{q}_ms", percentile(times, q))
    emit("one_reps", reps)
    if secs > 0:
        stream(repo, secs, batch, 0, "stream")
        stream(repo, secs, batch, rate, "paced")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, type=Path)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--secs", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=5000.0)
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--scenario", choices=["init", "full"])
    a = ap.parse_args()
    if a.scenario == "init":
        scenario_init(a.dir)
    elif a.scenario == "full":
        scenario_full(a.dir, a.n, a.reps, a.secs, a.batch, a.rate)
    else:
        for name in ("init", "full"):
            d = a.dir / name
            print(f"[python-tuf {name}] ...", file=sys.stderr, flush=True)
            args = ["--dir", str(d), "--n", str(a.n), "--reps", str(a.reps), "--secs", str(a.secs), "--rate", str(a.rate), "--batch", str(a.batch)]
            subprocess.run([sys.executable, __file__, "--scenario", name, *args], check=True)
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
