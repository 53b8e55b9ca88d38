"""Shared helpers for the tufpi <-> python-tuf interop tests.

python-tuf (tuf.api.metadata) and securesystemslib are the reference peer: everything tufpi
writes must load and verify there, and everything they write must verify in tufpi.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Key,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)

# Far enough in the future that nothing expires while the suite runs.
EXPIRES = datetime(2035, 1, 1, tzinfo=timezone.utc)

TOP_LEVEL = ("root", "targets", "snapshot", "timestamp")

# Schemes `tufpi key generate` makes.
TUFPI_SCHEMES = ("ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384")
# Schemes python signs with in the python -> tufpi direction.
PY_SCHEMES = TUFPI_SCHEMES + ("rsassa-pss-sha256",)


@dataclass
class Run:
    """Outcome of one tufpi invocation."""

    args: list[str]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", errors="replace")

    def describe(self) -> str:
        return (
            f"tufpi {' '.join(self.args)} -> rc={self.returncode}\n"
            f"stdout: {self.stdout[:2000]!r}\nstderr: {self.stderr[:2000]!r}"
        )


@dataclass
class TufpiKey:
    """A key pair made by `tufpi key generate`."""

    scheme: str
    priv_path: Path
    pub_path: Path
    keyid: str
    # The public key JSON minus "keyid": exactly what sits in root's "keys".
    key_dict: dict[str, Any]

    def tuf_key(self, keyid: str | None = None) -> Key:
        """The python-tuf Key for root / delegations (keyid defaults to tufpi's)."""
        return Key.from_dict(keyid or self.keyid, json.loads(json.dumps(self.key_dict)))

    def py_signer(self, keyid: str | None = None) -> CryptoSigner:
        """A securesystemslib signer holding the very same private key."""
        priv = load_pem_private_key(self.priv_path.read_bytes(), password=None)
        pub = SSlibKey.from_dict(keyid or self.keyid, json.loads(json.dumps(self.key_dict)))
        return CryptoSigner(priv, pub)


class Tufpi:
    """Runs the tufpi binary."""

    def __init__(self, binary: Path):
        self.binary = binary

    def run(self, *args: str | Path, input: bytes | None = None, timeout: float = 60) -> Run:
        argv = [str(a) for a in args]
        p = subprocess.run(
            [str(self.binary), *argv],
            input=input,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        return Run(argv, p.returncode, p.stdout, p.stderr)

    def ok(self, *args: str | Path, input: bytes | None = None) -> Run:
        r = self.run(*args, input=input)
        assert r.returncode == 0, r.describe()
        return r

    def keygen(self, scheme: str, directory: Path, name: str | None = None) -> TufpiKey:
        directory.mkdir(parents=True, exist_ok=True)
        name = name or scheme
        priv = directory / f"{name}.pem"
        pub = directory / f"{name}.pub.json"
        r = self.ok("key", "generate", "--scheme", scheme, "--out", priv, "--public-out", pub)
        d = json.loads(pub.read_text("utf-8"))
        keyid = d.pop("keyid")
        assert r.out.strip() == keyid, r.describe()
        return TufpiKey(scheme, priv, pub, keyid, d)

    def sign(self, path: Path, key: TufpiKey, keyid: str | None = None) -> Run:
        args: list[str | Path] = ["metadata", "sign", path, "--key", key.priv_path]
        if keyid is not None:
            args += ["--keyid", keyid]
        return self.ok(*args)

    def verify(self, path: Path, delegator: Path, role: str | None = None) -> Run:
        args: list[str | Path] = ["metadata", "verify", path, "--delegator", delegator]
        if role is not None:
            args += ["--role", role]
        return self.run(*args)

    def canonical(self, data: bytes) -> Run:
        return self.run("json", "canonical", "-", input=data)


def expected_verified(role: str, version: int, valid: int, threshold: int) -> str:
    return f"verified: {role} v{version} ({valid}/{threshold} signatures)\n"


def assert_verified(r: Run, role: str, version: int, valid: int, threshold: int) -> None:
    assert r.returncode == 0, r.describe()
    assert r.out == expected_verified(role, version, valid, threshold), r.describe()
    assert r.stderr == b"", r.describe()


def assert_refused(r: Run, *words: str) -> str:
    """tufpi failed cleanly: exit 1, one stderr line starting "error:", naming `words`."""
    assert r.returncode == 1, r.describe()
    assert r.stdout == b"", r.describe()
    text = r.err
    assert text.endswith("\n"), r.describe()
    lines = text.splitlines()
    assert len(lines) == 1, r.describe()
    assert lines[0].startswith("error: "), r.describe()
    low = lines[0].lower()
    for w in words:
        assert w.lower() in low, f"{w!r} not in error line\n{r.describe()}"
    return lines[0]


def py_signer(scheme: str, keyid: str | None = None) -> CryptoSigner:
    """A fresh python key pair for `scheme`."""
    if scheme == "ed25519":
        return CryptoSigner.generate_ed25519(keyid)
    if scheme.startswith("ecdsa-"):
        return CryptoSigner.generate_ecdsa(keyid, scheme)
    if scheme == "rsassa-pss-sha256":
        return CryptoSigner.generate_rsa(keyid, scheme)
    raise ValueError(scheme)


def py_verify(delegator: Metadata, role: str, md: Metadata) -> None:
    """python-tuf's threshold check (raises UnsignedMetadataError / ValueError)."""
    delegator.signed.verify_delegate(role, md.signed_bytes, md.signatures)


def load(path: Path) -> Metadata:
    return Metadata.from_file(str(path))


def raw(path: Path) -> dict[str, Any]:
    return json.loads(path.read_bytes().decode("utf-8"))


def write_raw(path: Path, doc: dict[str, Any], compact: bool = False) -> None:
    """Write a document exactly as python-tuf's JSONSerializer would."""
    if compact:
        text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
    else:
        text = json.dumps(doc, indent=1, separators=(",", ": "), sort_keys=True)
    path.write_bytes(text.encode("utf-8"))


def without_signatures(doc: dict[str, Any]) -> dict[str, Any]:
    d = dict(doc)
    d.pop("signatures", None)
    return d


def sha256_hex(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def target(path: str, data: bytes = b"payload", custom: Any = None) -> TargetFile:
    unrecognized = {} if custom is None else {"custom": custom}
    return TargetFile(len(data), {"sha256": sha256_hex(data)}, path, unrecognized)


def top_level(
    role_keys: dict[str, list[Key]],
    thresholds: dict[str, int] | None = None,
    targets: dict[str, TargetFile] | None = None,
) -> dict[str, Metadata]:
    """Unsigned root, targets, snapshot and timestamp built with python-tuf."""
    thresholds = thresholds or {}
    root = Root(expires=EXPIRES)
    for role in TOP_LEVEL:
        for k in role_keys.get(role, []):
            root.add_key(k, role)
        root.roles[role].threshold = thresholds.get(role, 1)
    tg = Targets(expires=EXPIRES, targets=targets or {"a/pkg-1.0.tar.gz": target("a/pkg-1.0.tar.gz")})
    snap = Snapshot(expires=EXPIRES, meta={"targets.json": MetaFile(1, 1234, {"sha256": "ab" * 32})})
    ts = Timestamp(expires=EXPIRES, snapshot_meta=MetaFile(1, 99, {"sha256": "cd" * 32}))
    return {
        "root": Metadata(root),
        "targets": Metadata(tg),
        "snapshot": Metadata(snap),
        "timestamp": Metadata(ts),
    }


def delegating_targets(
    paths_keys: list[Key], prefix_keys: list[Key], threshold: int = 1
) -> Metadata:
    """Top-level targets delegating, with a `roles` delegation, to
    "paths-role" (glob `paths`) and "prefix-role" (`path_hash_prefixes`)."""
    keys = {k.keyid: k for k in paths_keys + prefix_keys}
    roles = {
        "paths-role": DelegatedRole(
            "paths-role", [k.keyid for k in paths_keys], threshold, False,
            paths=["files/*", "pkgs/*/*.whl"],
        ),
        "prefix-role": DelegatedRole(
            "prefix-role", [k.keyid for k in prefix_keys], threshold, True,
            path_hash_prefixes=["00", "7f", "ff"],
        ),
    }
    tg = Targets(expires=EXPIRES, delegations=Delegations(keys, roles=roles))
    return Metadata(tg)


def succinct_targets(bin_keys: list[Key], bit_length: int = 3, prefix: str = "bins") -> Metadata:
    """Targets metadata with a succinct (TAP 15) hash-bin delegation."""
    keys = {k.keyid: k for k in bin_keys}
    succ = SuccinctRoles([k.keyid for k in bin_keys], 1, bit_length, prefix)
    tg = Targets(expires=EXPIRES, delegations=Delegations(keys, succinct_roles=succ))
    return Metadata(tg)


def write(md: Metadata, path: Path, compact: bool = False) -> Path:
    from tuf.api.serialization.json import JSONSerializer

    path.parent.mkdir(parents=True, exist_ok=True)
    md.to_file(str(path), JSONSerializer(compact=compact))
    return path
