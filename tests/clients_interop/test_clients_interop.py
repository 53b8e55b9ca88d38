"""Every TUF client (clients_util.CLIENT_NAMES) against every repository layout tufpi writes
(clients_util.LAYOUTS): each downloads and verifies every target, byte for byte, and refuses a
target whose served bytes were tampered with (one byte flipped: same length, wrong hashes).

Each check is its own client run, except where a client's refresh alone is slow
(Client.one_run: tuf-js on the 16,384-bin layouts): there one run, shared by both tests, asks
for every target with the victim tampered with; the victim must be refused for its hash and
every other target come back byte for byte."""

from __future__ import annotations

import pytest
from clients_util import CLIENT_NAMES, get_client


def _one_run(site, c, session_scratch):
    return site.one_run(c, session_scratch / f"one-run-{site.layout}-{c.name}")


@pytest.mark.parametrize("client_name", CLIENT_NAMES)
def test_downloads_every_target(site, clients, client_name, work, session_scratch):
    c = get_client(clients, client_name, site.layout)
    names = sorted(site.content)
    if c.one_run(site.layout):
        r, fetched = _one_run(site, c, session_scratch)
        assert r.proc.returncode == 1, r.describe()
        assert set(r.failures()) == {site.victim}, f"{c.name}: failed other than the tampered victim\n{r.describe()}"
        good = [n for n in names if n != site.victim]
    else:
        seen = len(site.requests()) if site.requests else 0
        r = site.run(c, names, work(c.name))
        fetched = site.targets_fetched(seen)
        assert r.ok, r.describe()
        good = names
    assert good, "no target to download"
    for n in good:
        got = r.got(n)
        assert got is not None, f"{c.name}: {n} not downloaded\n{r.describe()}"
        assert got == site.content[n], f"{c.name}: {n}: downloaded bytes differ from the target's"
    # Clients start from 1.root.json and walk the chain to the newest root (rotated-*: 2 or 3).
    v = r.trusted_root_version()
    assert v in (None, site.root_version), f"{c.name} trusts root v{v}, the repository is at v{site.root_version}"
    if site.requests is not None:
        # Consistent snapshots: every target fetched by a hash-prefixed name with a signed
        # hash: dir/HASH.basename, tough HASH.dir/basename (Client.fetched_as; in the
        # "consistent-snapshot" layout plain names aren't served at all).
        for p in fetched:
            assert any(c.fetched_as(p, site.targets_path, n, site.signed[n]["hashes"]) for n in names), \
                f"{c.name} fetched {p}, not a hash-prefixed target name"
        for n in names:
            assert any(c.fetched_as(p, site.targets_path, n, site.signed[n]["hashes"]) for p in fetched), \
                f"{c.name} never fetched {n} by a hash-prefixed name: {fetched}"


@pytest.mark.parametrize("client_name", CLIENT_NAMES)
def test_tampered_target_refused(site, clients, client_name, work, session_scratch):
    c = get_client(clients, client_name, site.layout)
    if c.one_run(site.layout):
        r, _ = _one_run(site, c, session_scratch)
        assert r.proc.returncode == 1, f"{c.name} accepted a tampered {site.victim}\n{r.describe()}"
        failures = r.failures()
        assert site.victim in failures, f"{c.name}: no failure line for {site.victim}\n{r.describe()}"
        reason = failures[site.victim]
    else:
        with site.tamper():
            r = site.run(c, [site.victim], work(c.name))
        assert r.proc.returncode != 0, f"{c.name} accepted a tampered {site.victim}\n{r.describe()}"
        reason = r.reason
    m = c.hash_mismatch.search(reason)
    assert m, f"{c.name}: not refused for its hash:\n{r.describe()}"
    assert site.victim in reason, f"{c.name}: the failure doesn't name {site.victim}: {reason}"
    assert m["expected"] == site.signed[site.victim]["hashes"]["sha256"], \
        f"{c.name}: the failure doesn't expect the signed sha256: {reason}"
    assert r.got(site.victim) is None, f"{c.name} left the tampered {site.victim} in its output dir"


def test_targets_list_sha256_only(site):
    """The default target hashes are sha256 alone: every client verifies it (tuf-js knows no
    blake2b-256; see test_target_hashes.py)."""
    for name, entry in site.signed.items():
        assert set(entry["hashes"]) == {"sha256"}, (name, entry)
        assert entry["length"] == len(site.content[name]), name
