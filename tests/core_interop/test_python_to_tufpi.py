"""python-tuf -> tufpi: metadata built and signed by python-tuf (CryptoSigner), written with
python-tuf's JSONSerializer (indented and compact), verified by `tufpi metadata verify`."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import Key

from interop_util import (
    PY_SCHEMES,
    TOP_LEVEL,
    assert_refused,
    assert_verified,
    delegating_targets,
    load,
    py_signer,
    py_verify,
    succinct_targets,
    top_level,
    write,
)


@pytest.fixture(scope="module")
def py_signers() -> dict[str, list[CryptoSigner]]:
    """Two python key pairs per scheme (RSA generation is slow: do it once)."""
    return {s: [py_signer(s), py_signer(s)] for s in PY_SCHEMES}


def tuf_key(signer: CryptoSigner) -> Key:
    return Key.from_dict(signer.public_key.keyid, signer.public_key.to_dict())


@pytest.mark.parametrize("compact", [False, True], ids=["indented", "compact"])
@pytest.mark.parametrize("scheme", PY_SCHEMES)
def test_top_level_signed_by_python_verify_in_tufpi(tufpi, tmp_path, py_signers, scheme, compact):
    root_signer, other = py_signers[scheme]
    role_keys = {"root": [tuf_key(root_signer)]}
    role_keys.update({r: [tuf_key(other)] for r in ("targets", "snapshot", "timestamp")})
    mds = top_level(role_keys)
    versions = {"root": 1, "targets": 7, "snapshot": 12, "timestamp": 345}
    paths = {}
    for role, md in mds.items():
        md.signed.version = versions[role]
        md.sign(root_signer if role == "root" else other)
        paths[role] = write(md, tmp_path / f"{role}.json", compact=compact)
        raw = paths[role].read_bytes()
        assert (b"\n" in raw) != compact

    for role in TOP_LEVEL:
        py_verify(mds["root"], role, load(paths[role]))
        assert_verified(tufpi.verify(paths[role], paths["root"]), role, versions[role], 1, 1)
        # Explicit --role gives the same answer.
        assert_verified(tufpi.verify(paths[role], paths["root"], role), role, versions[role], 1, 1)

    # Root's key does not sign for targets.
    mds["targets"].sign(root_signer)
    write(mds["targets"], paths["targets"], compact=compact)
    assert_refused(tufpi.verify(paths["targets"], paths["root"]), "threshold", "0/1")


@pytest.mark.parametrize("compact", [False, True], ids=["indented", "compact"])
@pytest.mark.parametrize("scheme", PY_SCHEMES)
def test_delegations_signed_by_python_verify_in_tufpi(tufpi, tmp_path, py_signers, scheme, compact):
    s1, s2 = py_signers[scheme]
    targets = delegating_targets([tuf_key(s1)], [tuf_key(s2)])
    targets.sign(s1)
    targets_p = write(targets, tmp_path / "targets.json", compact=compact)

    paths_md = succinct_targets([tuf_key(s2)], bit_length=8, prefix="bin")
    paths_md.signed.version = 3
    paths_md.sign(s1)
    paths_p = write(paths_md, tmp_path / "3.paths-role.json", compact=compact)

    prefix_md = top_level({})["targets"]
    prefix_md.sign(s2)
    prefix_p = write(prefix_md, tmp_path / "prefix-role.json", compact=compact)

    bin_md = top_level({})["targets"]
    bin_md.signed.version = 2
    bin_md.sign(s2)
    bin_p = write(bin_md, tmp_path / "2.bin-a7.json", compact=compact)

    py_verify(targets, "paths-role", paths_md)
    py_verify(paths_md, "bin-a7", bin_md)
    assert_verified(tufpi.verify(paths_p, targets_p), "paths-role", 3, 1, 1)
    assert_verified(tufpi.verify(prefix_p, targets_p), "prefix-role", 1, 1, 1)
    assert_verified(tufpi.verify(bin_p, paths_p), "bin-a7", 2, 1, 1)
    assert_verified(tufpi.verify(bin_p, paths_p, "bin-00"), "bin-00", 2, 1, 1)
    # bit_length 8 -> two hex digits; "bin-100" is not a bin, "paths-role" is not delegated by
    # paths-role.
    assert_refused(tufpi.verify(bin_p, paths_p, "bin-100"), "bin-100")
    # prefix-role's key is not paths-role's.
    assert_refused(tufpi.verify(prefix_p, targets_p, "paths-role"), "threshold")


def test_threshold_two_rsa_and_ed25519(tufpi, tmp_path, py_signers):
    rsa, ed = py_signers["rsassa-pss-sha256"][0], py_signers["ed25519"][0]
    both = [tuf_key(rsa), tuf_key(ed)]
    mds = top_level({r: both for r in TOP_LEVEL}, thresholds={r: 2 for r in TOP_LEVEL})
    paths = {}
    for role, md in mds.items():
        md.sign(rsa)
        md.sign(ed, append=True)
        paths[role] = write(md, tmp_path / f"{role}.json")
    for role in TOP_LEVEL:
        assert_verified(tufpi.verify(paths[role], paths["root"]), role, 1, 2, 2)

    mds["snapshot"].sign(ed)  # replaces: one signature left
    write(mds["snapshot"], paths["snapshot"])
    assert_refused(tufpi.verify(paths["snapshot"], paths["root"]), "threshold", "1/2")


def _legacy_signer(curve_scheme: str, keyid: str) -> tuple[CryptoSigner, dict]:
    """An ecdsa signer whose public key uses the deprecated keytype spelling (keytype ==
    scheme), built by hand; the keyid is opaque."""
    fresh = py_signer(curve_scheme)
    pem = fresh._private_key.public_key().public_bytes(  # noqa: SLF001
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    ).decode()
    key_dict = {"keytype": curve_scheme, "scheme": curve_scheme, "keyval": {"public": pem}}
    legacy = SSlibKey.from_dict(keyid, json.loads(json.dumps(key_dict)))
    return CryptoSigner(fresh._private_key, legacy), key_dict  # noqa: SLF001


@pytest.mark.parametrize("scheme", ["ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384"])
def test_legacy_ecdsa_keytype_signed_by_python(tufpi, tmp_path, scheme):
    keyid = f"legacy {scheme} key / opaque id"
    signer, key_dict = _legacy_signer(scheme, keyid)
    key = Key.from_dict(keyid, json.loads(json.dumps(key_dict)))
    assert key.keytype == scheme
    mds = top_level({r: [key] for r in TOP_LEVEL})
    paths = {}
    for role, md in mds.items():
        md.sign(signer)
        paths[role] = write(md, tmp_path / f"{role}.json")
    assert json.loads(paths["root"].read_text())["signed"]["keys"][keyid]["keytype"] == scheme

    for role in TOP_LEVEL:
        with pytest.warns(DeprecationWarning, match="deprecated"):
            py_verify(mds["root"], role, load(paths[role]))
        assert_verified(tufpi.verify(paths[role], paths["root"]), role, 1, 1, 1)


@pytest.mark.parametrize("scheme", ["ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384"])
def test_legacy_ecdsa_keytype_signed_by_tufpi(tufpi, keygen, tmp_path, scheme):
    """tufpi signs under the keyid root lists for its key, even with the legacy keytype."""
    k = keygen(scheme)
    legacy = dict(k.key_dict, keytype=scheme)
    keyid = "opaque-legacy-id"
    key = Key.from_dict(keyid, json.loads(json.dumps(legacy)))
    mds = top_level({r: [key] for r in TOP_LEVEL})
    root_p = write(mds["root"], tmp_path / "root.json")
    r = tufpi.sign(root_p, k)
    assert r.out == f"signed: root v1 with keyid {keyid}\n"
    root = load(root_p)
    assert list(root.signatures) == [keyid]
    with pytest.warns(DeprecationWarning):
        py_verify(root, "root", root)
    assert_verified(tufpi.verify(root_p, root_p), "root", 1, 1, 1)

    # targets does not list keys: --keyid picks root's id.
    tp = write(mds["targets"], tmp_path / "targets.json")
    tufpi.sign(tp, k, keyid=keyid)
    with pytest.warns(DeprecationWarning):
        py_verify(root, "targets", load(tp))
    assert_verified(tufpi.verify(tp, root_p), "targets", 1, 1, 1)
