"""A small HTTP/1.1 proxy on 127.0.0.1 that behaves like a restrictive corporate proxy.

It forwards every request to one upstream server (our hub server) unchanged, except:

* ``block_websockets``: a request carrying ``Upgrade: websocket`` is answered with
  ``websocket_status`` (default 403) and the client connection is closed -- or, with
  ``websocket_status=None``, the connection is just dropped without any answer;
* ``block_sse``: a ``GET`` whose ``Accept`` contains ``text/event-stream`` is answered with
  ``sse_status`` (default 502) -- what a buffering proxy that refuses streaming looks like.

That is the situation of docs/spec/transports.md §2.6 step 3: the official client records the
failure, negotiates again and tries the next transport of ``availableTransports``.

Every request head on a client connection is inspected (HTTP/1.1 keep-alive connections carry
several requests one after another; clients don't pipeline), so a connection reused after a
negotiate POST cannot smuggle an upgrade past the proxy. Request bodies are forwarded by
``Content-Length``; after an upgrade, or a chunked request body, the rest of the connection is
copied raw. Counters record what was blocked so tests can assert the proxy really acted.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

_MAX_HEAD = 64 * 1024
_REASONS = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass
class ProxyStats:
    """What the proxy saw (read by tests)."""

    requests: int = 0
    websocket_blocked: int = 0
    sse_blocked: int = 0
    forwarded_lines: list[str] = field(default_factory=list)


class BlockingProxy:
    """Forward ``127.0.0.1:<port>`` to ``upstream_host:upstream_port``, blocking some transports.

    Args:
        upstream_port: Port of the real server on ``upstream_host``.
        block_websockets: Refuse WebSocket upgrades.
        block_sse: Refuse Server-Sent Events streams.
        websocket_status: Status for refused upgrades; ``None`` closes the socket unanswered.
        sse_status: Status for refused event streams.
    """

    def __init__(
        self,
        upstream_port: int,
        *,
        upstream_host: str = "127.0.0.1",
        block_websockets: bool = False,
        block_sse: bool = False,
        websocket_status: int | None = 403,
        sse_status: int = 502,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.block_websockets = block_websockets
        self.block_sse = block_sse
        self.websocket_status = websocket_status
        self.sse_status = sse_status
        self.stats = ProxyStats()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._upgraded: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.port = 0

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1 (``self.port``)."""
        self._server = await asyncio.start_server(self._serve_client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every proxied connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    def cut_upgraded(self) -> int:
        """Abort every upgraded (WebSocket) connection on both sides at once, without close
        frames or FIN -- what a network failure looks like to client and server. Returns how
        many connections were cut."""
        cut = list(self._upgraded)
        self._upgraded.clear()
        for client_writer, upstream_writer in cut:
            client_writer.transport.abort()
            upstream_writer.transport.abort()
        return len(cut)

    async def __aenter__(self) -> BlockingProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- per connection ---------------------------------------------------------------------

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream_writer: asyncio.StreamWriter | None = None
        pump: asyncio.Task[None] | None = None
        try:
            up_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
            pump = asyncio.create_task(_copy(up_reader, writer))
            self._tasks.add(pump)
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                if len(head) > _MAX_HEAD:
                    return
                request_line, headers = _parse_head(head)
                self.stats.requests += 1
                method = request_line.split(" ", 1)[0].upper()
                upgrade = headers.get("upgrade", "").lower() == "websocket"
                if upgrade and self.block_websockets:
                    self.stats.websocket_blocked += 1
                    if self.websocket_status is not None:
                        await _answer(writer, self.websocket_status)
                    return
                if (
                    method == "GET"
                    and "text/event-stream" in headers.get("accept", "")
                    and self.block_sse
                ):
                    self.stats.sse_blocked += 1
                    await _answer(writer, self.sse_status)
                    return
                self.stats.forwarded_lines.append(request_line)
                upstream_writer.write(head)
                if upgrade or "chunked" in headers.get("transfer-encoding", "").lower():
                    # Opaque from here on (WebSocket frames / a body we don't parse).
                    pair = (writer, upstream_writer)
                    if upgrade:
                        self._upgraded.add(pair)
                    try:
                        await _copy(reader, upstream_writer)
                    finally:
                        self._upgraded.discard(pair)
                    return
                length = int(headers.get("content-length", "0") or "0")
                if length:
                    upstream_writer.write(await reader.readexactly(length))
                await upstream_writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            return
        except asyncio.CancelledError:
            # stop(): end quietly (asyncio's start_server callback logs a cancelled handler
            # task as an error).
            return
        finally:
            if pump is not None:
                pump.cancel()
                with contextlib.suppress(BaseException):
                    await pump
                self._tasks.discard(pump)
            for w in (writer, upstream_writer):
                if w is not None:
                    w.close()
            self._tasks.discard(task)


def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            # Repeated headers are joined as HTTP allows; enough for the checks above.
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return lines[0], headers


async def _answer(writer: asyncio.StreamWriter, status: int) -> None:
    body = f"Blocked by proxy ({status})".encode()
    writer.write(
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
