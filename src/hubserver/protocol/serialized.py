"""Serialize a broadcast once per protocol (cf. SerializedHubMessage.cs).

A fan-out to N connections that use P protocols costs P serializations, not N. Transports may
also cache their framed form (WebSocket frame, SSE event) through :meth:`SerializedMessage.cached`,
so a broadcast to 10,000 WebSocket clients frames the bytes once per protocol as well.
A message received from a backplane is seeded with the bytes other servers produced, so it is
never re-serialized here.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping

from hubserver.protocol.base import HubProtocol
from hubserver.protocol.messages import HubMessage


class SerializedMessage:
    """A hub message plus its lazily computed serializations, keyed by protocol name.

    Args:
        message: The message; may be ``None`` when seeded from backplane bytes only.
        serialized: Already-framed bytes per protocol name (e.g. from Redis).
    """

    __slots__ = ("_cache", "_extra", "message")

    def __init__(
        self,
        message: HubMessage | None,
        serialized: Mapping[str, bytes] | None = None,
    ) -> None:
        self.message = message
        self._cache: dict[str, bytes] = dict(serialized) if serialized else {}
        self._extra: dict[Hashable, bytes] | None = None

    def get(self, protocol: HubProtocol) -> bytes:
        """Framed bytes of the message in ``protocol`` (computed on first use).

        Raises:
            KeyError: seeded from a backplane without this protocol and no message to write.
        """
        data = self._cache.get(protocol.name)
        if data is None:
            if self.message is None:
                # Same failure as .NET: "This message was received from another server that
                # did not have the requested protocol available."
                raise KeyError(protocol.name)
            data = protocol.write(self.message)
            self._cache[protocol.name] = data
        return data

    def serialize_all(self, protocols: Mapping[str, HubProtocol]) -> dict[str, bytes]:
        """Bytes for every protocol in ``protocols`` (what a backplane publishes)."""
        return {name: self.get(p) for name, p in protocols.items()}

    def cached_or_none(self, key: Hashable) -> bytes | None:
        """A transport framing stored with :meth:`store`, or None (hot path: no closure)."""
        extra = self._extra
        return extra.get(key) if extra is not None else None

    def store(self, key: Hashable, data: bytes) -> bytes:
        """Remember a transport framing of this message; returns ``data``."""
        extra = self._extra
        if extra is None:
            extra = self._extra = {}
        extra[key] = data
        return data

    def cached(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        """Per-message cache for transport framings (e.g. ``("ws", "json")``)."""
        extra = self._extra
        if extra is None:
            extra = self._extra = {}
        data = extra.get(key)
        if data is None:
            data = extra[key] = build()
        return data
