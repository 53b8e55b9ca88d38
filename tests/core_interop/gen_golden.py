#!/usr/bin/env python3
"""Generate the canonical-JSON golden files from securesystemslib (the reference).

    .venv/bin/python tests/core_interop/gen_golden.py          # rewrite tests/core_interop/golden/*
    .venv/bin/python tests/core_interop/gen_golden.py --check  # exit 1 if they are out of date

golden/canonical.jsonl: one JSON object per line, exactly two members:
    {"input": "<JSON text>", "canonical_hex": "<hex>"}
  `input` is JSON text (mostly from json.dumps with ensure_ascii=True or False, some written by
  hand); feed its UTF-8 encoding to the canonicalizer. `canonical_hex` is the hex of
  securesystemslib.formats.encode_canonical(json.loads(input)).encode("utf-8").

golden/canonical_refused.jsonl: {"input": "<JSON text>", "error": "float" | "malformed"}
  inputs that have no canonical form: securesystemslib refuses floats (FormatError); the
  malformed ones are not JSON (or, for lone surrogates, not encodable as UTF-8).

Both files are pure ASCII (json.dumps default ensure_ascii=True), one line per case.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from securesystemslib.formats import encode_canonical

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden" / "canonical.jsonl"
REFUSED = HERE / "golden" / "canonical_refused.jsonl"

NFC = "caf\u00e9"
NFD = "cafe\u0301"
CONTROLS = "".join(chr(c) for c in range(0x20)) + "\x7f"


def _deep_array(n: int) -> Any:
    v: Any = []
    for _ in range(n - 1):
        v = [v]
    return v


def _deep_object(n: int) -> Any:
    v: Any = {}
    for i in range(n - 1):
        v = {f"k{i % 3}": v, "\u00e9" * (i % 2): i}
    return v


def _tuf_like() -> dict[str, Any]:
    return {
        "_type": "targets",
        "spec_version": "1.0.31",
        "version": 7,
        "expires": "2035-01-01T00:00:00Z",
        "targets": {
            f"{NFC}.tar.gz": {"length": 2**40, "hashes": {"sha256": "ab" * 32},
                              "custom": {"ctl": "\x00\x1f\x7f\n\t", "q": '"\\'}},
            f"{NFD}.tar.gz": {"length": 1, "hashes": {"sha256": "cd" * 32}},
            "\U0001f600/\U0001f40d.whl": {"length": 0, "hashes": {}},
        },
        "delegations": {"keys": {}, "succinct_roles": {"keyids": [], "threshold": 1,
                                                       "bit_length": 8, "name_prefix": "bin"}},
        "x-unrecognized": [{}, [], [[]], {"": {}}],
    }


# (object, json.dumps keyword arguments) pairs; the text is json.dumps(object, **kwargs).
_OBJECTS: list[tuple[Any, dict[str, Any]]] = [
    ({}, {}),
    ([], {}),
    ("", {}),
    (None, {}),
    ([True, False, None], {}),
    (0, {}),
    (-1, {}),
    (2**63 - 1, {}),
    (2**64, {}),
    (-(2**64) - 1, {}),
    (2**70, {}),
    ([-(2**127), 2**256, 10**40, -(10**40)], {}),
    ({"b": 1, "a": 2, "c": {"z": 0, "y": [3, 2, 1]}}, {"indent": 1}),
    ({'"': 1, "\\": 2, "#": 3, 'a"b\\c': '"\\', "\\\\": '\\"'}, {}),
    ({'k"': 'v\\', "\\u0041": "\\n"}, {"ensure_ascii": False}),
    (CONTROLS, {}),
    (CONTROLS, {"ensure_ascii": False}),
    ({CONTROLS: CONTROLS}, {"ensure_ascii": False}),
    ("\U0001f600\U0010ffff\U00010000", {}),
    ("\U0001f600\U0010ffff\U00010000", {"ensure_ascii": False}),
    ({NFC: 1, NFD: 2}, {}),
    ({NFC: NFD, NFD: NFC}, {"ensure_ascii": False}),
    ({"a": 1, "a\u0000": 2, "\uffff": 3, "\U0001f600": 4, "\u00e9": 5, "z": 6, "": 7, "A": 8},
     {"ensure_ascii": False}),
    ({"\uffff": "bmp-last", "\U0001f600": "astral", "\ue000": "private",
      "\U0010ffff": "max"}, {}),
    ({"\u00e91": 1, "\u00e92": 2, "\u00e9a": 3, "\u00ea": 4, "e\u0301": 5, "\u00e9": 6},
     {"ensure_ascii": False}),
    ({"\u0000": 0, "\u0001": 1, " ": 2, "\u007f": 3, "\u0080": 4}, {}),
    ({"a": [], "b": {}, "c": [[], [{}]], "d": {"e": {"f": {}}}, "": [[[]]]}, {}),
    (_deep_array(50), {}),
    (_deep_object(50), {"ensure_ascii": False}),
    ("\u2028\u2029\u00a0\ufeff\ufffd\ufffe", {"ensure_ascii": False}),
    ("\u2028\u2029\u00a0\ufeff\ufffd\ufffe", {}),
    ("\u4e2d\u6587 \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u05e2\u05d1\u05e8\u05d9\u05ea",
     {"ensure_ascii": False}),
    ([True, False, None, "x", 1, -1, {"z": [], "y": {}}], {"indent": 4}),
    (_tuf_like(), {"ensure_ascii": False}),
    (_tuf_like(), {"indent": 1, "sort_keys": True}),
    ("".join(chr(c) for c in range(0x20, 0x7f)) * 3, {}),
]

# Hand-written JSON texts: escapes and whitespace json.dumps never produces.
_TEXTS: list[str] = [
    '-0',
    ' \n\t{ "b" : [ 1 , 2 ] ,\r\n "a" : { } } \n',
    '"\\/\\u00E9\\uD83D\\uDE00\\u00e9\\b\\f"',
    '{"a":1,"a":2,"b":{"c":true,"c":false}}',
    '"raw \x7f del and \u2028 line separator"',
    '[-0, 0, -0, 123456789012345678901234567890, -98765432109876543210]',
]

_REFUSED: list[tuple[str, str]] = [
    ("1.5", "float"),
    ("1e3", "float"),
    ("-0.0", "float"),
    ("1E-2", "float"),
    ("[1.0]", "float"),
    ('{"a":{"b":[0,0.5]}}', "float"),
    ("1e999", "float"),
    ('{"custom": 2.0e+0}', "float"),
    ("", "malformed"),
    ("{", "malformed"),
    ("[1,]", "malformed"),
    ('{"a":1,}', "malformed"),
    ('"\\ud800"', "malformed"),
    ('"\\udc00\\ud800"', "malformed"),
    ('"\\ud83d\\u0041"', "malformed"),
    ("NaN", "malformed"),
    ("[Infinity]", "malformed"),
    ("\ufeff{}", "malformed"),
    ("{'a': 1}", "malformed"),
    ("01", "malformed"),
    ('"a\x01b"', "malformed"),
    ('"a\nb"', "malformed"),
    ("[1] [2]", "malformed"),
    ('{"a" 1}', "malformed"),
    ("1.", "malformed"),
    ('"\\x41"', "malformed"),
    ("tru", "malformed"),
]


def reference_canonical(text: str) -> bytes:
    """securesystemslib's canonical bytes for JSON text (raises if there are none)."""
    out = encode_canonical(json.loads(text))
    assert out is not None
    return out.encode("utf-8")


