"""Helpers for the clients interop tests: the TUF clients that must read tufpi's repositories
(tuf-js, python-tuf's ngclient, tufpi's own client, and tough on the layouts it reads), each
run as a separate process with the same inputs, and the repository layouts tufpi writes
("sites"), each served over loopback HTTP with a known set of targets.

Every client is given: the trusted root (a file; each client keeps its own metadata dir), the
metadata URL, the target base URL and the target names. It must download and verify each
target into its output dir, under the target name percent-encoded whole (`quote(name,
safe="")`), and exit 0; any failure is a nonzero exit with a line naming it. The drivers
(tuf-js, python-tuf) and tough-client go on past a failed target, one stderr line per failure
(`error: NAME: ...`; tough-client: `FAILED NAME: ...`), and exit 1 at the end; a failed
refresh ends the run at once.

Run as a script, this module is the python-tuf driver (the same protocol as tufjs/driver.js):

    python clients_util.py ngclient --metadata-url URL --target-base-url URL \\
        --metadata-dir DIR --target-dir DIR [--no-hash-prefix] NAME...
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
for _d in (TESTS, TESTS / "repo_interop", TESTS / "index_e2e"):
    if str(_d) not in sys.path:
        sys.path.insert(0, str(_d))

import pytest  # noqa: E402

import e2e_util  # noqa: E402
from repo_util import Repo  # noqa: E402
from tough import TOUGH_LAYOUTS, tough_binary, tough_target_path  # noqa: E402
from tough import failures as tough_failures  # noqa: E402

TUFJS_DIR = HERE / "tufjs"
TIMEOUT = 600


def out_name(name: str) -> str:
    """A target's file name in a client's output dir: the name percent-encoded whole."""
    return quote(name, safe="")


# ---- the python-tuf driver ----


def _fail(where: str, err: BaseException | str) -> None:
    what = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
    print(f"error: {where}: {' '.join(str(what).split())}", file=sys.stderr)
    sys.exit(1)


def _target_failed(name: str, err: BaseException | str) -> None:
    what = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
    print(f"error: {name}: {' '.join(str(what).split())}", file=sys.stderr)


def ngclient_main(argv: list[str]) -> int:
    """python-tuf's ngclient: refresh from DIR/root.json, then download and verify each NAME
    (one `error: NAME: ...` line per target that fails, and on with the others); the exit
    status."""
    p = argparse.ArgumentParser(prog="clients_util.py ngclient")
    p.add_argument("--metadata-url", required=True)
    p.add_argument("--target-base-url", required=True)
    p.add_argument("--metadata-dir", required=True)
    p.add_argument("--target-dir", required=True)
    p.add_argument("--no-hash-prefix", action="store_true")
    p.add_argument("names", nargs="+")
    a = p.parse_args(argv)
    from tuf.ngclient import Updater, UpdaterConfig

    try:
        u = Updater(a.metadata_dir, a.metadata_url, a.target_dir, a.target_base_url,
                    config=UpdaterConfig(prefix_targets_with_hash=not a.no_hash_prefix), bootstrap=None)
        u.refresh()
    except Exception as e:  # noqa: BLE001 - every failure is reported, as one line
        _fail("refresh", e)
    failed = 0
    for name in a.names:
        try:
            info = u.get_targetinfo(name)
            if info is None:
                _target_failed(name, "not found in signed metadata")
                failed += 1
                continue
            u.download_target(info, filepath=str(Path(a.target_dir) / out_name(name)))
        except Exception as e:  # noqa: BLE001
            _target_failed(name, e)
            failed += 1
            continue
        print(f"downloaded: {name} ({info.length} bytes)")
    return 1 if failed else 0


def one_line(text: str) -> str:
    """The last non-empty line of a client's stderr (its failure line)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


# ---- clients ----


