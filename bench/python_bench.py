"""python-tuf side of the tufpi benchmark: the same work as the Rust side, timed the same way.

Reads the files `tufpi-bench` wrote into --dir, then for the snapshot and the bin:
  canonicalize+sign: Metadata.from_bytes(unsigned bytes) -> md.sign(CryptoSigner)
  verify:            Metadata.from_bytes(signed bytes) -> delegator.verify_delegate(role, ...)
where the delegator is root.json for the snapshot and targets.json (succinct bins) for the bin.
Prints one JSON object on stdout: timings in ms per iteration, and the signatures made.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata


def timed(fn, iterations):
    """Run fn once to warm up, then `iterations` times; return (ms list, last result)."""
    result = fn()
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return times, result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, type=Path)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--bin-role", default="bin-0000")
    args = ap.parse_args()
    d = args.dir

    pem = (d / "key.pem").read_bytes()
    signer = CryptoSigner(load_pem_private_key(pem, password=None))
    root = Metadata.from_bytes((d / "root.json").read_bytes()).signed
    targets = Metadata.from_bytes((d / "targets.json").read_bytes()).signed

    cases = [
        ("snapshot", "snapshot", root),
        ("bin", args.bin_role, targets),
    ]
    out = {"keyid": signer.public_key.keyid, "results": {}}
    for name, role, delegator in cases:
        unsigned = (d / f"{name}.unsigned.json").read_bytes()
        signed = (d / f"{name}.signed.json").read_bytes()

        def sign(unsigned=unsigned):
            md = Metadata.from_bytes(unsigned)
            return md.sign(signer)

        def verify(signed=signed, role=role, delegator=delegator):
            md = Metadata.from_bytes(signed)
            delegator.verify_delegate(role, md.signed_bytes, md.signatures)
            return md

        sign_ms, sig = timed(sign, args.iterations)
        verify_ms, _ = timed(verify, args.iterations)
        out["results"][name] = {
            "sign_ms": sign_ms,
            "verify_ms": verify_ms,
            "sig": sig.signature,
        }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
