"""Micro-benchmark of the hub's per-delivery cost: the real lifetime manager, hub connections,
connection contexts and WebSocket transports, writing into a null socket (no syscalls).

    .venv/bin/python bench/micro_broadcast.py [--n 10000] [--rounds 50]

Prints nanoseconds of Python work per delivery for JSON and MessagePack connections, next to a
reference loop that only writes a prebuilt frame to each null socket (what a raw server does).
The difference is what the SignalR layers cost on top of the syscall a real socket adds.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from hubserver import Hub, map_hub
from hubserver.connections.context import HttpRequestInfo
from hubserver.transports.websocket import WebSocketTransport


class NullChannel:
    """A socket that accepts everything at once."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def write(self, data: bytes) -> None:
        self.n += 1

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class BenchHub(Hub):
    pass


async def run(n: int, rounds: int, protocol: str) -> tuple[float, float]:
    mapped = map_hub("/hub", BenchHub)
    endpoint = mapped.endpoint
    request = HttpRequestInfo("GET", "/hub", {}, {})
    channels = []
    for _ in range(n):
        ctx = endpoint.manager.create(request, None, 0)
        transport = WebSocketTransport(ctx, max_message_size=1 << 20)
        channel = NullChannel()
        transport.attach(channel)  # type: ignore[arg-type]
        ctx.attach_transport(transport, request)
        app = endpoint.application_factory(ctx)
        ctx.set_application(app)
        ctx.transport_data(b'{"protocol":"%s","version":1}\x1e' % protocol.encode())
        channels.append(channel)
    await asyncio.sleep(0.05)
    assert mapped.handler.connection_count() == n
    payload = {"t": "1795700000.123456", "k": "F", "s": "000000001", "p": "x" * 140}
    clients = mapped.hub_context.clients
    await clients.all.send("m", payload)
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    for _ in range(rounds):
        await clients.all.send("m", payload)
        await asyncio.sleep(0)  # the coalescer flushes
    hub_ns = (time.perf_counter() - t0) / (rounds * n) * 1e9
    frame = b"\x81\x7e\x00\xc8" + b"x" * 200
    t0 = time.perf_counter()
    for _ in range(rounds):
        for ch in channels:
            ch.write(frame)
        await asyncio.sleep(0)
    raw_ns = (time.perf_counter() - t0) / (rounds * n) * 1e9
    await mapped.handler.shutdown(0.1)
    return hub_ns, raw_ns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=50)
    a = ap.parse_args()
    print("| protocol | hub ns/delivery | raw-loop ns/delivery | SignalR overhead ns |")
    print("|---|---|---|---|")
    for protocol in ("json", "messagepack"):
        hub_ns, raw_ns = asyncio.run(run(a.n, a.rounds, protocol))
        print(f"| {protocol} | {hub_ns:.0f} | {raw_ns:.0f} | {hub_ns - raw_ns:.0f} |")


if __name__ == "__main__":
    main()
