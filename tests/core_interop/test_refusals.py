"""What `tufpi metadata verify` must refuse: exit code exactly 1 and one stderr line
"error: ..." naming the failed check. python-tuf refuses the same inputs. A few hundred random
mutations of valid files never crash tufpi (exit 101 = Rust panic) and whatever tufpi accepts,
python-tuf accepts too."""

from __future__ import annotations

import copy
import hashlib
import json
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from securesystemslib.signer import SSlibKey
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata

import nasty
from interop_util import (
    TOP_LEVEL,
    TufpiKey,
    assert_refused,
    assert_verified,
    load,
    py_verify,
    raw,
    top_level,
    write,
    write_raw,
)


@pytest.fixture(scope="module")
def repo(tufpi, tmp_path_factory):
    """root (ed25519), targets with threshold 2 (P-256 + P-384), snapshot (ed25519),
    timestamp (P-256); all signed by tufpi."""
    d = tmp_path_factory.mktemp("refusals")
    keys = {
        "root": tufpi.keygen("ed25519", d / "keys", "root"),
        "targets-a": tufpi.keygen("ecdsa-sha2-nistp256", d / "keys", "targets-a"),
        "targets-b": tufpi.keygen("ecdsa-sha2-nistp384", d / "keys", "targets-b"),
        "snapshot": tufpi.keygen("ed25519", d / "keys", "snapshot"),
        "timestamp": tufpi.keygen("ecdsa-sha2-nistp256", d / "keys", "timestamp"),
    }
    role_keys = {
        "root": [keys["root"].tuf_key()],
        "targets": [keys["targets-a"].tuf_key(), keys["targets-b"].tuf_key()],
        "snapshot": [keys["snapshot"].tuf_key()],
        "timestamp": [keys["timestamp"].tuf_key()],
    }
    mds = top_level(role_keys, thresholds={"targets": 2})
    paths = {r: write(md, d / f"{r}.json") for r, md in mds.items()}
    tufpi.sign(paths["root"], keys["root"])
    tufpi.sign(paths["targets"], keys["targets-a"])
    tufpi.sign(paths["targets"], keys["targets-b"])
    tufpi.sign(paths["snapshot"], keys["snapshot"])
    tufpi.sign(paths["timestamp"], keys["timestamp"])
    for r in TOP_LEVEL:
        py_verify(load(paths["root"]), r, load(paths[r]))
    return {"dir": d, "keys": keys, "paths": paths}


def _copy(repo, role: str, tmp_path: Path) -> Path:
    p = tmp_path / f"{role}.json"
    p.write_bytes(repo["paths"][role].read_bytes())
    return p


def test_baseline_verifies(tufpi, repo):
    p = repo["paths"]
    assert_verified(tufpi.verify(p["root"], p["root"]), "root", 1, 1, 1)
    assert_verified(tufpi.verify(p["targets"], p["root"]), "targets", 1, 2, 2)
    assert_verified(tufpi.verify(p["snapshot"], p["root"]), "snapshot", 1, 1, 1)
    assert_verified(tufpi.verify(p["timestamp"], p["root"]), "timestamp", 1, 1, 1)


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s.update(version=2),
        lambda s: s.update(expires="2035-01-01T00:00:01Z"),
        lambda s: s["meta"]["targets.json"].update(version=2),
        lambda s: s["meta"]["targets.json"].update(length=1235),
        lambda s: s.update({"x-added-after-signing": "x"}),
        lambda s: s["meta"].update({"new.json": {"version": 1}}),
    ],
    ids=["version", "expires", "meta-version", "meta-length", "new-unrecognized", "new-meta"],
)
def test_modified_signed_field_after_signing(tufpi, repo, tmp_path, edit):
    p = _copy(repo, "snapshot", tmp_path)
    doc = raw(p)
    edit(doc["signed"])
    write_raw(p, doc)
    assert_refused(tufpi.verify(p, repo["paths"]["root"]), "snapshot", "threshold", "0/1")
    with pytest.raises(UnsignedMetadataError):
        py_verify(load(repo["paths"]["root"]), "snapshot", load(p))


def test_modified_nasty_custom_after_signing(tufpi, keygen, tmp_path):
    """A change deep inside target custom data (NFC -> NFD) breaks the signature."""
    k = keygen("ed25519")
    doc = nasty.targets(1, {k.keyid: k.key_dict}, ([k.keyid], 1), ([k.keyid], 1))
    root = top_level({r: [k.tuf_key()] for r in TOP_LEVEL})["root"]
    root_p = write(root, tmp_path / "root.json")
    tp = tmp_path / "targets.json"
    write_raw(tp, doc)
    tufpi.sign(tp, k)
    assert_verified(tufpi.verify(tp, root_p), "targets", 1, 1, 1)
    d = raw(tp)
    t = d["signed"]["targets"][f"{nasty.NFC}.tar.gz"]
    t["custom"]["nfc-or-nfd"] = nasty.NFC
    write_raw(tp, d)
    tufpi.sign(tp, k)
    d = raw(tp)
    d["signed"]["targets"][f"{nasty.NFC}.tar.gz"]["custom"]["nfc-or-nfd"] = nasty.NFD
    write_raw(tp, d)
    assert_refused(tufpi.verify(tp, root_p), "threshold", "0/1")
    with pytest.raises(UnsignedMetadataError):
        py_verify(root, "targets", load(tp))


