"""The load-test connections of one worker process: SignalR over WebSockets, Server-Sent
Events and long polling (JSON or MessagePack), plus two comparison clients speaking the same
scenario through other stacks: Engine.IO v4 / Socket.IO over WebSocket and a plain WebSocket
(the raw reference server).

WebSocket connections (:mod:`aiusage.loadtest.ws`) are picows listeners without a task or a
queue per idle connection. SSE and long polling are
inherently a request loop per connection, so each has one task; their HTTP responses are
parsed by httptools (:class:`aiusage.loadtest.wire.HttpResponseReader`).

Every pushed message goes through :meth:`Conn.on_record`: the hub message type decides what
happens (Invocation -> delivery; Ping -> nothing; Close -> end), and a marker
(:func:`aiusage.loadtest.wire.make_marker`) inside it gives the sequence number (lost and
duplicate detection) and the send time (end-to-end latency on this single machine's clock).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from aiusage.loadtest import wire
from aiusage.loadtest.stats import _FLOOR_US, _LOG_GROWTH, LatencyHistogram, SeqTracker

_log = math.log

KEEPALIVE_S: Final = 15.0
"""Client Ping when nothing was sent for this long (JS default, docs/spec/hub-protocol.md §3.6)."""

HTTP_TIMEOUT_S: Final = 30.0
LP_POLL_TIMEOUT_S: Final = 100.0
"""JS long-polling request timeout (docs/spec/transports.md §2.4); the server answers within 90
s."""

MAX_ERRORS_KEPT: Final = 20


@dataclass(slots=True)
class ClientConfig:
    """What a worker needs to open its connections (sent by the coordinator as JSON)."""

    host: str
    port: int
    path: str = "/hubs/analytics"
    kind: str = "signalr"  # signalr | socketio | raw
    transports: list[str] = field(default_factory=lambda: ["ws"])  # per connection, cycled
    protocol: str = "json"  # json | messagepack
    orgs: list[str] = field(default_factory=list)  # organization of connection i: orgs[i % len]
    tokens: dict[str, str] = field(default_factory=dict)  # org -> dashboard token
    run_id: str = "r"
    first_index: int = 0
    count: int = 0
    sources: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    concurrency: int = 200
    connect_attempts: int = 3
    reconnect: bool = True
    reconnect_window_s: float = 120.0
    keepalive_s: float = KEEPALIVE_S
    # WebSockets only (docs/spec/transports.md §2.6): no id, the server creates it
    skip_negotiation: bool = False
    progress_interval_s: float = 1.0
    max_seconds: float = 3600.0

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ClientConfig:
        """Build from the coordinator's JSON (unknown keys are refused by the dataclass)."""
        return cls(**obj)


class Runtime:
    """Counters and connections of one worker; read by the progress reporter."""

    def __init__(self, cfg: ClientConfig) -> None:
        self.cfg = cfg
        self.loop = asyncio.get_event_loop()
        self.prefix = wire.marker_prefix(cfg.run_id)
        self.conns: list[Conn] = []
        self.open = 0
        self.ready_total = 0
        self.connect_failed = 0
        self.disconnects = 0
        self.reconnects = 0
        self.reconnect_failed = 0
        self.last_reconnect_at = 0.0
        self.deliveries = 0
        self.tracked = 0
        self.duplicates = 0
        self.server_pings = 0
        self.closes_received = 0
        self.hist = LatencyHistogram()  # since the last progress line
        self.total = LatencyHistogram()
        self.errors: list[str] = []
        self.stopping = False
        self.sem = asyncio.Semaphore(max(1, cfg.concurrency))
        self.background: set[asyncio.Task[Any]] = set()

    def error(self, text: str) -> None:
        """Keep the first few error texts for the report (never tokens: none are printed)."""
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(text[:300])

    def spawn(self, coro: Any) -> None:
        """Run a background task and keep a reference until it ends."""
        task = self.loop.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def take_interval(self) -> LatencyHistogram:
        """The latencies since the previous call (also merged into :attr:`total`)."""
        hist, self.hist = self.hist, LatencyHistogram()
        self.total.merge(hist)
        return hist


