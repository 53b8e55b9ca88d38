"""Core metadata consistency through a real `tufpi serve`: an sdist's top-level PKG-INFO (and a
wheel's METADATA) must name the project and version of its filename and form, as PyPI checks;
refusals show in twine's output and leave nothing stored."""

from __future__ import annotations

from pathlib import Path

from e2e_util import PROJECT, metadata_text, multipart, post, upload_form, write_targz

NORM = "tufpi-demo"


def twine(clients, server, token: str, *files: Path):
    r = clients.run(clients.twine, "upload", "--non-interactive", "--disable-progress-bar",
                    "--repository-url", f"{server.base}/legacy/", "-u", "__token__", "-p", token, *files)
    return r.returncode, r.stdout + r.stderr


def test_sdist_metadata_must_match(serve, clients, dists, scratch):
    s = serve()
    token = s.token()
    # A real sdist (the e2e helper's, as the sdist spec lays it out) is accepted.
    rc, out = twine(clients, s, token, dists["sdist"])
    assert rc == 0, out
    s.wait_published()
    before = s.stored()
    assert before[1] == 1

    def refused_by_twine(path: Path, message: str) -> None:
        rc, out = twine(clients, s, token, path)
        assert rc != 0 and "400 Bad Request" in out and message in out, out
        assert s.stored() == before

    # PKG-INFO says 0.5.0, the filename 0.4.0 (twine sends PKG-INFO's version in the form).
    crafted = scratch / "crafted"
    crafted.mkdir()
    liar = write_targz(crafted / "tufpi_demo-0.4.0.tar.gz", [
        ("tufpi_demo-0.4.0/PKG-INFO", metadata_text(PROJECT, "0.5.0").encode()),
        ("tufpi_demo-0.4.0/setup.py", b"from setuptools import setup\nsetup()\n"),
    ])
    refused_by_twine(liar, 'Sdist filename "tufpi_demo-0.4.0.tar.gz" does not name version 0.5.0')
    # Two top-level PKG-INFO files: twine reads the last (consistent) one; installers and
    # other tools may read the first, which names another project. Refused as ambiguous.
    two = write_targz(crafted / "tufpi_demo-0.6.0.tar.gz", [
        ("tufpi_demo-0.6.0/PKG-INFO", metadata_text("someone-else", "6.6.6").encode()),
        ("tufpi_demo-0.6.0/PKG-INFO", metadata_text(PROJECT, "0.6.0").encode()),
        ("tufpi_demo-0.6.0/setup.py", b"from setuptools import setup\nsetup()\n"),
    ])
    refused_by_twine(two, "Invalid sdist: more than one top-level PKG-INFO")

    # The server's own check, with a form that agrees with the filename (a client that does
    # not read the metadata): both values named, in the body and the reason phrase.
    def refused(filename: str, data: bytes, message: str) -> None:
        version = filename.removeprefix("tufpi_demo-").removesuffix(".tar.gz").removesuffix(".zip")
        ct, body = multipart(upload_form(PROJECT, version, filename, data), (filename, data))
        st, reason, text = post(s.base, body, ct, token)
        assert st == 400 and message in text and message in reason, (st, reason, text)
        assert text.count("\n") == 1, text
        assert s.stored() == before

    refused("tufpi_demo-0.4.0.tar.gz", liar.read_bytes(),
            'Sdist metadata has version "0.5.0", but the filename and form are for version 0.4.0')
    other = write_targz(crafted / "other.tar.gz", [
        ("tufpi_demo-0.7.0/PKG-INFO", metadata_text("someone-else", "0.7.0").encode()),
    ])
    refused("tufpi_demo-0.7.0.tar.gz", other.read_bytes(),
            'Sdist metadata names project "someone-else", but the filename and form are for "Tufpi_Demo"')
    refused("tufpi_demo-0.8.0.tar.gz", b"\x1f\x8b\x08\x00" + bytes(60),
            "Invalid sdist: not a readable gzip-compressed tar archive")
    refused("tufpi_demo-0.9.0.tar.gz", write_targz(crafted / "bad.tar.gz", [
        ("../tufpi_demo-0.9.0/PKG-INFO", metadata_text(PROJECT, "0.9.0").encode()),
    ]).read_bytes(), 'unsafe path "../tufpi_demo-0.9.0/PKG-INFO"')
    assert s.health()["files"] == 1