@dataclass
class Run:
    """One client run: the process, and where the targets went."""

    client: "Client"
    proc: subprocess.CompletedProcess
    out_dir: Path

    @property
    def ok(self) -> bool:
        return self.proc.returncode == 0

    @property
    def reason(self) -> str:
        return one_line(self.proc.stderr)

    def failures(self) -> dict[str, str]:
        """Target name -> its failure line, one per target that failed (Client.failures)."""
        return self.client.failures(self.proc.stderr)

    def trusted_root_version(self) -> int | None:
        """The version of the root the client trusts after this run (0: it kept none; None:
        it keeps it nowhere we can read)."""
        p = self.client.trusted_root(self.out_dir.parent)
        if p is None:
            return None
        return json.loads(p.read_bytes())["signed"]["version"] if p.is_file() else 0

    def got(self, name: str) -> bytes | None:
        p = self.client.output_path(self.out_dir, name)
        return p.read_bytes() if p.is_file() else None

    def describe(self) -> str:
        return (f"{self.client.name}: exit {self.proc.returncode}\n"
                f"stdout: {self.proc.stdout[-3000:]}\nstderr: {self.proc.stderr[-3000:]}")


class Client:
    """A TUF client under test. `hash_mismatch` matches its failure line for a target whose
    bytes don't match the signed hashes, with the signed sha256 it expected as group
    `expected`."""

    name: str = ""
    hash_mismatch: re.Pattern = re.compile("")

    def supports(self, layout: str) -> str | None:
        """Why this client skips `layout` (None: it reads it)."""
        return None

    def one_run(self, layout: str) -> bool:
        """Whether the tests check `layout` with this client in a single run (one target
        tampered, every target requested) rather than one run per check: for a client whose
        refresh alone is slow there (see TufJs)."""
        return False

    def failures(self, stderr: str) -> dict[str, str]:
        """Target name -> its failure line, from the `error: NAME: ...` lines of a run that
        went on past failed targets."""
        out: dict[str, str] = {}
        for line in stderr.splitlines():
            if line.startswith("error: "):
                name, sep, _ = line.removeprefix("error: ").partition(": ")
                if sep:
                    out[name] = line
        return out

    def fetched_as(self, path: str, targets_path: str, name: str, hashes: dict[str, str]) -> bool:
        """Whether request `path` fetched target `name` the way this client fetches targets of
        a consistent-snapshot repository: `dir/HASH.basename`, HASH a signed hash (the spec)."""
        return hex_prefixed(path, targets_path, name, hashes)

    def output_path(self, out_dir: Path, target: str) -> Path:
        return out_dir / out_name(target)

    def trusted_root(self, work: Path) -> Path | None:
        """Where this client keeps the root it trusts after a run in `work` (None: nowhere
        the tests can read)."""
        return work / "metadata" / "root.json"

    def command(self, root: Path, metadata_url: str, targets_url: str, names: list[str],
                work: Path, out_dir: Path) -> list[list[str]]:
        raise NotImplementedError

    def run(self, root: Path, metadata_url: str, targets_url: str, names: list[str], work: Path) -> Run:
        """Download `names` with a fresh client state under `work` (which must not exist)."""
        work.mkdir(parents=True)
        out_dir = work / "out"
        out_dir.mkdir()
        cmds = self.command(root, metadata_url, targets_url, names, work, out_dir)
        p = None
        for cmd in cmds:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd=work)
            if p.returncode != 0:
                break
        assert p is not None
        return Run(self, p, out_dir)


def _driver_args(root: Path, metadata_url: str, targets_url: str, names: list[str], work: Path,
                 out_dir: Path) -> list[str]:
    meta = work / "metadata"
    meta.mkdir()
    shutil.copyfile(root, meta / "root.json")
    return ["--metadata-url", metadata_url, "--target-base-url", targets_url,
            "--metadata-dir", str(meta), "--target-dir", str(out_dir), *names]


class TufJs(Client):
    """tuf-js (tufjs/package.json) through tufjs/driver.js."""

    name = "tuf-js"
    hash_mismatch = re.compile(r"LengthOrHashMismatchError: Expected hash (?P<expected>[0-9a-f]+) but got [0-9a-f]+")

    def __init__(self, node: str) -> None:
        self.node = node

    def one_run(self, layout: str) -> bool:
        # tuf-js's refresh takes ~100 s on a 16,385-entry snapshot (Snapshot.fromJSON/toJSON
        # copy the whole meta map per entry, O(n^2)): one run per 14-bit layout, not two.
        return layout in ONE_RUN_FOR_TUFJS

    def command(self, root, metadata_url, targets_url, names, work, out_dir):
        return [[self.node, str(TUFJS_DIR / "driver.js"),
                 *_driver_args(root, metadata_url, targets_url, names, work, out_dir)]]


