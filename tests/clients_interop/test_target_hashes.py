"""Why tufpi lists sha256 alone for every target by default: a repository made with
`--target-hashes sha256,blake2b-256` (`tufpi repo init`, `tufpi serve`) is read by python-tuf
and tufpi, but tuf-js verifies every hash a target lists and knows no blake2b-256, so it
refuses every target."""

from __future__ import annotations

import shutil

import pytest
from clients_util import BLAKE2B_LAYOUTS, CLIENT_NAMES, build, get_client

# How each client reads such a repository: None = every target downloaded and verified, else
# the failure its one line must contain. (A client added to CLIENT_NAMES needs its entry here.)
EXPECT = {
    "tuf-js": "LengthOrHashMismatchError: Hash algorithm blake2b-256 not supported",
    "python-tuf": None,
    "tufpi": None,
}


@pytest.fixture(scope="module", params=BLAKE2B_LAYOUTS)
def blake2b_site(request, tufpi_bin, session_scratch):
    base = session_scratch / request.param
    s = build(request.param, tufpi_bin, base)
    yield s
    s.close()
    shutil.rmtree(base, ignore_errors=True)


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
        assert expect in r.reason, r.describe()
        assert names[0] in r.reason, r.describe()
        assert all(r.got(n) is None for n in names), f"{c.name} kept a target it could not verify"
