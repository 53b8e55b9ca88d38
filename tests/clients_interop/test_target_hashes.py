"""Why tufpi lists sha256 alone for every target by default: a repository made with
`--target-hashes sha256,blake2b-256` (`tufpi repo init`, `tufpi serve`) is read by python-tuf,
tufpi and tough, but tuf-js verifies every hash a target lists and knows no blake2b-256, so it
refuses every target. tough reads it because it checks sha256 alone and ignores every other
listed hash: it even accepts a target whose listed blake2b-256 is wrong, which python-tuf and
tufpi refuse."""

from __future__ import annotations

import hashlib
import shutil

import pytest
from clients_util import BLAKE2B_LAYOUTS, CLIENT_NAMES, WRONG_BLAKE2B_LAYOUT, build, get_client

# How each client reads such a repository: None = every target downloaded and verified, else
# the failure each target's line must contain. (A client added to CLIENT_NAMES needs its entry
# here.) tough runs on the -hash-prefix layout only (it has no succinct_roles).
EXPECT = {
    "tuf-js": "LengthOrHashMismatchError: Hash algorithm blake2b-256 not supported",
    "python-tuf": None,
    "tufpi": None,
    "tough": None,
}

# A target with its right sha256 and a wrong blake2b-256 ({b2}: the listed one): None = downloaded
# (the client checks sha256 alone), else its failure line contains this.
EXPECT_WRONG_BLAKE2B = {
    "tuf-js": "LengthOrHashMismatchError: Hash algorithm blake2b-256 not supported",
    "python-tuf": "LengthOrHashMismatchError: Observed hash {other} does not match expected hash {b2}",
    "tufpi": "blake2b-256 hash mismatch: expected {b2}, got {other}",
    "tough": None,
}


def _site(request, tufpi_bin, session_scratch, layout):
    base = session_scratch / layout
    s = build(layout, tufpi_bin, base)
    request.addfinalizer(lambda: (s.close(), shutil.rmtree(base, ignore_errors=True)))
    return s


@pytest.fixture(scope="module", params=BLAKE2B_LAYOUTS)
def blake2b_site(request, tufpi_bin, session_scratch):
    return _site(request, tufpi_bin, session_scratch, request.param)


@pytest.fixture(scope="module")
def wrong_blake2b_site(request, tufpi_bin, session_scratch):
    return _site(request, tufpi_bin, session_scratch, WRONG_BLAKE2B_LAYOUT)


def test_blake2b_repository_lists_both(blake2b_site):
    assert blake2b_site.signed
    for name, entry in blake2b_site.signed.items():
        assert set(entry["hashes"]) == {"sha256", "blake2b-256"}, (name, entry)


@pytest.mark.parametrize("client_name", CLIENT_NAMES)
def test_blake2b_repository(blake2b_site, clients, client_name, work):
    s = blake2b_site
    c = get_client(clients, client_name, s.layout)
    names = sorted(s.content)
    r = s.run(c, names, work(c.name))
    expect = EXPECT[client_name]
    if expect is None:
        assert r.ok, r.describe()
        for n in names:
            assert r.got(n) == s.content[n], f"{c.name}: {n}: downloaded bytes differ"
    else:
        assert r.proc.returncode != 0, f"{c.name} accepted blake2b-256\n{r.describe()}"
        # Every target refused, each on its own line (the driver goes on past a failure).
        failures = r.failures()
        assert set(failures) == set(names), r.describe()
        for n in names:
            assert expect in failures[n], r.describe()
        assert all(r.got(n) is None for n in names), f"{c.name} kept a target it could not verify"


def test_wrong_blake2b_listed(wrong_blake2b_site):
    s = wrong_blake2b_site
    data = s.content[s.victim]
    hashes = s.signed[s.victim]["hashes"]
    assert hashes["sha256"] == hashlib.sha256(data).hexdigest()
    assert hashes["blake2b-256"] != hashlib.blake2b(data, digest_size=32).hexdigest()


@pytest.mark.parametrize("client_name", CLIENT_NAMES)
def test_wrong_blake2b_target(wrong_blake2b_site, clients, client_name, work):
    s = wrong_blake2b_site
    c = get_client(clients, client_name, s.layout)
    r = s.run(c, [s.victim], work(c.name))
    data = s.content[s.victim]
    expect = EXPECT_WRONG_BLAKE2B[client_name]
    if expect is None:
        assert r.ok, f"{c.name} checks blake2b-256 after all\n{r.describe()}"
        assert r.got(s.victim) == data, f"{c.name}: downloaded bytes differ"
    else:
        want = expect.format(b2=s.signed[s.victim]["hashes"]["blake2b-256"],
                             other=hashlib.blake2b(data, digest_size=32).hexdigest())
        assert r.proc.returncode != 0, f"{c.name} accepted a wrong blake2b-256\n{r.describe()}"
        assert want in r.reason and s.victim in r.reason, r.describe()
        assert r.got(s.victim) is None, f"{c.name} kept a target it could not verify"
