"""Helpers for the `tufpi client` <-> python-tuf interop tests.

python-tuf (tuf.api.metadata + securesystemslib CryptoSigner) writes the repositories, laid out
the way python-tuf's own repository examples publish them:

* consistent snapshot on: `N.root.json` (plus `root.json`), `N.<role>.json` for targets,
  delegated roles and snapshot, `timestamp.json`; each target stored as `dir/HASH.name` for
  every one of its hashes;
* consistent snapshot off: `N.root.json` (plus `root.json`), `<role>.json`; targets stored at
  their path.

`tufpi client` (the binary under test) and python-tuf's ngclient both read them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

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

EXPIRES = datetime(2035, 1, 1, tzinfo=timezone.utc)
TOP_LEVEL = ("root", "timestamp", "snapshot", "targets")
SCHEMES = ("ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "rsassa-pss-sha256")


def generate_signer(scheme: str) -> CryptoSigner:
    if scheme == "ed25519":
        return CryptoSigner.generate_ed25519()
    if scheme.startswith("ecdsa-"):
        return CryptoSigner.generate_ecdsa(scheme=scheme)
    if scheme == "rsassa-pss-sha256":
        return CryptoSigner.generate_rsa(scheme=scheme, size=2048)
    raise ValueError(scheme)


class KeyPool:
    """Lazily generated signers, `get(scheme, i)` is always the same key (RSA keygen is slow)."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, int], CryptoSigner] = {}

    def get(self, scheme: str, i: int = 0) -> CryptoSigner:
        if (scheme, i) not in self._keys:
            self._keys[(scheme, i)] = generate_signer(scheme)
        return self._keys[(scheme, i)]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class PyRepo:
    """A TUF repository written by python-tuf under `base/metadata` and `base/targets`."""

    def __init__(
        self,
        base: Path,
        signers: dict[str, list[CryptoSigner]],
        *,
        consistent: bool = True,
        compact: bool = False,
        meta_hashes: bool = False,
    ) -> None:
        self.base = base
        self.meta_dir = base / "metadata"
        self.targets_dir = base / "targets"
        self.meta_dir.mkdir(parents=True, exist_ok=True)
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        self.consistent = consistent
        self.serializer = JSONSerializer(compact=compact)
        # Whether snapshot/timestamp meta entries carry length + hashes (optional in TUF).
        self.meta_hashes = meta_hashes
        self.signers: dict[str, list[CryptoSigner]] = {r: list(signers[r]) for r in TOP_LEVEL}
        root = Root(expires=EXPIRES, consistent_snapshot=consistent)
        for role in TOP_LEVEL:
            for s in self.signers[role]:
                root.add_key(s.public_key, role)
            root.roles[role].threshold = len(self.signers[role])
        self.md: dict[str, Metadata] = {
            "root": Metadata(root),
            "timestamp": Metadata(Timestamp(expires=EXPIRES)),
            "snapshot": Metadata(Snapshot(expires=EXPIRES)),
            "targets": Metadata(Targets(expires=EXPIRES)),
        }
        self.target_data: dict[str, bytes] = {}
        # Latest bytes published per role, and every root version's bytes.
        self.latest: dict[str, bytes] = {}
        self.roots: dict[int, bytes] = {}
        self.succinct: SuccinctRoles | None = None
        self._published: set[str] = set()
        self._dirty: set[str] = {"targets"}
        self._write_root(self.signers["root"])

    # ---- writing ----

    def _sign(self, role: str, signers: list[CryptoSigner]) -> bytes:
        md = self.md[role]
        md.signatures.clear()
        seen = set()
        for s in signers:
            if s.public_key.keyid in seen:
                continue
            seen.add(s.public_key.keyid)
            md.sign(s, append=True)
        return md.to_bytes(self.serializer)

    def _write_root(self, signers: list[CryptoSigner]) -> None:
        data = self._sign("root", signers)
        version = self.md["root"].signed.version
        (self.meta_dir / f"{version}.root.json").write_bytes(data)
        (self.meta_dir / "root.json").write_bytes(data)
        self.roots[version] = data
        self.latest["root"] = data

    def _write(self, role: str) -> bytes:
        data = self._sign(role, self.signers[role])
        # Clients request `quote(role)`; static servers (and file:// URLs) decode it, so the
        # file on disk carries the role name itself.
        assert "/" not in role and role not in (".", "..")
        name = role
        if self.consistent and role != "timestamp":
            fname = f"{self.md[role].signed.version}.{name}.json"
        else:
            fname = f"{name}.json"
        (self.meta_dir / fname).write_bytes(data)
        self.latest[role] = data
        return data

    def _metafile(self, version: int, data: bytes) -> MetaFile:
        if self.meta_hashes:
            return MetaFile(version, length=len(data), hashes={"sha256": sha256(data)})
        return MetaFile(version)

    def root_path(self, version: int = 1) -> Path:
        return self.meta_dir / f"{version}.root.json"

    # ---- delegations ----

    def delegate(
        self,
        delegator: str,
        name: str,
        signers: list[CryptoSigner],
        *,
        paths: list[str] | None = None,
        path_hash_prefixes: list[str] | None = None,
        terminating: bool = False,
    ) -> None:
        d = self.md[delegator].signed
        if d.delegations is None:
            d.delegations = Delegations(keys={}, roles={})
        d.delegations.roles[name] = DelegatedRole(
            name, [], len(signers), terminating, paths=paths, path_hash_prefixes=path_hash_prefixes
        )
        for s in signers:
            d.add_key(s.public_key, name)
        self.signers[name] = list(signers)
        self.md[name] = Metadata(Targets(expires=EXPIRES))
        self._dirty |= {delegator, name}

    def delegate_bins(self, bit_length: int, signers: list[CryptoSigner], prefix: str = "bin") -> None:
        """Succinct hash bins from top-level targets; every bin is created (and published)."""
        sr = SuccinctRoles([], len(signers), bit_length, prefix)
        t = self.md["targets"].signed
        t.delegations = Delegations(keys={}, succinct_roles=sr)
        for s in signers:
            t.add_key(s.public_key)
        self.succinct = sr
        for name in sr.get_roles():
            self.signers[name] = list(signers)
            self.md[name] = Metadata(Targets(expires=EXPIRES))
            self._dirty.add(name)
        self._dirty.add("targets")

    # ---- targets ----

    def add_target(self, path: str, data: bytes, role: str | None = None) -> TargetFile:
        if role is None:
            role = self.succinct.get_role_for_target(path) if self.succinct else "targets"
        tf = TargetFile.from_data(path, data, ["sha256", "sha512"])
        self.md[role].signed.targets[path] = tf
        self.target_data[path] = data
        self._dirty.add(role)
        for f in self.target_files(path):
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(data)
        return tf

    def target_files(self, path: str) -> list[Path]:
        """Where the target's bytes are served from."""
        data = self.target_data[path]
        if not self.consistent:
            return [self.targets_dir / path]
        d, _, b = path.rpartition("/")
        out = []
        for algo in ("sha256", "sha512"):
            h = hashlib.new(algo, data).hexdigest()
            out.append(self.targets_dir / (f"{d}/{h}.{b}" if d else f"{h}.{b}"))
        return out

    # ---- publishing ----

    def publish(self) -> None:
        """Sign and write every changed targets role, then a new snapshot and timestamp."""
        snap = self.md["snapshot"].signed
        # Delegators after delegatees does not matter for content; sort for determinism.
        for role in sorted(self._dirty):
            if role in self._published:
                self.md[role].signed.version += 1
            data = self._write(role)
            snap.meta[f"{role}.json"] = self._metafile(self.md[role].signed.version, data)
            self._published.add(role)
        if "snapshot" in self._published:
            snap.version += 1
        sdata = self._write("snapshot")
        self._published.add("snapshot")
        ts = self.md["timestamp"].signed
        ts.snapshot_meta = self._metafile(snap.version, sdata)
        if "timestamp" in self._published:
            ts.version += 1
        self._write("timestamp")
        self._published.add("timestamp")
        self._dirty.clear()

    def rotate_root(self, new_keys: dict[str, list[CryptoSigner]], root_threshold: int | None = None) -> int:
        """Publish root N+1 with the given roles' keys replaced; signed by the old and the new
        root keys. Roles whose keys changed get re-signed at the next publish()."""
        old_root_signers = list(self.signers["root"])
        root = self.md["root"].signed
        for role, signers in new_keys.items():
            for keyid in list(root.roles[role].keyids):
                root.revoke_key(keyid, role)
            for s in signers:
                root.add_key(s.public_key, role)
            root.roles[role].threshold = len(signers)
            self.signers[role] = list(signers)
            if role == "targets":
                self._dirty.add("targets")
        if root_threshold is not None:
            root.roles["root"].threshold = root_threshold
        root.version += 1
        self._write_root(old_root_signers + self.signers["root"])
        return root.version

    def tamper_target(self, path: str, data: bytes) -> None:
        for f in self.target_files(path):
            f.write_bytes(data)


