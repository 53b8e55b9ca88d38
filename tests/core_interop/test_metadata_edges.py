"""Metadata field edge cases where tufpi and python-tuf must agree: the `expires` format,
optional fields (consistent_snapshot), spec_version forms and succinct hash-bin role names."""

from __future__ import annotations

import copy

import pytest
from tuf.api.metadata import Metadata

from interop_util import (
    TOP_LEVEL,
    assert_refused,
    assert_verified,
    load,
    py_signer,
    py_verify,
    raw,
    succinct_targets,
    top_level,
    write,
    write_raw,
)
from tuf.api.metadata import Key


@pytest.fixture
def py_repo(tmp_path):
    """Top-level metadata signed by one python ed25519 key."""
    s = py_signer("ed25519")
    k = Key.from_dict(s.public_key.keyid, s.public_key.to_dict())
    mds = top_level({r: [k] for r in TOP_LEVEL})
    paths = {}
    for r, md in mds.items():
        md.sign(s)
        paths[r] = write(md, tmp_path / f"{r}.json")
    return {"signer": s, "mds": mds, "paths": paths, "dir": tmp_path}


# --- expires -------------------------------------------------------------------------------

def test_verify_covers_the_expires_text_in_the_file(tufpi, py_repo):
    """python-tuf reads "2035-1-1T0:0:0Z", normalizes it and signs the normalized form; a file
    that keeps the unpadded text is then not what was signed. python-tuf still accepts it (it
    verifies its re-serialization); tufpi accepts only the zero-padded form and refuses."""
    p = py_repo["paths"]["timestamp"]
    doc = raw(p)
    doc["signed"]["expires"] = "2035-1-1T0:0:0Z"
    md = Metadata.from_dict(copy.deepcopy(doc))
    assert md.signed.to_dict()["expires"] == "2035-01-01T00:00:00Z"
    doc["signatures"] = [md.sign(py_repo["signer"]).to_dict()]
    write_raw(p, doc)
    py_verify(py_repo["mds"]["root"], "timestamp", load(p))
    assert_refused(tufpi.verify(p, py_repo["paths"]["root"]), "expires", "YYYY-MM-DDTHH:MM:SSZ")
    # Written the way python-tuf writes it, it verifies.
    write(md, p)
    assert raw(p)["signed"]["expires"] == "2035-01-01T00:00:00Z"
    assert_verified(tufpi.verify(p, py_repo["paths"]["root"]), "timestamp", 1, 1, 1)




@pytest.mark.parametrize(
    "expires",
    [
        "+2035-01-01T00:00:00Z",
        " 2035-01-01T00:00:00Z",
        "2035-01-01T00:00:00Z ",
        "2035-01-01T00:00:00.0Z",
        "2035-01-01T00:00:00+00:00",
        "2035-01-01 00:00:00Z",
        "2035-02-30T00:00:00Z",
        "12035-01-01T00:00:00Z",
        "2035-01-01T00:00:60Z",
        "2035-01-01T24:00:00Z",
    ],
)
def test_edited_expires_python_refuses_is_refused(tufpi, py_repo, expires):
    """The signature covers "2035-01-01T00:00:00Z"; the file now says something python-tuf
    does not accept as a date at all. tufpi must not verify it."""
    p = py_repo["paths"]["timestamp"]
    doc = raw(p)
    doc["signed"]["expires"] = expires
    write_raw(p, doc)
    with pytest.raises(Exception):
        Metadata.from_dict(copy.deepcopy(doc))
    assert_refused(tufpi.verify(p, py_repo["paths"]["root"]))


@pytest.mark.parametrize(
    "expires",
    [
        "2035-06-30T23:59:60Z",
        "2035-1-1T0:0:0Z",
        "+2035-01-01T00:00:00Z",
        "2035-01-01T00:00:00.5Z",
        "2035-13-01T00:00:00Z",
    ],
)
def test_tufpi_never_signs_expires_python_cannot_read(tufpi, keygen, tmp_path, expires):
    """`tufpi metadata sign` either refuses, or writes a file python-tuf loads and verifies."""
    k = keygen("ed25519")
    mds = top_level({r: [k.tuf_key()] for r in TOP_LEVEL})
    root_p = write(mds["root"], tmp_path / "root.json")
    tp = write(mds["timestamp"], tmp_path / "timestamp.json")
    doc = raw(tp)
    doc["signed"]["expires"] = expires
    write_raw(tp, doc)
    r = tufpi.run("metadata", "sign", tp, "--key", k.priv_path)
    if r.returncode == 1:
        assert_refused(r, "expires")
        return
    assert r.returncode == 0, r.describe()
    py_verify(mds["root"], "timestamp", load(tp))
    assert_verified(tufpi.verify(tp, root_p), "timestamp", 1, 1, 1)


