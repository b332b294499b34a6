"""The codec interface every hub protocol implements (cf. IHubProtocol.cs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, Protocol

from hubserver.protocol.messages import HubMessage


class TransferFormat(Enum):
    """How a protocol's bytes travel: WebSocket Text frames or Binary frames."""

    TEXT = "Text"
    BINARY = "Binary"


ParameterTypes = Callable[[str], Sequence[Any] | None]
"""Binder: hub method name -> its parameter types (or None when unknown). Codecs may use it
to convert arguments (e.g. msgpack timestamps); they must not fail on unknown targets."""


class HubProtocol(Protocol):
    """A SignalR hub protocol codec. Pure: no I/O, no clock.

    ``parse`` consumes as many *complete* framed messages as ``buffer`` holds and returns
    them with the number of bytes consumed; the caller keeps the rest for the next call.
    """

    @property
    def name(self) -> str:
        """Protocol name used in the handshake (``"json"``, ``"messagepack"``)."""
        ...

    @property
    def version(self) -> int:
        """Highest protocol version supported."""
        ...

    @property
    def transfer_format(self) -> TransferFormat:
        """Text or Binary."""
        ...

    def parse(self, buffer: bytes | bytearray | memoryview) -> tuple[list[HubMessage], int]:
        """Parse complete messages from ``buffer``.

        Returns:
            (messages, consumed_bytes).

        Raises:
            ProtocolError: a complete record is malformed (exact texts as ASP.NET Core).
        """
        ...

    def write(self, message: HubMessage) -> bytes:
        """Serialize one message *with* its framing (JSON + 0x1E, or varint prefix + msgpack)."""
        ...