@dataclass
class Urls:
    metadata: str
    targets: str


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return f"tufpi {' '.join(self.args)}\n-> rc={self.returncode}\nstdout: {self.stdout[:3000]}\nstderr: {self.stderr[:3000]}"


class Client:
    """One `tufpi client` installation: a metadata dir and a target dir."""

    def __init__(self, binary: Path, workdir: Path, urls: Urls) -> None:
        self.binary = binary
        self.metadata_dir = workdir / "client-metadata"
        self.target_dir = workdir / "client-targets"
        self.urls = urls

    def run(self, *args: str) -> Result:
        argv = [str(a) for a in args]
        env = dict(os.environ)
        env.pop("TUFPI_LOG", None)
        p = subprocess.run(
            [str(self.binary), "client", *argv], capture_output=True, timeout=60, env=env
        )
        return Result(argv, p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))

    def ok(self, *args: str) -> Result:
        r = self.run(*args)
        assert r.returncode == 0, r.describe()
        return r

    def init(self, root: Path) -> Result:
        return self.ok("--metadata-dir", self.metadata_dir, "init", root)

    def refresh_run(self, *extra: str) -> Result:
        return self.run(
            "--metadata-url", self.urls.metadata, "--metadata-dir", self.metadata_dir, *extra, "refresh"
        )

    def refresh(self, *extra: str) -> Result:
        r = self.refresh_run(*extra)
        assert r.returncode == 0, r.describe()
        return r

    def download_run(self, *names: str, extra: tuple[str, ...] = ()) -> Result:
        args: list[str] = ["--metadata-url", self.urls.metadata, "--metadata-dir", self.metadata_dir]
        for n in names:
            args += ["--target-name", n]
        args += ["--target-dir", self.target_dir, "--target-base-url", self.urls.targets, *extra, "download"]
        return self.run(*args)

    def download(self, *names: str, extra: tuple[str, ...] = ()) -> Result:
        r = self.download_run(*names, extra=extra)
        assert r.returncode == 0, r.describe()
        return r

    def target_path(self, name: str) -> Path:
        return self.target_dir / quote(name, safe="")

    def metadata_files(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.metadata_dir.iterdir())}