def query_string(params: dict[str, str]) -> str:
    """``a=1&b=2`` for a request target."""
    return urllib.parse.urlencode(params)


async def http_call(
    host: str,
    port: int,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    source: str | None = None,
    limit_s: float = HTTP_TIMEOUT_S,
) -> tuple[int, bytes]:
    """One request on a fresh connection (``Connection: close``): (status, body).

    The server closes first, so TIME_WAIT lands on the server side and the client's
    ephemeral ports are not used up by a connect storm.
    """
    local = (source, 0) if source else None
    async with asyncio.timeout(limit_s):  # not wait_for: no task per call (read_response)
        reader, writer = await asyncio.open_connection(host, port, local_addr=local)
    try:
        writer.write(wire.http_request(method, host, port, target, headers, body, keep_alive=False))
        resp = wire.HttpResponseReader()
        try:
            async with asyncio.timeout(limit_s):
                chunks = await read_response(reader, resp, "connection closed mid-response")
        except TimeoutError:
            raise TimeoutError(f"{method} {target.split('?')[0]} timed out") from None
        assert resp.head is not None
        return resp.head.status, b"".join(chunks)
    finally:
        writer.close()


async def read_response(
    reader: asyncio.StreamReader, resp: wire.HttpResponseReader, closed_text: str
) -> list[bytes]:
    """Read until ``resp`` holds one complete response; its body pieces.

    The caller bounds the wait with one deadline (``asyncio.timeout``), not a ``wait_for``
    per read: ``wait_for`` wraps every read in a task, and at 10,000 polls/s the clients'
    CPU competes with the server's on the same cores.

    Raises:
        ConnectionError: ``closed_text``: the server closed before the response ended.
    """
    chunks: list[bytes] = []
    while not resp.complete:
        data = await reader.read(65536)
        if not data:
            resp.eof()
            if not resp.complete:
                raise ConnectionError(closed_text)
            break
        chunks += resp.feed(data)
    return chunks


CONN_SLOTS: Final = (
    "binary",
    "index",
    "last_sent",
    "org",
    "ready",
    "rt",
    "tracker",
    "transport_name",
)
"""The attributes :class:`Conn` sets: every concrete connection class declares them in its
``__slots__`` (Conn itself has none, so it can be mixed with picows' compiled listener)."""


