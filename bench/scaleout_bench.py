"""Scale-out index benchmark (issue 13), `scripts/bench-index --scaleout`: `tufpi serve` embedded
(SQLite + files in its data directory) side by side with PostgreSQL + S3 with one and with three
replicas, on each S3 server asked for (--s3, default moto then s3s-fs), in one run, measured by
the same load generator (target/release/index_load) as bench/index_bench.py, whose machinery
this reuses.

For each configuration, on a fresh data directory / database / bucket:
  uploads: one stream of twine-style uploads (P projects x 2 versions x wheel+sdist) at
           concurrency C (three replicas: upload i to replica i mod 3, round-robin); uploads/s,
           and the time from each upload's 200 to the first /metadata/timestamp.json read whose
           snapshot's bin lists its target (three replicas: read from the first replica, which
           need not lead). Goals: upload->signed p99 <= 1 s everywhere; PG+S3 x1 uploads/s
           >= 0.5x embedded.
  pages:   GET /simple/<project>/ over the uploaded projects, each replica alone in turn.
  profile: the CPU seconds the replicas, the S3 server and PostgreSQL used during the upload
           stream (which of them is the bottleneck); publishes (new snapshot versions) and
           so uploads per publish; PostgreSQL transactions per upload (pg_stat_database; each
           statement outside a transaction counts as one); the S3 requests per upload moto
           logged (s3s-fs logs none); with --perf, `perf record -g` of the replicas and their
           hottest symbols. For where a publish spends its time, run with
           TUFPI_LOG=warn,tufpi_index::publisher=info,tufpi_repo=debug and --keep: each
           replica's log (WORK/<config>/r<i>.log) has "batch published" (plan_ms, write_ms) and
           "plan written" (bins_ms, snapshot_timestamp_ms, clear_ms) lines.
Then, on the first S3 server's three replicas, failover: N times, kill -9 of the replica whose
/health says leader, one upload to a survivor at once, and the time from the kill until a
survivor's /health says leader, and until that upload is signed (read through the new leader's
/metadata/); the killed replica is restarted at the same address before the next kill.
Goal: p99 (kill -> new upload signed) <= 5 s.

moto is a Python (werkzeug) server; s3s-fs a Rust one (benchmarks only: it does not enforce
create-only against concurrent writers, see scripts/s3-server). Each one's PutObject rate alone,
measured here, is printed as its limit row. Processes are started and stopped by PID;
PostgreSQL databases made here are dropped WITH (FORCE). No CPU pinning: PostgreSQL, the S3
servers and the replicas share the machine's cores.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import index_bench as ib  # noqa: E402
from e2e_util import build_wheel, multipart, upload_form  # noqa: E402  (index_bench put it on sys.path)
from scaleout import (  # noqa: E402
    Deployment, Postgres, S3Server, Server, cpu_seconds, postgres_cpu, PG_DEFAULT, S3_AUTH,
)

log = ib.log


def get(base: str, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        return ib.http_get(base + path, timeout)
    except OSError:
        return 0, b""


def health(srv: Server, timeout: float = 2.0) -> dict:
    st, body = get(srv.base, "/health", timeout)
    try:
        return json.loads(body) if st else {}
    except ValueError:
        return {}


def is_leader(srv: Server) -> bool:
    return srv.alive() and bool(health(srv).get("publisher", {}).get("leader"))


def wait_for(pred, timeout: float, what: str, interval: float = 0.05):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise SystemExit(f"not within {timeout:g} s: {what}")


def wait_idle(servers: list[Server], timeout: float = 120.0) -> None:
    """Nothing pending and the leader idle."""
    last: list = []

    def idle() -> bool:
        hs = [health(s) for s in servers if s.alive()]
        last[:] = hs
        lead = [h for h in hs if h.get("publisher", {}).get("leader")]
        return bool(lead) and lead[0].get("pending_changes") == 0 and lead[0]["publisher"]["state"] in ("idle", "standby")
    try:
        wait_for(idle, timeout, "the publisher idle with nothing pending", 0.1)
    except SystemExit as e:
        raise SystemExit(f"{e}; /health: {json.dumps(last)}") from None


class SignedProbe:
    """Whether one target is listed by the signed metadata reachable from a server's
    /metadata/timestamp.json (succinct bins, TAP 15)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.seen_snapshot: int | None = None

    def check(self, base: str) -> bool:
        st, body = get(base, "/metadata/timestamp.json", 2.0)
        if st != 200:
            return False
        sv = json.loads(body)["signed"]["meta"]["snapshot.json"]["version"]
        if sv == self.seen_snapshot:
            return False
        st, body = get(base, f"/metadata/{sv}.snapshot.json", 5.0)
        if st != 200:
            return False
        meta = json.loads(body)["signed"]["meta"]
        bins = sorted(k[:-5] for k in meta if k.startswith("bin-"))
        bits = (len(bins) - 1).bit_length()
        idx = int.from_bytes(hashlib.sha256(self.target.encode()).digest()[:8], "big") >> (64 - bits)
        name = f"bin-{idx:0{max(1, (bits + 3) // 4)}x}"
        if name + ".json" not in meta:
            raise SystemExit(f"snapshot v{sv} lists no {name}.json ({len(bins)} bins: {bins[:3]}...{bins[-2:]})")
        st, body = get(base, f"/metadata/{meta[name + '.json']['version']}.{name}.json", 5.0)
        if st != 200:
            return False
        self.seen_snapshot = sv
        return self.target in json.loads(body)["signed"].get("targets", {})