def test_fewer_signatures_than_threshold(tufpi, repo, tmp_path):
    p = _copy(repo, "targets", tmp_path)
    doc = raw(p)
    assert len(doc["signatures"]) == 2
    doc["signatures"] = doc["signatures"][:1]
    write_raw(p, doc)
    assert_refused(tufpi.verify(p, repo["paths"]["root"]), "targets", "threshold", "1/2")
    with pytest.raises(UnsignedMetadataError, match="1/2"):
        py_verify(load(repo["paths"]["root"]), "targets", load(p))


def test_same_keyid_twice_counts_once(tufpi, repo, tmp_path):
    p = _copy(repo, "targets", tmp_path)
    doc = raw(p)
    doc["signatures"] = [doc["signatures"][0], copy.deepcopy(doc["signatures"][0])]
    write_raw(p, doc)
    line = assert_refused(tufpi.verify(p, repo["paths"]["root"]), "threshold", "1/2")
    assert "once" in line
    # python-tuf refuses such a file outright.
    with pytest.raises(ValueError, match="Multiple signatures"):
        Metadata.from_dict(raw(p))


def test_same_keyid_twice_with_different_signature_counts_once(tufpi, repo, tmp_path):
    """Two entries for one keyid (one valid, one a valid-looking copy of the other key's
    signature) still count once."""
    p = _copy(repo, "targets", tmp_path)
    doc = raw(p)
    a, b = doc["signatures"]
    doc["signatures"] = [a, {"keyid": a["keyid"], "sig": b["sig"]}]
    write_raw(p, doc)
    assert_refused(tufpi.verify(p, repo["paths"]["root"]), "threshold", "1/2")


def test_signature_by_key_of_another_role(tufpi, repo, tmp_path):
    """The timestamp key is in root, but not for snapshot."""
    p = _copy(repo, "snapshot", tmp_path)
    doc = raw(p)
    write_raw(p, dict(doc, signatures=[]))
    tufpi.sign(p, repo["keys"]["timestamp"])
    assert raw(p)["signatures"][0]["keyid"] == repo["keys"]["timestamp"].keyid
    assert_refused(tufpi.verify(p, repo["paths"]["root"]), "snapshot", "threshold", "0/1")
    with pytest.raises(UnsignedMetadataError):
        py_verify(load(repo["paths"]["root"]), "snapshot", load(p))


def test_signature_relabelled_with_assigned_keyid(tufpi, repo, tmp_path):
    """A signature by the timestamp key filed under the snapshot keyid does not verify."""
    p = _copy(repo, "snapshot", tmp_path)
    write_raw(p, dict(raw(p), signatures=[]))
    tufpi.sign(p, repo["keys"]["timestamp"], keyid=repo["keys"]["snapshot"].keyid)
    assert_refused(tufpi.verify(p, repo["paths"]["root"]), "threshold", "0/1")
    with pytest.raises(UnsignedMetadataError):
        py_verify(load(repo["paths"]["root"]), "snapshot", load(p))


@pytest.mark.parametrize("spec", ["2.0", "2.0.0", "0.9", "1", "1.0.x", "v1.0"])
def test_bad_spec_version(tufpi, repo, tmp_path, spec):
    p = _copy(repo, "timestamp", tmp_path)
    doc = raw(p)
    doc["signed"]["spec_version"] = spec
    write_raw(p, doc)
    assert_refused(tufpi.verify(p, repo["paths"]["root"]), "spec_version")
    with pytest.raises(Exception):
        Metadata.from_bytes(p.read_bytes())


def test_spec_version_1_x_accepted_if_signed(tufpi, repo, tmp_path):
    p = _copy(repo, "timestamp", tmp_path)
    doc = raw(p)
    doc["signed"]["spec_version"] = "1.99"
    write_raw(p, doc)
    tufpi.sign(p, repo["keys"]["timestamp"])
    assert_verified(tufpi.verify(p, repo["paths"]["root"]), "timestamp", 1, 1, 1)
    py_verify(load(repo["paths"]["root"]), "timestamp", load(p))


