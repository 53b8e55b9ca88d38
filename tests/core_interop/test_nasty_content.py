"""Nasty content (see nasty.py) in both directions: tufpi must sign over exactly the canonical
bytes python-tuf computes, keep every unrecognized field, and verify what python-tuf signs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata

import nasty
from interop_util import (
    assert_verified,
    load,
    py_signer,
    py_verify,
    raw,
    without_signatures,
    write,
)

SIG_EXTRAS = nasty.extras("signature")


def _py_md(doc: dict) -> Metadata:
    return Metadata.from_dict(copy.deepcopy(doc))


def _tuf_key_dict(signer) -> dict:
    return signer.public_key.to_dict()


class Repo:
    """Paths, raw docs and role wiring of one nasty repository."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.docs: dict[str, dict] = {}
        self.paths: dict[str, Path] = {}

    def path(self, name: str) -> Path:
        return self.dir / f"{name}.json"


ROLE_FILES = ["root", "targets", "snapshot", "timestamp", "paths-role", "nasty-role", "bin"]
BIN_ROLE = f"{nasty.BIN_PREFIX}-2"


def _docs(k: dict[str, dict[str, tuple[str, dict]]]) -> dict[str, dict]:
    """Raw docs; k[name] = list of (keyid, key_dict) for each signing role."""
    ids = {name: [kid for kid, _ in lst] for name, lst in k.items()}
    root_keys = {kid: kd for r in ("root", "targets", "snapshot", "timestamp") for kid, kd in k[r]}
    deleg_keys = {kid: kd for r in ("paths-role", "nasty-role") for kid, kd in k[r]}
    return {
        "root": nasty.root(
            root_keys,
            {r: (ids[r], len(ids[r])) for r in ("root", "targets", "snapshot", "timestamp")},
        ),
        "targets": nasty.targets(
            3, deleg_keys, (ids["paths-role"], len(ids["paths-role"])), (ids["nasty-role"], 1)
        ),
        "snapshot": nasty.snapshot(4),
        "timestamp": nasty.timestamp(5),
        "paths-role": nasty.succinct(2, dict(k["bin"])),
        "nasty-role": nasty.plain_targets(1),
        "bin": nasty.plain_targets(6),
    }


DELEGATOR = {
    "root": "root",
    "targets": "root",
    "snapshot": "root",
    "timestamp": "root",
    "paths-role": "targets",
    "nasty-role": "targets",
    "bin": "paths-role",
}
ROLE_NAME = {
    "root": "root",
    "targets": "targets",
    "snapshot": "snapshot",
    "timestamp": "timestamp",
    "paths-role": "paths-role",
    "nasty-role": nasty.NASTY_ROLE,
    "bin": BIN_ROLE,
}
KIND = {
    "root": "root",
    "targets": "targets",
    "snapshot": "snapshot",
    "timestamp": "timestamp",
    "paths-role": "succinct",
    "nasty-role": "plain",
    "bin": "plain",
}
VERSION = {"root": 1, "targets": 3, "snapshot": 4, "timestamp": 5, "paths-role": 2,
           "nasty-role": 1, "bin": 6}


def _python_verify_all(paths: dict[str, Path]) -> dict[str, Metadata]:
    mds = {name: load(p) for name, p in paths.items()}
    for name, md in mds.items():
        py_verify(mds[DELEGATOR[name]], ROLE_NAME[name], md)
        nasty.check_python_kept(md, KIND[name])
    return mds


def _tufpi_verify_all(tufpi, paths: dict[str, Path], thresholds: dict[str, int]) -> None:
    for name, p in paths.items():
        t = thresholds.get(name, 1)
        r = tufpi.verify(p, paths[DELEGATOR[name]], ROLE_NAME[name])
        assert_verified(r, ROLE_NAME[name], VERSION[name], t, t)


def test_nasty_docs_are_what_python_tuf_reads():
    """Self-check of the generator: python-tuf loads every doc and round-trips it unchanged."""
    docs = _docs({n: [(f"id-{n}", _tuf_key_dict(py_signer("ed25519")))] for n in ROLE_FILES})
    for name, doc in docs.items():
        md = _py_md(doc)
        nasty.check_python_kept(md, KIND[name])
        assert md.to_dict() == doc
    t = docs["targets"]["signed"]["targets"]
    assert f"{nasty.NFC}.tar.gz" in t and f"{nasty.NFD}.tar.gz" in t
    assert f"{nasty.NFC}.tar.gz" != f"{nasty.NFD}.tar.gz"