class PythonTuf(Client):
    """python-tuf's ngclient (tests/requirements.txt), through this module's driver."""

    name = "python-tuf"
    hash_mismatch = re.compile(
        r"LengthOrHashMismatchError: Observed hash [0-9a-f]+ does not match expected hash (?P<expected>[0-9a-f]+)")

    def command(self, root, metadata_url, targets_url, names, work, out_dir):
        return [[sys.executable, str(Path(__file__).resolve()), "ngclient",
                 *_driver_args(root, metadata_url, targets_url, names, work, out_dir)]]


class TufpiClient(Client):
    """`tufpi client` (init with the trusted root, then download)."""

    name = "tufpi"
    hash_mismatch = re.compile(r"^error: .*sha256 hash mismatch: expected (?P<expected>[0-9a-f]{64}), got [0-9a-f]{64}")

    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def command(self, root, metadata_url, targets_url, names, work, out_dir):
        meta = work / "metadata"
        base = [str(self.binary), "client", "--metadata-dir", str(meta)]
        return [
            [*base, "init", str(root)],
            [*base, "--metadata-url", metadata_url, "--target-base-url", targets_url,
             "--target-dir", str(out_dir), *[a for n in names for a in ("--target-name", n)], "download"],
        ]


class Tough(Client):
    """tough (awslabs/tough, the Rust TUF client) through interop/tough-client (see tough.py),
    on the layouts it reads (tough.TOUGH_LAYOUTS); it keeps its trusted metadata in a datastore
    dir and fetches consistent-snapshot targets as `HASH.<whole/path>` (tough_target_path)."""

    name = "tough"
    # tough 0.24.0's HashMismatch ("Hash mismatch for URL: calculated X, expected Y") at the
    # end of tough-client's `FAILED NAME: ...` line (the URL holds the sha256 too: match Y).
    hash_mismatch = re.compile(
        r"^FAILED .*: Hash mismatch for \S+: calculated [0-9a-f]{64}, expected (?P<expected>[0-9a-f]{64})$")

    def supports(self, layout: str) -> str | None:
        if layout in TOUGH_LAYOUTS:
            return None
        # tough 0.24.0 src/schema/mod.rs: `pub struct Delegations { pub keys, pub roles:
        # Vec<DelegatedRole> }`, `roles` required and no `succinct_roles` (TAP 15): a role that
        # delegates with succinct_roles doesn't parse ("missing field `roles`").
        return (f"{layout}: tough has no TAP 15 succinct_roles support (its Delegations {{ roles }} "
                "requires a `roles` list), so the repository fails to load; tough reads the "
                "--hash-prefix-bins layouts")

    def trusted_root(self, work: Path) -> Path | None:
        return work / "datastore" / "root.json"

    def failures(self, stderr: str) -> dict[str, str]:
        return {n: f"FAILED {n}: {e}" for n, e in tough_failures(stderr).items()}

    def fetched_as(self, path, targets_path, name, hashes) -> bool:
        # tough_target_path: `SHA256.<whole/path>`, the sha256 before the whole target path.
        return path == targets_path + quote(f"{hashes['sha256']}.{name}")

    def command(self, root, metadata_url, targets_url, names, work, out_dir):
        return [[str(tough_binary()), "--root", str(root), "--metadata-url", metadata_url,
                 "--targets-url", targets_url, "--datastore", str(work / "datastore"),
                 "--out", str(out_dir), "--", *names]]


# The clients, in the order the tests list them (Client.supports lets one skip a layout).
CLIENT_NAMES = ["tuf-js", "python-tuf", "tufpi", "tough"]


def get_client(clients: dict[str, Client], name: str, layout: str) -> Client:
    """The client `name`, or skip (with why) when it isn't installed or doesn't read `layout`."""
    if name not in clients:
        pytest.skip(f"{name}: not available (node not on PATH)" if name == "tuf-js" else f"{name}: not available")
    c = clients[name]
    why = c.supports(layout)
    if why:
        pytest.skip(why)
    return c


def make_clients(tufpi_bin: Path, node: str | None) -> dict[str, Client]:
    """The clients: tuf-js when node is there; tough's client is built (with cargo, once) at
    its first run, and a failed build fails that test."""
    clients: dict[str, Client] = {"python-tuf": PythonTuf(), "tufpi": TufpiClient(tufpi_bin),
                                  "tough": Tough()}
    if node:
        clients["tuf-js"] = TufJs(node)
    return clients