# --- optional fields and versions ----------------------------------------------------------

@pytest.mark.parametrize(
    ("role", "edit"),
    [
        ("root", lambda s: s.pop("consistent_snapshot")),
        ("root", lambda s: s.update(consistent_snapshot=False)),
        ("root", lambda s: s.update(spec_version="1.0")),
        ("root", lambda s: s.update(spec_version="1.99.1234")),
        ("targets", lambda s: s.update(targets={})),
        ("snapshot", lambda s: s.update(meta={})),
        ("snapshot", lambda s: s["meta"]["targets.json"].pop("hashes")),
        ("targets", lambda s: next(iter(s["targets"].values())).update(length=0)),
        ("timestamp", lambda s: s.update(version=2**63 - 1)),
    ],
    ids=["no-consistent-snapshot", "consistent-snapshot-false", "spec-1.0", "spec-1.99.1234",
         "no-targets", "no-meta", "meta-without-hashes", "zero-length", "version-2^63-1"],
)
def test_optional_and_boundary_fields_both_ways(tufpi, keygen, py_repo, tmp_path, role, edit):
    # python-signed -> tufpi
    p = py_repo["paths"][role]
    doc = py_repo["mds"][role].to_dict()
    edit(doc["signed"])
    md = Metadata.from_dict(copy.deepcopy(doc))
    md.sign(py_repo["signer"])
    write(md, p)
    root_p = py_repo["paths"]["root"]
    if role == "root":
        root_p = p
    version = doc["signed"]["version"]
    assert_verified(tufpi.verify(p, root_p, role), role, version, 1, 1)

    # tufpi-signed -> python, bytes unchanged apart from the signature
    k = keygen("ecdsa-sha2-nistp256")
    mds = top_level({r: [k.tuf_key()] for r in TOP_LEVEL})
    tdoc = mds[role].to_dict()
    edit(tdoc["signed"])
    tp = tmp_path / "tufpi" / f"{role}.json"
    write(Metadata.from_dict(copy.deepcopy(tdoc)), tp)
    tufpi.sign(tp, k)
    assert raw(tp)["signed"] == tdoc["signed"]
    root = mds["root"] if role != "root" else load(tp)
    py_verify(root, role, load(tp))


# --- succinct hash-bin role names ----------------------------------------------------------

@pytest.mark.parametrize("bit_length", [1, 4, 5, 8])
def test_succinct_role_names_agree_with_python(tufpi, tmp_path, bit_length):
    s = py_signer("ed25519")
    k = Key.from_dict(s.public_key.keyid, s.public_key.to_dict())
    deleg = succinct_targets([k], bit_length=bit_length, prefix="bins")
    deleg.sign(s)
    deleg_p = write(deleg, tmp_path / "paths-role.json")
    binmd = top_level({})["targets"]
    binmd.sign(s)
    bin_p = write(binmd, tmp_path / "bin.json")

    succ = deleg.signed.delegations.succinct_roles
    width = succ.suffix_len
    names = list(succ.get_roles())
    assert len(names) == 2**bit_length
    n = 2**bit_length
    candidates = names[:3] + names[-2:] + [
        f"bins-{n:0{width}x}",          # one past the last bin
        f"bins-{0:0{width + 1}x}",      # too wide
        "bins-" + "0" * (width - 1) if width > 1 else "bins-",  # too narrow
        "bins-" + "g" * width,          # not hex
        "bins-" + "F" * width,          # upper case hex
        f"bins{0:0{width}x}",           # no dash
        f"Bins-{0:0{width}x}",          # prefix case
        f"bins-{0:0{width}x}.json",
        "bins",
        "",
    ]
    for name in candidates:
        expected = succ.is_delegated_role(name)
        r = tufpi.verify(bin_p, deleg_p, name)
        if expected:
            assert_verified(r, name, 1, 1, 1)
            py_verify(deleg, name, binmd)
        else:
            assert r.returncode == 1, f"{name!r}: {r.describe()}"
            assert_refused(r)