class Conn:
    """State shared by every connection kind: organization, sequence tracker, record handling."""

    if not TYPE_CHECKING:
        # Empty at run time (the concrete classes declare CONN_SLOTS); hidden from mypy, which
        # would check the assignments below against this class's own, empty, __slots__.
        __slots__ = ()

    def __init__(
        self, rt: Runtime, index: int, org: str, transport_name: str, binary: bool
    ) -> None:
        self.rt = rt
        self.index = index
        self.org = org
        self.transport_name = transport_name
        self.binary = binary
        self.tracker = SeqTracker()
        self.ready = False
        self.last_sent = 0.0

    def on_message(self, data: bytes, now: float, start: int = 0, end: int = -1) -> None:
        """A pushed application message (``data[start:end]``, one record): count it, check
        its markers. The hot path of the client: inlined histogram and in-order fast path."""
        rt = self.rt
        rt.deliveries += 1
        if end < 0:
            end = len(data)
        prefix = rt.prefix
        found = wire.parse_marker(data, prefix, start, end)
        while found is not None:
            seq, t_us, start = found
            rt.tracked += 1
            lat = now * 1e6 - t_us
            hist = rt.hist
            b = 0 if lat <= _FLOOR_US else 1 + int(_log(lat / _FLOOR_US) / _LOG_GROWTH)
            buckets = hist.buckets
            buckets[b] = buckets.get(b, 0) + 1
            hist.count += 1
            hist.sum_us += lat
            if lat > hist.max_us:
                hist.max_us = lat
            tr = self.tracker
            if seq == tr.low and tr.ahead is None:
                tr.low = seq + 1
                tr.distinct += 1
            elif not tr.see(seq):
                rt.duplicates += 1
            found = wire.parse_marker(data, prefix, start, end) if start < end else None

    def on_record(self, record: bytes, now: float) -> bool:
        """Handle one SignalR record; False when the server closed the connection."""
        t = wire.record_type(record, self.binary)
        if t == wire.INVOCATION:
            self.on_message(record, now)
        elif t == wire.PING:
            self.rt.server_pings += 1
        elif t == wire.CLOSE:
            self.rt.closes_received += 1
            error, _allow = wire.close_error(record, self.binary)
            if error:
                self.rt.error(f"server Close: {error}")
            return False
        return True

    def headers(self) -> dict[str, str]:
        token = self.rt.cfg.tokens.get(self.org)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def mark_ready(self) -> None:
        rt = self.rt
        if self.ready:
            return
        self.ready = True
        rt.open += 1

    def mark_lost(self, reason: str) -> None:
        """The connection ended; unexpected unless the worker is stopping."""
        rt = self.rt
        if not self.ready:
            return
        self.ready = False
        rt.open -= 1
        if rt.stopping:
            return
        rt.disconnects += 1
        if len(rt.errors) < MAX_ERRORS_KEPT:
            rt.error(f"{self.transport_name} connection lost: {reason}")
        if rt.cfg.reconnect:
            rt.spawn(reconnect(self))

    async def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def send_ping(self) -> None:
        """Keep-alive (WS only; SSE/LP override or skip)."""

    def close(self) -> None:
        """Stop without counting a disconnect."""


async def negotiate(conn: Conn, source: str) -> str:
    """POST ``{path}/negotiate?negotiateVersion=1`` (docs/spec/negotiate.md §1.1, §1.3): the
    ``connectionToken`` to put in ``id=``."""
    cfg = conn.rt.cfg
    q = query_string({"negotiateVersion": "1", "organizationId": conn.org})
    status, body = await http_call(
        cfg.host, cfg.port, "POST", f"{cfg.path}/negotiate?{q}", conn.headers(), source=source
    )
    if status != 200:
        raise ConnectionError(f"negotiate: HTTP {status} {body[:100]!r}")
    obj = json.loads(body)
    token = obj.get("connectionToken") or obj.get("connectionId")
    if not isinstance(token, str):
        raise ConnectionError("negotiate: no connection token")
    return token


# -- Server-Sent Events and long polling ------------------------------------------------------