def test_tufpi_signs_nasty_content_python_verifies(tufpi, keygen, tmp_path):
    tk = {
        "root": keygen("ed25519"),
        "targets": keygen("ecdsa-sha2-nistp256"),
        "snapshot": keygen("ecdsa-sha2-nistp384"),
        "timestamp": keygen("ed25519"),
        "paths-role": keygen("ecdsa-sha2-nistp384"),
        "nasty-role": keygen("ecdsa-sha2-nistp256"),
        "bin": keygen("ed25519"),
    }
    # root and paths-role need a python signature as well (threshold 2): that signature object
    # carries unrecognized fields, which tufpi must keep when it adds its own.
    pk = {"root": py_signer("ecdsa-sha2-nistp256"), "paths-role": py_signer("ed25519")}
    k = {n: [(key.keyid, key.key_dict)] for n, key in tk.items()}
    for n, s in pk.items():
        k[n].append((s.public_key.keyid, _tuf_key_dict(s)))
    docs = _docs(k)

    paths = {}
    for name, doc in docs.items():
        md = _py_md(doc)
        if name in pk:
            sig = md.sign(pk[name])
            sig.unrecognized_fields.update(copy.deepcopy(SIG_EXTRAS))
        paths[name] = write(md, tmp_path / f"{name}.json")
    before = {name: raw(p) for name, p in paths.items()}

    for name, p in paths.items():
        tufpi.sign(p, tk[name])

    mds = _python_verify_all(paths)
    for name, p in paths.items():
        after = raw(p)
        # Everything but the new signature is untouched (values and unrecognized fields).
        assert without_signatures(after) == without_signatures(before[name])
        assert after["signatures"][: len(before[name]["signatures"])] == before[name]["signatures"]
        assert [s["keyid"] for s in after["signatures"]][-1] == tk[name].keyid
        if name in pk:
            kept = mds[name].signatures[pk[name].public_key.keyid]
            assert kept.unrecognized_fields == SIG_EXTRAS
            assert len(mds[name].signatures) == 2
    _tufpi_verify_all(tufpi, paths, {"root": 2, "paths-role": 2})


@pytest.mark.parametrize("compact", [False, True], ids=["indented", "compact"])
def test_python_signs_nasty_content_tufpi_verifies(tufpi, tmp_path, compact):
    schemes = ["ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384"]
    signers = {n: py_signer(schemes[i % 3]) for i, n in enumerate(ROLE_FILES)}
    docs = _docs({n: [(s.public_key.keyid, _tuf_key_dict(s))] for n, s in signers.items()})
    paths = {}
    for name, doc in docs.items():
        md = _py_md(doc)
        sig = md.sign(signers[name])
        sig.unrecognized_fields.update(copy.deepcopy(SIG_EXTRAS))
        paths[name] = write(md, tmp_path / f"{name}.json", compact=compact)
    # What python wrote contains the raw nasty characters as \u escapes (ensure_ascii).
    text = paths["targets"].read_bytes()
    assert text.isascii() and b"\\u0301" in text and b"\\ud83d\\ude00" in text
    _python_verify_all(paths)
    _tufpi_verify_all(tufpi, paths, {})


def test_python_signs_raw_utf8_content_tufpi_verifies(tufpi, tmp_path):
    """Same documents written as raw UTF-8 (ensure_ascii=False), as other TUF writers do."""
    signers = {n: py_signer("ed25519") for n in ROLE_FILES}
    docs = _docs({n: [(s.public_key.keyid, _tuf_key_dict(s))] for n, s in signers.items()})
    paths = {}
    for name, doc in docs.items():
        md = _py_md(doc)
        md.sign(signers[name])
        p = tmp_path / f"{name}.json"
        p.write_bytes(json.dumps(md.to_dict(), ensure_ascii=False, indent=2).encode("utf-8"))
        paths[name] = p
    assert "\U0001f600".encode() in paths["targets"].read_bytes()
    _python_verify_all(paths)
    _tufpi_verify_all(tufpi, paths, {})