# ---- sites: the repository layouts, served ----


@dataclass
class Site:
    """A repository layout tufpi wrote, served: what a client needs (trusted root, URLs), the
    targets it must download (name -> bytes) and how to tamper with one of them."""

    layout: str
    root: Path
    metadata_url: str
    targets_url: str
    content: dict[str, bytes]
    # The signed target entries (name -> {"length": N, "hashes": {...}}), as published.
    signed: dict[str, dict]
    victim: str
    # Context manager: while inside, the victim's served bytes differ from the signed ones
    # (same length, one byte flipped).
    tamper: Callable[[], contextlib.AbstractContextManager]
    # The paths the static server was asked for (None when it's tufpi serve).
    requests: Callable[[], list[str]] | None = None
    # The URL path prefix of the targets on the server (for `requests`).
    targets_path: str = "/targets/"
    closers: list[Callable[[], object]] = field(default_factory=list)
    # Client name -> its one run here (Site.one_run): (run, targets fetched), or what it raised.
    one_runs: dict[str, tuple["Run", list[str]] | BaseException] = field(default_factory=dict)

    @property
    def root_version(self) -> int:
        """The newest root version published (clients holding 1.root.json must reach it)."""
        v = 1
        while (self.root.parent / f"{v + 1}.root.json").is_file():
            v += 1
        return v

    def run(self, client: Client, names: list[str], work: Path) -> Run:
        return client.run(self.root, self.metadata_url, self.targets_url, names, work)

    def targets_fetched(self, seen: int) -> list[str]:
        """The target paths the static server was asked for after its first `seen` requests
        (nothing for `tufpi serve`, which keeps no log)."""
        if self.requests is None:
            return []
        return [p for p in self.requests()[seen:] if p.startswith(self.targets_path)]

    def one_run(self, client: Client, work: Path) -> tuple[Run, list[str]]:
        """Both checks in one run of `client` (Client.one_run), made once and shared by the
        tests: the victim tampered with, every target asked for (the victim first, so the
        others show the client goes on past it). The run, and the targets it fetched."""
        if client.name not in self.one_runs:
            names = [self.victim, *sorted(n for n in self.content if n != self.victim)]
            seen = len(self.requests()) if self.requests else 0
            try:
                with self.tamper():
                    r = self.run(client, names, work)
                self.one_runs[client.name] = (r, self.targets_fetched(seen))
            except BaseException as e:
                self.one_runs[client.name] = e
                raise
        got = self.one_runs[client.name]
        if isinstance(got, BaseException):
            raise AssertionError(f"{client.name}'s one run on {self.layout} failed in an earlier test") from got
        return got

    def close(self) -> None:
        for c in reversed(self.closers):
            c()


def flip_byte(path: Path) -> bytes:
    """Flip one bit of a byte in the middle of `path`, in place; returns the original bytes."""
    data = path.read_bytes()
    assert data, f"{path} is empty: nothing to flip"
    i = len(data) // 2
    path.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:])
    return data


@contextlib.contextmanager
def flipped(paths: list[Path]) -> Iterator[None]:
    """Each of `paths` with one byte flipped, restored on the way out."""
    saved = []
    try:
        for p in paths:
            saved.append((p, flip_byte(p)))
        yield
    finally:
        for p, data in saved:
            p.write_bytes(data)


def published_targets(meta: Path) -> dict[str, dict]:
    """Every target the current snapshot's roles list (name -> entry), read from the metadata
    files in `meta` (timestamp -> snapshot -> each role). Roles still at version 1 were written
    empty by `repo init` and are skipped (a 14-bit repository has 16,384 of them)."""
    ts = json.loads((meta / "timestamp.json").read_bytes())["signed"]
    snap_v = ts["meta"]["snapshot.json"]["version"]
    snap = json.loads((meta / f"{snap_v}.snapshot.json").read_bytes())["signed"]
    out: dict[str, dict] = {}
    for fname, m in snap["meta"].items():
        if m["version"] == 1 and fname != "targets.json":
            continue
        role = fname.removesuffix(".json")
        md = json.loads((meta / f"{m['version']}.{role}.json").read_bytes())["signed"]
        for name, entry in md.get("targets", {}).items():
            assert name not in out, f"{name} listed twice"
            out[name] = entry
    return out