class HttpStreamConn(Conn):
    """SSE (``GET`` text/event-stream + ``POST`` sends) or long polling (``GET`` loop +
    ``POST``)."""

    __slots__ = (
        *CONN_SLOTS,
        "_closing",
        "conn_token",
        "handshake_buf",
        "hs_done",
        "task",
        "writer",
    )

    def __init__(self, rt: Runtime, index: int, org: str, binary: bool, name: str) -> None:
        Conn.__init__(self, rt, index, org, name, binary)
        self.task: asyncio.Task[None] | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.conn_token = ""
        self.handshake_buf = bytearray()
        self.hs_done = False
        self._closing = False

    @property
    def source(self) -> str:
        cfg = self.rt.cfg
        return cfg.sources[self.index % len(cfg.sources)]

    def target(self, extra: dict[str, str] | None = None) -> str:
        params = {"id": self.conn_token, "organizationId": self.org}
        if extra:
            params.update(extra)
        return f"{self.rt.cfg.path}?{query_string(params)}"

    async def post(self, body: bytes) -> None:
        """docs/spec/transports.md §2.5: POST whole records; 200 expected."""
        cfg = self.rt.cfg
        headers = self.headers()
        headers["Content-Type"] = (
            "application/octet-stream" if self.binary else "text/plain;charset=UTF-8"
        )
        status, resp = await http_call(
            cfg.host, cfg.port, "POST", self.target(), headers, body, source=self.source
        )
        self.last_sent = time.monotonic()
        if status != 200:
            raise ConnectionError(f"POST: HTTP {status} {resp[:80]!r}")

    def feed_records(self, data: bytes, now: float) -> bool:
        """Bytes from the server (an SSE event or a poll body); False when closed."""
        if not self.hs_done:
            self.handshake_buf += data
            if wire.parse_handshake_response(self.handshake_buf) is None:
                return True
            self.hs_done = True
            data = bytes(self.handshake_buf)
            self.handshake_buf.clear()
            self.mark_ready()
        if not data:
            return True
        for record in wire.split_records(bytearray(data), self.binary):
            if not self.on_record(record, now):
                return False
        return True

    async def start(self) -> None:
        self.hs_done = False
        self.handshake_buf.clear()
        self._closing = False
        self.conn_token = await negotiate(self, self.source)
        opened: asyncio.Future[None] = self.rt.loop.create_future()
        self.task = self.rt.loop.create_task(self.run(opened))
        try:
            await asyncio.wait_for(asyncio.shield(opened), HTTP_TIMEOUT_S)
        except BaseException:
            self.task.cancel()
            raise

    async def run(self, opened: asyncio.Future[None]) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _ended(self, opened: asyncio.Future[None], exc: BaseException | None) -> None:
        if not opened.done():
            opened.set_exception(exc or ConnectionError("closed during connect"))
        elif not self._closing:
            self.mark_lost(repr(exc) if exc else "closed by server")
        else:
            self.mark_lost("closing")

    def close(self) -> None:
        self._closing = True
        if self.writer is not None:
            self.writer.close()
        if self.task is not None:
            self.task.cancel()


class SseConn(HttpStreamConn):
    """Server-Sent Events: one streaming GET; handshake and pings by POST
    (docs/spec/transports.md §2.3)."""

    __slots__ = ()

    def __init__(self, rt: Runtime, index: int, org: str) -> None:
        # SSE carries Text only: JSON even in a messagepack run (docs/spec/transports.md §2.3,
        # docs/spec/messagepack.md §4).
        super().__init__(rt, index, org, False, "sse")

    async def run(self, opened: asyncio.Future[None]) -> None:
        cfg = self.rt.cfg
        exc: BaseException | None = None
        try:
            reader, self.writer = await asyncio.open_connection(
                cfg.host, cfg.port, local_addr=(self.source, 0)
            )
            headers = self.headers()
            headers["Accept"] = "text/event-stream"
            self.writer.write(wire.http_request("GET", cfg.host, cfg.port, self.target(), headers))
            resp = wire.HttpResponseReader()
            sse = wire.SseReader()
            posted = False
            deadline = time.monotonic() + cfg.max_seconds
            while time.monotonic() < deadline:
                data = await reader.read(65536)
                if not data:
                    break
                pieces = resp.feed(data)
                assert resp.head is not None or not pieces
                if resp.head is not None and resp.head.status != 200:
                    raise ConnectionError(f"SSE GET: HTTP {resp.head.status}")
                if resp.head is not None and not posted:
                    # The stream is open (the server flushed ':\r\n'): send the handshake.
                    posted = True
                    await self.post(wire.handshake_request("json"))
                now = time.time()
                for piece in pieces:
                    for event in sse.feed(piece):
                        if not self.feed_records(event, now):
                            return
                        if self.hs_done and not opened.done():
                            opened.set_result(None)
                if resp.complete:
                    break
        except asyncio.CancelledError:
            exc = ConnectionError("cancelled")
        except Exception as e:
            exc = e
        finally:
            if self.writer is not None:
                self.writer.close()
            self._ended(opened, exc)

    def send_ping(self) -> None:
        self.rt.spawn(self._ping())

    async def _ping(self) -> None:
        try:
            await self.post(wire.JSON_PING)
        except Exception as exc:
            self.rt.error(f"sse ping: {exc!r}")


