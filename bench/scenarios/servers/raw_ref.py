"""Raw reference server for the scenarios: the picows-raw stack of bench/servers/raw_picows.py
(one WebSocket frame built once per message and written as-is to every transport, no SignalR,
no framework), with connections grouped by the ``org`` query parameter, plus a minimal HTTP
listener on ``--events-port`` taking ``POST /api/agent/events`` (see _events.py).

usage: raw_ref.py --port P --events-port Q [--reuse-port]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "servers"))

import _events  # noqa: E402
import uvloop  # noqa: E402
from picows import WSListener, WSMsgType, ws_create_server  # noqa: E402
from raw_picows import ws_frame  # noqa: E402

ROOMS: dict[str, dict[object, None]] = {}


def listener_for(request: object) -> WSListener:
    path = getattr(request, "path", b"/")
    text = path.decode() if isinstance(path, bytes) else str(path)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(text).query)
    org = query.get("org", [""])[0]

    class Listener(WSListener):  # type: ignore[misc]
        def on_ws_connected(self, transport) -> None:  # type: ignore[no-untyped-def]
            ROOMS.setdefault(org, {})[transport] = None

        def on_ws_disconnected(self, transport) -> None:  # type: ignore[no-untyped-def]
            ROOMS.get(org, {}).pop(transport, None)

        def on_ws_frame(self, transport, frame) -> None:  # type: ignore[no-untyped-def]
            if frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()

    return Listener()


def push(org: str, body: bytes) -> int:
    n = 0
    conns = list(ROOMS.get(org, {}))
    for payload in _events.payloads(org, body):
        msg = json.dumps(
            {"target": "SessionStarted", "arguments": [payload]}, separators=(",", ":")
        )
        frame = ws_frame(msg.encode())  # built once, written to every transport
        for t in conns:
            t.underlying_transport.write(frame)  # type: ignore[attr-defined]
        n += 1
    return n


async def handle_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        for _ in range(100_000):  # keep-alive, bounded
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:])
                if k
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            org = _events.org_of(headers.get("authorization", ""))
            if org is None:
                resp, status = b'{"detail":"Unauthorized"}', b"401 Unauthorized"
            else:
                n = push(org, body)
                resp, status = json.dumps({"accepted": n, "duplicates": 0}).encode(), b"200 OK"
            close = headers.get("connection", "").lower() == "close"
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(resp)).encode()
                + (b"\r\nConnection: close" if close else b"")
                + b"\r\n\r\n"
                + resp
            )
            if close:
                break
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main(port: int, events_port: int, reuse_port: bool) -> None:
    ws = await ws_create_server(
        listener_for, "127.0.0.1", port, backlog=4096, reuse_port=reuse_port or None
    )
    http = await asyncio.start_server(
        handle_http, "127.0.0.1", events_port, backlog=1024, reuse_port=reuse_port or None
    )
    async with ws, http:
        await asyncio.sleep(24 * 3600)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--events-port", type=int, required=True)
    ap.add_argument("--reuse-port", action="store_true")
    a = ap.parse_args()
    uvloop.run(main(a.port, a.events_port, a.reuse_port))
