"""Our hub under the fan-out benchmark: hubserver's own HTTP/WebSocket server, a Hub with no
methods at /hub, and broadcasts through ``HubContext.clients.all.send`` (the public API a
platform uses). Keep-alive pings are pushed out of the measurement window, as on every stack
the benchmark compares.

With ``--payload dashboard`` every round is the product benchmark's DashboardUpdate
(bench/product_fanout.py): the same target and arguments, so the same frame bytes, as
``aiusage serve`` relays for an Admin's ``BroadcastDashboardUpdate``.

usage: hub_bench.py --port P --ctl DIR [--payload fanout|dashboard]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _common
import product_fanout_client
import uvloop

from hubserver import Hub, HubOptions, HubServer, map_hub


class BenchHub(Hub):
    """No methods: clients only receive."""


async def main(port: int, ctl: str, payload: str = "fanout") -> None:
    mapped = map_hub("/hub", BenchHub, hub_options=HubOptions(keep_alive_interval=3600.0))
    server = HubServer([mapped.endpoint], None, "127.0.0.1", port, access_log=False)
    await server.start()
    clients = mapped.hub_context.clients

    async def send_round(kind: str, seq: int) -> None:
        if payload == "dashboard":
            obj = product_fanout_client.dashboard_update(product_fanout_client.ORG, seq)
            await clients.all.send("DashboardUpdate", obj)
        else:
            await clients.all.send("m", _common.make_obj(kind, seq))

    sockets: list[object] = []

    def buffered() -> list[int]:
        # The flood's backpressure must cost what the raw server's costs (one C call per
        # socket), or the harness, not the hub, sets the pace: read each connection's socket
        # once, then poll the sockets directly. Production code has no such global wait (the
        # slow-consumer check happens per write, docs/adr/0002).
        if len(sockets) != mapped.handler.connection_count():
            sockets[:] = [
                c._ctx._transport._channel  # type: ignore[attr-defined]
                for c in mapped.handler.local_connections()
            ]
        return [s.get_write_buffer_size() for s in sockets]  # type: ignore[attr-defined]

    async def backpressure() -> None:
        while any(b > 65536 for b in buffered()):
            await asyncio.sleep(0.001)

    async def drain() -> None:
        while any(buffered()):
            await asyncio.sleep(0.005)

    count = mapped.handler.connection_count
    profile = os.environ.get("BENCH_PROFILE")
    if profile:  # cProfile the flood + paced phases (bench/fanout.py --profile DIR)
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
        await _common.drive(ctl, "hub", count, send_round, backpressure, drain)
        prof.disable()
        prof.dump_stats(profile)
    else:
        await _common.drive(ctl, "hub", count, send_round, backpressure, drain)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--payload", choices=["fanout", "dashboard"], default="fanout")
    a = ap.parse_args()
    uvloop.run(main(a.port, a.ctl, a.payload))
