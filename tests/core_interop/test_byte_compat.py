"""Byte compatibility: the files tufpi writes are byte-for-byte what python-tuf's default
JSONSerializer writes for the same metadata, and tufpi's ed25519 signatures are the ones
python's CryptoSigner makes with the same private key (ed25519 is deterministic)."""

from __future__ import annotations

import copy

import pytest
from tuf.api.metadata import Metadata
from tuf.api.serialization.json import JSONSerializer

import nasty
from interop_util import TOP_LEVEL, load, py_signer, py_verify, top_level, write


def _nasty_docs(key) -> dict[str, dict]:
    kd = {key.keyid: key.key_dict}
    ids = [key.keyid]
    return {
        "root": nasty.root(kd, {r: (ids, 1) for r in TOP_LEVEL}),
        "targets": nasty.targets(3, kd, (ids, 1), (ids, 1)),
        "succinct": nasty.succinct(2, kd),
        "snapshot": nasty.snapshot(4),
        "timestamp": nasty.timestamp(5),
    }


def _python_bytes(path) -> bytes:
    """What python-tuf writes for the metadata in `path`: `to_file()`'s default serializer,
    JSONSerializer() (indent 1). Note: in tuf 7, `to_bytes()` *without* a serializer is
    compact, so the indented form must be asked for explicitly."""
    return Metadata.from_file(str(path)).to_bytes(JSONSerializer())


@pytest.mark.parametrize("compact_input", [False, True], ids=["from-indented", "from-compact"])
@pytest.mark.parametrize("scheme", ["ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384"])
def test_tufpi_writes_python_tuf_default_bytes(tufpi, keygen, tmp_path, scheme, compact_input):
    k = keygen(scheme)
    other = py_signer("ed25519")
    docs = _nasty_docs(k)
    plain = top_level({r: [k.tuf_key()] for r in TOP_LEVEL})
    mds = {f"nasty-{n}": Metadata.from_dict(copy.deepcopy(d)) for n, d in docs.items()}
    mds.update({f"plain-{n}": md for n, md in plain.items()})
    mds["nasty-targets"].sign(other)  # an existing foreign signature must stay in place
    for name, md in mds.items():
        p = write(md, tmp_path / f"{name}.json", compact=compact_input)
        tufpi.sign(p, k)
        written = p.read_bytes()
        expected = _python_bytes(p)
        assert written == expected, name
        # python-tuf's own indented writer, fed the same content, agrees too.
        md.sign(k.py_signer(), append=True)
        assert md.signed_bytes == Metadata.from_bytes(written).signed_bytes
        assert not written.endswith(b"\n")
        assert written.startswith(b'{\n "signatures": [\n  {\n')
    assert list(load(tmp_path / "nasty-targets.json").signatures) == [
        other.public_key.keyid,
        k.keyid,
    ]


def test_ed25519_signature_equals_python_signature(tufpi, keygen, tmp_path):
    k = keygen("ed25519")
    signer = k.py_signer()
    docs = _nasty_docs(k)
    for name, doc in docs.items():
        p = write(Metadata.from_dict(copy.deepcopy(doc)), tmp_path / f"{name}.json")
        tufpi.sign(p, k)
        md = load(p)
        tufpi_sig = md.signatures[k.keyid].signature
        assert tufpi_sig == signer.sign(md.signed_bytes).signature, name
        assert len(tufpi_sig) == 128 and tufpi_sig == tufpi_sig.lower()

        # Python signing the unsigned file and writing it gives the same bytes tufpi wrote.
        py_md = Metadata.from_dict(copy.deepcopy(doc))
        py_md.sign(signer)
        py_p = write(py_md, tmp_path / "py" / f"{name}.json")
        assert py_p.read_bytes() == p.read_bytes(), name
        # ...and the compact form python makes is what tufpi verifies, too.
        assert Metadata.from_bytes(py_md.to_bytes()).signatures == md.signatures

        # Re-signing with the same key is idempotent.
        before = p.read_bytes()
        tufpi.sign(p, k)
        assert p.read_bytes() == before


def test_ecdsa_signatures_verify_in_python_after_resign(tufpi, keygen, tmp_path):
    """ECDSA is randomized; each re-sign replaces the one signature and python verifies it."""
    k = keygen("ecdsa-sha2-nistp256")
    mds = top_level({r: [k.tuf_key()] for r in TOP_LEVEL})
    p = write(mds["root"], tmp_path / "root.json")
    for _ in range(3):
        tufpi.sign(p, k)
        md = load(p)
        assert list(md.signatures) == [k.keyid]
        py_verify(md, "root", md)
        assert p.read_bytes() == md.to_bytes(JSONSerializer())
