"""Nasty-but-valid TUF metadata: non-ASCII (NFC and NFD forms of one name as two targets),
non-BMP characters, control characters, quotes and backslashes, big integers, nested empty
containers, and unrecognized fields at every level python-tuf keeps them.

Documents are plain dicts (JSON-ready); `extras(tag)` gives the unrecognized fields placed at
location `tag`, so tests can assert on each location separately.
"""

from __future__ import annotations

import copy
from typing import Any

from interop_util import EXPIRES, sha256_hex

NFC = "caf\u00e9"
NFD = "cafe\u0301"
CTL = "\x00\x01\x08\x0c\x1f\x7f\n\t\r nul-us-del"
QUOTES = 'say "hi" \\ back\\slash \\" \\\\" \'single\' /slash'
EMOJI = "\U0001f600\U0001f4e6\U0001f40d"
EXPIRES_STR = EXPIRES.strftime("%Y-%m-%dT%H:%M:%SZ")
SPEC = "1.0.31"

NASTY_PATHS = [
    f"{NFC}.tar.gz",
    f"{NFD}.tar.gz",
    f"{EMOJI}/pkg-\U0010fffd.whl",
    'dir with space/q"uote\\back\\.tar.gz',
    "tab\there/ctl\x7f\x1f.txt",
    "\uffff/\ud7ff/\u2028\u2029.bin",
    "files/plain-1.0.tar.gz",
]


def nasty_value(tag: str) -> dict[str, Any]:
    return {
        "tag": tag,
        "ctl": CTL,
        "quotes": QUOTES,
        "big": 2**70,
        "neg_big": -(2**70),
        "huge": 10**40 + 7,
        "nfc": NFC,
        "nfd": NFD,
        "emoji": EMOJI,
        "\u00fcnic\u00f6de-key \U0001f511": "\u00fc",
        '"quoted\\key"': '"',
        "\x00ctl\x1fkey\x7f": "\x00",
        "empty": {"o": {}, "a": [], "n": [[], [{}], {"": {}}], "": ""},
        "scalars": [True, False, None, 0, -1, 1],
    }


def extras(tag: str) -> dict[str, Any]:
    """Unrecognized fields for location `tag`."""
    return {
        f"x-{tag}": nasty_value(tag),
        f"x-{tag}-{NFD}-{EMOJI}": [tag, {}, [], [[]], 2**70],
    }


def custom(i: int) -> dict[str, Any]:
    return {
        "i": i,
        "ctl": CTL,
        "quotes": QUOTES,
        NFC: "nfc key",
        NFD: "nfd key",
        EMOJI: EMOJI,
        "big": 2**70 + i,
        "neg": -(2**70) - i,
        "nested": {"a": [], "b": {}, "c": [[], [{}]], "d": {"e": {"f": {}}}},
        "\u00e9\u0301\U0001f600": ["\x00", "\x1f", "\x7f", "\n", "\t", '"', "\\"],
    }


def key_with_extras(key_dict: dict[str, Any]) -> dict[str, Any]:
    d = copy.deepcopy(key_dict)
    d.update(extras("key"))
    d["keyval"].update(extras("keyval"))
    return d


def _signed(_type: str, version: int, body: dict[str, Any]) -> dict[str, Any]:
    s = {"_type": _type, "spec_version": SPEC, "version": version, "expires": EXPIRES_STR}
    s.update(body)
    s.update(extras(f"signed-{_type}"))
    return s


def envelope(signed: dict[str, Any]) -> dict[str, Any]:
    d = {"signatures": [], "signed": signed}
    d.update(extras("envelope"))
    return d


def root(keys: dict[str, dict[str, Any]], roles: dict[str, tuple[list[str], int]]) -> dict[str, Any]:
    return envelope(
        _signed(
            "root",
            1,
            {
                "consistent_snapshot": True,
                "keys": {kid: key_with_extras(k) for kid, k in keys.items()},
                "roles": {
                    r: {"keyids": kids, "threshold": t, **extras(f"role-{r}")}
                    for r, (kids, t) in roles.items()
                },
            },
        )
    )


def target_files() -> dict[str, Any]:
    out = {}
    for i, p in enumerate(NASTY_PATHS):
        data = p.encode("utf-8", "surrogatepass")
        out[p] = {
            "length": len(data) + 2**40,
            "hashes": {"sha256": sha256_hex(data), "sha512": "00" * 64},
            "custom": custom(i),
            **extras("target"),
        }
    return out


NASTY_ROLE = f"r\u00f4le-{EMOJI}-{NFD}"


