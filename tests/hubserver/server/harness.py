"""Test doubles for the server/connection tests: an echo application and server helpers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from hubserver.connections.context import ConnectionContext, HttpRequestInfo, Principal
from hubserver.connections.endpoint import ConnectionEndpoint
from hubserver.errors import AuthenticationFailed
from hubserver.options import ConnectionOptions
from hubserver.server import HubServer


class EchoApp:
    """ConnectionApplication that echoes every payload and obeys a few commands.

    ``close`` -> ctx.close(); ``abort`` -> ctx.abort(); payloads starting with NUL are echoed
    as binary messages. Every callback is recorded in ``events``.
    """

    instances: list[EchoApp] = []

    def __init__(self, ctx: ConnectionContext) -> None:
        self.ctx = ctx
        self.events: list[tuple[str, Any]] = []
        self.received = bytearray()
        self.lost = asyncio.Event()
        EchoApp.instances.append(self)

    def data_received(self, data: bytes) -> None:
        self.events.append(("data", data))
        self.received += data
        if data == b"close":
            self.ctx.close()
        elif data == b"abort":
            self.ctx.abort()
        else:
            self.ctx.send(data, data.startswith(b"\x00"))

    def transport_paused(self) -> None:
        self.events.append(("paused", None))

    def transport_resumed(self) -> None:
        self.events.append(("resumed", None))

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append(("lost", exc))
        self.lost.set()

    def server_shutdown(self) -> None:
        self.events.append(("shutdown", None))
        self.ctx.send(b"bye", False)
        self.ctx.close()


def make_endpoint(
    path: str = "/hub",
    options: ConnectionOptions | None = None,
    authenticate: Any = None,
    **kw: Any,
) -> ConnectionEndpoint:
    """An endpoint whose connections run :class:`EchoApp`."""
    return ConnectionEndpoint(path, EchoApp, options or ConnectionOptions(), authenticate, **kw)


async def token_auth(request: HttpRequestInfo) -> Principal | None:
    """Auth hook: ``Bearer <user>`` or ``access_token=<user>``; ``bad`` -> 401, ``evil`` -> 403."""
    header = request.headers.get("authorization", "")
    token = (
        header[7:] if header.lower().startswith("bearer ") else request.query.get("access_token")
    )
    if not token or token == "bad":
        raise AuthenticationFailed(401, "Unauthorized")
    if token == "evil":
        raise AuthenticationFailed(403, "Forbidden")
    return Principal(user_id=token)


@contextlib.asynccontextmanager
async def running_server(
    endpoints: Sequence[ConnectionEndpoint], asgi_app: Any = None, **kw: Any
) -> AsyncIterator[HubServer]:
    """A started HubServer on 127.0.0.1:0, stopped afterwards."""
    server = HubServer(endpoints, asgi_app, "127.0.0.1", 0, **kw)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=0.2)


async def raw_exchange(
    port: int, data: bytes, *, read_until_close: bool = False, timeout: float = 2.0
) -> bytes:
    """Send raw bytes; return what the server answers (until close or a quiet 0.2 s)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        out = bytearray()
        while True:
            try:
                chunk = await asyncio.wait_for(
                    reader.read(65536), timeout if read_until_close else 0.2
                )
            except TimeoutError:
                break
            if not chunk:
                break
            out += chunk
        return bytes(out)
    finally:
        writer.close()


def split_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Parse one Content-Length-framed response."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return status, headers, body
