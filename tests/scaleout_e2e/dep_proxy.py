"""A TCP proxy on loopback (asyncio, in a thread of its own) that the scale-out tests put
between the replicas and a dependency (PostgreSQL, the S3 server), to cut it and restore it.

In `http` mode it also reads the HTTP/1.1 exchanges it relays (request head and body, response
head and body; Content-Length, chunked and read-to-close bodies, 1xx interim answers, HEAD)
and records each as (method, path, status); hooks see every request before it is forwarded
and every response head before it is relayed, so a test can act (SIGKILL, SIGSTOP a replica)
at an exact point of a publish, whichever S3 server is behind it."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Exchange:
    """One HTTP request relayed; `status` None while its answer is awaited (or never came)."""

    method: str
    path: str
    status: int | None = None
    t_request: float = field(default_factory=time.monotonic)
    t_response: float | None = None

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)

    def key(self, bucket: str) -> str | None:
        """The object key (path-style `/BUCKET/KEY`), or None for a bucket-level request."""
        p = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        prefix = f"/{bucket}/"
        return p[len(prefix):] if p.startswith(prefix) else None

    @property
    def is_object_write(self) -> bool:
        """A request that creates or replaces a whole object: a PUT (not a multipart part)
        or a CompleteMultipartUpload."""
        q = self.query
        if self.method == "PUT":
            return "partNumber" not in q
        return self.method == "POST" and "uploadId" in q


Hook = Callable[[Exchange], None]


class TcpProxy:
    """127.0.0.1:<port> → target. `cut()` stops listening and drops every connection (new
    connections are refused); `restore()` listens again on the same port."""

    def __init__(self, target_host: str, target_port: int, http: bool = False, name: str = "proxy") -> None:
        self.target = (target_host, target_port)
        self.http = http
        self.name = name
        self.port = 0
        self.exchanges: list[Exchange] = []
        self.hooks: list[Hook] = []
        self.cut_since: float | None = None
        self._lock = threading.Lock()
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=f"{name}-loop", daemon=True)
        self._thread.start()
        self._call(self._listen())

    # ---- control (from any thread)

    def _call(self, coro, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def close(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self._call(self._cut())
            self._call(self._cancel_all())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            if not self.loop.is_running():
                self.loop.close()

    def recorded(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)

    # ---- the loop's side

    async def _listen(self) -> None:
        if self._server is not None:
            return
        # Retried briefly: the port may linger a moment after a cut.
        for attempt in range(50):
            try:
                self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port,
                                                          reuse_address=True)
                break
            except OSError:
                if attempt == 49 or self.port == 0:
                    raise
                await asyncio.sleep(0.1)
        self.port = self._server.sockets[0].getsockname()[1]
        self.cut_since = None

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self.cut_since = time.monotonic()
        for w in list(self._conns):
            _reset(w)
        self._conns.clear()

    async def _cancel_all(self) -> None:
        """After a cut: let the relays see their connections end, then cancel what is left."""
        tasks = [t for t in asyncio.all_tasks(self.loop) if t is not asyncio.current_task()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=1)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        if self._server is None:
            _reset(cwriter)
            return
        try:
            ureader, uwriter = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(cwriter)
            return
        self._conns.update((cwriter, uwriter))
        try:
            if self.http:
                await self._relay_http(creader, cwriter, ureader, uwriter)
            else:
                await asyncio.gather(_pump(creader, uwriter), _pump(ureader, cwriter))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                asyncio.CancelledError):
            pass
        finally:
            for w in (cwriter, uwriter):
                self._conns.discard(w)
                try:
                    w.close()
                except Exception:
                    pass

    def _run_hooks(self, ex: Exchange) -> None:
        for h in list(self.hooks):
            try:
                h(ex)
            except Exception as e:  # a hook's failure must not break the relay
                print(f"{self.name}: hook failed: {e!r}")

    async def _relay_http(self, creader, cwriter, ureader, uwriter) -> None:
        while True:
            try:
                head = await creader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            line, headers = _parse_head(head)
            method, path = line.split(" ")[:2]
            ex = Exchange(method, path)
            with self._lock:
                self.exchanges.append(ex)
            self._run_hooks(ex)
            uwriter.write(head)
            expect = headers.get("expect", "").lower() == "100-continue"
            if not expect:
                await _relay_body(creader, uwriter, headers, response=False)
            await uwriter.drain()
            while True:
                rhead = await ureader.readuntil(b"\r\n\r\n")
                rline, rheaders = _parse_head(rhead)
                status = int(rline.split(" ")[1])
                if 100 <= status < 200:
                    cwriter.write(rhead)
                    await cwriter.drain()
                    if expect and status == 100:
                        expect = False
                        await _relay_body(creader, uwriter, headers, response=False)
                        await uwriter.drain()
                    continue
                break
            if expect:  # a final answer without 100 Continue: the body is not sent
                pass
            ex.status = status
            ex.t_response = time.monotonic()
            self._run_hooks(ex)
            cwriter.write(rhead)
            no_body = method == "HEAD" or status in (204, 304)
            closes = not no_body and await _relay_body(ureader, cwriter, rheaders, response=True)
            await cwriter.drain()
            if closes or "close" in rheaders.get("connection", "").lower():
                return


def _reset(w: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0): the peer sees the connection reset, as when a server dies."""
    try:
        sock = w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()
    except Exception:
        pass


async def _pump(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await r.read(65536)
            if not data:
                break
            w.write(data)
            await w.drain()
    finally:
        try:
            w.write_eof()
        except Exception:
            pass


def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return lines[0], headers


async def _relay_body(r: asyncio.StreamReader, w: asyncio.StreamWriter, headers: dict[str, str],
                      response: bool) -> bool:
    """Copy one message body; True when it was delimited by the connection's end."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = await r.readuntil(b"\r\n")
            w.write(size_line)
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:
                    trailer = await r.readuntil(b"\r\n")
                    w.write(trailer)
                    if trailer == b"\r\n":
                        return False
            w.write(await r.readexactly(size + 2))
            await w.drain()
    if "content-length" in headers:
        n = int(headers["content-length"])
        while n > 0:
            data = await r.read(min(n, 65536))
            if not data:
                raise asyncio.IncompleteReadError(b"", n)
            w.write(data)
            n -= len(data)
            await w.drain()
        return False
    if not response:
        return False
    while True:
        data = await r.read(65536)
        if not data:
            return True
        w.write(data)
        await w.drain()