def target_bytes(n: int, tag: str) -> bytes:
    """`n` deterministic bytes for a target."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{tag}/{i}".encode()).digest()
        i += 1
    return out[:n]


# Target names for the static layouts: PyPI-like paths (content-addressed files, pages) and a
# top-level name.
STATIC_TARGETS = [
    ("packages/2f/a1/9b3c0d/demo-1.0-py3-none-any.whl", 3000),
    ("simple/demo/vnd.pypi.simple.v1.html", 400),
    ("simple/demo/vnd.pypi.simple.v1.json", 500),
    ("packages/7c/00/e15a42/demo-1.0.tar.gz", 70_000),
    ("top-level.txt", 17),
]


def _static_site(layout: str, repo: Repo, *, hashed_only: bool = False) -> Site:
    """A Site over a built Repo, served by the static server (targets under /targets/): each
    target under its path, `dir/HASH.basename` (Repo.put_target) and tough's
    `SHA256.<whole/path>` (tough_target_path)."""
    signed = published_targets(repo.meta)
    assert set(signed) == set(repo.content), (sorted(signed), sorted(repo.content))
    if hashed_only:
        # Consistent snapshots: the targets exist under hash-prefixed names only.
        for name in repo.content:
            (repo.targets / name).unlink()
    for name, data in repo.content.items():
        p = repo.targets / tough_target_path(name, data)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    server = repo.serve()
    victim = next(iter(repo.content))

    def served_copies() -> list[Path]:
        dirname, _, basename = victim.rpartition("/")
        d = repo.targets / dirname
        copies = {p for p in d.iterdir() if p.name == basename or p.name.endswith("." + basename)}
        copies.add(repo.targets / tough_target_path(victim, repo.content[victim]))
        return sorted(copies)

    return Site(
        layout=layout,
        root=repo.meta / "1.root.json",
        metadata_url=f"{server.base}/metadata/",
        targets_url=f"{server.base}/targets/",
        content=dict(repo.content),
        signed=signed,
        victim=victim,
        tamper=lambda: flipped(served_copies()),
        requests=lambda: list(server.requests),
        closers=[repo.close],
    )


def _add_all(repo: Repo, targets: list[tuple[str, int]], tag: str) -> None:
    for name, size in targets:
        repo.add(name, target_bytes(size, f"{tag}/{name}"))
    repo.publish()


HASH_PREFIX_SUFFIX = "-hash-prefix"


def build_static(layout: str, bin_: Path, base: Path) -> Site:
    """The `tufpi repo` layouts (see STATIC_LAYOUTS). `KIND-hash-prefix` is layout KIND built
    with --hash-prefix-bins (classic path_hash_prefixes bins, which tough reads)."""
    repo = Repo(bin_, base)
    kind, more = layout, ()
    if layout.endswith(HASH_PREFIX_SUFFIX) and layout != "hash-prefix":
        kind, more = layout.removesuffix(HASH_PREFIX_SUFFIX), ("--hash-prefix-bins",)

    def init(*args: str) -> None:
        repo.init(*args, *more)

    if kind in ("succinct-4", "consistent-snapshot"):
        init("--bins-bit-length", "4")
        _add_all(repo, STATIC_TARGETS, layout)
    elif kind == "succinct-14":
        init("--bins-bit-length", "14")
        _add_all(repo, STATIC_TARGETS[:3], layout)
    elif kind == "hash-prefix":
        init("--bins-bit-length", "4", "--hash-prefix-bins")
        _add_all(repo, STATIC_TARGETS, layout)
    elif kind == "targets-online":
        init("--bins-bit-length", "4", "--targets-online")
        _add_all(repo, STATIC_TARGETS, layout)
    elif kind == "import":
        # Half by --from-dir (hashed on the way in), half by --from-jsonl (length and sha256).
        init("--bins-bit-length", "8")
        src = base / "import-src"
        for name, size in STATIC_TARGETS[:3]:
            data = target_bytes(size, f"{layout}/{name}")
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes(data)
            repo.put_target(name, data)
        assert "imported 3 targets" in repo.repo("import", "--from-dir", str(src)).stdout
        lines = []
        for name, size in STATIC_TARGETS[3:]:
            data = target_bytes(size, f"{layout}/{name}")
            repo.put_target(name, data)
            lines.append(json.dumps({"path": name, "length": len(data),
                                     "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}))
        jsonl = base / "import.jsonl"
        jsonl.write_text("\n".join(lines) + "\n")
        assert "imported 2 targets" in repo.repo("import", "--from-jsonl", str(jsonl)).stdout
    elif kind == "rotated-root":
        # Two root rotations, with targets signed before, between and after: clients holding
        # 1.root.json walk 1 -> 2 -> 3.
        init("--bins-bit-length", "4")
        _add_all(repo, STATIC_TARGETS[:2], layout)
        repo.repo("rotate-root")
        _add_all(repo, STATIC_TARGETS[2:4], layout)
        repo.repo("rotate-root")
        _add_all(repo, STATIC_TARGETS[4:], layout)
        assert (repo.meta / "3.root.json").is_file()
    elif kind == "rotated-online":
        # An online-key rotation (new root, bins and every online role re-signed) between two
        # batches of targets.
        init("--bins-bit-length", "4")
        _add_all(repo, STATIC_TARGETS[:3], layout)
        repo.repo("rotate-online")
        _add_all(repo, STATIC_TARGETS[3:], layout)
        assert (repo.meta / "2.root.json").is_file()
    elif kind == "sha256+blake2b-256":
        init("--bins-bit-length", "4", "--target-hashes", "sha256,blake2b-256")
        _add_all(repo, STATIC_TARGETS[:3], layout)
    elif kind == "sha256+wrong-blake2b-256":
        # The victim signed with its right length and sha256 but another file's blake2b-256
        # (`repo add --length --sha256 --hash`): only a client that checks blake2b-256 refuses
        # it. A second target lists both hashes right.
        init("--bins-bit-length", "4", "--target-hashes", "sha256,blake2b-256")
        (name, size), (name2, size2) = STATIC_TARGETS[:2]
        data = target_bytes(size, f"{layout}/{name}")
        repo.put_target(name, data)
        wrong = hashlib.blake2b(data + b"x", digest_size=32).hexdigest()
        # Served under the wrong digest too: clients fetch dir/HASH.basename by whichever
        # listed hash comes first (blake2b-256, in sorted JSON).
        dirname, _, basename = name.rpartition("/")
        (repo.targets / dirname / f"{wrong}.{basename}").write_bytes(data)
        repo.repo("add", name, "--length", str(len(data)), "--sha256", hashlib.sha256(data).hexdigest(),
                  "--hash", f"blake2b-256={wrong}")
        _add_all(repo, [(name2, size2)], layout)
    else:
        raise ValueError(layout)
    return _static_site(layout, repo, hashed_only=(layout == "consistent-snapshot"))


class IndexServer(e2e_util.Server):
    """`tufpi serve` with a chosen bins bit length (e2e_util.Server fixes it at 8)."""

    def __init__(self, bin_: Path, data: Path, bits: int, *extra: str) -> None:
        super().__init__(bin_, data, *extra)
        self.bits = bits

    def command(self) -> list[str]:
        return [str(self.bin), "serve", "--data-dir", str(self.data), "--listen", "127.0.0.1:0",
                "--bins-bit-length", str(self.bits), *self.extra]


def upload(server: IndexServer, token: str, path: Path) -> None:
    data = path.read_bytes()
    ct, body = e2e_util.multipart(
        e2e_util.upload_form(e2e_util.PROJECT, e2e_util.VERSION, path.name, data), (path.name, data))
    status, reason, text = e2e_util.post(server.base, body, ct, token)
    assert status == 200, (path.name, status, reason, text)


def build_index(layout: str, bin_: Path, base: Path) -> Site:
    """`tufpi serve` (bins bit length 4 or 14) with a wheel and an sdist uploaded. Targets: the
    project's simple pages, the two files and their .metadata files, as the bins list them."""
    bits, extra = {
        "index-4": (4, ()),
        "index-14": (14, ()),
        "index-4-sha256+blake2b-256": (4, ("--target-hashes", "sha256,blake2b-256")),
    }[layout]
    data = base / "data"
    dist = base / "dist"
    dist.mkdir(parents=True)
    wheel = e2e_util.build_wheel(dist, e2e_util.PROJECT, e2e_util.VERSION, payload=target_bytes(5000, layout))
    sdist = e2e_util.build_sdist(dist, e2e_util.PROJECT, e2e_util.VERSION)
    server = IndexServer(bin_, data, bits, *extra).start()
    try:
        token = server.token()
        upload(server, token, wheel)
        upload(server, token, sdist)
        server.wait_published(timeout=30)
        meta = data / "repo" / "metadata"
        signed = published_targets(meta)
        content: dict[str, bytes] = {}
        for name, entry in signed.items():
            if name.startswith("packages/"):
                f = data / name
            elif name.startswith("simple/"):
                f = data / "pages" / entry["hashes"]["sha256"]
            else:
                raise AssertionError(f"unexpected target {name}")
            content[name] = f.read_bytes()
            assert hashlib.sha256(content[name]).hexdigest() == entry["hashes"]["sha256"], name
        project = "tufpi-demo"
        by_base = {n.rpartition("/")[2]: n for n in content}
        want = {f"simple/{project}/vnd.pypi.simple.v1.html", f"simple/{project}/vnd.pypi.simple.v1.json"}
        assert want <= set(content), sorted(content)
        # The distributions as uploaded, and the wheel's METADATA as its .metadata file.
        assert content[by_base[wheel.name]] == wheel.read_bytes()
        assert content[by_base[sdist.name]] == sdist.read_bytes()
        assert content[by_base[wheel.name + ".metadata"]] == e2e_util.metadata_text(
            e2e_util.PROJECT, e2e_util.VERSION).encode()
    except BaseException:
        server.stop()
        raise
    victim = by_base[wheel.name]
    return Site(
        layout=layout,
        root=meta / "1.root.json",
        metadata_url=f"{server.base}/metadata/",
        targets_url=f"{server.base}/",
        content=content,
        signed=signed,
        victim=victim,
        # The stored distribution itself, in the data dir (storage.rs: DATA/<target path>).
        tamper=lambda: flipped([data / victim]),
        closers=[server.stop],
    )


