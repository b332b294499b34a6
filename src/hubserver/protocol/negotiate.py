"""Sans-I/O negotiate codec: version selection and the JSON response (docs/spec/negotiate.md §1).

No I/O, no randomness, no clock: the connection layer chooses ids and transports and this
module turns them into the exact bytes the clients expect.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hubserver.errors import ProtocolError

NEGOTIATE_VERSION_PARAM = "negotiateVersion"
STATEFUL_RECONNECT_PARAM = "useStatefulReconnect"
MAX_NEGOTIATE_VERSION = 1
"""Highest negotiate version this server speaks; higher requests are answered with it."""


class NegotiateVersionError(ProtocolError):
    """The requested negotiate version is unusable; the text goes to the client
    (docs/spec/negotiate.md §1.5)."""


def query_get(query: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive query lookup, as ASP.NET's query collection
    (docs/spec/negotiate.md §1.1)."""
    value = query.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in query.items():
        if key.lower() == lowered:
            return val
    return None


def select_version(requested: str | None, minimum: int = 0) -> int:
    """Pick the negotiate version to answer with (docs/spec/negotiate.md §1.2).

    Args:
        requested: Raw ``negotiateVersion`` query value, or None when absent.
        minimum: Lowest version the server accepts.

    Raises:
        NegotiateVersionError: with the exact .NET texts.
    """
    if requested is None:
        if minimum > 0:
            # .NET reports an absent parameter as version 0 against a higher minimum.
            raise NegotiateVersionError(
                "The client requested version '0', but the server does not support this version."
            )
        return 0
    try:
        version = int(requested.strip())
    except ValueError:
        raise NegotiateVersionError(
            "The client requested a non-integer protocol version."
        ) from None
    if version < minimum:
        raise NegotiateVersionError(
            f"The client requested version '{version}', but the server does not support "
            "this version."
        )
    return min(version, MAX_NEGOTIATE_VERSION)


def wants_stateful_reconnect(query: Mapping[str, str]) -> bool:
    """True when the query carries ``useStatefulReconnect=true`` (name and value any case)."""
    value = query_get(query, STATEFUL_RECONNECT_PARAM)
    return value is not None and value.strip().lower() == "true"


@dataclass(frozen=True, slots=True)
class AvailableTransport:
    """One entry of ``availableTransports``."""

    transport: str
    transfer_formats: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NegotiateResponse:
    """A successful negotiate answer (docs/spec/negotiate.md §1.3)."""

    version: int
    connection_id: str
    connection_token: str
    available_transports: Sequence[AvailableTransport]
    use_stateful_reconnect: bool = False

    def to_bytes(self) -> bytes:
        """Compact JSON in .NET's property order (order does not matter to clients)."""
        doc: dict[str, object] = {}
        if self.use_stateful_reconnect:
            # Written only when true: JS fails if the server offers it unrequested
            # (docs/spec/stateful-reconnect.md §5.1).
            doc["useStatefulReconnect"] = True
        doc["negotiateVersion"] = self.version
        doc["connectionId"] = self.connection_id
        if self.version > 0:
            # Version 0 clients (pysignalr, signalrcore) use connectionId as the token.
            doc["connectionToken"] = self.connection_token
        doc["availableTransports"] = [
            {"transport": t.transport, "transferFormats": list(t.transfer_formats)}
            for t in self.available_transports
        ]
        return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def write_error(message: str) -> bytes:
    """Negotiate-level error body, sent with HTTP 200 (docs/spec/negotiate.md §1.5)."""
    return json.dumps({"error": message}, separators=(",", ":")).encode("utf-8")
