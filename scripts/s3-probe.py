"""Which preconditions an S3-API server enforces on PutObject (`scripts/s3-server probe DIR`).

One request at a time: If-None-Match: * on a present key, If-Match on a stale ETag, on the
current ETag, and on an absent key. Then against concurrent writers: ROUNDS rounds of WRITERS
threads each doing a create-only PUT of one new key (at most one may succeed), and of WRITERS
If-Match PUTs on the same current ETag (at most one may succeed). Prints one line per check and
exits 1 if any is not enforced. Stdlib only; unsigned requests for s3s-fs (it runs without
authentication), a dummy SigV4 header for moto (it checks no signature but refuses anonymous
object requests).

    python scripts/s3-probe.py ENDPOINT KIND
"""

from __future__ import annotations

import http.client
import os
import sys
import threading
import urllib.parse

ROUNDS, WRITERS = 5, 30
MOTO_AUTH = ("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, "
             "SignedHeaders=host, Signature=0")


def main() -> None:
    endpoint, kind = sys.argv[1], sys.argv[2]
    u = urllib.parse.urlsplit(endpoint)
    auth = {"Authorization": MOTO_AUTH} if kind == "moto" else {}

    def req(method: str, path: str, body: bytes = b"", headers: dict | None = None) -> tuple[int, dict]:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        c.request(method, path, body=body, headers={**auth, "Content-Length": str(len(body)), **(headers or {})})
        r = c.getresponse()
        r.read()
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}

    bucket = f"probe-{os.getpid()}-{os.urandom(3).hex()}"
    st, _ = req("PUT", f"/{bucket}", headers={"Authorization": ""} if kind == "moto" else {})
    if st != 200:
        raise SystemExit(f"creating bucket {bucket}: HTTP {st}")
    bad = 0

    def check(name: str, got: int, want: set[int]) -> None:
        nonlocal bad
        ok = got in want
        bad += not ok
        print(f"{'enforced' if ok else 'NOT ENFORCED':<13} {name}: HTTP {got}")

    st, h = req("PUT", f"/{bucket}/k", b"one")
    etag = h.get("etag", "")
    check("PutObject If-None-Match: * on a present key", req("PUT", f"/{bucket}/k", b"two", {"If-None-Match": "*"})[0],
          {412})
    check("PutObject If-Match on a stale ETag", req("PUT", f"/{bucket}/k", b"two", {"If-Match": '"0000"'})[0], {412})
    check("PutObject If-Match on an absent key", req("PUT", f"/{bucket}/absent", b"x", {"If-Match": etag})[0],
          {404, 412})
    st, h = req("PUT", f"/{bucket}/k", b"three", {"If-Match": etag})
    check("PutObject If-Match on the current ETag succeeds", st, {200})
    etag = h.get("etag", "")

    def race(path: str, headers: dict) -> int:
        wins = []
        body = os.urandom(256 << 10)

        def one() -> None:
            if req("PUT", path, body, headers)[0] == 200:
                wins.append(1)

        ts = [threading.Thread(target=one) for _ in range(WRITERS)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return len(wins)

    most = max(race(f"/{bucket}/race-{r}", {"If-None-Match": "*"}) for r in range(ROUNDS))
    check(f"If-None-Match: * against {WRITERS} concurrent writers ({ROUNDS} rounds; most that succeeded: {most})",
          200 if most <= 1 else 0, {200})
    most = 0
    for r in range(ROUNDS):
        st, h = req("PUT", f"/{bucket}/cas-{r}", b"base")
        most = max(most, race(f"/{bucket}/cas-{r}", {"If-Match": h.get("etag", "")}))
    check(f"If-Match against {WRITERS} concurrent writers ({ROUNDS} rounds; most that succeeded: {most})",
          200 if most <= 1 else 0, {200})
    print(f"{kind} at {endpoint}: {'every check enforced' if not bad else f'{bad} check(s) NOT enforced'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