# The -hash-prefix variants are there for tough (tough.TOUGH_LAYOUTS), which reads no other
# layout; every client reads them.
STATIC_LAYOUTS = ["succinct-4", "succinct-14", "hash-prefix", "targets-online",
                  "targets-online-hash-prefix", "import", "consistent-snapshot", "rotated-root",
                  "rotated-root-hash-prefix", "rotated-online"]
INDEX_LAYOUTS = ["index-4", "index-14"]
# Every layout every client must read (stable names: tests are parametrized by them).
LAYOUTS = STATIC_LAYOUTS + INDEX_LAYOUTS
# Layouts with a 16,385-entry snapshot, which tuf-js checks in one run (see TufJs.one_run).
ONE_RUN_FOR_TUFJS = {"succinct-14", "index-14"}


# Repositories listing blake2b-256 besides sha256 (`--target-hashes sha256,blake2b-256`), which
# tuf-js refuses: why the default is sha256 alone. The -hash-prefix one is what tough reads.
BLAKE2B_LAYOUTS = ["sha256+blake2b-256", "sha256+blake2b-256-hash-prefix", "index-4-sha256+blake2b-256"]
# A target whose sha256 is right and whose blake2b-256 is not: who checks blake2b-256.
WRONG_BLAKE2B_LAYOUT = "sha256+wrong-blake2b-256-hash-prefix"


def build(layout: str, bin_: Path, base: Path) -> Site:
    if layout.startswith("index-"):
        return build_index(layout, bin_, base)
    return build_static(layout, bin_, base)


def hex_prefixed(path: str, targets_path: str, name: str, hashes: dict[str, str]) -> bool:
    """Whether request `path` is target `name` as `dir/HASH.basename` with a signed HASH."""
    dirname, _, basename = name.rpartition("/")
    want = targets_path + (quote(dirname) + "/" if dirname else "")
    if not path.startswith(want):
        return False
    rest = path[len(want):]
    h, dot, b = rest.partition(".")
    return bool(dot) and b == quote(basename) and h in hashes.values()


if __name__ == "__main__":
    if sys.argv[1:2] != ["ngclient"]:
        sys.exit("usage: clients_util.py ngclient --metadata-url URL ... NAME...")
    sys.exit(ngclient_main(sys.argv[2:]))
