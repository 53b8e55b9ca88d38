"""Helpers for the `tufpi repo` interop tests: a CLI-driven repository with its served target
tree (over the shared loopback server, tests/static_server.py)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from static_server import Server
from tuf.ngclient import Updater


def hashes_of(data: bytes) -> dict[str, str]:
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "blake2b-256": hashlib.blake2b(data, digest_size=32).hexdigest(),
    }


class Repo:
    """A repository made and changed with the tufpi CLI, with a target tree next to it:
    BASE/repo (the repository; BASE/repo/metadata is served as /metadata/) and BASE/targets
    (served as /targets/: every file under its path and under dir/HASH.basename for each of
    its hashes, as consistent-snapshot clients fetch it)."""

    def __init__(self, bin_: Path, base: Path) -> None:
        self.bin = bin_
        self.base = base
        self.dir = base / "repo"
        self.meta = self.dir / "metadata"
        self.files = base / "files"
        self.targets = base / "served" / "targets"
        self.targets.mkdir(parents=True)
        self.files.mkdir()
        # Served tree: /metadata -> the repository's metadata, /targets -> the target tree.
        (base / "served" / "metadata").symlink_to(self.meta, target_is_directory=True)
        self.content: dict[str, bytes] = {}
        self.server: Server | None = None

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([str(self.bin), *args], capture_output=True, text=True)
        if check and p.returncode != 0:
            raise AssertionError(f"tufpi {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        return p

    def repo(self, cmd: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("repo", cmd, "--repo", str(self.dir), *args, check=check)

    def init(self, *args: str) -> None:
        out = self.repo("init", "--dev-keys", *args).stdout
        assert "initialised" in out, out

    def put_target(self, path: str, data: bytes) -> None:
        """Place a target file in the served tree (under its path and its hash-prefixed names)."""
        self.content[path] = data
        dirname, _, basename = path.rpartition("/")
        d = self.targets / dirname
        d.mkdir(parents=True, exist_ok=True)
        (d / basename).write_bytes(data)
        for h in hashes_of(data).values():
            (d / f"{h}.{basename}").write_bytes(data)

    def add(self, path: str, data: bytes, *, publish: bool = False, by_hash: bool = False) -> None:
        """`tufpi repo add` (from a file, or by --length/--sha256), and serve the target."""
        self.put_target(path, data)
        extra = ["--publish"] if publish else []
        if by_hash:
            h = hashlib.sha256(data).hexdigest()
            self.repo("add", path, "--length", str(len(data)), "--sha256", h, *extra)
        else:
            f = self.files / hashlib.sha256(path.encode()).hexdigest()
            f.write_bytes(data)
            self.repo("add", path, "--file", str(f), *extra)

    def remove(self, path: str, *, publish: bool = False) -> None:
        self.content.pop(path)
        self.repo("remove", path, *(["--publish"] if publish else []))

    def publish(self, *args: str) -> str:
        return self.repo("publish", *args).stdout

    def root_bytes(self) -> bytes:
        return (self.meta / "1.root.json").read_bytes()

    def timestamp(self) -> dict:
        return json.loads((self.meta / "timestamp.json").read_bytes())["signed"]

    def snapshot(self) -> dict:
        v = self.timestamp()["meta"]["snapshot.json"]["version"]
        return json.loads((self.meta / f"{v}.snapshot.json").read_bytes())["signed"]

    def bin_targets(self) -> dict[str, dict]:
        """bin role → its `targets` map, from the current snapshot."""
        out = {}
        for name, m in self.snapshot()["meta"].items():
            role = name.removesuffix(".json")
            if role in ("targets", "bins"):
                continue
            md = json.loads((self.meta / f"{m['version']}.{role}.json").read_bytes())
            out[role] = md["signed"]["targets"]
        return out

    def serve(self) -> Server:
        if self.server is None:
            self.server = Server(self.base / "served")
        return self.server

    def updater(self, client_dir: Path, *, bootstrap: bool = True) -> Updater:
        """A python-tuf ngclient Updater; `bootstrap=False` reuses client_dir's cached state."""
        s = self.serve()
        (client_dir / "meta").mkdir(parents=True, exist_ok=True)
        (client_dir / "dl").mkdir(parents=True, exist_ok=True)
        return Updater(
            str(client_dir / "meta"),
            f"{s.base}/metadata/",
            str(client_dir / "dl"),
            f"{s.base}/targets/",
            bootstrap=self.root_bytes() if bootstrap else None,
        )

    def check_all(self, client_dir: Path, *, bootstrap: bool = True, download: bool = True) -> Updater:
        """ngclient: refresh, resolve every known target (right length and hashes) and
        download each (verified by ngclient against the metadata, compared here too)."""
        u = self.updater(client_dir, bootstrap=bootstrap)
        u.refresh()
        for path, data in self.content.items():
            info = u.get_targetinfo(path)
            assert info is not None, f"ngclient does not find {path}"
            assert info.length == len(data), path
            for alg, h in info.hashes.items():
                assert hashes_of(data)[alg] == h, (path, alg)
            if download:
                got = u.download_target(info)
                assert Path(got).read_bytes() == data, path
        return u

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
