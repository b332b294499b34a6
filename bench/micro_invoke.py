"""Micro-benchmark of one hub method invocation: what hub filters and an activator cost.

    .venv/bin/python bench/micro_invoke.py [--calls 20000] [--repeats 5] [--variants ...]

One hub connection on the real WebSocket transport, writing into a null socket, receives
batches of ``Invocation`` records for ``Add(1, 2)``; each is parsed, dispatched, run and
answered with a ``Completion``. Prints CPU microseconds per invocation (best of ``--repeats``) for
the hub without filters, with a custom activator, and with 1 and 3 pass-through filters
(docs/spec/hub-protocol.md §3.9). ``--variants none`` runs on trees without filters too, for an
A/B against an older checkout (``PYTHONPATH=<old>/src``).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from micro_broadcast import NullChannel  # bench/ is sys.path[0] when run as a script

from hubserver import Hub, HubOptions, map_hub
from hubserver.connections.context import HttpRequestInfo
from hubserver.transports.websocket import WebSocketTransport

RS = b"\x1e"
# No inbound budget: this measures the invocation path, not the flood guard.
OPTIONS = HubOptions(
    keep_alive_interval=3600.0,
    max_receive_messages_per_second=None,
    max_receive_bytes_per_second=None,
)


class CompletionCounter(NullChannel):
    """A null socket that counts the Completions written (the transport may coalesce several
    records into one write)."""

    __slots__ = ()

    def write(self, data: bytes) -> None:
        self.n += data.count(b'"type":3')


class BenchHub(Hub):
    async def add(self, a: int, b: int) -> int:
        return a + b


class PassThrough:
    """An invocation filter that only calls the rest of the chain."""

    async def invoke(self, context: Any, next: Any) -> Any:
        return await next(context)


class PlainActivator:
    """Creates the hub like the default, through the activator seam."""

    def create(self, hub_cls: type[BenchHub]) -> BenchHub:
        return hub_cls()

    def release(self, hub: BenchHub) -> None:
        pass


def _mapping(variant: str) -> dict[str, Any]:
    if variant == "none":
        return {}
    if variant == "activator":
        return {"activator": PlainActivator()}
    if variant == "1 filter":
        return {"filters": [PassThrough()]}
    if variant == "3 filters":
        return {"filters": [PassThrough(), PassThrough(), PassThrough()]}
    raise ValueError(variant)


async def run(variant: str, calls: int, batch: int) -> float:
    """Microseconds per invocation for one variant."""
    mapped = map_hub("/hub", BenchHub, hub_options=OPTIONS, **_mapping(variant))
    endpoint = mapped.endpoint
    request = HttpRequestInfo("GET", "/hub", {}, {})
    ctx = endpoint.manager.create(request, None, 0)
    transport = WebSocketTransport(ctx, max_message_size=1 << 24)
    channel = CompletionCounter()
    transport.attach(channel)  # type: ignore[arg-type]
    ctx.attach_transport(transport, request)
    ctx.set_application(endpoint.application_factory(ctx))
    ctx.transport_data(b'{"protocol":"json","version":1}' + RS)
    while mapped.handler.local_connections() == []:
        await asyncio.sleep(0)
    frames = b"".join(
        b'{"type":1,"invocationId":"%d","target":"Add","arguments":[1,2]}' % i + RS
        for i in range(batch)
    )
    deadline = time.monotonic() + 60.0
    done = 0
    start = channel.n
    # CPU time of this process: the loop never blocks, and other processes on a shared
    # machine then do not inflate the figure.
    t0 = time.process_time()
    while done < calls and time.monotonic() < deadline:
        ctx.transport_data(frames)
        target = start + done + batch
        while channel.n < target and time.monotonic() < deadline:
            await asyncio.sleep(0)
        done += batch
    elapsed = time.process_time() - t0
    await mapped.handler.shutdown(0.1)
    return elapsed / done * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--variants", nargs="+", default=["none", "activator", "1 filter", "3 filters"])
    a = ap.parse_args()
    print("| variant | CPU µs/invocation (best) | median |")
    print("|---|---|---|")
    for variant in a.variants:
        runs = sorted(asyncio.run(run(variant, a.calls, a.batch)) for _ in range(a.repeats))
        print(f"| {variant} | {runs[0]:.2f} | {runs[len(runs) // 2]:.2f} |")


if __name__ == "__main__":
    main()
