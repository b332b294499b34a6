"""Raw reference server ("picows-raw"): picows on uvloop, one WebSocket frame built
once per round and written as-is to every transport. No SignalR, no framework: the ceiling a
Python fan-out can reach on this machine, run in the same session as our hub for a fair ratio.

With ``--payload dashboard`` every round's frame carries the bytes ``aiusage serve`` writes
for an Admin's ``BroadcastDashboardUpdate`` in SignalR JSON (bench/product_fanout.py), so
every stack of that benchmark writes the same bytes per delivery.

usage: raw_picows.py --port P --ctl DIR [--payload fanout|dashboard]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _common
import product_fanout_client
import uvloop
from picows import WSListener, WSMsgType, ws_create_server

CONNS: dict[object, None] = {}
PAYLOAD = "fanout"


def ws_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload


class Listener(WSListener):  # type: ignore[misc]
    def on_ws_connected(self, transport) -> None:  # type: ignore[no-untyped-def]
        CONNS[transport] = None

    def on_ws_disconnected(self, transport) -> None:  # type: ignore[no-untyped-def]
        CONNS.pop(transport, None)

    def on_ws_frame(self, transport, frame) -> None:  # type: ignore[no-untyped-def]
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()


async def send_round(kind: str, seq: int) -> None:
    if PAYLOAD == "dashboard":
        frame = ws_frame(product_fanout_client.dashboard_invocation_json(seq))
    else:
        frame = ws_frame(json.dumps(_common.make_obj(kind, seq), separators=(",", ":")).encode())
    for t in list(CONNS):
        t.underlying_transport.write(frame)  # type: ignore[attr-defined]


async def backpressure() -> None:
    while any(t.underlying_transport.get_write_buffer_size() > 65536 for t in CONNS):  # type: ignore[attr-defined]
        await asyncio.sleep(0.001)


async def drain() -> None:
    while any(t.underlying_transport.get_write_buffer_size() for t in CONNS):  # type: ignore[attr-defined]
        await asyncio.sleep(0.005)


async def main(port: int, ctl: str) -> None:
    server = await ws_create_server(lambda _req: Listener(), "127.0.0.1", port, backlog=4096)
    async with server:
        await _common.drive(ctl, "raw-picows", lambda: len(CONNS), send_round, backpressure, drain)
        await asyncio.sleep(3600)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--payload", choices=["fanout", "dashboard"], default="fanout")
    a = ap.parse_args()
    PAYLOAD = a.payload
    uvloop.run(main(a.port, a.ctl))