def assert_metadata_matches(client: Client, repo: PyRepo, expect_roles: set[str] | None = None) -> None:
    """Every file in the client's metadata dir is `<quoted role>.json` holding exactly the
    latest bytes python-tuf published for that role (and nothing else is there)."""
    files = client.metadata_files()
    by_name = {f"{quote(role, safe='')}.json": role for role in repo.latest}
    unknown = sorted(set(files) - set(by_name))
    assert not unknown, f"unexpected files in the metadata dir: {unknown}"
    for fname, data in files.items():
        role = by_name[fname]
        assert data == repo.latest[role], f"{fname}: bytes differ from what python-tuf published"
    if expect_roles is not None:
        have = {by_name[f] for f in files}
        assert expect_roles <= have, f"missing roles in the metadata dir: {sorted(expect_roles - have)}"


def ngclient_download(repo_urls: Urls, root: bytes, names: list[str], workdir: Path) -> dict[str, bytes]:
    """python-tuf's own client on the same repository (sanity: the repository is valid)."""
    from tuf.ngclient import Updater

    mdir = workdir / "ng-metadata"
    tdir = workdir / "ng-targets"
    if mdir.exists():
        shutil.rmtree(mdir)
    mdir.mkdir(parents=True)
    tdir.mkdir(parents=True, exist_ok=True)
    u = Updater(str(mdir), repo_urls.metadata, str(tdir), repo_urls.targets, bootstrap=root)
    u.refresh()
    out = {}
    for n in names:
        info = u.get_targetinfo(n)
        assert info is not None, f"ngclient: {n} not found"
        out[n] = Path(u.download_target(info)).read_bytes()
    return out
