"""Helpers for the scale-out end-to-end tests (issue 13): replicas of `tufpi serve` on one
PostgreSQL database and one S3 bucket, the S3 server read directly (the trusted root, object
listings), uploads in bursts, a timestamp poller, and the checks every test ends with."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from e2e_util import build_sdist, build_wheel, multipart, upload_form
from tuf.ngclient import Updater

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
# moto checks no signature, but answers an anonymous object request 403: any SigV4 header does.
S3_AUTH = ("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, "
           "SignedHeaders=host, Signature=0")
AWS_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
           "AWS_DEFAULT_REGION": "us-east-1"}
# The full sizes (60 uploads, three kill points) with TUFPI_SCALEOUT_FULL=1; quick ones for CI.
FULL = os.environ.get("TUFPI_SCALEOUT_FULL") == "1"
VERSIONED = re.compile(r"^metadata/(\d+)\.(.+)\.json$")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def http_request(base: str, path: str, method: str = "GET", body: bytes | None = None,
                 headers: dict | None = None, timeout: float = 30) -> tuple[int, dict, bytes]:
    """One request, no redirects followed, gzip bodies decoded: (status, lowercase headers, body)."""
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        c.request(method, (u.path.rstrip("/") + path) if u.path else path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        h = {k.lower(): v for k, v in r.getheaders()}
        if h.get("content-encoding") == "gzip":
            data = gzip.decompress(data)
        return r.status, h, data
    finally:
        c.close()


# ---------------------------------------------------------------- S3, read and set up directly


class Bucket:
    """One bucket of the S3 test server, reached directly (not through any proxy)."""

    def __init__(self, endpoint: str, name: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.name = name

    def _req(self, method: str, path: str, **kw) -> tuple[int, dict, bytes]:
        headers = {"Authorization": S3_AUTH, "Content-Type": "application/octet-stream",
                   **kw.pop("headers", {})}
        return http_request(self.endpoint, path, method, headers=headers, **kw)

    def create(self) -> None:
        st, _, body = self._req("PUT", f"/{self.name}")
        assert st == 200, (st, body)

    def get(self, key: str) -> bytes | None:
        st, _, body = self._req("GET", f"/{self.name}/{urllib.parse.quote(key)}")
        if st == 404:
            return None
        assert st == 200, (key, st, body[:200])
        return body

    def keys(self, prefix: str = "") -> list[str]:
        out: list[str] = []
        token = None
        while True:
            q = {"list-type": "2", "prefix": prefix, "max-keys": "1000"}
            if token:
                q["continuation-token"] = token
            st, _, body = self._req("GET", f"/{self.name}?{urllib.parse.urlencode(q)}")
            assert st == 200, body[:300]
            text = body.decode()
            out += [urllib.parse.unquote(k) if "%" in k else k for k in re.findall(r"<Key>([^<]*)</Key>", text)]
            m = re.search(r"<NextContinuationToken>([^<]*)</NextContinuationToken>", text)
            if "<IsTruncated>true</IsTruncated>" not in text or not m:
                return out
            token = m.group(1)

    def delete_all(self) -> None:
        """Empty and remove the bucket (best effort: the server may be gone)."""
        try:
            for k in self.keys():
                self._req("DELETE", f"/{self.name}/{urllib.parse.quote(k)}")
            self._req("DELETE", f"/{self.name}")
        except Exception:
            pass


def write_counts(proxy, bucket: str) -> dict[str, list[int]]:
    """Per object key: the statuses of every whole-object write the S3 proxy relayed."""
    out: dict[str, list[int]] = {}
    for ex in proxy.recorded():
        if ex.is_object_write:
            key = ex.key(bucket)
            if key:
                out.setdefault(key, []).append(ex.status if ex.status is not None else 0)
    return out


def versioned_written_twice(proxy, bucket: str) -> tuple[dict[str, list[int]], int]:
    """Versioned metadata keys (metadata/N.role.json) with more than one successful (2xx)
    write, and the number of versioned keys written; a 412 refusal is not a write."""
    twice = {}
    n = 0
    for key, statuses in write_counts(proxy, bucket).items():
        if VERSIONED.match(key):
            ok = [s for s in statuses if 200 <= s < 300]
            n += bool(ok)
            if len(ok) > 1:
                twice[key] = statuses
    return twice, n


# ---------------------------------------------------------------- replicas


class Replica:
    """`tufpi serve` on the shared database and bucket, with its own data directory; its output
    (stdout and stderr, the tracing log) goes to `log_path`. Always killed by its PID."""

    def __init__(self, bin_: Path, name: str, work: Path, database: str, storage: str,
                 endpoint: str, keys_dir: Path, *extra: str) -> None:
        self.bin = bin_
        self.name = name
        self.data = work / f"{name}-data"
        self.log_path = work / f"{name}.log"
        self.database = database
        self.storage = storage
        self.endpoint = endpoint
        self.keys_dir = keys_dir
        self.extra = extra
        self.proc: subprocess.Popen | None = None
        self.base = ""
        self.stopped = False  # SIGSTOPped

    @property
    def url(self) -> str:
        return self.base

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def deployment_args(self) -> list[str]:
        return ["--database", self.database, "--storage", self.storage,
                "--storage-endpoint", self.endpoint]

    def command(self) -> list[str]:
        return [str(self.bin), "serve", *self.deployment_args(), "--keys-dir", str(self.keys_dir),
                "--data-dir", str(self.data), "--listen", "127.0.0.1:0", "--bins-bit-length", "8",
                *self.extra]

    def env(self) -> dict[str, str]:
        return dict(os.environ, **AWS_ENV, NO_COLOR="1",
                    TUFPI_LOG=os.environ.get("TUFPI_SCALEOUT_LOG", "info"))

    def start(self, timeout: float = 90.0) -> "Replica":
        self.data.mkdir(parents=True, exist_ok=True)
        self.base = ""
        mark = len(self.log())
        with open(self.log_path, "ab") as log:
            log.write(f"==== start {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env(), start_new_session=True)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            m = re.search(r" listening on (http://\S+)", self.log()[mark:])
            if m:
                self.base = m.group(1).rstrip("/")
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill9()
        raise RuntimeError(f"{self.name} did not start:\n{self.log()[-4000:]}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def kill9(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self.stopped = False

    def sigstop(self) -> None:
        self._signal(signal.SIGSTOP)
        self.stopped = True

    def sigcont(self) -> None:
        self._signal(signal.SIGCONT)
        self.stopped = False

    def stop(self, timeout: float = 20) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.sigcont()
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        return self.proc.returncode

    def get(self, path: str, accept: str | None = None, timeout: float = 30) -> tuple[int, dict, bytes]:
        return http_request(self.base, path, headers={"Accept": accept} if accept else {}, timeout=timeout)

    def health(self, timeout: float = 5) -> dict:
        st, _, body = self.get("/health", timeout=timeout)
        try:
            return json.loads(body)
        except ValueError:
            return {"http_status": st, "body": body.decode(errors="replace")}

    def is_leader(self, timeout: float = 2) -> bool:
        if not self.alive() or self.stopped:
            return False
        try:
            return bool(self.health(timeout)["publisher"].get("leader"))
        except (OSError, KeyError, TypeError, http.client.HTTPException):
            return False

    def timestamp_version(self, timeout: float = 5) -> int | None:
        st, _, body = self.get("/metadata/timestamp.json", timeout=timeout)
        if st != 200:
            return None
        return json.loads(body)["signed"]["version"]

    def token(self, project: str | None = None) -> str:
        args = [str(self.bin), "token", "create", "--data-dir", str(self.data), *self.deployment_args()]
        if project:
            args += ["--project", project]
        r = subprocess.run(args, capture_output=True, text=True, env=self.env(), timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout.strip().splitlines()[-1].strip()


def wait_for(pred, timeout: float, what: str, interval: float = 0.05):
    t0 = time.monotonic()
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(interval)


def leader_of(replicas: list[Replica], timeout: float = 30) -> Replica:
    """The one replica whose /health says leader (fails, with every replica's publisher
    report, when none or several do for `timeout` seconds)."""
    def one():
        leaders = [r for r in replicas if r.is_leader()]
        return leaders[0] if len(leaders) == 1 else None
    try:
        return wait_for(one, timeout, "exactly one replica's /health says leader", 0.1)
    except AssertionError as e:
        report = {}
        for r in replicas:
            try:
                report[r.name] = r.health(timeout=10).get("publisher")
            except Exception as x:
                report[r.name] = repr(x)
        raise AssertionError(f"{e}: {report}") from None


# ---------------------------------------------------------------- uploads


def package_target(data: bytes, filename: str) -> str:
    b2 = hashlib.blake2b(data, digest_size=32).hexdigest()
    return f"packages/{b2[:2]}/{b2[2:4]}/{b2[4:]}/{filename}"


@dataclass
class Upload:
    project: str
    version: str
    path: Path
    statuses: list[int] = field(default_factory=list)  # every answer (0: no answer)
    retry_after: list[str | None] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # the text of each 4xx answer
    replica: str = ""  # the replica that answered 200

    def __post_init__(self) -> None:
        self.filename = self.path.name
        self.data = self.path.read_bytes()
        self.sha256 = hashlib.sha256(self.data).hexdigest()
        self.target = package_target(self.data, self.filename)

    @property
    def acked(self) -> bool:
        return 200 in self.statuses


def make_uploads(work: Path, run: int, n: int, projects: tuple[str, ...]) -> list[Upload]:
    """`n` distributions (mostly wheels, every fifth an sdist), versions RUN.I."""
    out = []
    for i in range(n):
        project = projects[i % len(projects)]
        d = work / f"dist-{run}-{i}"
        d.mkdir(parents=True)
        version = f"{run}.{i}"
        path = build_sdist(d, project, version) if i % 5 == 4 else build_wheel(d, project, version)
        out.append(Upload(project, version, path))
    return out


def post_upload(base: str, up: Upload, token: str, timeout: float = 30) -> tuple[int, dict, str]:
    ct, body = multipart(upload_form(up.project, up.version, up.filename, up.data), (up.filename, up.data))
    auth = "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()
    st, h, text = http_request(base, "/legacy/", "POST", body=body, timeout=timeout,
                               headers={"Content-Type": ct, "Authorization": auth})
    return st, h, text.decode(errors="replace")


def burst(replicas, token: str, uploads: list[Upload], workers: int = 12, retry_for: float = 0.0,
          on_ack=None) -> None:
    """Send `uploads` concurrently, round-robin over the replicas that are not stopped.
    With `retry_for` > 0, a 5xx or an unanswered request is retried (after Retry-After, at most
    1 s) on the next replica until that many seconds have passed: a client that honours
    Retry-After. `on_ack(n)` is called after the n-th 200."""
    todo: queue.Queue[Upload] = queue.Queue()
    for u in uploads:
        todo.put(u)
    lock = threading.Lock()
    counter = [0, 0]  # round robin, acks

    def pick():
        with lock:
            live = [r for r in replicas if r.alive() and not r.stopped] or list(replicas)
            counter[0] += 1
            return live[counter[0] % len(live)]

    def worker() -> None:
        while True:
            try:
                u = todo.get_nowait()
            except queue.Empty:
                return
            t0 = time.monotonic()
            while True:
                r = pick()
                try:
                    st, h, text = post_upload(r.base, u, token)
                except (OSError, http.client.HTTPException):
                    st, h, text = 0, {}, ""
                u.statuses.append(st)
                u.retry_after.append(h.get("retry-after"))
                if st == 200:
                    u.replica = r.name
                    with lock:
                        counter[1] += 1
                        n = counter[1]
                    if on_ack:
                        on_ack(n)
                    break
                if st and st < 500:
                    u.refusals.append(f"{st} via {r.name}: {text.strip()[:200]}")
                    break
                if time.monotonic() - t0 > retry_for:
                    break
                wait = 0.2
                try:
                    wait = min(float(h.get("retry-after", "0.2")), 1.0)
                except ValueError:
                    pass
                time.sleep(wait)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads), "upload workers stuck"


# ---------------------------------------------------------------- timestamp poller


class TimestampPoller:
    """A client polling timestamp.json round-robin over the replicas (skipping stopped or dead
    ones) throughout a test; `versions` is every version it saw, in order, with the replica."""

    def __init__(self, replicas, interval: float = 0.05) -> None:
        self.replicas = replicas
        self.interval = interval
        self.seen: list[tuple[float, str, int]] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "TimestampPoller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            live = [r for r in self.replicas if r.base and r.alive() and not r.stopped]
            if live:
                r = live[i % len(live)]
                i += 1
                try:
                    v = r.timestamp_version(timeout=2)
                    if v is not None:
                        self.seen.append((time.monotonic(), r.name, v))
                except Exception:  # a replica restarting, stopped, killed: not a version
                    self.errors += 1
            self._stop.wait(self.interval)

    def timeline(self) -> str:
        """Each replica's version changes over time (seconds from the first poll)."""
        if not self.seen:
            return "nothing seen"
        t0 = self.seen[0][0]
        last: dict[str, int] = {}
        out = []
        for t, name, v in self.seen:
            if last.get(name) != v:
                out.append(f"{t - t0:.2f}s {name} v{v}")
                last[name] = v
        return "; ".join(out)

    def decreases_per_replica(self) -> list[tuple]:
        """Decreases seen from any one replica (a client of that replica alone)."""
        last: dict[str, tuple] = {}
        out = []
        for e in self.seen:
            if e[1] in last and e[2] < last[e[1]][2]:
                out.append((last[e[1]], e))
            last[e[1]] = e
        return out

    def decreases(self) -> list[tuple]:
        """Decreases seen by the round-robin client (a client behind a load balancer)."""
        out = []
        for a, b in zip(self.seen, self.seen[1:]):
            if b[2] < a[2]:
                out.append((a, b))
        return out

    def summary(self) -> str:
        per: dict[str, list[int]] = {}
        for _, name, v in self.seen:
            per.setdefault(name, []).append(v)
        return ", ".join(f"{n}: {len(vs)} polls v{min(vs)}..v{max(vs)}" for n, vs in sorted(per.items()))

    def max_version(self) -> int:
        return max((v for _, _, v in self.seen), default=0)


