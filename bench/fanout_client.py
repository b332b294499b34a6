"""Cheap fan-out load client: raw asyncio Protocol on uvloop, one process of many.

Opens ``--count`` WebSocket connections (spread over ``--src`` source addresses), optionally
speaks the SignalR handshake (``--proto signalr-json|signalr-msgpack``; ``raw`` = plain WS),
then counts bytes. Every ``--probe-every``-th connection parses frames and records latency =
receipt time - the ``t`` stamp the server put in the payload. Controlled by files in --ctl:
``snap`` -> write client-<id>-flood.json; ``stop`` -> write client-<id>-final.json and exit.
Exits by itself after --max-seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import sys
import time

import uvloop

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

now = time.time


def masked(opcode: int, payload: bytes) -> bytes:
    key = os.urandom(4)
    body = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes((0x80 | opcode, 0x80 | len(payload))) + key + body


class Stats:
    def __init__(self) -> None:
        self.conns: list[Client] = []
        self.failed = 0
        self.closed = 0
        self.frame_size = 0
        self.lat: dict[str, list[float]] = {"F": [], "P": []}
        self.first_rx = 0.0
        self.last_rx = 0.0


ST = Stats()


class Client(asyncio.Protocol):
    __slots__ = (
        "buf",
        "counting",
        "hs",
        "nbytes",
        "probe",
        "proto",
        "ready",
        "req",
        "signalr_hs",
        "transport",
    )

    def __init__(
        self, host: str, port: int, path: str, probe: bool, proto: str, ready: asyncio.Future[bool]
    ) -> None:
        self.transport: asyncio.Transport | None = None
        self.hs = True
        self.signalr_hs = proto != "raw"
        self.buf = bytearray()
        self.nbytes = 0
        self.probe = probe
        self.proto = proto
        self.ready = ready
        self.counting = False
        key = base64.b64encode(os.urandom(16)).decode()
        self.req = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.req)

    def connection_lost(self, exc: Exception | None) -> None:
        ST.closed += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed during handshake"))

    def _ready(self) -> None:
        if not self.ready.done():
            self.ready.set_result(True)
        if not self.probe:
            self.counting = True
            rest = bytes(self.buf)
            self.buf.clear()
            if rest:
                self.data_received(rest)

    def data_received(self, data: bytes) -> None:
        if self.counting:  # hot path: count bytes only
            self.nbytes += len(data)
            ST.last_rx = now()
            return
        if self.hs:
            self.buf += data
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                return
            head = bytes(self.buf[:i])
            del self.buf[: i + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                if not self.ready.done():
                    self.ready.set_exception(ConnectionError(head[:80]))
                assert self.transport is not None
                self.transport.close()
                return
            self.hs = False
            assert self.transport is not None
            if self.signalr_hs:
                name = "messagepack" if self.proto == "signalr-msgpack" else "json"
                self.transport.write(
                    masked(0x1, b'{"protocol":"%s","version":1}\x1e' % name.encode())
                )
            else:
                self._ready()
                return
            data = b""
        self.buf += data
        self._parse(now())

    def _parse(self, t: float) -> None:
        buf = self.buf
        while True:
            n = len(buf)
            if n < 2:
                return
            ln = buf[1] & 0x7F
            if ln < 126:
                h = 2
            elif ln == 126:
                if n < 4:
                    return
                h, ln = 4, (buf[2] << 8) | buf[3]
            else:
                if n < 10:
                    return
                h, ln = 10, int.from_bytes(buf[2:10], "big")
            if n < h + ln:
                return
            op = buf[0] & 0x0F
            payload = bytes(buf[h : h + ln])
            del buf[: h + ln]
            assert self.transport is not None
            if op == 0x9:
                self.transport.write(masked(0xA, payload))
                continue
            if op == 0x8:
                self.transport.close()
                return
            if self.signalr_hs:
                # Handshake reply: '{}' + 0x1E (a Binary frame for messagepack).
                if not payload.startswith(b"{}\x1e"):
                    if not self.ready.done():
                        self.ready.set_exception(ConnectionError(payload[:80]))
                    return
                self.signalr_hs = False
                rest = payload[3:]
                if rest:
                    self._count(rest, h, t)
                self._ready()
                if self.counting:
                    return
                continue
            self._count(payload, h, t)

    def _count(self, payload: bytes, header: int, t: float) -> None:
        size = header + len(payload)
        self.nbytes += size
        if ST.frame_size == 0:
            ST.frame_size = size
        if ST.first_rx == 0.0:
            ST.first_rx = t
        ST.last_rx = t
        j = payload.find(b'"t":"')
        if j >= 0:
            ts = float(payload[j + 5 : j + 22])
            k = payload[payload.find(b'"k":"') + 5 :][:1].decode()
        else:  # msgpack: fixstr key 't' then a 17-byte fixstr
            j = payload.find(b"\xa1t\xb1")
            if j < 0:
                return
            ts = float(payload[j + 3 : j + 20])
            kk = payload.find(b"\xa1k\xa1")
            k = payload[kk + 3 : kk + 4].decode()
        ST.lat.setdefault(k, []).append(t - ts)


async def connect_one(
    loop: asyncio.AbstractEventLoop, a: argparse.Namespace, idx: int, sem: asyncio.Semaphore
) -> None:
    src = a.src[idx % len(a.src)] if a.src else None
    probe = idx % a.probe_every == 0
    err: BaseException | None = None
    for attempt in range(5):
        async with sem:
            ready: asyncio.Future[bool] = loop.create_future()
            tr = None
            try:
                kw = {"local_addr": (src, 0)} if src else {}
                tr, pr = await asyncio.wait_for(
                    loop.create_connection(
                        lambda: Client(a.host, a.port, a.path, probe, a.proto, ready),
                        a.host,
                        a.port,
                        **kw,
                    ),
                    30,
                )
                await asyncio.wait_for(ready, 30)
                ST.conns.append(pr)  # type: ignore[arg-type]
                return
            except Exception as e:  # retried, then counted as a failure
                err = e
                if tr is not None:
                    tr.close()
        await asyncio.sleep(0.2 * (attempt + 1) + random.random() * 0.2)
    ST.failed += 1
    if ST.failed < 5:
        print(f"connect failed: {err!r}", file=sys.stderr)


def totals() -> int:
    fs = ST.frame_size or 1
    return sum(c.nbytes // fs for c in ST.conns)


async def quiesce(quiet: float = 0.5, limit: float = 30.0) -> None:
    end = time.monotonic() + limit
    last = -1
    while time.monotonic() < end:
        cur = sum(c.nbytes for c in ST.conns)
        if cur == last:
            return
        last = cur
        await asyncio.sleep(quiet)


def dump(ctl: str, name: str, extra: dict[str, object]) -> None:
    lat = {
        k: {
            "n": len(v),
            "p50_ms": (_common.pct(v, 50) or 0) * 1e3,
            "p99_ms": (_common.pct(v, 99) or 0) * 1e3,
            "max_ms": max(v, default=0) * 1e3,
        }
        for k, v in ST.lat.items()
    }
    _common.write_file(
        ctl,
        name,
        {
            "connected": len(ST.conns),
            "failed": ST.failed,
            "closed": ST.closed,
            "messages": totals(),
            "frame_size": ST.frame_size,
            "first_rx": ST.first_rx,
            "last_rx": ST.last_rx,
            "lat": lat,
            **extra,
        },
    )


async def main(a: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(200)
    t0 = time.monotonic()
    await asyncio.gather(*(connect_one(loop, a, i, sem) for i in range(a.count)))
    _common.write_file(
        a.ctl,
        f"client-{a.id}-ready.json",
        {"connected": len(ST.conns), "failed": ST.failed, "connect_s": time.monotonic() - t0},
    )
    await _common.wait_file(a.ctl, "snap", limit=a.max_seconds)
    await quiesce()
    dump(a.ctl, f"client-{a.id}-flood.json", {})
    ST.lat = {"F": [], "P": []}
    await _common.wait_file(a.ctl, "stop", limit=a.max_seconds)
    await quiesce()
    dump(a.ctl, f"client-{a.id}-final.json", {})


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--proto", choices=["raw", "signalr-json", "signalr-msgpack"], default="raw")
    ap.add_argument("--probe-every", type=int, default=20)
    ap.add_argument("--src", type=lambda s: s.split(","), default=None)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--id", default="0")
    ap.add_argument("--max-seconds", type=float, default=600)
    args = ap.parse_args()
    try:
        uvloop.run(asyncio.wait_for(main(args), args.max_seconds))
    except TimeoutError:
        sys.exit("client: max-seconds reached")