class LpConn(HttpStreamConn):
    """Long polling: GET loop on one keep-alive socket, POST for the handshake
    (docs/spec/transports.md §2.4)."""

    __slots__ = ()

    def __init__(self, rt: Runtime, index: int, org: str, binary: bool) -> None:
        super().__init__(rt, index, org, binary, "lp")

    async def run(self, opened: asyncio.Future[None]) -> None:
        cfg = self.rt.cfg
        exc: BaseException | None = None
        try:
            reader, self.writer = await asyncio.open_connection(
                cfg.host, cfg.port, local_addr=(self.source, 0)
            )
            resp = wire.HttpResponseReader()
            first = True
            deadline = time.monotonic() + cfg.max_seconds
            while time.monotonic() < deadline:
                target = self.target({"_": str(int(time.time() * 1000))})
                self.writer.write(
                    wire.http_request("GET", cfg.host, cfg.port, target, self.headers())
                )
                resp.next_response()
                async with asyncio.timeout(LP_POLL_TIMEOUT_S):
                    chunks = await read_response(reader, resp, "poll connection closed")
                assert resp.head is not None
                status = resp.head.status
                if status == 204:
                    return  # the connection is over (docs/spec/transports.md §2.4)
                if status != 200:
                    raise ConnectionError(f"poll: HTTP {status}")
                if first:
                    # First poll returns at once and starts the connection: now handshake.
                    first = False
                    await self.post(
                        wire.handshake_request("messagepack" if self.binary else "json")
                    )
                    continue
                if not self.feed_records(b"".join(chunks), time.time()):
                    return
                if self.hs_done and not opened.done():
                    opened.set_result(None)
        except asyncio.CancelledError:
            exc = ConnectionError("cancelled")
        except Exception as e:
            exc = e
        finally:
            if self.writer is not None:
                self.writer.close()
            self._ended(opened, exc)


# -- opening and re-opening ------------------------------------------------------------------


def make_conn(rt: Runtime, index: int) -> Conn:
    """The connection object for global connection ``index`` (transport cycled)."""
    cfg = rt.cfg
    org = cfg.orgs[index % len(cfg.orgs)]
    binary = cfg.protocol == "messagepack"
    # Imported here: picows is part of the optional loadtest extra, and the CLI imports this
    # module (through the coordinator) before it can tell a user the extra is missing.
    from aiusage.loadtest.ws import WsConn

    if cfg.kind != "signalr":
        return WsConn(rt, index, org, False, cfg.kind)
    transport = cfg.transports[index % len(cfg.transports)]
    if transport == "sse":
        return SseConn(rt, index, org)
    if transport == "lp":
        return LpConn(rt, index, org, binary)
    return WsConn(rt, index, org, binary, "signalr")


async def open_conn(conn: Conn, attempts: int) -> bool:
    """Connect with up to ``attempts`` tries (jittered back-off); False when all failed."""
    rt = conn.rt
    for attempt in range(max(1, attempts)):
        if rt.stopping:
            return False
        async with rt.sem:
            try:
                await conn.start()
                return True
            except Exception as exc:
                if attempt == attempts - 1:
                    rt.error(f"{conn.transport_name} connect: {exc!r}")
        await asyncio.sleep(min(2.0, 0.1 * (2**attempt)) + random.random() * 0.2)
    return False


async def reconnect(conn: Conn) -> None:
    """Automatic reconnect after an unexpected loss, bounded by ``reconnect_window_s``."""
    rt = conn.rt
    deadline = time.monotonic() + rt.cfg.reconnect_window_s
    delay = 0.0
    while not rt.stopping and time.monotonic() < deadline:
        await asyncio.sleep(delay + random.random() * 0.1)
        async with rt.sem:
            try:
                await conn.start()
            except Exception:
                delay = min(2.0, delay * 2 or 0.25)
                continue
        rt.reconnects += 1
        rt.last_reconnect_at = time.time()
        return
    rt.reconnect_failed += 1