# ---------------------------------------------------------------- checks


def updater(replica: Replica, root: bytes, work: Path) -> Updater:
    """A fresh ngclient (default settings) through `replica`, bootstrapped with 1.root.json."""
    md, td = work / "md", work / "targets"
    md.mkdir(parents=True)
    td.mkdir()
    u = Updater(metadata_dir=str(md), metadata_base_url=f"{replica.base}/metadata/",
                target_base_url=f"{replica.base}/", target_dir=str(td), bootstrap=root)
    u.refresh()
    return u


def listed(replica: Replica, projects) -> dict[str, dict]:
    """filename -> JSON page entry, over the projects' simple pages."""
    out = {}
    for p in projects:
        st, _, body = replica.get(f"/simple/{norm(p)}/", JSON_TYPE)
        if st == 404:
            continue
        assert st == 200, (replica.name, p, st, body[:300])
        for f in json.loads(body)["files"]:
            out[f["filename"]] = f
    return out


def wait_signed(replicas, root: bytes, uploads: list[Upload], work: Path, timeout: float = 20) -> float:
    """Seconds until ngclient (fresh, from 1.root.json) through every replica finds every
    upload signed: each replica re-reads timestamp.json from the bucket on its own schedule."""
    t0 = time.monotonic()
    n = [0]

    def all_signed(r):
        n[0] += 1
        u = updater(r, root, work / f"wait{n[0]}")
        return all((i := u.get_targetinfo(up.target)) is not None and i.hashes["sha256"] == up.sha256
                   for up in uploads)
    for r in replicas:
        wait_for(lambda: all_signed(r), max(1.0, timeout - (time.monotonic() - t0)),
                 f"every acknowledged upload signed (ngclient through {r.name})", 0.3)
    return time.monotonic() - t0