def targets(
    version: int,
    delegation_keys: dict[str, dict[str, Any]],
    paths_role: tuple[list[str], int],
    nasty_role: tuple[list[str], int],
) -> dict[str, Any]:
    """Top-level targets with nasty targets and a `roles` delegation to "paths-role"
    (paths) and NASTY_ROLE (path_hash_prefixes)."""
    return envelope(
        _signed(
            "targets",
            version,
            {
                "targets": target_files(),
                "delegations": {
                    "keys": {kid: key_with_extras(k) for kid, k in delegation_keys.items()},
                    "roles": [
                        {
                            "name": "paths-role",
                            "keyids": paths_role[0],
                            "threshold": paths_role[1],
                            "terminating": False,
                            "paths": [f"{NFC}*", f"{NFD}*", f"{EMOJI}/*", "files/*"],
                            **extras("delegated-role"),
                        },
                        {
                            "name": NASTY_ROLE,
                            "keyids": nasty_role[0],
                            "threshold": nasty_role[1],
                            "terminating": True,
                            "path_hash_prefixes": ["0", "a1", "ff"],
                            **extras("delegated-role-2"),
                        },
                    ],
                    **extras("delegations"),
                },
            },
        )
    )


BIN_PREFIX = f"bin{NFC}"


def succinct(version: int, keys: dict[str, dict[str, Any]], threshold: int = 1) -> dict[str, Any]:
    """Targets ("paths-role") with a succinct_roles delegation of 4 bins "binxé-N"."""
    return envelope(
        _signed(
            "targets",
            version,
            {
                "targets": {NASTY_PATHS[0]: target_files()[NASTY_PATHS[0]]},
                "delegations": {
                    "keys": {kid: key_with_extras(k) for kid, k in keys.items()},
                    "succinct_roles": {
                        "keyids": list(keys),
                        "threshold": threshold,
                        "bit_length": 2,
                        "name_prefix": BIN_PREFIX,
                        **extras("succinct"),
                    },
                    **extras("delegations-succinct"),
                },
            },
        )
    )


def plain_targets(version: int) -> dict[str, Any]:
    return envelope(_signed("targets", version, {"targets": target_files()}))


def snapshot(version: int) -> dict[str, Any]:
    return envelope(
        _signed(
            "snapshot",
            version,
            {
                "meta": {
                    "targets.json": {"version": 3, **extras("meta")},
                    "paths-role.json": {
                        "version": 2,
                        "length": 2**63,
                        "hashes": {"sha256": "ab" * 32},
                        **extras("meta-2"),
                    },
                    f"{NASTY_ROLE}.json": {"version": 1},
                }
            },
        )
    )


def timestamp(version: int) -> dict[str, Any]:
    return envelope(
        _signed(
            "timestamp",
            version,
            {"meta": {"snapshot.json": {"version": 5, **extras("timestamp-meta")}}},
        )
    )


def check_python_kept(md: Any, kind: str) -> None:
    """Assert python-tuf parsed every unrecognized field of a document built here, with
    identical values. `kind`: root, targets, succinct, plain, snapshot, timestamp."""
    assert md.unrecognized_fields == extras("envelope")
    s = md.signed
    assert s.unrecognized_fields == extras(f"signed-{s.type}")
    if kind == "root":
        for key in s.keys.values():
            assert key.unrecognized_fields == extras("key")
            for k, v in extras("keyval").items():
                assert key.keyval[k] == v
        for r, role in s.roles.items():
            assert role.unrecognized_fields == extras(f"role-{r}")
    elif kind in ("targets", "succinct", "plain"):
        expected_paths = NASTY_PATHS if kind != "succinct" else NASTY_PATHS[:1]
        assert sorted(s.targets) == sorted(expected_paths)
        if kind != "succinct":
            assert s.targets[f"{NFC}.tar.gz"] != s.targets[f"{NFD}.tar.gz"]
        for i, p in enumerate(NASTY_PATHS[: len(expected_paths)]):
            tf = s.targets[p]
            assert tf.custom == custom(i)
            assert {k: v for k, v in tf.unrecognized_fields.items() if k != "custom"} == extras("target")
        if kind == "targets":
            d = s.delegations
            assert d.unrecognized_fields == extras("delegations")
            assert d.roles["paths-role"].unrecognized_fields == extras("delegated-role")
            assert d.roles[NASTY_ROLE].unrecognized_fields == extras("delegated-role-2")
            for key in d.keys.values():
                assert key.unrecognized_fields == extras("key")
        if kind == "succinct":
            d = s.delegations
            assert d.unrecognized_fields == extras("delegations-succinct")
            assert d.succinct_roles.unrecognized_fields == extras("succinct")
            assert d.succinct_roles.name_prefix == BIN_PREFIX
    elif kind == "snapshot":
        assert s.meta["targets.json"].unrecognized_fields == extras("meta")
        assert s.meta["paths-role.json"].unrecognized_fields == extras("meta-2")
        assert s.meta["paths-role.json"].length == 2**63
    elif kind == "timestamp":
        assert s.snapshot_meta.unrecognized_fields == extras("timestamp-meta")
    else:
        raise ValueError(kind)