def test_delegator_with_bad_spec_version(tufpi, repo, tmp_path):
    root_p = _copy(repo, "root", tmp_path)
    doc = raw(root_p)
    doc["signed"]["spec_version"] = "2.0"
    write_raw(root_p, doc)
    assert_refused(tufpi.verify(repo["paths"]["timestamp"], root_p), "spec_version")


@pytest.mark.parametrize(
    "where",
    ["custom", "signed", "meta", "exponent", "negative-zero"],
)
def test_float_in_signed(tufpi, repo, tmp_path, where):
    p = _copy(repo, "targets", tmp_path)
    text = p.read_text()
    doc = json.loads(text)
    tf = next(iter(doc["signed"]["targets"].values()))
    if where == "custom":
        tf["custom"] = {"x": 1.5}
    elif where == "signed":
        doc["signed"]["x-float"] = 0.25
    elif where == "meta":
        tf["length"] = 7.0
    elif where == "exponent":
        tf["custom"] = [1e3]
    else:
        tf["custom"] = -0.0
    write_raw(p, doc)
    assert_refused(tufpi.verify(p, repo["paths"]["root"]), "float")
    # python-tuf cannot canonicalize it either.
    with pytest.raises(Exception):
        Metadata.from_bytes(p.read_bytes()).signed_bytes


@pytest.mark.parametrize("cut", [0, 1, 10, 100, -100, -2, -1])
def test_truncated_file_is_malformed_json(tufpi, repo, tmp_path, cut):
    p = _copy(repo, "targets", tmp_path)
    data = p.read_bytes()
    p.write_bytes(data[:cut] if cut >= 0 else data[:cut])
    assert_refused(tufpi.verify(p, repo["paths"]["root"]), "malformed JSON")


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"[1,]", b"\xef\xbb\xbf{}", b"{'a': 1}", b'{"a": NaN}', b'{"signed": "\xff"}'],
    ids=["empty", "open", "trailing-comma", "bom", "single-quotes", "nan", "bad-utf8"],
)
def test_malformed_json(tufpi, repo, tmp_path, data):
    p = tmp_path / "x.json"
    p.write_bytes(data)
    assert_refused(tufpi.verify(p, repo["paths"]["root"], "targets"), "malformed JSON")


def test_malformed_delegator(tufpi, repo, tmp_path):
    root_p = _copy(repo, "root", tmp_path)
    root_p.write_bytes(root_p.read_bytes()[:-5])
    assert_refused(tufpi.verify(repo["paths"]["snapshot"], root_p), "malformed JSON")


def test_role_not_delegated(tufpi, repo):
    p = repo["paths"]
    assert_refused(tufpi.verify(p["targets"], p["root"], "no-such-role"), "no-such-role")
    assert_refused(tufpi.verify(p["targets"], p["targets"], "no-such-role"), "no-such-role")


def test_wrong_type_for_role(tufpi, repo):
    p = repo["paths"]
    assert_refused(tufpi.verify(p["snapshot"], p["root"], "timestamp"), "_type")
    # Top-level roles are delegated by root only.
    assert_refused(tufpi.verify(p["snapshot"], p["targets"]), "root")


def test_missing_file(tufpi, repo, tmp_path):
    assert_refused(tufpi.verify(tmp_path / "absent.json", repo["paths"]["root"]))


@pytest.mark.parametrize("sig", ["", "zz", "00", "ab" * 64, "AB" * 200])
def test_garbage_signature_value(tufpi, repo, tmp_path, sig):
    p = _copy(repo, "snapshot", tmp_path)
    doc = raw(p)
    doc["signatures"][0]["sig"] = sig
    write_raw(p, doc)
    assert_refused(tufpi.verify(p, repo["paths"]["root"]), "threshold", "0/1")


# --- random mutations: never a panic, never more lenient than python-tuf -------------------

MUTATIONS = 300


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(7)
    i = rng.randrange(len(b))
    if kind == 0:  # flip one byte to any value
        b[i] = rng.randrange(256)
    elif kind == 1:  # flip one bit
        b[i] ^= 1 << rng.randrange(8)
    elif kind == 2:  # truncate
        del b[i:]
    elif kind == 3:  # delete a run
        del b[i : i + rng.randrange(1, 8)]
    elif kind == 4:  # insert a structural byte
        b.insert(i, rng.choice(b'{}[]",:\\0123456789.eE-tfn \x00\xff'))
    elif kind == 5:  # duplicate a slice
        j = min(len(b), i + rng.randrange(1, 40))
        b[i:i] = b[i:j]
    else:  # swap two bytes
        j = rng.randrange(len(b))
        b[i], b[j] = b[j], b[i]
    return bytes(b)


