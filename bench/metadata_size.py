"""Metadata size by target hashes (issue 11): one repository of N PyPI-like targets imported
under each `--target-hashes` choice; prints the bytes of the bins, the snapshot and the
timestamp as stored and gzip-compressed (as `tufpi serve` sends them), with the ratio to
sha256 alone. Sizes, not times: any build of tufpi gives the same figures."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

CHOICES = ["sha256", "sha256,blake2b-256", "sha256,sha512"]


def write_targets(path: Path, n: int, seed: int) -> None:
    """N wheel targets under PyPI's content-addressed paths, with every digest a choice needs."""
    rng = random.Random(seed)
    with path.open("w") as f:
        for i in range(n):
            data = f"{i}:{rng.random()}".encode()
            b2 = hashlib.blake2b(data, digest_size=32).hexdigest()
            name = f"project{i % 20000}-{i // 20000}.{i % 7}.0-py3-none-any.whl"
            rec = {
                "path": f"packages/{b2[:2]}/{b2[2:4]}/{b2[4:]}/{name}",
                "length": rng.randrange(1_000, 50_000_000),
                "hashes": {
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "blake2b-256": b2,
                    "sha512": hashlib.sha512(data).hexdigest(),
                },
            }
            f.write(json.dumps(rec) + "\n")


def measure(meta: Path) -> dict[str, tuple[int, int]]:
    """role group -> (bytes, gzip bytes) of the current files."""
    ts = (meta / "timestamp.json").read_bytes()
    sv = json.loads(ts)["signed"]["meta"]["snapshot.json"]["version"]
    snap = (meta / f"{sv}.snapshot.json").read_bytes()
    out = {"timestamp": [0, 0], "snapshot": [0, 0], "bins (bin-n)": [0, 0]}

    def add(group: str, data: bytes) -> None:
        out[group][0] += len(data)
        out[group][1] += len(gzip.compress(data, 6))

    add("timestamp", ts)
    add("snapshot", snap)
    for name, m in json.loads(snap)["signed"]["meta"].items():
        role = name.removesuffix(".json")
        if role in ("targets", "bins"):
            continue
        add("bins (bin-n)", (meta / f"{m['version']}.{role}.json").read_bytes())
    return {k: (v[0], v[1]) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tufpi", required=True)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--bits", type=int, default=14)
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tufpi-metasize-", dir=args.work))
    try:
        src = work / "targets.jsonl"
        write_targets(src, args.n, seed=458)
        results = {}
        for choice in CHOICES:
            repo = work / choice.replace(",", "+")
            run = lambda *a: subprocess.run([args.tufpi, "repo", *a], check=True, capture_output=True, text=True)
            run("init", "--repo", str(repo), "--dev-keys", "--bins-bit-length", str(args.bits), "--target-hashes", choice)
            run("import", "--repo", str(repo), "--from-jsonl", str(src))
            results[choice] = measure(repo / "metadata")
            shutil.rmtree(repo)
        base = results["sha256"]
        print(f"metadata size, {args.n:,} targets in {1 << args.bits:,} succinct bins (bytes; gzip as served)")
        print(f"{'target hashes':<20} {'files':<14} {'bytes':>13} {'ratio':>6} {'gzip':>13} {'ratio':>6} {'per target':>10}")
        for choice, groups in results.items():
            for group, (raw, gz) in groups.items():
                b_raw, b_gz = base[group]
                per = f"{raw / args.n:.0f}" if group.startswith("bins") else ""
                print(f"{choice:<20} {group:<14} {raw:>13,} {raw / b_raw:>5.2f}x {gz:>13,} {gz / b_gz:>5.2f}x {per:>10}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
