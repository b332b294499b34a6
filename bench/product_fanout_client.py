"""Load processes of bench/product_fanout.py: many receiving connections, or the broadcasting Admin.

Receivers (``--role receivers``) reuse bench/fanout_client.py's byte-counting WebSocket client,
with one path per connection (each aiusage dashboard carries its own user's JWT in
``access_token``, docs/spec/auth.md §9.1) and a Socket.IO variant (Engine.IO v4 handshake, then
the ``40`` namespace connect) for python-socketio. Counting starts from a per-connection byte
baseline taken at ``go``, so handshakes and keep-alive pings before the flood are not counted;
the size of one broadcast frame is the most common frame size seen by the probe connections.

The broadcaster (``--role admin``) is one SignalR JSON connection of an Admin that, on ``go``,
invokes ``BroadcastDashboardUpdate(org, metrics)`` back to back (at most ``--window``
invocations outstanding, the server runs one at a time per connection) for ``--duration``
seconds or ``--max-rounds`` rounds, and writes ``flood.json`` in bench/_common.py's format.

Control files in ``--ctl`` as for bench/fanout_client.py: ``go``, ``snap``; every process
exits by itself after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import os
import sys
import time
from typing import Any

import uvloop

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common
import fanout_client as fc

RS = b"\x1e"
ORG = "bench"
"""The organization of every dashboard and of the Admin (bench/product_fanout.py)."""
SEQ_BASE = 1_000_000
"""First ``seq`` of a flood: 7 digits (JSON) and a uint32 (MessagePack) for every round, so
every broadcast frame has the same size and bytes / frame size counts deliveries."""
PAYLOAD_LEN = _common.PAYLOAD_LEN


def dashboard_update(org: str, seq: int) -> dict[str, Any]:
    """A DashboardUpdate payload of exactly PAYLOAD_LEN bytes of compact JSON.

    Metric fields of docs/metrics.md plus the diagnostic ``seq``/``t0``/``tag`` the hub's
    schema admits (``t0`` in integer microseconds: a fixed width in both protocols)."""
    obj: dict[str, Any] = {
        "organizationId": org,
        "activeSessions": 1234,
        "sessionsToday": 5678,
        "activeUsersToday": 910,
        "aiUsageSecondsToday": 123456,
        "adoptionRate": 0.5,
        "seq": SEQ_BASE + seq,
        "t0": int(time.time() * 1e6),
        "tag": "",
    }
    base = len(json.dumps(obj, separators=(",", ":")))
    obj["tag"] = "x" * max(0, PAYLOAD_LEN - base)
    return obj


def dashboard_invocation_json(seq: int, org: str = ORG) -> bytes:
    """The SignalR JSON record a dashboard receives for round ``seq``: what hubserver writes
    for ``DashboardUpdate(dashboard_update(org, seq))``, byte for byte (the raw server sends
    it so that every stack writes the same bytes per delivery)."""
    body = {"type": 1, "target": "DashboardUpdate", "arguments": [dashboard_update(org, seq)]}
    return json.dumps(body, separators=(",", ":")).encode() + RS


class Receiver(fc.Client):
    """fanout_client's counting client; probes record every frame's size."""

    __slots__ = ("baseline",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.baseline = 0

    def _count(self, payload: bytes, header: int, t: float) -> None:
        self.nbytes += header + len(payload)
        SIZES[header + len(payload)] += 1


class SioReceiver(Receiver):
    """Socket.IO over a plain WebSocket: Engine.IO ``0{...}`` open, client ``40``, server
    ``40{sid}`` (the connect handler has joined the room), then count."""

    __slots__ = ("joined",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.joined = False

    def _ready(self) -> None:
        if not self.joined:  # called once the HTTP upgrade succeeded
            assert self.transport is not None
            self.transport.write(fc.masked(0x1, b"40"))
            self._parse(fc.now())
            return
        super()._ready()

    def _count(self, payload: bytes, header: int, t: float) -> None:
        if self.joined:
            super()._count(payload, header, t)
        elif payload.startswith(b"40"):
            self.joined = True
            super()._ready()


SIZES: collections.Counter[int] = collections.Counter()


async def connect_one(
    loop: asyncio.AbstractEventLoop,
    a: argparse.Namespace,
    idx: int,
    path: str,
    sem: asyncio.Semaphore,
    conns: list[Receiver],
) -> None:
    cls = SioReceiver if a.proto == "socketio" else Receiver
    proto = "raw" if a.proto == "socketio" else a.proto
    src = a.src[idx % len(a.src)]
    for attempt in range(5):
        async with sem:
            ready: asyncio.Future[bool] = loop.create_future()
            tr = None
            try:
                tr, pr = await asyncio.wait_for(
                    loop.create_connection(
                        lambda: cls(a.host, a.port, path, idx % a.probe_every == 0, proto, ready),
                        a.host,
                        a.port,
                        local_addr=(src, 0),
                    ),
                    30,
                )
                await asyncio.wait_for(ready, 30)
                conns.append(pr)
                return
            except Exception as exc:  # retried, then counted as a failure
                if tr is not None:
                    tr.close()
                if attempt == 4:
                    fc.ST.failed += 1
                    if fc.ST.failed < 5:
                        print(f"connect failed: {exc!r}", file=sys.stderr)
        await asyncio.sleep(0.2 * (attempt + 1))


async def quiesce(conns: list[Receiver], quiet: float = 0.5, limit: float = 60.0) -> None:
    end = time.monotonic() + limit
    last = -1
    while time.monotonic() < end:
        cur = sum(c.nbytes for c in conns)
        if cur == last:
            return
        last = cur
        await asyncio.sleep(quiet)


async def receivers(a: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    with open(a.paths) as f:
        paths = json.load(f)[a.first : a.first + a.count]
    sem = asyncio.Semaphore(a.concurrency)
    conns: list[Receiver] = []
    t0 = time.monotonic()
    await asyncio.gather(*(connect_one(loop, a, i, p, sem, conns) for i, p in enumerate(paths)))
    _common.write_file(
        a.ctl,
        f"client-{a.id}-ready.json",
        {"connected": len(conns), "failed": fc.ST.failed, "connect_s": time.monotonic() - t0},
    )
    await _common.wait_file(a.ctl, "go", poll=0.005, limit=a.max_seconds)
    SIZES.clear()
    for c in conns:
        c.baseline = c.nbytes
    await _common.wait_file(a.ctl, "snap", limit=a.max_seconds)
    await quiesce(conns)
    frame = SIZES.most_common(1)[0][0] if SIZES else 0
    received = sum(c.nbytes - c.baseline for c in conns)
    _common.write_file(
        a.ctl,
        f"client-{a.id}-flood.json",
        {
            "connected": len(conns),
            "closed": fc.ST.closed,
            "frame_size": frame,
            "sizes": dict(SIZES.most_common(4)),
            "messages": received // frame if frame else 0,
            "remainder_bytes": received % frame if frame else received,
            "last_rx": fc.ST.last_rx,
        },
    )


# -- the broadcasting Admin -------------------------------------------------------------------


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame of any length (fanout_client.masked takes < 126 bytes)."""
    key = os.urandom(4)
    n = len(payload)
    head = bytes((0x80 | opcode,))
    if n < 126:
        head += bytes((0x80 | n,))
    elif n < 65536:
        head += bytes((0x80 | 126,)) + n.to_bytes(2, "big")
    else:
        head += bytes((0x80 | 127,)) + n.to_bytes(8, "big")
    mask = int.from_bytes(key * ((n + 3) // 4), "big") >> (8 * (-n % 4)) if n else 0
    body = (int.from_bytes(payload, "big") ^ mask).to_bytes(n, "big") if n else b""
    return head + key + body


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    return b0 & 0x0F, await reader.readexactly(n)


async def admin(a: argparse.Namespace) -> None:
    reader, writer = await asyncio.open_connection(a.host, a.port, local_addr=(a.src[0], 0))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {a.admin_path} HTTP/1.1\r\nHost: {a.host}:{a.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head[:200].decode("latin-1"))
    writer.write(client_frame(0x1, b'{"protocol":"json","version":1}' + RS))
    pending: dict[str, asyncio.Future[None]] = {}
    handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def read_loop() -> None:
        while True:
            op, payload = await read_frame(reader)
            if op == 0x8:
                raise ConnectionError("server closed the admin connection")
            for part in payload.split(RS):
                if not part:
                    continue
                if not handshake.done():
                    msg = json.loads(part)
                    handshake.set_result(None) if not msg.get("error") else (
                        handshake.set_exception(ConnectionError(msg["error"]))
                    )
                    continue
                if b'"type":3' not in part and b'"type":7' not in part:
                    continue  # our own DashboardUpdate, pings
                msg = json.loads(part)
                if msg["type"] == 7:
                    raise ConnectionError(f"admin closed: {msg.get('error')}")
                fut = pending.pop(msg.get("invocationId", ""), None)
                if fut is not None and not fut.done():
                    if msg.get("error"):
                        fut.set_exception(RuntimeError(msg["error"]))
                    else:
                        fut.set_result(None)

    reading = asyncio.create_task(read_loop())
    await asyncio.wait_for(handshake, 30)
    _common.write_file(a.ctl, "admin-ready.json", {})
    params = await _common.wait_file(a.ctl, "go", poll=0.005, limit=a.max_seconds)
    duration = float(params.get("duration", 5.0))
    loop = asyncio.get_running_loop()
    window: collections.deque[asyncio.Future[None]] = collections.deque()
    min_gap = 1.0 / a.max_rate
    rounds = 0
    t0_wall = time.time()
    t0 = time.monotonic()
    deadline = t0 + duration
    next_at = t0
    while time.monotonic() < deadline and rounds < a.max_rounds:
        if reading.done():
            reading.result()
        while len(window) >= a.window:
            await window.popleft()
        now = time.monotonic()
        if now < next_at:  # the hub's inbound budget (docs/deploy.md "Limits")
            await asyncio.sleep(next_at - now)
        next_at = max(now, next_at) + min_gap
        inv = str(rounds)
        fut: asyncio.Future[None] = loop.create_future()
        pending[inv] = fut
        window.append(fut)
        body = json.dumps(
            {
                "type": 1,
                "invocationId": inv,
                "target": "BroadcastDashboardUpdate",
                "arguments": [a.org, dashboard_update(a.org, rounds)],
            },
            separators=(",", ":"),
        ).encode()
        writer.write(client_frame(0x1, body + RS))
        rounds += 1
    for fut in window:
        await asyncio.wait_for(fut, 60)
    t1 = time.monotonic()
    _common.write_file(
        a.ctl,
        "flood.json",
        {
            "stack": "aiusage",
            "rounds": rounds,
            "t0_wall": t0_wall,
            "flood_s": t1 - t0,
            "max_rate": a.max_rate,
        },
    )
    await _common.wait_file(a.ctl, "snap", limit=a.max_seconds)
    reading.cancel()
    writer.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--role", choices=["receivers", "admin"], required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--id", default="0")
    ap.add_argument("--src", type=lambda s: s.split(","), default=["127.0.0.1"])
    ap.add_argument("--max-seconds", type=float, default=600)
    # receivers
    ap.add_argument("--paths", help="JSON list of request paths, one per connection")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument(
        "--proto", choices=["raw", "signalr-json", "signalr-msgpack", "socketio"], default="raw"
    )
    ap.add_argument("--probe-every", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=200)
    # admin
    ap.add_argument("--admin-path", default="")
    ap.add_argument("--org", default="")
    ap.add_argument("--window", type=int, default=2)
    ap.add_argument("--max-rounds", type=int, default=100_000)
    ap.add_argument(
        "--max-rate", type=float, default=90.0, help="invocations/s (hub budget: 100/s)"
    )
    a = ap.parse_args()
    job = receivers(a) if a.role == "receivers" else admin(a)
    try:
        uvloop.run(asyncio.wait_for(job, a.max_seconds))
    except TimeoutError:
        sys.exit(f"{a.role}: max-seconds reached")


if __name__ == "__main__":
    main()
