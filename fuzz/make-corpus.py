#!/usr/bin/env python3
"""Write the fuzz fixtures (fuzz/fixtures/) and the seed corpora (fuzz/corpus/<target>/).

Run with the interop venv (scripts/test creates it):  .venv/bin/python fuzz/make-corpus.py

- fixtures/keys/*.pem: the fixed keys of the fixture repository, made once and kept (the
  fuzz targets sign mutated metadata with them, and the seeds are signed by them).
- fixtures/repo/*.json: a small PEP 458 repository made by python-tuf: root v1 (threshold 2,
  ed25519 + ecdsa P-256) and v2, timestamp, snapshot, targets delegating to `bins` (which
  delegates to 8 succinct `bin-N` roles) and to `legacy` (an RSA-PSS key).
- corpus/<target>/: real inputs for each target: the metadata above, canonical JSON golden
  inputs, wheels and sdists built with zipfile/tarfile, twine-style multipart bodies, PEP 691
  pages as the index renders them, delegation patterns.

Rerunning rewrites the fixtures' metadata (ecdsa/rsa signatures differ each time) and the seeds;
the keys stay, and so do the other corpus files (`FUZZ_UPDATE_CORPUS=1 scripts/fuzz` distils
what the fuzzer found into corpus/).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from securesystemslib.signer import CryptoSigner, SSlibKey
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

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
KEYS = FUZZ / "fixtures" / "keys"
REPO = FUZZ / "fixtures" / "repo"
CORPUS = FUZZ / "corpus"
EXPIRES = datetime(2035, 1, 1, tzinfo=timezone.utc)
SEP = b"\n--8<--\n"

# name -> how to make it
KEY_KINDS = {
    "root1": "ed25519",
    "root2": "ecdsa-sha2-nistp256",
    "targets": "ecdsa-sha2-nistp384",
    "snapshot": "ed25519",
    "timestamp": "ed25519",
    "bins": "ed25519",
    "legacy": "rsassa-pss-sha256",
}


def make_key(kind: str):
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "ecdsa-sha2-nistp256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ecdsa-sha2-nistp384":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def signer(name: str) -> CryptoSigner:
    path = KEYS / f"{name}.pem"
    if not path.exists():
        KEYS.mkdir(parents=True, exist_ok=True)
        priv = make_key(KEY_KINDS[name])
        path.write_bytes(
            priv.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    priv = serialization.load_pem_private_key(path.read_bytes(), None)
    pub = SSlibKey.from_crypto(priv.public_key(), scheme=KEY_KINDS[name])
    return CryptoSigner(priv, pub)


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def to_bytes(md: Metadata) -> bytes:
    # python-tuf's default on-disk form: sorted keys, indent 1 (tufpi writes the same).
    return md.to_bytes(JSONSerializer(compact=False))


def build_repo() -> dict[str, bytes]:
    s = {name: signer(name) for name in KEY_KINDS}
    files: dict[str, bytes] = {}

    root = Root(expires=EXPIRES, consistent_snapshot=True)
    for role, names in {
        "root": ["root1", "root2"],
        "targets": ["targets"],
        "snapshot": ["snapshot"],
        "timestamp": ["timestamp"],
    }.items():
        for n in names:
            root.add_key(s[n].public_key, role)
    root.roles["root"].threshold = 2
    root_md = Metadata(root)
    root_md.sign(s["root1"])
    root_md.sign(s["root2"], append=True)
    files["1.root.json"] = to_bytes(root_md)

    root_md.signed.version = 2
    root_md.signatures.clear()
    root_md.sign(s["root1"])
    root_md.sign(s["root2"], append=True)
    files["2.root.json"] = to_bytes(root_md)

    # bins: succinct delegation to bin-0 .. bin-7 (TAP 15), as PEP 458 does with 16,384.
    bins = Targets(expires=EXPIRES)
    bins.delegations = Delegations(
        keys={s["bins"].public_key.keyid: s["bins"].public_key},
        succinct_roles=SuccinctRoles(
            keyids=[s["bins"].public_key.keyid],
            threshold=1,
            bit_length=3,
            name_prefix="bin",
        ),
    )
    targets = Targets(expires=EXPIRES)
    targets.delegations = Delegations(
        keys={
            s["bins"].public_key.keyid: s["bins"].public_key,
            s["legacy"].public_key.keyid: s["legacy"].public_key,
        },
        roles={
            "legacy": DelegatedRole(
                "legacy",
                [s["legacy"].public_key.keyid],
                1,
                True,
                paths=["legacy/*", "legacy/*/*.tar.gz"],
            ),
            "bins": DelegatedRole(
                "bins", [s["bins"].public_key.keyid], 1, False, path_hash_prefixes=["0", "1", "2"] + [f"{i:x}" for i in range(3, 16)]
            ),
        },
    )
    targets.targets["README.txt"] = TargetFile.from_data("README.txt", b"hello\n")
    targets_md = Metadata(targets)
    targets_md.sign(s["targets"])
    files["targets.json"] = to_bytes(targets_md)
    bins_md = Metadata(bins)
    bins_md.sign(s["bins"])
    files["bins.json"] = to_bytes(bins_md)

    legacy = Targets(expires=EXPIRES)
    legacy.targets["legacy/old-1.0.tar.gz"] = TargetFile.from_data(
        "legacy/old-1.0.tar.gz", b"old"
    )
    legacy_md = Metadata(legacy)
    legacy_md.sign(s["legacy"])
    files["legacy.json"] = to_bytes(legacy_md)

    succ = bins.delegations.succinct_roles
    per_bin: dict[str, list[tuple[str, bytes]]] = {}
    for name in ("demo", "foo-bar", "alpha"):
        for path, data in (
            (f"simple/{name}/vnd.pypi.simple.v1.json", b'{"files": []}'),
            (f"simple/{name}/index.html", b"<html></html>"),
            (f"packages/ab/cd/ef/{name}-1.0.tar.gz", name.encode() * 3),
        ):
            per_bin.setdefault(succ.get_role_for_target(path), []).append((path, data))
    snapshot = Snapshot(expires=EXPIRES)
    snapshot.meta["targets.json"] = MetaFile(version=1)
    snapshot.meta["bins.json"] = MetaFile(version=1)
    snapshot.meta["legacy.json"] = MetaFile(version=1)
    for role in succ.get_roles():
        b = Targets(expires=EXPIRES)
        for path, data in per_bin.get(role, []):
            tf = TargetFile.from_data(path, data, ["sha256", "blake2b-256"])
            if path.endswith(".tar.gz"):
                tf.unrecognized_fields["custom"] = {"yanked": False, "requires_python": ">=3.8"}
            b.targets[path] = tf
        md = Metadata(b)
        md.sign(s["bins"])
        files[f"{role}.json"] = to_bytes(md)
        snapshot.meta[f"{role}.json"] = MetaFile(version=1)
    snap_md = Metadata(snapshot)
    snap_md.sign(s["snapshot"])
    files["snapshot.json"] = to_bytes(snap_md)
    ts = Timestamp(expires=EXPIRES, snapshot_meta=MetaFile(version=1))
    ts_md = Metadata(ts)
    ts_md.sign(s["timestamp"])
    files["timestamp.json"] = to_bytes(ts_md)

    # Variants with lengths and hashes, and a compact one.
    snap_bytes = files["snapshot.json"]
    ts_h = Timestamp(
        expires=EXPIRES,
        snapshot_meta=MetaFile(
            version=1,
            length=len(snap_bytes),
            hashes={"sha256": hashlib.sha256(snap_bytes).hexdigest()},
        ),
    )
    ts_h_md = Metadata(ts_h)
    ts_h_md.sign(s["timestamp"])
    files["timestamp-hashed.json"] = to_bytes(ts_h_md)
    files["snapshot-compact.json"] = snap_md.to_bytes(JSONSerializer(compact=True))
    return files


def trusted_seeds(repo: dict[str, bytes]) -> dict[str, bytes]:
    """Update sequences for the trusted target: `header\\nbody` chunks split by SEP."""

    def seq(*chunks: tuple[str, bytes]) -> bytes:
        return SEP.join(h.encode() + b"\n" + body for h, body in chunks)

    bins = [n for n in repo if n.startswith("bin-")]
    full = [
        ("root", repo["2.root.json"]),
        ("timestamp", repo["timestamp.json"]),
        ("snapshot", repo["snapshot.json"]),
        ("targets", repo["targets.json"]),
        ("delegated bins targets", repo["bins.json"]),
        ("delegated legacy targets", repo["legacy.json"]),
    ] + [(f"delegated {b[:-5]} bins", repo[b]) for b in sorted(bins)[:3]]
    return {
        "full": seq(*full),
        "hashed": seq(
            ("timestamp", repo["timestamp-hashed.json"]),
            ("snapshot", repo["snapshot.json"]),
            ("targets", repo["targets.json"]),
        ),
        "resign": seq(
            ("timestamp sign", repo["timestamp.json"]),
            ("snapshot sign", repo["snapshot.json"]),
            ("targets sign", repo["targets.json"]),
            ("delegated bins targets sign", repo["bins.json"]),
        ),
        "rollback": seq(
            ("timestamp", repo["timestamp.json"]),
            ("timestamp sign", repo["timestamp.json"].replace(b'"version": 1', b'"version": 3', 1)),
            ("snapshot trusted", repo["snapshot.json"]),
        ),
    }


def wheel(name: str, version: str, *, extra: dict[str, bytes] | None = None,
          compression=zipfile.ZIP_DEFLATED, metadata: str | None = None) -> bytes:
    buf = io.BytesIO()
    dist = f"{name.replace('-', '_')}-{version}.dist-info"
    md = metadata or (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        "Requires-Python: >=3.8\nSummary: a test\n\nA long description.\n"
    )
    with zipfile.ZipFile(buf, "w", compression) as z:
        z.writestr(f"{name.replace('-', '_')}/__init__.py", "X = 1\n")
        z.writestr(f"{dist}/METADATA", md)
        z.writestr(
            f"{dist}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: fuzz\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        for n, b in (extra or {}).items():
            z.writestr(n, b)
        z.writestr(f"{dist}/RECORD", "")
    return buf.getvalue()


def pkg_info(name: str, version: str) -> str:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Python: >=3.8\n\n"


def sdist(name: str, version: str, *, fmt=tarfile.GNU_FORMAT, extra=None, info=None) -> bytes:
    buf = io.BytesIO()
    root = f"{name.replace('-', '_')}-{version}"
    with tarfile.open(fileobj=buf, mode="w:gz", format=fmt) as t:
        for n, b in [
            (f"{root}/setup.py", b"from setuptools import setup\nsetup()\n"),
            (f"{root}/PKG-INFO", (info or pkg_info(name, version)).encode()),
        ] + list((extra or {}).items()):
            ti = tarfile.TarInfo(n)
            ti.size = len(b)
            ti.mode = 0o644
            t.addfile(ti, io.BytesIO(b))
    return buf.getvalue()


def zip_sdist(name: str, version: str) -> bytes:
    buf = io.BytesIO()
    root = f"{name}-{version}"
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{root}/PKG-INFO", pkg_info(name, version))
        z.writestr(f"{root}/setup.py", "")
    return buf.getvalue()


BOUNDARY = "tufpifuzz"


def multipart(fields: list[tuple[str, str]], file: tuple[str, bytes] | None) -> bytes:
    out = b""
    for k, v in fields:
        out += (
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ).encode()
    if file:
        fn, content = file
        out += (
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"content\"; "
            f"filename=\"{fn}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).encode() + content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def upload_seed(name: str, version: str, filename: str, content: bytes, **over: str) -> bytes:
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel" if filename.endswith(".whl") else "sdist",
        "pyversion": "py3" if filename.endswith(".whl") else "source",
        "metadata_version": "2.1",
        "summary": "a test",
        "requires_python": ">=3.8",
        "sha256_digest": hashlib.sha256(content).hexdigest(),
        "md5_digest": hashlib.md5(content).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(content, digest_size=32).hexdigest(),
    }
    fields.update(over)
    # First line: the request's Content-Type header (the target reads it from the input).
    head = f"multipart/form-data; boundary={BOUNDARY}\n".encode()
    return head + multipart(list(fields.items()), (filename, content))


def page(name: str, files: list[dict]) -> bytes:
    return json.dumps(
        {"meta": {"api-version": "1.1"}, "name": name, "versions": ["1.0"], "files": files}
    ).encode()


def main() -> None:
    repo = build_repo()
    if REPO.exists():
        shutil.rmtree(REPO)
    for n, b in repo.items():
        write(REPO / n, b)
    # The seeds are (re)written by name; what scripts/fuzz distilled into corpus/ stays.

    # json: golden canonical-JSON inputs and the metadata files.
    for golden in ("canonical.jsonl", "canonical_refused.jsonl"):
        lines = (ROOT / "tests/core_interop/golden" / golden).read_text().splitlines()
        for i, line in enumerate(l for l in lines if l.strip()):
            write(CORPUS / "json" / f"{golden.split('.')[0]}-{i:03}", json.loads(line)["input"].encode())
    for n in ("1.root.json", "targets.json", "snapshot-compact.json", "bin-0.json"):
        write(CORPUS / "json" / n, repo[n])
    # canonical: structured values are built from raw bytes; a few byte strings will do.
    for i, b in enumerate([b"", b"\x00" * 16, bytes(range(64)), b"signed\x05version\x07"]):
        write(CORPUS / "canonical" / f"seed-{i}", b)

    # metadata: every role, as python-tuf writes it.
    for n, b in repo.items():
        write(CORPUS / "metadata" / n, b)
    for n, b in trusted_seeds(repo).items():
        write(CORPUS / "trusted" / n, b)

    # pathmatch: pattern, NUL, target path.
    for pat, path in [
        ("legacy/*", "legacy/old-1.0.tar.gz"),
        ("legacy/*/*.tar.gz", "legacy/a/b.tar.gz"),
        ("*.whl", "packages/ab/cd/x.whl"),
        ("simple/[a-f]?o/*", "simple/foo/index.html"),
        ("simple/[!x]*/*", "simple/foo/index.html"),
        ("*" * 8 + "x", "a" * 40),
    ]:
        write(CORPUS / "pathmatch" / hashlib.sha1(f"{pat}{path}".encode()).hexdigest()[:12],
              pat.encode() + b"\0" + path.encode())

    # core_metadata: METADATA / PKG-INFO texts (the target checks them against demo 1.0).
    for i, text in enumerate([
        pkg_info("demo", "1.0"),
        "Metadata-Version: 2.3\nName: Demo\nVersion: 1.0.0\nRequires-Python: >=3.8\n"
        "Classifier: A\nClassifier: B\nDescription-Content-Type: text/markdown\n\n# Demo\n",
        "Metadata-Version: 1.0\nName: demo\nVersion: 1.0\nSummary: x\n  continued\n\nbody\n",
        "metadata-version: 2.1\r\nname: DEMO\r\nversion: v1.0\r\n\r\n",
        "Metadata-Version: 2.1\nName: demo\nVersion: 1.0+local\n\n",
    ]):
        write(CORPUS / "core_metadata" / f"seed-{i}", text.encode())

    # wheel: zip archives (wheels, and zip sdists for the sdist path).
    wheels = {
        "demo.whl": wheel("demo", "1.0"),
        "stored.whl": wheel("demo", "1.0", compression=zipfile.ZIP_STORED),
        "two-dist-info.whl": wheel("demo", "1.0", extra={"other-1.0.dist-info/METADATA": b"x"}),
        "unsafe.whl": wheel("demo", "1.0", extra={"../evil.py": b"x"}),
        "wrong-name.whl": wheel("demo", "1.0", metadata=pkg_info("other", "1.0")),
        "sdist.zip": zip_sdist("demo", "1.0"),
    }
    for n, b in wheels.items():
        write(CORPUS / "wheel" / n, b)

    # sdist: .tar.gz archives.
    sdists = {
        "demo-gnu.tar.gz": sdist("demo", "1.0"),
        "demo-pax.tar.gz": sdist("demo", "1.0", fmt=tarfile.PAX_FORMAT),
        "demo-ustar.tar.gz": sdist("demo", "1.0", fmt=tarfile.USTAR_FORMAT),
        "two-pkg-info.tar.gz": sdist("demo", "1.0", extra={"other-1.0/PKG-INFO": b"x"}),
        "long-names.tar.gz": sdist("demo", "1.0", fmt=tarfile.PAX_FORMAT,
                                   extra={"demo-1.0/" + "d" * 150 + "/f.py": b"y"}),
        "concatenated.tar.gz": sdist("demo", "1.0") + gzip.compress(b"\0" * 1024),
    }
    for n, b in sdists.items():
        write(CORPUS / "sdist" / n, b)

    # upload: Content-Type line, then a twine-style multipart body.
    w, sd = wheels["demo.whl"], sdists["demo-gnu.tar.gz"]
    uploads = {
        "wheel": upload_seed("demo", "1.0", "demo-1.0-py3-none-any.whl", w),
        "sdist": upload_seed("demo", "1.0", "demo-1.0.tar.gz", sd),
        "zip-sdist": upload_seed("demo", "1.0", "demo-1.0.zip", wheels["sdist.zip"]),
        "bad-digest": upload_seed("demo", "1.0", "demo-1.0.tar.gz", sd, sha256_digest="00" * 32),
        "yank-like": upload_seed("demo", "2.0", "demo-2.0-py3-none-any.whl",
                                 wheel("demo", "2.0"), requires_python="<4,>=3.8"),
        "no-file": b"multipart/form-data; boundary=" + BOUNDARY.encode() + b"\n"
        + multipart([(":action", "file_upload"), ("name", "demo")], None),
    }
    for n, b in uploads.items():
        write(CORPUS / "upload" / n, b)

    # proxy_page: PEP 691 pages as the index renders them.
    sha = "a" * 64
    write(CORPUS / "proxy_page" / "index-style", page("demo", [
        {"filename": "demo-1.0-py3-none-any.whl",
         "url": f"../../packages/{sha[:2]}/{sha[2:4]}/{sha}/demo-1.0-py3-none-any.whl",
         "hashes": {"sha256": sha}, "requires-python": ">=3.8",
         "core-metadata": {"sha256": "c" * 64}, "dist-info-metadata": {"sha256": "c" * 64},
         "yanked": False, "size": 1234, "upload-time": "2026-01-01T00:00:00.000000Z"},
        {"filename": "demo-1.0.tar.gz", "url": f"../../packages/{sha[:2]}/demo-1.0.tar.gz",
         "hashes": {"sha256": sha}, "yanked": "broken <b>", "size": 99},
    ]))
    write(CORPUS / "proxy_page" / "absolute-and-foreign", page("foo-bar", [
        {"filename": "foo_bar-1.0.tar.gz",
         "url": "http://index.test:4458/packages/ab/cd/foo_bar-1.0.tar.gz#sha256=bb",
         "hashes": {"sha256": "bb"}, "core-metadata": True, "yanked": True},
        {"filename": "evil-1.0.tar.gz", "url": "http://elsewhere.test/evil-1.0.tar.gz",
         "hashes": {"md5": "dd"}},
        {"filename": "q.whl", "url": "/packages/x%20y/q.whl?x=1", "hashes": {}},
    ]))
    write(CORPUS / "proxy_page" / "empty", page("x", []))

    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    print(f"fixtures: {len(repo)} metadata files; corpus: {total} bytes")


if __name__ == "__main__":
    main()
