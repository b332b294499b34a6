"""python-socketio under the fan-out flood of bench/_common.py: the scenarios' server
(bench/scenarios/servers/sio_server.py, run as it is: ASGI app under uvicorn with uvloop,
httptools and websockets, each connection in the room of its ``org`` query parameter),
driven by control files like bench/servers/raw_picows.py, every round
``sio.emit("m", obj, room=org)``.

Backpressure as the raw server's: the next round waits while any connection has more than
``QUEUE_LIMIT`` packets queued for its writer task (python-socketio's per-socket queue is where
its unsent messages wait; the raw server waits on 64 KiB of socket buffer, about as many
200-byte frames).

usage: sio_fanout.py --port P --ctl DIR [--org ORG]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scenarios", "servers"))

import _common  # noqa: E402
import sio_server  # noqa: E402
import uvloop  # noqa: E402

QUEUE_LIMIT = 300


def queued() -> list[int]:
    return [s.queue.qsize() for s in list(sio_server.sio.eio.sockets.values())]


async def main(port: int, ctl: str, org: str) -> None:
    serving = asyncio.create_task(sio_server.main(port, reuse_port=False))

    async def send_round(kind: str, seq: int) -> None:
        await sio_server.sio.emit("m", _common.make_obj(kind, seq), room=org)

    async def backpressure() -> None:
        while any(q > QUEUE_LIMIT for q in queued()):
            await asyncio.sleep(0.001)

    async def drain() -> None:
        while any(queued()):
            await asyncio.sleep(0.005)

    def count() -> int:
        return len(sio_server.sio.eio.sockets)

    await _common.drive(ctl, "python-socketio", count, send_round, backpressure, drain)
    await serving


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--org", default="bench")
    a = ap.parse_args()
    uvloop.run(main(a.port, a.ctl, a.org))
