"""Every TUF client (clients_util.CLIENT_NAMES) against every repository layout tufpi writes
(clients_util.LAYOUTS): each downloads and verifies every target, byte for byte, and refuses a
target whose served bytes were tampered with (one byte flipped: same length, wrong hashes)."""

from __future__ import annotations

import pytest
from clients_util import CLIENT_NAMES, get_client, hex_prefixed


@pytest.mark.parametrize("client_name", CLIENT_NAMES)
def test_downloads_every_target(site, clients, client_name, work):
    c = get_client(clients, client_name, site.layout)
    names = sorted(site.content)
    seen = len(site.requests()) if site.requests else 0
    r = site.run(c, names, work(c.name))
    assert r.ok, r.describe()
    for n in names:
        got = r.got(n)
        assert got is not None, f"{c.name}: {n} not downloaded\n{r.describe()}"
        assert got == site.content[n], f"{c.name}: {n}: downloaded bytes differ from the target's"
    # Clients start from 1.root.json and walk the chain to the newest root (rotated-*: 2 or 3).
    v = r.trusted_root_version()
    assert v in (None, site.root_version), f"{c.name} trusts root v{v}, the repository is at v{site.root_version}"
    if site.requests is not None:
        # Consistent snapshots: every target fetched as dir/HASH.basename with a signed HASH
        # (in the "consistent-snapshot" layout nothing else is served at all).
        fetched = [p for p in site.requests()[seen:] if p.startswith(site.targets_path)]
        for p in fetched:
            assert any(hex_prefixed(p, site.targets_path, n, site.signed[n]["hashes"]) for n in names), \
                f"{c.name} fetched {p}, not a hash-prefixed target name"
        for n in names:
            assert any(hex_prefixed(p, site.targets_path, n, site.signed[n]["hashes"]) for p in fetched), \
                f"{c.name} never fetched {n} by a hash-prefixed name: {fetched}"


@pytest.mark.parametrize("client_name", CLIENT_NAMES)
def test_tampered_target_refused(site, clients, client_name, work):
    c = get_client(clients, client_name, site.layout)
    with site.tamper():
        r = site.run(c, [site.victim], work(c.name))
    assert r.proc.returncode != 0, f"{c.name} accepted a tampered {site.victim}\n{r.describe()}"
    assert c.hash_mismatch.search(r.reason), f"{c.name}: not refused for its hash:\n{r.describe()}"
    assert site.victim in r.reason, f"{c.name}: the failure doesn't name {site.victim}: {r.reason}"
    assert site.signed[site.victim]["hashes"]["sha256"] in r.reason, \
        f"{c.name}: the failure doesn't give the signed sha256: {r.reason}"
    assert r.got(site.victim) is None, f"{c.name} left the tampered {site.victim} in its output dir"


def test_targets_list_sha256_only(site):
    """The default target hashes are sha256 alone: every client verifies it (tuf-js knows no
    blake2b-256; see test_target_hashes.py)."""
    for name, entry in site.signed.items():
        assert set(entry["hashes"]) == {"sha256"}, (name, entry)
        assert entry["length"] == len(site.content[name]), name
