"""Upload rules and limits (issue 10) through the stock clients: twine and uv publish pass the
stricter checks with what they send (every digest, every field), and what is refused comes back
with the server's one-line reason (a respelled duplicate: "File already exists", as on PyPI)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from e2e_util import PROJECT, build_wheel, metadata_text, multipart, post, upload_form

NORM = "tufpi-demo"
DIST = "tufpi_demo"


def twine(clients, server, token: str, *args) -> tuple[int, str]:
    r = clients.run(clients.twine, "upload", "--non-interactive", "--disable-progress-bar",
                    "--repository-url", f"{server.base}/legacy/", "-u", "__token__", "-p", token, *args)
    # twine wraps long messages: compare with whitespace collapsed.
    return r.returncode, " ".join((r.stdout + r.stderr).split())


def wheel(out: Path, version: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    return build_wheel(out, PROJECT, version)


def sdist_with(out: Path, version: str, *extra: tarfile.TarInfo) -> Path:
    """An sdist of the demo project with `extra` members (links, devices) after PKG-INFO."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{DIST}-{version}.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as t:
        info = metadata_text(PROJECT, version).encode()
        ti = tarfile.TarInfo(f"{DIST}-{version}/PKG-INFO")
        ti.size = len(info)
        t.addfile(ti, io.BytesIO(info))
        for m in extra:
            t.addfile(m)
    return path


def link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = target
    return ti


def test_stock_clients_and_the_stricter_rules(serve, clients, scratch):
    s = serve()
    token = s.token()
    w = wheel(scratch / "w", "4.0")
    rc, out = twine(clients, s, token, w)
    assert rc == 0, out

    # 4.0.0 is 4.0: the same file under another name, refused.
    again = wheel(scratch / "w2", "4.0.0")
    rc, out = twine(clients, s, token, again)
    assert rc != 0 and "File already exists" in out and "is the same file as" in out, out

    # A local version, a link out of the sdist, a device: refused with the reason.
    local = wheel(scratch / "l", "5+evil")
    rc, out = twine(clients, s, token, local)
    assert rc != 0 and "local versions" in out, out
    escape = sdist_with(scratch / "s1", "6.0", link(f"{DIST}-6.0/evil", "../../etc/passwd"))
    rc, out = twine(clients, s, token, escape)
    assert rc != 0 and "points outside the archive" in out, out
    hard = sdist_with(scratch / "s2", "6.0", link(f"{DIST}-6.0/h", "/etc/shadow", tarfile.LNKTYPE))
    rc, out = twine(clients, s, token, hard)
    assert rc != 0 and "points outside the archive" in out, out
    dev = tarfile.TarInfo(f"{DIST}-6.0/tty")
    dev.type = tarfile.CHRTYPE
    rc, out = twine(clients, s, token, sdist_with(scratch / "s3", "6.0", dev))
    assert rc != 0 and "is a device file" in out, out
    # A link that stays inside is fine.
    ok = sdist_with(scratch / "s4", "6.0", link(f"{DIST}-6.0/docs/PKG-INFO", "../PKG-INFO"))
    rc, out = twine(clients, s, token, ok)
    assert rc == 0, out

    # uv publish sends its own form (digests, metadata fields): accepted within the limits.
    w7 = wheel(scratch / "u", "7.0")
    r = clients.run(clients.uv, "publish", "--publish-url", f"{s.base}/legacy/",
                    "-u", "__token__", "-p", token, w7)
    assert r.returncode == 0, r.stdout + r.stderr

    # A form field past its cap: 400 naming it, nothing stored.
    s.wait_published()
    before = s.stored()
    data = wheel(scratch / "d", "8.0").read_bytes()
    fields = upload_form(PROJECT, "8.0", f"{DIST}-8.0-py3-none-any.whl", data)
    fields.append(("requires_python", ">=3.8," * 1000))
    ct, body = multipart(fields, (f"{DIST}-8.0-py3-none-any.whl", data))
    status, reason, text = post(s.base, body, ct, token)
    assert status == 400 and 'Form field "requires_python" is longer than 1024 bytes' in reason, (
        status, reason, text)
    assert s.stored() == before
    assert s.health()["files"] == 3
