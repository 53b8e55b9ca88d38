"""Signature and key edge cases, decided the same way by tufpi and securesystemslib: key
type / scheme / curve confusion, signature encodings (DER vs raw, trailing bytes, malleated
ed25519 S, high-S ECDSA), RSA-PSS salt lengths and sizes; plus keys made by python's
cryptography (PKCS#8, SEC1, PKCS#1) signing through `tufpi metadata sign`."""

from __future__ import annotations

import copy
import json
import warnings
from typing import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Key, Metadata

from interop_util import (
    EXPIRES,
    PY_SCHEMES,
    TOP_LEVEL,
    assert_refused,
    assert_verified,
    load,
    py_signer,
    py_verify,
    top_level,
    write,
    write_raw,
)

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ED25519_L = 2**252 + 27742317777372353535851937790883648493


def _pem(pub) -> str:
    return pub.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo).decode()


def _raw_hex(pub) -> str:
    return pub.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw).hex()


@pytest.fixture(scope="module")
def privs():
    return {
        "p256": ec.generate_private_key(ec.SECP256R1()),
        "p384": ec.generate_private_key(ec.SECP384R1()),
        "ed": ed25519.Ed25519PrivateKey.generate(),
        "rsa2048": rsa.generate_private_key(65537, 2048),
        "rsa1024": rsa.generate_private_key(65537, 1024),
    }


def _pss(salt):
    return lambda k, m: k.sign(m, padding.PSS(padding.MGF1(hashes.SHA256()), salt), hashes.SHA256())


def _ecdsa(h):
    return lambda k, m: k.sign(m, ec.ECDSA(h()))


def _high_s(k, m):
    r, s = decode_dss_signature(k.sign(m, ec.ECDSA(hashes.SHA256())))
    return encode_dss_signature(r, P256_N - s)