def golden_cases() -> list[str]:
    """Input texts of the golden file, in order."""
    return [json.dumps(obj, **kw) for obj, kw in _OBJECTS] + list(_TEXTS)


def refused_cases() -> list[tuple[str, str]]:
    return list(_REFUSED)


def golden_lines() -> list[str]:
    return [
        json.dumps({"input": t, "canonical_hex": reference_canonical(t).hex()})
        for t in golden_cases()
    ]


def refused_lines() -> list[str]:
    lines = []
    for text, why in refused_cases():
        try:
            reference_canonical(text)
        except Exception:  # noqa: BLE001 - any refusal by the reference is what we want
            pass
        else:
            raise AssertionError(f"securesystemslib accepts {text!r}")
        lines.append(json.dumps({"input": text, "error": why}))
    return lines


def render() -> dict[Path, str]:
    return {
        GOLDEN: "".join(line + "\n" for line in golden_lines()),
        REFUSED: "".join(line + "\n" for line in refused_lines()),
    }


def main(argv: list[str]) -> int:
    files = render()
    if "--check" in argv:
        stale = [p for p, text in files.items() if not p.is_file() or p.read_text() != text]
        for p in stale:
            print(f"out of date: {p}", file=sys.stderr)
        return 1 if stale else 0
    for p, text in files.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="ascii")
        print(f"wrote {p} ({text.count(chr(10))} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
