"""Raw-socket HTTP client helpers for slow-body tests: trickle a body, read with a deadline."""

from __future__ import annotations

import asyncio
import time


async def read_response(reader: asyncio.StreamReader, timeout: float) -> tuple[bytes, bool]:
    """(bytes received, whether the server closed the socket) within ``timeout``."""
    out = bytearray()
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), left)
        except TimeoutError:
            break
        if not chunk:
            return bytes(out), True
        out += chunk
    return bytes(out), False


async def trickle(
    port: int, head: bytes, body: bytes, interval: float, wait: float
) -> tuple[bytes, bool, float]:
    """Send ``head`` then ``body`` one byte per ``interval`` while reading the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()

    async def feed() -> None:
        for byte in body:
            await asyncio.sleep(interval)
            if writer.is_closing():
                return
            writer.write(bytes([byte]))

    try:
        writer.write(head)
        feeder = asyncio.create_task(feed())
        data, closed = await read_response(reader, wait)
        elapsed = time.monotonic() - started
        feeder.cancel()
        return data, closed, elapsed
    finally:
        writer.close()