def _python_accepts(data: bytes, delegator: bytes, role: str) -> bool:
    try:
        md = Metadata.from_bytes(data)
        root = Metadata.from_bytes(delegator)
        py_verify(root, role, md)
    except Exception:  # noqa: BLE001 - any refusal counts
        return False
    return True


def _fixed_ed25519_key(tufpi, d: Path, name: str) -> TufpiKey:
    seed = hashlib.sha256(f"tufpi-interop-fuzz-{name}".encode()).digest()
    priv = Ed25519PrivateKey.from_private_bytes(seed)
    pem = priv.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path = d / f"{name}.pem"
    path.write_bytes(pem)
    public = SSlibKey.from_crypto(priv.public_key())
    return TufpiKey("ed25519", path, path, public.keyid, public.to_dict())


@pytest.fixture(scope="module")
def fuzz_subject(tufpi, tmp_path_factory):
    """A targets file with nasty content signed by tufpi (threshold 1, plus a signature by a
    key root does not assign to targets), and its root."""
    d = tmp_path_factory.mktemp("fuzz")
    # Fixed ed25519 keys (deterministic signatures): the mutated inputs are the same every run.
    k = _fixed_ed25519_key(tufpi, d, "k")
    stranger = _fixed_ed25519_key(tufpi, d, "stranger")
    root = top_level({r: [k.tuf_key()] for r in TOP_LEVEL})["root"]
    root_p = write(root, d / "root.json")
    tufpi.sign(root_p, k)
    tp = d / "targets.json"
    write_raw(tp, nasty.targets(1, {k.keyid: k.key_dict}, ([k.keyid], 1), ([k.keyid], 1)))
    tufpi.sign(tp, stranger)
    tufpi.sign(tp, k)
    assert_verified(tufpi.verify(tp, root_p), "targets", 1, 1, 1)
    return {"dir": d, "root": root_p, "targets": tp, "key": k}


@pytest.mark.parametrize("target", ["targets", "root"])
def test_random_mutations_never_panic(tufpi, fuzz_subject, tmp_path, target):
    rng = random.Random(f"tufpi-fuzz-{target}")
    original = fuzz_subject[target].read_bytes()
    other = fuzz_subject["root"].read_bytes()
    n = MUTATIONS if target == "targets" else MUTATIONS // 3
    outcomes = {0: 0, 1: 0}
    lenient = []
    for n_i in range(n):
        data = _mutate(rng, original)
        if rng.random() < 0.3:
            data = _mutate(rng, data)
        p = tmp_path / "m.json"
        p.write_bytes(data)
        if target == "targets":
            r = tufpi.verify(p, fuzz_subject["root"])
            delegator_bytes, md_bytes = other, data
        else:
            r = tufpi.verify(fuzz_subject["targets"], p)
            delegator_bytes, md_bytes = data, fuzz_subject["targets"].read_bytes()
        assert r.returncode in (0, 1), f"mutation {n_i}: {data!r}\n{r.describe()}"
        outcomes[r.returncode] += 1
        if r.returncode == 1:
            assert_refused(r)
        else:
            assert r.out == "verified: targets v1 (1/1 signatures)\n", r.describe()
            if not _python_accepts(md_bytes, delegator_bytes, "targets"):
                lenient.append(data)
    assert outcomes[1] > n // 2, outcomes
    assert not lenient, f"tufpi accepted {len(lenient)} files python-tuf refuses: {lenient[:3]!r}"


def test_random_mutations_sign_never_panics(tufpi, fuzz_subject, tmp_path):
    """`tufpi metadata sign` on mutated input either refuses cleanly or writes a file that
    python-tuf loads and verifies."""
    rng = random.Random("tufpi-fuzz-sign")
    original = fuzz_subject["targets"].read_bytes()
    root = load(fuzz_subject["root"])
    key = fuzz_subject["key"]
    outcomes = {0: 0, 1: 0}
    unreadable = []
    for n_i in range(150):
        data = _mutate(rng, original)
        p = tmp_path / "s.json"
        p.write_bytes(data)
        # --keyid: by default tufpi would take the keyid the file's own delegations list for
        # this key, and a mutation may have altered that one.
        r = tufpi.run("metadata", "sign", p, "--key", key.priv_path, "--keyid", key.keyid)
        assert r.returncode in (0, 1), f"mutation {n_i}: {data!r}\n{r.describe()}"
        outcomes[r.returncode] += 1
        if r.returncode == 1:
            assert_refused(r)
            assert p.read_bytes() == data  # a refused sign leaves the file alone
            continue
        try:
            py_verify(root, "targets", Metadata.from_bytes(p.read_bytes()))
        except Exception as e:  # noqa: BLE001
            unreadable.append((n_i, data, repr(e)))
    assert outcomes[0] > 10 and outcomes[1] > 10, outcomes
    assert not unreadable, unreadable[:3]
