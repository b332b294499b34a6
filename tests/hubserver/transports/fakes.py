"""Fakes we own for transport-shell tests: socket channel, owner, HTTP exchange."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


class FakeChannel:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.buffered = 0
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    @property
    def data(self) -> bytes:
        return b"".join(self.writes)


class FakeOwner:
    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.closed: list[tuple[object, bool, BaseException | None]] = []
        self.activity: list[bool] = []

    def transport_data(self, data: bytes) -> None:
        self.data.append(data)

    def transport_closed(
        self, transport: object, graceful: bool, exc: BaseException | None
    ) -> None:
        self.closed.append((transport, graceful, exc))

    def poll_active(self, active: bool) -> None:
        self.activity.append(active)


class FakeExchange:
    def __init__(self) -> None:
        self.status: int | None = None
        self.body = b""
        self.content_type: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.ended = False
        self.aborted = False
        self.closed = False
        self.disconnect_handler: Callable[[], None] | None = None
        self.buffered = 0

    @property
    def responded(self) -> bool:
        return self.status is not None

    def add_header(self, name: str, value: str) -> None:
        self.headers.append((name, value))

    def respond(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = "text/plain",
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        assert self.status is None, "responded twice"
        self.status, self.body, self.content_type = status, body, content_type
        self.headers += list(headers)

    def start_stream(self, status: int, headers: Sequence[tuple[str, str]] = ()) -> None:
        self.status = status
        self.headers += list(headers)

    def write_chunk(self, data: bytes) -> None:
        self.chunks.append(data)

    def end_stream(self) -> None:
        self.ended = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def set_disconnect_handler(self, handler: Callable[[], None] | None) -> None:
        self.disconnect_handler = handler

    def disconnect(self) -> None:
        self.closed = True
        if self.disconnect_handler is not None:
            self.disconnect_handler()

    def upgrade(self, headers: Sequence[tuple[str, str]], handler: Any) -> FakeChannel:
        self.status = 101
        self.headers += list(headers)
        self.channel = FakeChannel()
        return self.channel