def _raw_rs(k, m):
    r, s = decode_dss_signature(k.sign(m, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _ed_plus_l(k, m):
    sig = k.sign(m)
    s = int.from_bytes(sig[32:], "little") + ED25519_L
    return sig[:32] + s.to_bytes(32, "little")


# name, private key, keytype, scheme, public encoding, signing function, expected verdict
CASES: list[tuple[str, str, str, str, str, Callable, bool]] = [
    ("p256-ok", "p256", "ecdsa", "ecdsa-sha2-nistp256", "pem", _ecdsa(hashes.SHA256), True),
    ("p384-ok", "p384", "ecdsa", "ecdsa-sha2-nistp384", "pem", _ecdsa(hashes.SHA384), True),
    ("p256-high-s", "p256", "ecdsa", "ecdsa-sha2-nistp256", "pem", _high_s, True),
    ("p256-raw-r-s", "p256", "ecdsa", "ecdsa-sha2-nistp256", "pem", _raw_rs, False),
    ("p256-der-trailing-byte", "p256", "ecdsa", "ecdsa-sha2-nistp256", "pem",
     lambda k, m: k.sign(m, ec.ECDSA(hashes.SHA256())) + b"\x00", False),
    ("p256-wrong-hash", "p256", "ecdsa", "ecdsa-sha2-nistp256", "pem", _ecdsa(hashes.SHA384), False),
    ("p384-key-as-nistp256", "p384", "ecdsa", "ecdsa-sha2-nistp256", "pem", _ecdsa(hashes.SHA256), False),
    ("p256-key-as-nistp384", "p256", "ecdsa", "ecdsa-sha2-nistp384", "pem", _ecdsa(hashes.SHA384), False),
    ("legacy-keytype-scheme-mismatch", "p384", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "pem",
     _ecdsa(hashes.SHA384), False),
    ("legacy-keytype-p384", "p384", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384", "pem",
     _ecdsa(hashes.SHA384), True),
    ("keytype-ed25519-scheme-ecdsa", "p256", "ed25519", "ecdsa-sha2-nistp256", "pem",
     _ecdsa(hashes.SHA256), False),
    ("keytype-rsa-with-ec-key", "p256", "rsa", "rsassa-pss-sha256", "pem", _ecdsa(hashes.SHA256), False),
    ("keytype-ecdsa-with-rsa-key", "rsa2048", "ecdsa", "ecdsa-sha2-nistp256", "pem",
     lambda k, m: k.sign(m, padding.PKCS1v15(), hashes.SHA256()), False),
    ("ed-ok", "ed", "ed25519", "ed25519", "hex", lambda k, m: k.sign(m), True),
    ("ed-uppercase-hex-public", "ed", "ed25519", "ed25519", "HEX", lambda k, m: k.sign(m), True),
    ("ed-pem-public", "ed", "ed25519", "ed25519", "pem", lambda k, m: k.sign(m), False),
    ("ed-s-plus-l", "ed", "ed25519", "ed25519", "hex", _ed_plus_l, False),
    ("ed-flipped-bit", "ed", "ed25519", "ed25519", "hex",
     lambda k, m: bytes([k.sign(m)[0] ^ 1]) + k.sign(m)[1:], False),
    ("rsa-pss-salt-digest", "rsa2048", "rsa", "rsassa-pss-sha256", "pem", _pss(32), True),
    ("rsa-pss-salt-max", "rsa2048", "rsa", "rsassa-pss-sha256", "pem", _pss(padding.PSS.MAX_LENGTH), True),
    ("rsa-pss-salt-0", "rsa2048", "rsa", "rsassa-pss-sha256", "pem", _pss(0), True),
    ("rsa-1024-pss", "rsa1024", "rsa", "rsassa-pss-sha256", "pem", _pss(32), True),
    ("rsa-pkcs1v15-sig-as-pss", "rsa2048", "rsa", "rsassa-pss-sha256", "pem",
     lambda k, m: k.sign(m, padding.PKCS1v15(), hashes.SHA256()), False),
]


def _public(priv, enc: str) -> str:
    pub = priv.public_key()
    if enc == "pem":
        return _pem(pub)
    return _raw_hex(pub).upper() if enc == "HEX" else _raw_hex(pub)


def _python_verdict(doc: dict) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            md = Metadata.from_dict(copy.deepcopy(doc))
            py_verify(md, "root", md)
    except Exception:  # noqa: BLE001 - any refusal
        return False
    return True


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_signature_edge_agrees_with_securesystemslib(tufpi, tmp_path, privs, case):
    name, which, keytype, scheme, enc, sign, expected = case
    key = {"keytype": keytype, "scheme": scheme, "keyval": {"public": _public(privs[which], enc)}}
    signed = {
        "_type": "root",
        "spec_version": "1.0.31",
        "version": 1,
        "expires": EXPIRES.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "consistent_snapshot": True,
        "keys": {"k-" + name: key},
        "roles": {r: {"keyids": ["k-" + name], "threshold": 1} for r in TOP_LEVEL},
    }
    sig = sign(privs[which], encode_canonical(signed).encode())
    doc = {"signatures": [{"keyid": "k-" + name, "sig": sig.hex()}], "signed": signed}
    p = tmp_path / "root.json"
    write_raw(p, doc)
    assert _python_verdict(doc) is expected
    r = tufpi.verify(p, p)
    if expected:
        assert_verified(r, "root", 1, 1, 1)
    else:
        assert_refused(r, "threshold", "0/1")


def _private_pem(signer: CryptoSigner, fmt: str) -> bytes:
    if fmt == "pkcs8":
        return signer.private_bytes
    return signer._private_key.private_bytes(  # noqa: SLF001
        ser.Encoding.PEM, ser.PrivateFormat.TraditionalOpenSSL, ser.NoEncryption()
    )


KEY_FORMATS = [(s, "pkcs8") for s in PY_SCHEMES] + [
    ("ecdsa-sha2-nistp256", "traditional"),
    ("ecdsa-sha2-nistp384", "traditional"),
    ("rsassa-pss-sha256", "traditional"),
]


@pytest.mark.parametrize(("scheme", "fmt"), KEY_FORMATS, ids=[f"{s}-{f}" for s, f in KEY_FORMATS])
def test_tufpi_signs_with_python_generated_keys(tufpi, tmp_path, scheme, fmt):
    """Private keys from python's cryptography sign through tufpi; the keyid tufpi picks for
    a role file that lists no keys is the one securesystemslib computes."""
    signer = py_signer(scheme)
    pem = _private_pem(signer, fmt)
    header = {"pkcs8": b"PRIVATE KEY", "traditional": b"EC PRIVATE KEY"}[fmt]
    if fmt == "traditional" and scheme.startswith("rsa"):
        header = b"RSA PRIVATE KEY"
    assert pem.startswith(b"-----BEGIN " + header + b"-----\n")
    key_p = tmp_path / "key.pem"
    key_p.write_bytes(pem)
    kid = signer.public_key.keyid
    k = Key.from_dict(kid, signer.public_key.to_dict())
    mds = top_level({r: [k] for r in TOP_LEVEL})
    paths = {r: write(md, tmp_path / f"{r}.json") for r, md in mds.items()}
    for r in TOP_LEVEL:
        out = tufpi.ok("metadata", "sign", paths[r], "--key", key_p).out
        assert out == f"signed: {r} v1 with keyid {kid}\n"
    root = load(paths["root"])
    for r in TOP_LEVEL:
        md = load(paths[r])
        assert list(md.signatures) == [kid]
        py_verify(root, r, md)
        assert_verified(tufpi.verify(paths[r], paths["root"]), r, 1, 1, 1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: CryptoSigner.generate_rsa(scheme="rsa-pkcs1v15-sha256", size=2048),
        lambda: CryptoSigner.generate_rsa(scheme="rsassa-pss-sha512", size=2048),
        lambda: CryptoSigner.generate_ecdsa(scheme="ecdsa-sha2-nistp521"),
    ],
    ids=["rsa-pkcs1v15-sha256", "rsassa-pss-sha512", "ecdsa-sha2-nistp521"],
)
def test_other_schemes_verify_or_refuse_cleanly(tufpi, tmp_path, make):
    """Schemes outside the required set: tufpi either verifies them correctly or says it
    does not support them; it never accepts a bad signature under them."""
    signer = make()
    k = Key.from_dict(signer.public_key.keyid, signer.public_key.to_dict())
    md = top_level({r: [k] for r in TOP_LEVEL})["root"]
    md.sign(signer)
    p = write(md, tmp_path / "root.json")
    r = tufpi.verify(p, p)
    if r.returncode == 0:
        assert_verified(r, "root", 1, 1, 1)
        doc = json.loads(p.read_text())
        doc["signed"]["version"] = 2
        write_raw(p, doc)
        assert_refused(tufpi.verify(p, p), "threshold")
    else:
        assert_refused(r, "threshold", "unsupported", signer.public_key.scheme)
