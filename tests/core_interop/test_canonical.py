"""`tufpi json canonical` against securesystemslib.formats.encode_canonical: golden file,
seeded random nasty documents, refusals (floats, malformed JSON), and a differential fuzz."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from securesystemslib.exceptions import FormatError
from securesystemslib.formats import encode_canonical

import gen_golden
from interop_util import assert_refused


def python_canonical(data: bytes) -> bytes | None:
    """The reference: securesystemslib's canonical bytes, or None if it has none."""
    try:
        out = encode_canonical(json.loads(data.decode("utf-8")))
        return out.encode("utf-8")
    except (ValueError, FormatError, UnicodeError, RecursionError):
        return None


# --- golden file ----------------------------------------------------------------------------


def _golden() -> list[dict[str, str]]:
    return [json.loads(line) for line in gen_golden.GOLDEN.read_text("ascii").splitlines()]


def _golden_refused() -> list[dict[str, str]]:
    return [json.loads(line) for line in gen_golden.REFUSED.read_text("ascii").splitlines()]


def test_golden_files_are_up_to_date():
    """The committed golden files are exactly what gen_golden.py produces with the pinned
    securesystemslib (regenerate with: python tests/core_interop/gen_golden.py)."""
    for path, text in gen_golden.render().items():
        assert path.read_text("ascii") == text, f"{path} is stale: run gen_golden.py"
    cases = _golden()
    assert 35 <= len(cases) <= 60
    assert all(list(c) == ["input", "canonical_hex"] for c in cases)
    inputs = [c["input"] for c in cases]
    # It covers both json.dumps flavours and the nasty parts.
    assert any(not t.isascii() for t in inputs)
    assert any("\\ud83d\\ude00" in t for t in inputs)
    assert any("\U0001f600" in t for t in inputs)
    assert any(bytes.fromhex(c["canonical_hex"]).count(b"[") >= 50 for c in cases)


@pytest.mark.parametrize("case", _golden(), ids=lambda c: c["canonical_hex"][:24])
def test_golden_case(tufpi, case):
    r = tufpi.canonical(case["input"].encode("utf-8"))
    assert r.returncode == 0, r.describe()
    assert r.stdout == bytes.fromhex(case["canonical_hex"])
    assert r.stderr == b""


@pytest.mark.parametrize("case", _golden_refused(), ids=lambda c: repr(c["input"])[:30])
def test_golden_refused_case(tufpi, case):
    r = tufpi.canonical(case["input"].encode("utf-8"))
    assert_refused(r, "float" if case["error"] == "float" else "malformed JSON")


def test_canonical_from_file_argument(tufpi, tmp_path):
    case = _golden()[-8]
    p = tmp_path / "in.json"
    p.write_bytes(case["input"].encode("utf-8"))
    r = tufpi.run("json", "canonical", p)
    assert r.returncode == 0, r.describe()
    assert r.stdout == bytes.fromhex(case["canonical_hex"])


# --- seeded random nasty documents ---------------------------------------------------------

ALPHABET = (
    list("abcAZ019 _-/.")
    + ['"', "\\", "\\\\", '\\"', "\\u0000", "\\n"]
    + [chr(c) for c in range(0x20)]
    + ["\x7f", "\x80", "\u00a0", "\u00e9", "e\u0301", "\u00ea", "\u0301", "\u2028", "\u2029"]
    + ["\ufeff", "\ufffd", "\ufffe", "\uffff", "\ue000", "\ud7ff", "\u4e2d"]
    + ["\U00010000", "\U0001f600", "\U0001f40d", "\U0010fffd", "\U0010ffff"]
)
INTS = [0, 1, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1,
        -(2**64), 2**70, -(2**70), 10**40, -(10**100), 2**512 + 3]


def _rand_str(rng: random.Random, max_len: int = 8) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(max_len + 1)))


