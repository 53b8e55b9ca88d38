"""The harness itself, without tufpi: the S3 proxy relays and counts object writes per key
(a 412 refusal is not a write), and a cut proxy refuses connections and resets open ones,
for the S3 server and for PostgreSQL, until it is restored."""

from __future__ import annotations

import socket
import threading

import psycopg
import pytest
from scaleout_util import S3_AUTH, http_request, versioned_written_twice, write_counts


def test_s3_proxy_counts_writes_and_cuts(cluster):
    b, proxy = cluster.bucket, cluster.s3_proxy
    via = f"http://{proxy.address}"

    def put(key: str, data: bytes, **h) -> int:
        headers = {"Authorization": S3_AUTH, "Content-Type": "application/octet-stream", **h}
        return http_request(via, f"/{b.name}/{key}", "PUT", body=data, headers=headers)[0]

    assert put("metadata/1.snapshot.json", b"one", **{"If-None-Match": "*"}) == 200
    assert put("metadata/1.snapshot.json", b"two", **{"If-None-Match": "*"}) == 412
    assert put("metadata/2.snapshot.json", b"x") == 200
    assert put("metadata/2.snapshot.json", b"y") == 200  # an overwrite: a second write
    assert put("metadata/timestamp.json", b"t1") == 200
    assert put("metadata/timestamp.json", b"t2", **{"If-Match": '"not-the-etag"'}) == 412
    # Chunked request bodies are relayed (and the write counted) too.
    st = http_request(via, f"/{b.name}/packages/a%20b%2Bc.whl", "PUT", body=iter([b"ab", b"cd"]),
                      headers={"Authorization": S3_AUTH, "Content-Type": "application/octet-stream"})[0]
    assert st == 200
    assert b.get("metadata/1.snapshot.json") == b"one"
    assert b.get("packages/a b+c.whl") == b"abcd"
    assert http_request(via, f"/{b.name}/metadata/1.snapshot.json", "HEAD",
                        headers={"Authorization": S3_AUTH})[0] == 200

    counts = write_counts(proxy, b.name)
    assert counts["metadata/1.snapshot.json"] == [200, 412]
    assert counts["metadata/timestamp.json"] == [200, 412]
    assert counts["packages/a b+c.whl"] == [200]
    twice, n = versioned_written_twice(proxy, b.name)
    assert twice == {"metadata/2.snapshot.json": [200, 200]} and n == 2

    # Cut: refused, and an open connection is reset; restored: served again on the same port.
    port = proxy.port
    held = socket.create_connection(("127.0.0.1", port))
    proxy.cut()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    held.settimeout(2)
    with pytest.raises(OSError):
        held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        if not held.recv(1):
            raise ConnectionResetError("closed")
    held.close()
    proxy.restore()
    assert proxy.port == port
    assert http_request(via, f"/{b.name}/metadata/1.snapshot.json", headers={"Authorization": S3_AUTH})[2] == b"one"


def test_pg_proxy_cut_and_restore(cluster):
    url = cluster.database_url
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as c:
        assert c.execute("SELECT current_database()").fetchone()[0] == cluster.db
        cluster.pg_proxy.cut()
        with pytest.raises(psycopg.OperationalError):
            c.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    done = threading.Event()
    threading.Timer(0.5, lambda: (cluster.pg_proxy.restore(), done.set())).start()
    assert done.wait(5)
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1
