"""Runner for the tough peer (awslabs/tough, the Rust TUF client): interop/tough-client, a
small standalone program built outside the workspace (its own Cargo.lock and target dir), that
loads a repository with tough and downloads the named targets, each verified by tough.

    tough-client --root ROOT.json --metadata-url URL --targets-url URL --datastore DIR \\
        --out DIR NAME...

Exit 0: every NAME saved as OUT/<NAME percent-encoded whole> (tough_out_path; the same name
clients_util.out_name gives). Exit 1: one stderr line per failure,
`FAILED <NAME>: <tough's error with its causes>` (a repository that fails to load fails every
NAME with the same error). Exit 2: usage error.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent.parent
MANIFEST = ROOT / "interop" / "tough-client" / "Cargo.toml"

# Layouts tough reads, by experiment: tough 0.24.0 run on every layout clients_util builds
# (clients_util.LAYOUTS, BLAKE2B_LAYOUTS and WRONG_BLAKE2B_LAYOUT, as built there).
# - Read: the --hash-prefix-bins layouts (`repo init --hash-prefix-bins`: classic
#   path_hash_prefixes bins), provided each target is also served at tough_target_path
#   (tough_target_path explains why; without that copy only names with no `/` download, the
#   others are 404s; clients_util's static sites serve it). In the suite: "hash-prefix",
#   "targets-online-hash-prefix" (--targets-online too), "rotated-root-hash-prefix" (two root
#   rotations: tough walks 1 -> 2 -> 3) and the blake2b-256 ones (tough verifies sha256 and
#   ignores every other listed hash, even a wrong one). Also read, by earlier experiment with
#   --hash-prefix-bins: an online-key rotation, a bulk import, sha512, and 14-bit hash-prefix
#   bins (tough loads every bin up front: 16,384 of them take about 25 s).
# - Refused: every layout with TAP 15 succinct bins, tufpi's default: "succinct-4",
#   "succinct-14", "targets-online" (plain --targets-online is succinct too), "import",
#   "consistent-snapshot", "rotated-root", "rotated-online", "sha256+blake2b-256" and the
#   `tufpi serve` layouts "index-4", "index-14", "index-4-sha256+blake2b-256". Each fails to
#   load with "Failed to parse targets metadata: missing field `roles` at line 1 column N":
#   tough's `Delegations` (src/schema/mod.rs) has a required `roles` list and no
#   `succinct_roles`, so the first role delegating with `succinct_roles` (bins; targets in
#   targets-online) does not parse. (In "rotated-root" it walks the root chain to v3 first.)
TOUGH_LAYOUTS: frozenset[str] = frozenset({
    "hash-prefix",
    "targets-online-hash-prefix",
    "rotated-root-hash-prefix",
    "sha256+blake2b-256-hash-prefix",
    "sha256+wrong-blake2b-256-hash-prefix",
})

_lock = threading.Lock()
_binary: Path | None = None


def _target_dir() -> Path:
    """Where cargo puts the build: $TOUGH_CLIENT_TARGET_DIR, else interop/tough-client/target
    (never the workspace's target dir, so the workspace builds are left alone)."""
    env = os.environ.get("TOUGH_CLIENT_TARGET_DIR")
    return Path(env) if env else MANIFEST.parent / "target"


def tough_binary() -> Path:
    """Build interop/tough-client (debug, --locked) once per process; the binary's path."""
    global _binary
    with _lock:
        if _binary is None:
            target_dir = _target_dir()
            env = dict(os.environ, CARGO_TARGET_DIR=str(target_dir))
            p = subprocess.run(
                ["cargo", "build", "--locked", "--manifest-path", str(MANIFEST)],
                cwd=MANIFEST.parent,
                env=env,
                capture_output=True,
                text=True,
            )
            if p.returncode != 0:
                raise RuntimeError(f"building tough-client failed ({p.returncode}):\n{p.stderr[-4000:]}")
            path = target_dir / "debug" / "tough-client"
            if not path.is_file():
                raise RuntimeError(f"tough-client built but {path} is missing")
            _binary = path
        return _binary


def run_tough(
    root: Path,
    metadata_url: str,
    targets_url: str,
    names: list[str],
    out_dir: Path,
    datastore: Path,
    *,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """tough loads the repository (trusting `root`) and downloads `names` into `out_dir` (each
    at tough_out_path). `datastore` keeps tough's trusted metadata between runs (reuse
    it for rollback checks, or pass a fresh directory). Never raises on a failed download:
    look at returncode and stderr (or failures())."""
    out_dir.mkdir(parents=True, exist_ok=True)
    datastore.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(tough_binary()),
        "--root", str(root),
        "--metadata-url", metadata_url,
        "--targets-url", targets_url,
        "--datastore", str(datastore),
        "--out", str(out_dir),
        "--", *names,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def tough_target_path(name: str, data: bytes) -> str:
    """The path, under the targets URL, where tough fetches target `name` from a
    consistent-snapshot repository: `SHA256.NAME`, the digest before the WHOLE target path
    (tough 0.24.0 src/cache.rs `target_digest_and_filename`), not before its base name as the
    TUF spec, python-tuf and tufpi have it (`DIR/SHA256.BASENAME`). The two agree only for
    names without a `/`; for others a test must serve a copy here for tough to find it."""
    return f"{hashlib.sha256(data).hexdigest()}.{name}"


def tough_out_path(out_dir: Path, name: str) -> Path:
    """Where run_tough saves target `name`: the name percent-encoded whole."""
    return out_dir / quote(name, safe="")


def failures(p: subprocess.CompletedProcess | str) -> dict[str, str]:
    """NAME → tough's error, from run_tough's output (or its stderr)."""
    out: dict[str, str] = {}
    stderr = p if isinstance(p, str) else p.stderr
    for line in stderr.splitlines():
        if line.startswith("FAILED "):
            name, _, err = line.removeprefix("FAILED ").partition(": ")
            out[name] = err
    return out