def _rand_value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(10 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind in (1, 2):
        return rng.choice(INTS) if rng.random() < 0.6 else rng.randrange(-(2**80), 2**80)
    if kind in (3, 4, 5):
        return _rand_str(rng)
    if kind in (6, 7):
        return [_rand_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    obj = {}
    for _ in range(rng.randrange(6)):
        k = _rand_str(rng, 4)
        obj[k] = _rand_value(rng, depth + 1)
        if rng.random() < 0.3:  # near-collisions that test the sort order
            obj[k + rng.choice(["\u0000", "\u00e9", "e\u0301", "\uffff", "\U0001f600", "a"])] = 0
    return obj


def _random_docs(n: int) -> list[bytes]:
    rng = random.Random(458)
    docs = []
    for i in range(n):
        v = _rand_value(rng, 0)
        if i % 10 == 0:
            v = {"deep": _nest(rng, 50, v)}
        kw: dict[str, Any] = {"ensure_ascii": rng.random() < 0.5}
        if rng.random() < 0.3:
            kw["indent"] = rng.choice([None, 0, 1, 2, "\t"])
        docs.append(json.dumps(v, **kw).encode("utf-8"))
    return docs


def _nest(rng: random.Random, depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = [leaf] if rng.random() < 0.5 else {_rand_str(rng, 2): leaf}
    return leaf


RANDOM_DOCS = _random_docs(200)


def test_random_docs_are_nasty_enough():
    blob = b"".join(RANDOM_DOCS)
    text = blob.decode("utf-8")
    assert "\U0001f600" in text and "\\ud83d\\ude00" in text
    assert "e\u0301" in text and "\u00e9" in text
    assert "\\u0000" in text and '\\"' in text and "\\\\" in text
    assert str(2**70) in text and str(-(10**100)) in text
    assert all(python_canonical(d) is not None for d in RANDOM_DOCS)


@pytest.mark.parametrize("start", range(0, len(RANDOM_DOCS), 50))
def test_random_docs_match_securesystemslib(tufpi, start):
    mismatches = []
    for doc in RANDOM_DOCS[start : start + 50]:
        r = tufpi.canonical(doc)
        expected = python_canonical(doc)
        if r.returncode != 0 or r.stdout != expected:
            mismatches.append((doc, expected, r.describe()))
    assert not mismatches, mismatches[:3]


# --- floats are refused, as encode_canonical refuses them ----------------------------------

FLOAT_DOCS = [1.5, 1e3, -0.0, 0.1, 1e-7, 2.0**70, [1, 2.5], {"custom": {"x": [0, 1.0]}},
              {"a": {"b": {"c": -1e300}}}]


@pytest.mark.parametrize("obj", FLOAT_DOCS, ids=repr)
def test_floats_refused(tufpi, obj):
    with pytest.raises(FormatError):
        encode_canonical(obj)
    for text in (json.dumps(obj), json.dumps(obj, indent=1)):
        assert_refused(tufpi.canonical(text.encode()), "float")


@pytest.mark.parametrize("text", ["1.0", "1e3", "1E3", "1e+3", "-0.0", "0.0e0", "-1.5E-300"])
def test_float_spellings_refused(tufpi, text):
    assert python_canonical(text.encode()) is None
    assert_refused(tufpi.canonical(text.encode()), "float")


# --- differential fuzz: mutated JSON texts --------------------------------------------------


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        if not b:
            break
        i = rng.randrange(len(b))
        k = rng.randrange(5)
        if k == 0:
            b[i] = rng.randrange(256)
        elif k == 1:
            b.insert(i, rng.choice(b'{}[]",:\\u0123456789abcdefABCDEF.eE+- \t\n\x00\x7f\xc3\xa9'))
        elif k == 2:
            del b[i : i + rng.randrange(1, 4)]
        elif k == 3:
            del b[i:]
        else:
            j = rng.randrange(len(b))
            b[i], b[j] = b[j], b[i]
    return bytes(b)


def test_differential_fuzz(tufpi):
    """Whatever the mutation, tufpi agrees with securesystemslib: same bytes when it has a
    canonical form, a clean refusal (exit 1, one error line) when it has none."""
    rng = random.Random(1234)
    seeds = [json.dumps(json.loads(gen_golden.golden_cases()[i]), ensure_ascii=a).encode()
             for i in (13, 14, 21, 22, 24, 33) for a in (True, False)]
    disagreements = []
    accepted = 0
    for n in range(250):
        data = _mutate(rng, rng.choice(seeds))
        expected = python_canonical(data)
        r = tufpi.canonical(data)
        assert r.returncode in (0, 1), r.describe()
        if expected is None:
            if r.returncode != 1:
                disagreements.append((n, data, None, r.stdout))
            else:
                assert_refused(r)
        else:
            accepted += 1
            if r.returncode != 0 or r.stdout != expected:
                disagreements.append((n, data, expected, r.describe()))
    assert accepted >= 10
    assert not disagreements, disagreements[:5]
