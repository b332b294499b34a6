"""python-socketio doing the scenarios through its own protocol: python-socketio ASGI app under
uvicorn (uvloop, httptools, websockets), each connection in the room of its ``org`` query
parameter, ``POST /api/agent/events`` (see _events.py) emits ``SessionStarted`` to the room
with ``sio.emit(..., room=org)`` (encoded once per emit by the library).

usage: sio_server.py --port P [--reuse-port]   (several processes may share P with --reuse-port:
WebSocket-only clients need no sticky sessions)
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import urllib.parse
import warnings
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _events
import socketio
import uvicorn
import uvloop

# Same ASGI WebSocket implementation (uvicorn websockets) as the earlier python-socketio
# measurements on this machine, so the figures stay comparable.
warnings.filterwarnings("ignore", category=DeprecationWarning, module="uvicorn")

# Keep-alive as long as the earlier socket.io runs (600 s) so pings do not distort the
# idle-memory and fan-out figures; the clients still answer every ping they get.
sio = socketio.AsyncServer(
    async_mode="asgi",
    ping_interval=600,
    ping_timeout=600,
    cors_allowed_origins=[],
    transports=["websocket"],
)


@sio.event
async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    org = query.get("org", [""])[0]
    await sio.enter_room(sid, org)


async def events_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http" or scope["path"] != "/api/agent/events":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    org = _events.org_of(headers.get("authorization", ""))
    if org is None:
        status, resp = 401, b'{"detail":"Unauthorized"}'
    else:
        n = 0
        for payload in _events.payloads(org, body):
            await sio.emit("SessionStarted", payload, room=org)
            n += 1
        status, resp = 200, b'{"accepted":%d,"duplicates":0}' % n
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": resp})


app = socketio.ASGIApp(sio, other_asgi_app=events_app)


async def main(port: int, reuse_port: bool) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(
        app,
        loop="none",
        http="httptools",
        ws="websockets",
        log_level="warning",
        access_log=False,
        backlog=4096,
        ws_ping_interval=None,
        ws_ping_timeout=None,
    )
    server = uvicorn.Server(config)
    await server.serve(sockets=[sock])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--reuse-port", action="store_true")
    a = ap.parse_args()
    uvloop.run(main(a.port, a.reuse_port))