def post_upload(base: str, path: Path, name: str, version: str, token: str) -> int:
    import base64
    data = path.read_bytes()
    ctype, body = multipart(upload_form(name, version, path.name, data), (path.name, data))
    c = http.client.HTTPConnection("127.0.0.1", int(base.rsplit(":", 1)[1]), timeout=30)
    try:
        c.request("POST", "/legacy/", body=body, headers={
            "Content-Type": ctype, "Authorization": "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()})
        r = c.getresponse()
        r.read()
        return r.status
    except OSError:
        return 0
    finally:
        c.close()


def target_of(path: Path) -> str:
    b2 = hashlib.blake2b(path.read_bytes(), digest_size=32).hexdigest()
    return f"packages/{b2[:2]}/{b2[2:4]}/{b2[4:]}/{path.name}"


class Config:
    """One configuration: embedded (dep None) or `replicas` replicas on a Deployment."""

    def __init__(self, a, key: str, label: str, dep: Deployment | None, replicas: int) -> None:
        self.a, self.key, self.label, self.dep, self.n = a, key, label, dep, replicas
        self.dir = a.work / key
        self.dir.mkdir(parents=True)
        self.servers: list[Server] = []
        self.env = dict(os.environ, NO_COLOR="1",
                        TUFPI_LOG=os.environ.get("TUFPI_LOG", "warn,tufpi_index::publisher=info"))
        if dep:
            self.env = dep.env(self.env)
        self.keys = self.dir / "keys"

    def server_argv(self, i: int, port: int) -> list[str]:
        a = self.a
        argv = [str(a.tufpi), "serve", "--data-dir", str(self.dir / f"r{i}-data"), "--listen", f"127.0.0.1:{port}",
                "--bins-bit-length", str(a.bins_bit_length),
                "--max-uploads-per-token", "64", "--max-concurrent-uploads", "64"]
        if self.dep:
            argv += self.dep.args() + ["--keys-dir", str(self.keys), "--lease-ttl", a.lease_ttl]
        return argv

    def start(self) -> None:
        for i in range(self.n):
            port = ib.free_port()
            s = Server(f"{self.key} r{i}", self.server_argv(i, port), port, self.dir / f"r{i}.log", self.env)
            self.servers.append(s)
            s.start()
            if i == 0:
                # The first leader makes the repository (development keys in the shared keys
                # dir); the others start once it exists.
                wait_for(lambda: get(s.base, "/metadata/timestamp.json")[0] == 200, 600,
                         f"{s.name}: a repository (timestamp.json)", 0.2)
        wait_for(lambda: sum(is_leader(s) for s in self.servers) == 1, 60, "exactly one leader", 0.1)

    def token(self) -> str:
        argv = [str(self.a.tufpi), "token", "create", "--data-dir", str(self.dir / "r0-data")]
        if self.dep:
            argv += self.dep.args()
        r = ib.subprocess.run(argv, capture_output=True, text=True, env=self.env)
        if r.returncode:
            raise SystemExit(f"token create: {r.stderr}")
        return r.stdout.strip().splitlines()[-1].strip()

    def stop(self) -> None:
        for s in self.servers:
            s.stop()


def run_config(a, b: ib.Bench, cfg: Config, manifest: Path, paths: Path, s3: S3Server | None) -> dict:
    res: dict = {}
    t0 = time.monotonic()
    log(f"{cfg.label}: starting {cfg.n} server(s) ...")
    cfg.start()
    res["start_s"] = time.monotonic() - t0
    token = cfg.token()
    bases = [s.base for s in cfg.servers]
    wait_idle(cfg.servers)
    n_up = len(manifest.read_text().splitlines())
    log(f"{cfg.label}: {n_up} uploads at concurrency {a.upload_conc}"
        + (f", round-robin over {cfg.n} replicas" if cfg.n > 1 else "") + " ...")
    pids = [s.pid for s in cfg.servers]
    pg_cpu = postgres_cpu if cfg.dep else (lambda: 0.0)
    cpu0 = (cpu_seconds(pids), cpu_seconds([s3.pid]) if s3 and cfg.dep else 0.0, pg_cpu())
    off = s3.log_offset() if s3 and cfg.dep else 0
    xact0 = cfg.dep.transactions() if cfg.dep else None
    snap0 = snapshot_version(cfg.servers)
    perf = start_perf(a, cfg, pids)
    w0 = time.monotonic()
    argv = ["uploads", "--url", ",".join(bases), "--manifest", str(manifest), "--connections", str(a.upload_conc),
            "--path", "/legacy/", "--token", token, "--watch", "--poll-ms", str(a.poll_ms)]
    if cfg.dep and a.s3_watch_ms > 0:
        # A second watch on the bucket's metadata/ directly: when the publisher's timestamp
        # write landed, without the replica's once-a-second re-read of timestamp.json.
        argv += ["--watch2-url", f"{s3.endpoint}/{cfg.dep.bucket}/metadata",
                 *(["--watch2-header", f"Authorization: {S3_AUTH}"] if s3.auth else []),
                 "--watch2-poll-ms", str(a.s3_watch_ms)]
    r = b.loadgen(*argv)
    wall = time.monotonic() - w0
    cpu1 = (cpu_seconds(pids), cpu_seconds([s3.pid]) if s3 and cfg.dep else 0.0, pg_cpu())
    stop_perf(perf)
    if xact0 is not None:
        x1 = cfg.dep.transactions()
        res["pg_xacts"] = {k: x1[k] - xact0[k] for k in x1}
    if r["failed"]:
        raise SystemExit(f"{cfg.label}: {r['failed']} of {r['n']} uploads failed; first: {r['first_error']}")
    if r["signed"]["error"] or r["signed"]["unsigned"]:
        raise SystemExit(f"{cfg.label}: signing watch failed: {r['signed']}")
    res["uploads"] = r
    # CPU over the stream and the watch's settle time after it (the publishing it caused).
    res["cpu"] = {"wall_s": wall, "servers_s": cpu1[0] - cpu0[0], "moto_s": cpu1[1] - cpu0[1], "postgres_s": cpu1[2] - cpu0[2]}
    if s3 and cfg.dep and s3.logs_requests:
        # The GETs and HEADs of metadata/ left out: a replica checks timestamp.json in the
        # store on every request, so the watch's reads through it show up there.
        res["s3_requests"] = dict(s3.requests_since(off, cfg.dep.bucket, skip_get="metadata/"))
    wait_idle(cfg.servers)
    # Each publish (a batch of queued changes) is a new snapshot version.
    res["publishes"] = snapshot_version(cfg.servers) - snap0
    # Pages, each replica alone.
    res["pages"] = []
    for s in cfg.servers:
        log(f"{cfg.label}: pages on {s.name}, {a.connections} connections, {a.warmup:g} s warm-up + {a.duration:g} s ...")
        res["pages"].append(b.pages(s, s.base, paths))  # a Server has the .p (Popen) pages() samples
    return res


def start_perf(a, cfg: Config, pids: list[int]):
    """--perf: `perf record -g` of the replicas over the upload stream (report printed at
    the end: where their CPU time goes)."""
    if not a.perf:
        return None
    out = cfg.dir / "perf.data"
    p = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-o", str(out), "-p", ",".join(map(str, pids))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    return p, out


def stop_perf(perf) -> None:
    if not perf:
        return
    p, out = perf
    p.send_signal(signal.SIGINT)
    p.wait(60)
    r = subprocess.run(["perf", "report", "-i", str(out), "--no-children", "--stdio", "--sort", "dso,symbol",
                           "--percent-limit", "1.5", "-g", "none"], capture_output=True, text=True)
    rows = [ln for ln in r.stdout.splitlines() if ln.strip() and not ln.startswith("#")][:25]
    log(f"perf ({out}): the replicas' hottest symbols over the upload stream:\n" + "\n".join(rows))


def snapshot_version(servers: list[Server]) -> int:
    """The newest snapshot version any replica's /health reports (each new one is a publish)."""
    best = 0
    for s in servers:
        if s.alive():
            snap = health(s).get("snapshot") or {}
            best = max(best, snap.get("version") or 0)
    return best


def failover(a, cfg: Config, token: str, dists: Path) -> list[dict]:
    out = []
    dists.mkdir(parents=True, exist_ok=True)
    for k in range(a.kills):
        leader = wait_for(lambda: next((s for s in cfg.servers if is_leader(s)), None), 60, "a leader", 0.1)
        others = [s for s in cfg.servers if s is not leader]
        name, version = "bench-failover", f"1.{k}.0"
        wheel = build_wheel(dists, name, version)
        probe = SignedProbe(target_of(wheel))
        log(f"failover {k + 1}/{a.kills}: kill -9 {leader.name} (pid {leader.pid}) ...")
        t_kill = time.monotonic()
        leader.kill9()
        # One upload to a survivor at once (retried on a refusal while the lease changes hands).
        t_up = None
        for attempt in range(200):
            st = post_upload(others[attempt % len(others)].base, wheel, name, version, token)
            if st == 200:
                t_up = time.monotonic()
                break
            time.sleep(0.05)
        if t_up is None:
            raise SystemExit("failover: the upload to the survivors never succeeded")
        t_lead = t_signed = None
        new = None
        while time.monotonic() - t_kill < a.failover_timeout:
            if new is None:
                new = next((s for s in others if is_leader(s)), None)
                if new:
                    t_lead = time.monotonic()
            if new is not None and probe.check(new.base):
                t_signed = time.monotonic()
                break
            time.sleep(0.02)
        if t_signed is None:
            raise SystemExit(f"failover {k + 1}: no leader signed the upload within {a.failover_timeout:g} s "
                             f"(leader seen: {new.name if new else None})\n{others[0].tail()}")
        r = {"lead_s": t_lead - t_kill, "signed_s": t_signed - t_kill, "upload_s": t_up - t_kill,
             "killed": leader.name, "new": new.name}
        log(f"  {new.name} leads after {r['lead_s']:.2f} s; the upload signed after {r['signed_s']:.2f} s")
        out.append(r)
        leader.start()
        # Back as a standby, and the leader settled, before the next kill.
        wait_for(lambda: health(leader).get("publisher", {}).get("state") == "standby", 60,
                 f"{leader.name} back as a standby", 0.1)
        wait_idle(cfg.servers)
    return out


def pct(xs: list[float], p: float) -> float:
    v = sorted(xs)
    if not v:
        return float("nan")
    rank = max(1, -(-int(p * len(v)) // 100))
    return v[min(rank, len(v)) - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tufpi", type=Path, default=HERE.parent / "target" / "release" / "tufpi")
    ap.add_argument("--loadgen", type=Path, default=HERE.parent / "target" / "release" / "index_load")
    ap.add_argument("--work", type=Path, default=HERE / "out" / "scaleout-bench")
    ap.add_argument("--quick", action="store_true", help="small and short: about 2 minutes")
    ap.add_argument("--pg-url", default=os.environ.get("TUFPI_TEST_PG_URL", PG_DEFAULT),
                    help="PostgreSQL maintenance database (a database per configuration is made and dropped)")
    ap.add_argument("--s3", default="moto,s3s",
                    help="S3 servers to run the scaled-out configurations on, in order (default moto,s3s: "
                         "moto logs every request; s3s-fs is a fast Rust server, so tufpi's own limits show)")
    ap.add_argument("--upload-projects", type=int, help="projects in the upload stream (x2 versions x2 files; default 100; quick 15)")
    ap.add_argument("--upload-conc", type=int, default=8, help="upload concurrency (default 8)")
    ap.add_argument("--bins-bit-length", type=int, help="2^N bins (default 14 = PEP 458's 16,384; quick 10)")
    ap.add_argument("--lease-ttl", default="3s")
    ap.add_argument("--kills", type=int, help="failover (on the first S3 server's 3 replicas): kills of the "
                    "leader (default 10; quick 3; 0: none)")
    ap.add_argument("--failover-timeout", type=float, default=60.0)
    ap.add_argument("--connections", type=int, default=32, help="page load: keep-alive connections")
    ap.add_argument("--duration", type=float, help="page load: measured seconds (default 10; quick 2)")
    ap.add_argument("--warmup", type=float, help="page load: warm-up seconds (default 2; quick 0.5)")
    ap.add_argument("--poll-ms", type=float, default=20.0,
                    help="signing watch: timestamp.json poll interval (default 20: each read through a replica "
                         "is a HEAD on S3 too)")
    ap.add_argument("--s3-watch-ms", type=float, default=0.0,
                    help="also watch the bucket's metadata/timestamp.json directly, every MS (default 0: off)")
    ap.add_argument("--limit-puts", type=int, help="S3 limit row: PutObjects (default 2000; quick 500)")
    ap.add_argument("--perf", action="store_true",
                    help="profile: perf record -g of the replicas over each upload stream, hottest symbols logged")
    ap.add_argument("--json", type=Path, help="also write all measurements here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    q = a.quick
    a.upload_projects = a.upload_projects or (15 if q else 100)
    a.bins_bit_length = a.bins_bit_length or (10 if q else 14)
    a.kills = a.kills if a.kills is not None else (3 if q else 10)
    a.duration = a.duration or (2.0 if q else 10.0)
    a.warmup = a.warmup or (0.5 if q else 2.0)
    a.limit_puts = a.limit_puts or (500 if q else 2000)
    a.no_pin = True  # ib.Bench: PostgreSQL, S3 and the replicas share the cores
    kinds = [k.strip() for k in a.s3.split(",") if k.strip()]
    if not kinds or any(k not in ("moto", "s3s") for k in kinds):
        raise SystemExit(f"--s3: moto and/or s3s, not {a.s3!r}")
    for p in (a.tufpi, a.loadgen):
        if not p.is_file():
            raise SystemExit(f"missing {p} (cargo build --release -p tufpi -p tufpi-bench)")
    b = ib.Bench(a)
    t_start = time.monotonic()
    load_start = os.getloadavg()[0]
    if a.work.exists():
        shutil.rmtree(a.work)
    a.work.mkdir(parents=True)
    log(f"building {a.upload_projects} x 2 x 2 files under {a.work} ...")
    manifest, names, files = ib.build_set(a.work / "dists" / "up", "bench-so", a.upload_projects, 2)
    paths = a.work / "paths.txt"
    paths.write_text("".join(f"/simple/{n}/\n" for n in names))

    pg = Postgres(a.pg_url)
    servers: dict[str, S3Server] = {}
    results: dict = {"limit_put_rate": {}}
    specs = [("embedded", "embedded (SQLite + files)", None, 1)]
    for k in kinds:
        specs += [(f"pgs3x1-{k}", f"PG + S3 ({k}), 1 replica", k, 1),
                  (f"pgs3x3-{k}", f"PG + S3 ({k}), 3 replicas", k, 3)]
    try:
        for k in kinds:
            log(f"starting the S3 test server ({k}) ...")
            s3 = servers[k] = S3Server(a.work, k)
            # The limit: the server's PutObject rate alone (1 KB objects like the uploads).
            lim_bucket = f"tufpi-bench-limit-{os.getpid()}"
            s3.create_bucket(lim_bucket)
            log(f"{k} alone: {a.limit_puts} PutObjects of 1 KB at concurrency {a.upload_conc} ...")
            results["limit_put_rate"][k] = s3.put_rate(lim_bucket, a.limit_puts, 1024, a.upload_conc)
        for key, label, kind, n in specs:
            s3 = servers.get(kind) if kind else None
            dep = Deployment(pg, s3, key.replace("-", "_")) if s3 else None
            cfg = Config(a, key, label, dep, n)
            try:
                results[key] = run_config(a, b, cfg, manifest, paths, s3)
                if a.kills and n == 3 and kind == kinds[0]:
                    results["failover"] = failover(a, cfg, cfg.token(), a.work / "dists" / "failover")
                    results["failover_s3"] = kind
            finally:
                cfg.stop()
                if dep:
                    dep.drop()
                if not a.keep:
                    shutil.rmtree(cfg.dir, ignore_errors=True)
    finally:
        pg.drop_all()
        for s3 in servers.values():
            s3.stop()
        if not a.keep:
            shutil.rmtree(a.work, ignore_errors=True)
    report(a, results, specs, kinds, len(files), names, load_start, t_start)


def report(a, results: dict, specs: list, kinds: list[str], n_up: int, names: list[str],
           load_start: float, t_start: float) -> None:
    q = a.quick
    load_end = os.getloadavg()[0]
    print()
    print(f"scale-out index benchmark: embedded vs PostgreSQL + S3 ({', '.join(kinds)}), loopback, "
          f"{'quick' if q else 'full'} run ({time.monotonic() - t_start:.0f} s)")
    print(f"machine: {os.cpu_count()} CPUs, no pinning (replicas, PostgreSQL, the S3 server and the load generator "
          f"share them); 1-min load average {load_start:.2f} at start, {load_end:.2f} at end"
          + ("  (busy: other work shares the cores)" if max(load_start, load_end) > 1.5 else ""))
    print(f"tufpi: {2 ** a.bins_bit_length:,} succinct bins, ed25519, consistent snapshots; scaled out: --lease-ttl "
          f"{a.lease_ttl}; signing watch: timestamp.json read every {a.poll_ms:g} ms (through a replica: a HEAD on S3 each)")
    print(f"uploads: {n_up} (~1 KB each: {a.upload_projects} projects x 2 versions x wheel+sdist) at concurrency "
          f"{a.upload_conc}; 3 replicas: round-robin, signing read through replica r0")
    print(f"pages: GET /simple/<project>/ over the {len(names)} projects, {a.connections} connections, "
          f"{a.warmup:g} s warm-up + {a.duration:g} s, each replica alone")
    print()
    hdr = (f"{'configuration':<32}{'uploads/s':>10}{'x emb':>7}{'p50 ms':>8}{'p99 ms':>8}"
           f"   {'200 -> signed ms p50 / p99 / max':<34}{'goal p99<=1s':<13}{'in S3 p50 / p99' if a.s3_watch_ms > 0 else '':<17}"
           f"{'pages req/s per replica':<26}")
    print(hdr)
    print("-" * len(hdr))
    emb_rate = results["embedded"]["uploads"]["rate"]
    emb_pages = results["embedded"]["pages"][0]["rps"]
    goals = []
    for key, label, _, _ in specs:
        r = results[key]
        u, s = r["uploads"], r["uploads"]["signed"]
        ok = s["p99_ms"] <= 1000
        goals.append((f"upload->signed p99 <= 1 s, {label}", ok, f"{s['p99_ms']:.0f} ms"))
        pages = " / ".join(f"{p['rps']:,.0f}" for p in r["pages"])
        s2 = u.get("signed2")
        direct = f"{s2['p50_ms']:>6.0f} / {s2['p99_ms']:>5.0f}" if s2 and not s2["error"] else ("n/a" if a.s3_watch_ms > 0 else "")
        print(f"{label:<32}{u['rate']:>10.1f}{u['rate'] / emb_rate:>6.2f}x{u['p50_ms']:>8.1f}{u['p99_ms']:>8.1f}   "
              f"{s['p50_ms']:>6.0f} / {s['p99_ms']:>5.0f} / {s['max_ms']:>5.0f}{'':<14}{'met' if ok else 'MISSED':<13}"
              f"{direct:<17}{pages}")
    for k, lim in results["limit_put_rate"].items():
        print(f"{'limit: ' + k + ' alone, PutObject':<32}{lim:>10.1f}   (1 KB objects, {a.upload_conc} keep-alive "
              f"connections, Python client; no tufpi)")
    if a.s3_watch_ms > 0:
        print(f"in S3 = the same measurement on the bucket's metadata/timestamp.json read directly every "
              f"{a.s3_watch_ms:g} ms (when the leader's write landed)")
    print()
    print("pages x embedded: " + "; ".join(
        f"{label}: " + " / ".join(f"{p['rps'] / emb_pages:.2f}x" for p in results[key]["pages"])
        for key, label, _, _ in specs[1:]))
    print("profile of the upload stream (+ publishing until settled); cores busy = CPU s / wall s:")
    for key, label, kind, _ in specs:
        r = results[key]
        c = r["cpu"]
        line = f"  {label:<32} replicas {c['servers_s'] / c['wall_s']:.2f}"
        if kind:
            line += f", {kind} {c['moto_s'] / c['wall_s']:.2f}, PostgreSQL {c['postgres_s'] / c['wall_s']:.2f}"
        if r.get("publishes"):
            line += f"; {r['publishes']} publishes ({n_up / r['publishes']:.1f} uploads each)"
        x = r.get("pg_xacts")
        if x:
            line += f"; PostgreSQL transactions per upload {x['commit'] / n_up:.1f} (+{x['rollback'] / n_up:.2f} rolled back)"
        reqs = r.get("s3_requests")
        if reqs:
            lim = results["limit_put_rate"][kind]
            line += ("; S3 requests per upload (metadata/ reads not counted): "
                     + ", ".join(f"{m} {v / n_up:.1f}" for m, v in sorted(reqs.items()))
                     + f" => {kind}-bound ceiling ~{lim / max(reqs.get('PUT', 0) / n_up, 1e-9):.0f} uploads/s "
                       "(its PUT rate / PUTs per upload)")
        print(line)
    for key, label, kind, _ in specs:
        c = results[key]["cpu"]
        if kind == "moto" and c["moto_s"] / c["wall_s"] >= 0.8:
            print(f"  note: {label}: moto was busy {c['moto_s'] / c['wall_s']:.0%} of a core (one Python process, "
                  "GIL-bound): the S3 test server is a bottleneck here, not tufpi")
    for k in kinds:
        x1 = results[f"pgs3x1-{k}"]["uploads"]["rate"] / emb_rate
        goals.append((f"PG+S3 ({k}) x1 uploads/s >= 0.5x embedded", x1 >= 0.5, f"{x1:.2f}x"))
    if results.get("failover"):
        f = results["failover"]
        lead = [x["lead_s"] for x in f]
        sig = [x["signed_s"] for x in f]
        print()
        print(f"failover: {len(f)} kill(s) (-9) of the leader among 3 replicas on {results['failover_s3']}, "
              f"--lease-ttl {a.lease_ttl}; one upload to a survivor right after each kill")
        print(f"  {'seconds from the kill until':<52}{'p50':>7}{'p99':>7}{'max':>7}")
        print(f"  {'a survivor /health says leader':<52}{pct(lead, 50):>7.2f}{pct(lead, 99):>7.2f}{max(lead):>7.2f}")
        print(f"  {'... and the new upload is signed (its /metadata/)':<52}{pct(sig, 50):>7.2f}{pct(sig, 99):>7.2f}"
              f"{max(sig):>7.2f}")
        goals.append(("failover p99 <= 5 s", pct(sig, 99) <= 5.0, f"{pct(sig, 99):.2f} s"))
    print()
    print("goals: " + "; ".join(f"{g}: {'met' if ok else 'MISSED'} ({v})" for g, ok, v in goals))
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
