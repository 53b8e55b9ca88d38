"""tufpi -> python-tuf: keys from `tufpi key generate`, metadata built by python-tuf, signed by
`tufpi metadata sign`, verified by python-tuf's verify_delegate."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import SSlibKey
from tuf.api.exceptions import UnsignedMetadataError

from interop_util import (
    TOP_LEVEL,
    TUFPI_SCHEMES,
    assert_verified,
    delegating_targets,
    load,
    py_verify,
    succinct_targets,
    top_level,
    write,
)


@pytest.mark.parametrize("scheme", TUFPI_SCHEMES)
def test_generated_key_matches_securesystemslib(keygen, scheme):
    """The public key JSON (and keyid) tufpi writes is exactly what securesystemslib derives
    from the same private key."""
    k = keygen(scheme)
    assert k.priv_path.read_text().startswith("-----BEGIN PRIVATE KEY-----\n")
    priv = load_pem_private_key(k.priv_path.read_bytes(), password=None)
    expected = SSlibKey.from_crypto(priv.public_key(), scheme=scheme)
    assert k.key_dict == expected.to_dict()
    assert k.keyid == expected.keyid
    assert k.key_dict["keytype"] == ("ed25519" if scheme == "ed25519" else "ecdsa")
    assert k.key_dict["scheme"] == scheme


@pytest.mark.parametrize("scheme", TUFPI_SCHEMES)
def test_top_level_roles_signed_by_tufpi_verify_in_python(tufpi, keygen, tmp_path, scheme):
    keys = {role: keygen(scheme, role) for role in TOP_LEVEL}
    mds = top_level({role: [k.tuf_key()] for role, k in keys.items()})
    paths = {role: write(md, tmp_path / "repo" / f"{role}.json") for role, md in mds.items()}

    for role in TOP_LEVEL:
        r = tufpi.sign(paths[role], keys[role])
        assert r.out == f"signed: {role} v1 with keyid {keys[role].keyid}\n"

    root = load(paths["root"])
    for role in TOP_LEVEL:
        md = load(paths[role])
        assert list(md.signatures) == [keys[role].keyid]
        py_verify(root, role, md)
        # Unchanged content: what python built is what tufpi signed.
        assert md.signed == mds[role].signed
        # And tufpi agrees with itself.
        assert_verified(tufpi.verify(paths[role], paths["root"]), role, 1, 1, 1)

    # A signature by the wrong role's key must not satisfy python-tuf.
    wrong = load(paths["snapshot"])
    wrong.signatures = load(paths["timestamp"]).signatures
    with pytest.raises(UnsignedMetadataError):
        py_verify(root, "snapshot", wrong)


@pytest.mark.parametrize("scheme", TUFPI_SCHEMES)
def test_delegations_signed_by_tufpi_verify_in_python(tufpi, keygen, tmp_path, scheme):
    """roles delegation (paths / path_hash_prefixes) and a succinct_roles delegation."""
    top = keygen(scheme, "top")
    kp, kh, kb = keygen(scheme, "paths"), keygen(scheme, "prefix"), keygen(scheme, "bins")
    repo = tmp_path / "repo"

    mds = top_level({role: [top.tuf_key()] for role in TOP_LEVEL})
    root_p = write(mds["root"], repo / "root.json")
    tufpi.sign(root_p, top)

    targets = delegating_targets([kp.tuf_key()], [kh.tuf_key()])
    targets_p = write(targets, repo / "targets.json")
    tufpi.sign(targets_p, top)

    # paths-role itself delegates to hash bins with succinct_roles.
    paths_md = succinct_targets([kb.tuf_key()], bit_length=3, prefix="bins")
    paths_p = write(paths_md, repo / "paths-role.json")
    tufpi.sign(paths_p, kp)

    prefix_md = top_level({})["targets"]
    prefix_p = write(prefix_md, repo / "prefix-role.json")
    tufpi.sign(prefix_p, kh)

    bins = {}
    for name in ("bins-0", "bins-5", "bins-7"):
        p = write(top_level({})["targets"], repo / f"1.{name}.json")
        tufpi.sign(p, kb)
        bins[name] = p

    root = load(root_p)
    targets_l = load(targets_p)
    py_verify(root, "targets", targets_l)
    assert targets_l.signed.delegations.roles["paths-role"].paths == ["files/*", "pkgs/*/*.whl"]
    assert targets_l.signed.delegations.roles["prefix-role"].path_hash_prefixes == ["00", "7f", "ff"]

    paths_l = load(paths_p)
    py_verify(targets_l, "paths-role", paths_l)
    py_verify(targets_l, "prefix-role", load(prefix_p))
    succ = paths_l.signed.delegations.succinct_roles
    assert succ.bit_length == 3 and succ.name_prefix == "bins"
    for name, p in bins.items():
        assert succ.is_delegated_role(name)
        py_verify(paths_l, name, load(p))
        # tufpi: role name from the file name "1.bins-N.json".
        assert_verified(tufpi.verify(p, paths_p), name, 1, 1, 1)

    # The prefix-role key does not sign for paths-role in python-tuf either.
    with pytest.raises(UnsignedMetadataError):
        py_verify(targets_l, "paths-role", load(prefix_p))
    assert_verified(tufpi.verify(paths_p, targets_p), "paths-role", 1, 1, 1)
    assert_verified(tufpi.verify(prefix_p, targets_p), "prefix-role", 1, 1, 1)


@pytest.mark.parametrize(
    "schemes",
    [
        ("ed25519", "ecdsa-sha2-nistp384"),
        ("ecdsa-sha2-nistp256", "ed25519"),
        ("ecdsa-sha2-nistp384", "ecdsa-sha2-nistp256"),
    ],
)
def test_threshold_two_mixed_schemes(tufpi, keygen, tmp_path, schemes):
    k1, k2 = keygen(schemes[0], "one"), keygen(schemes[1], "two")
    both = [k1.tuf_key(), k2.tuf_key()]
    mds = top_level({role: both for role in TOP_LEVEL}, thresholds={r: 2 for r in TOP_LEVEL})
    repo = tmp_path / "repo"
    paths = {role: write(md, repo / f"{role}.json") for role, md in mds.items()}

    # One signature is not enough, for python-tuf or for tufpi.
    tufpi.sign(paths["targets"], k1)
    root_unsigned_view = mds["root"]
    with pytest.raises(UnsignedMetadataError, match="1/2"):
        py_verify(root_unsigned_view, "targets", load(paths["targets"]))

    for role in TOP_LEVEL:
        tufpi.sign(paths[role], k1)  # re-signing replaces, never duplicates
        tufpi.sign(paths[role], k2)
    root = load(paths["root"])
    for role in TOP_LEVEL:
        md = load(paths[role])
        assert sorted(md.signatures) == sorted([k1.keyid, k2.keyid])
        py_verify(root, role, md)
        assert_verified(tufpi.verify(paths[role], paths["root"]), role, 1, 2, 2)


def test_delegated_threshold_two_mixed_schemes(tufpi, keygen, tmp_path):
    top = keygen("ed25519", "top")
    a, b = keygen("ecdsa-sha2-nistp256", "a"), keygen("ecdsa-sha2-nistp384", "b")
    repo = tmp_path / "repo"
    targets_p = write(delegating_targets([a.tuf_key(), b.tuf_key()], [a.tuf_key()], threshold=2),
                      repo / "targets.json")
    tufpi.sign(targets_p, top)
    role_p = write(top_level({})["targets"], repo / "paths-role.json")
    tufpi.sign(role_p, b)
    tufpi.sign(role_p, a)
    py_verify(load(targets_p), "paths-role", load(role_p))
    assert_verified(tufpi.verify(role_p, targets_p), "paths-role", 1, 2, 2)


def test_targets_key_reused_in_delegations_same_keyid(tufpi, keygen, tmp_path):
    """The top-level targets key also signs for a delegated role, listed under the same keyid:
    tufpi's default keyid works for both files."""
    k = keygen("ed25519")
    mds = top_level({r: [k.tuf_key()] for r in TOP_LEVEL})
    root_p = write(mds["root"], tmp_path / "root.json")
    tufpi.sign(root_p, k)
    tp = write(delegating_targets([k.tuf_key()], [k.tuf_key()]), tmp_path / "targets.json")
    assert tufpi.sign(tp, k).out == f"signed: targets v1 with keyid {k.keyid}\n"
    py_verify(mds["root"], "targets", load(tp))
    assert_verified(tufpi.verify(tp, root_p), "targets", 1, 1, 1)




def test_default_keyid_for_targets_not_taken_from_its_delegations(tufpi, keygen, tmp_path):
    k = keygen("ed25519")
    mds = top_level({r: [k.tuf_key()] for r in TOP_LEVEL})
    root_p = write(mds["root"], tmp_path / "root.json")
    tufpi.sign(root_p, k)
    # The delegations list the same public key under another (opaque) keyid.
    alias = k.tuf_key("delegation-alias")
    tp = write(delegating_targets([alias], [alias]), tmp_path / "targets.json")
    tufpi.sign(tp, k)
    py_verify(mds["root"], "targets", load(tp))
    assert_verified(tufpi.verify(tp, root_p), "targets", 1, 1, 1)
