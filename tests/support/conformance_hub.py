"""The hub that the official-client conformance runs talk to (test_official_clients.py).

Method names are snake_case and reached by clients under their PascalCase names (``Echo``,
``SendToCaller``...). Client-side handler names (``Welcome``, ``Message``, ``GroupMessage``,
``UploadComplete``) are PascalCase because pysignalr and signalrcore match them
case-sensitively.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

from hubserver.errors import HubError
from hubserver.hub.hub import Hub

COMPLEX_GUID = uuid.UUID("00010203-0405-0607-0706-050403020100")
"""The Guid of ASP.NET Core's ``TestHub.SendComplexObject`` (docs/spec/checklist.md §8.1)."""


def complex_object() -> dict[str, Any]:
    """ASP.NET Core's ``TestHub.SendComplexObject`` value (docs/spec/checklist.md §8.1)."""
    return {
        "ByteArray": b"\x01\x02\x03",
        "DateTime": dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        "Guid": COMPLEX_GUID,
        "IntArray": [1, 2, 3],
        "String": "hello world",
    }


class ConformanceHub(Hub):
    """Every invocation pattern of docs/spec/hub-protocol.md §3.4 plus the error cases of §3.5."""

    async def on_connected(self) -> None:
        # A push right after the handshake: it must follow the handshake response
        # (docs/spec/handshake.md §3.2).
        await self.clients.caller.send("Welcome", self.context.connection_id)

    async def echo(self, message: str) -> str:
        return message

    async def add(self, a: int, b: int) -> int:
        return a + b

    async def void(self) -> None:
        return None

    async def send_to_caller(self, message: str) -> None:
        await self.clients.caller.send("Message", message)

    async def broadcast(self, message: str) -> None:
        await self.clients.all.send("Message", message)

    async def join_group(self, group: str) -> None:
        await self.groups.add(self.context.connection_id, group)

    async def leave_group(self, group: str) -> None:
        await self.groups.remove(self.context.connection_id, group)

    async def send_to_group(self, group: str, message: str) -> None:
        await self.clients.group(group).send("GroupMessage", group, message)

    async def throw(self, message: str) -> None:
        raise RuntimeError(message)

    async def throw_hub_error(self, message: str) -> None:
        raise HubError(message)

    async def get_complex(self) -> dict[str, Any]:
        return complex_object()

    async def increment(self) -> int:
        # Per-connection side effect: a replayed duplicate invocation would be counted twice.
        count = int(self.context.items.get("count", 0)) + 1
        self.context.items["count"] = count
        return count

    async def get_connection_id(self) -> str:
        return self.context.connection_id

    async def get_transport(self) -> str:
        return self.context.transport.wire_name

    async def get_protocol(self) -> str:
        return self.context.protocol

    async def ask_caller(self, question: str) -> Any:
        # Client results (docs/spec/hub-protocol.md §3.4): the caller's "Ask" handler answers.
        return await self.clients.caller.invoke("Ask", question, timeout=5)

    async def counter(self, count: int) -> AsyncIterator[int]:
        for i in range(count):
            yield i

    async def delayed_counter(self, count: int, delay_ms: int) -> AsyncIterator[int]:
        # For clients that subscribe to a stream only after sending its invocation
        # (signalrcore): items sent at once could arrive before the subscription.
        for i in range(count):
            await asyncio.sleep(delay_ms / 1000)
            yield i

    async def stream_throw(self) -> AsyncIterator[int]:
        yield 0
        raise RuntimeError("stream failed")

    async def upload_sum(self, numbers: AsyncIterator[int]) -> int:
        total = 0
        async for n in numbers:
            total += n
        # pysignalr sends uploads as non-blocking invocations: push the result as well.
        await self.clients.caller.send("UploadComplete", total)
        return total