def check_everywhere(replicas, root: bytes, acked: list[Upload], projects, work: Path,
                     download_all: bool = True) -> None:
    """Every acknowledged upload is listed on every replica's page (with its sha256), served by
    every replica with its bytes, and signed: ngclient from 1.root.json through each replica
    finds it (and downloads and verifies it, through the first replica, or every replica with
    `download_all`); the pages themselves are signed as served."""
    for i, r in enumerate(replicas):
        files = listed(r, projects)
        for up in acked:
            assert up.filename in files, f"{up.filename} acknowledged but not listed on {r.name}"
            assert files[up.filename]["hashes"]["sha256"] == up.sha256, (r.name, up.filename)
            st, _, body = r.get("/" + up.target)
            assert st == 200 and hashlib.sha256(body).hexdigest() == up.sha256, (r.name, up.target, st)
        u = updater(r, root, work / f"ng-{r.name}")
        for up in acked:
            info = u.get_targetinfo(up.target)
            assert info is not None, f"{up.target} not signed (ngclient through {r.name})"
            assert info.hashes["sha256"] == up.sha256
            if download_all or i == 0:
                with open(u.download_target(info), "rb") as f:
                    assert f.read() == up.data, (r.name, up.target)
        for p in projects:
            st, _, body = r.get(f"/simple/{norm(p)}/", JSON_TYPE)
            if st == 200:
                info = u.get_targetinfo(f"simple/{norm(p)}/vnd.pypi.simple.v1.json")
                assert info is not None and info.hashes["sha256"] == hashlib.sha256(body).hexdigest(), \
                    (r.name, p, "page served is not the page signed")
