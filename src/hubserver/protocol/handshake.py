"""The hub handshake (docs/spec/handshake.md §3.2).

The handshake is always one JSON record terminated by ``0x1E`` in both directions, whatever
hub protocol it selects: the client sends ``{"protocol":"json","version":1}``, the server
answers ``{}`` (success) or ``{"error":"..."}`` (failure, then close). The response never
carries a ``type`` property: the JS client takes one as "Expected a handshake response from
the server." Bytes following the request record in the same transport message belong to the
hub protocol and must be kept (§3.2.5): :func:`parse_handshake_request` reports how many
bytes it consumed.

Texts are those of ASP.NET Core's ``HandshakeProtocol`` and ``HubConnectionContext``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from hubserver.errors import HandshakeError
from hubserver.protocol._limits import SURROGATE_TEXT, find_invalid
from hubserver.protocol.base import HubProtocol, TransferFormat
from hubserver.protocol.framing import RECORD_SEPARATOR_BYTES
from hubserver.protocol.registry import ALL_PROTOCOLS

__all__ = [
    "HANDSHAKE_CANCELED",
    "HANDSHAKE_UNEXPECTED_ERROR",
    "MAX_SUPPORTED_VERSION",
    "HandshakeRequest",
    "HandshakeResponse",
    "handshake_failure_text",
    "parse_handshake_request",
    "parse_handshake_response",
    "select_protocol",
    "write_handshake_request",
    "write_handshake_response",
]

HANDSHAKE_CANCELED = "Handshake was canceled."
"""Error response on handshake timeout or when the request exceeds the size limit."""

HANDSHAKE_UNEXPECTED_ERROR = "An unexpected error occurred during connection handshake."
"""Error response for a malformed request (detail appended when detailed errors are on)."""

MAX_SUPPORTED_VERSION = 2
"""Both protocols accept handshake versions 0..2 (.NET: ``version <= protocol.Version``;
signalrcore sends 0, pysignalr 1, JS 1 or 2 with stateful reconnect)."""

_SUCCESS = b"{}\x1e"
_decode_json = json.JSONDecoder().decode


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    """The client's first record: which hub protocol, which version."""

    protocol: str
    version: int


@dataclass(frozen=True, slots=True)
class HandshakeResponse:
    """The server's first record; ``error`` None means success."""

    error: str | None = None


def _find_record(
    buffer: bytes | bytearray | memoryview, max_message_size: int | None
) -> tuple[bytes, int] | None:
    data = bytes(buffer) if isinstance(buffer, memoryview) else buffer
    end = data.find(RECORD_SEPARATOR_BYTES)
    if end < 0:
        if max_message_size is not None and len(data) > max_message_size:
            # .NET stops waiting once the limit is reached without a whole handshake.
            raise HandshakeError(HANDSHAKE_CANCELED)
        return None
    if max_message_size is not None and end > max_message_size:
        raise HandshakeError(HANDSHAKE_CANCELED)
    return bytes(data[:end]), end + 1


def _decode_object(record: bytes) -> dict[str, Any]:
    try:
        obj = _decode_json(record.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise HandshakeError("Error reading JSON.") from exc
    if type(obj) is not dict:
        token = {list: "Array", str: "String", int: "Number", float: "Number"}.get(
            type(obj), "True" if obj is True else "False" if obj is False else "Null"
        )
        raise HandshakeError(f"Unexpected JSON Token Type '{token}'. Expected a JSON Object.")
    return obj


def parse_handshake_request(
    buffer: bytes | bytearray | memoryview, *, max_message_size: int | None = None
) -> tuple[HandshakeRequest | None, int]:
    """Parse the handshake request at the start of ``buffer``.

    Args:
        buffer: Everything received so far.
        max_message_size: Optional limit (``HubOptions.maximum_receive_message_size``).

    Returns:
        (request, bytes consumed) or ``(None, 0)`` while the record is incomplete. Bytes after
        ``consumed`` are hub messages.

    Raises:
        HandshakeError: malformed request (e.g. ``Missing required property 'protocol'.
            Message content: {...}``) or over the size limit (``Handshake was canceled.``).
    """
    found = _find_record(buffer, max_message_size)
    if found is None:
        return None, 0
    record, consumed = found
    obj = _decode_object(record)

    def content() -> str:
        return record.decode("utf-8", "replace")

    protocol = obj.get("protocol")
    if protocol is not None and type(protocol) is not str:
        raise HandshakeError("Expected 'protocol' to be of type String.")
    if protocol is not None and find_invalid(protocol, strings=True) is not None:
        # The refusal names the protocol, and a lone surrogate cannot be written back.
        raise HandshakeError(f"Error reading JSON. {SURROGATE_TEXT}")
    version = obj.get("version")
    if version is not None and type(version) is not int:
        raise HandshakeError("Expected 'version' to be of type Number.")
    if protocol is None:
        raise HandshakeError(f"Missing required property 'protocol'. Message content: {content()}")
    if version is None:
        raise HandshakeError(f"Missing required property 'version'. Message content: {content()}")
    return HandshakeRequest(protocol, version), consumed


def select_protocol(
    request: HandshakeRequest,
    *,
    transfer_formats: Collection[TransferFormat] | None = None,
    supported_protocols: Collection[str] | None = None,
    protocols: Mapping[str, HubProtocol] = ALL_PROTOCOLS,
) -> HubProtocol:
    """Apply the server-side handshake checks of ``HubConnectionContext.HandshakeAsync``.

    Args:
        request: The parsed request.
        transfer_formats: Formats the transport can carry (SSE: Text only); None = any.
        supported_protocols: ``HubOptions.supported_protocols``; None = all of ``protocols``.
        protocols: Available codecs by name.

    Returns:
        The codec to use for the connection.

    Raises:
        HandshakeError: with the exact text to send in the error response.
    """
    wanted = request.protocol.lower()
    protocol: HubProtocol | None = None
    for name, candidate in protocols.items():
        if name.lower() == wanted:
            protocol = candidate
            break
    if supported_protocols is not None and wanted not in {
        name.lower() for name in supported_protocols
    }:
        protocol = None
    if protocol is None:
        raise HandshakeError(f"The protocol '{request.protocol}' is not supported.")
    if not 0 <= request.version <= min(MAX_SUPPORTED_VERSION, protocol.version):
        raise HandshakeError(
            f"The server does not support version {request.version} "
            f"of the '{protocol.name}' protocol."
        )
    if transfer_formats is not None and protocol.transfer_format not in transfer_formats:
        raise HandshakeError(
            f"Cannot use the '{protocol.name}' protocol on the current transport. The transport "
            f"does not support '{protocol.transfer_format.value}' transfer format."
        )
    return protocol


def handshake_failure_text(error: HandshakeError, *, detailed_errors: bool = False) -> str:
    """The error-response text for a request that could not be parsed.

    .NET answers ``An unexpected error occurred during connection handshake.`` and appends
    ``InvalidDataException: <message>`` only with detailed errors (ErrorMessageHelper).
    ``Handshake was canceled.`` is sent as is.
    """
    message = str(error)
    if message == HANDSHAKE_CANCELED:
        return message
    if detailed_errors:
        return f"{HANDSHAKE_UNEXPECTED_ERROR} InvalidDataException: {message}"
    return HANDSHAKE_UNEXPECTED_ERROR


def write_handshake_response(error: str | None = None) -> bytes:
    """``{}`` + 0x1E on success, ``{"error":"..."}`` + 0x1E on failure; never a ``type``."""
    if not error:
        return _SUCCESS
    return (
        json.dumps({"error": error}, ensure_ascii=False, separators=(",", ":")) + "\x1e"
    ).encode("utf-8")


def write_handshake_request(protocol: str, version: int = 1) -> bytes:
    """The client's handshake record (for test clients and the load generator)."""
    return (
        json.dumps({"protocol": protocol, "version": version}, separators=(",", ":")) + "\x1e"
    ).encode("utf-8")


def parse_handshake_response(
    buffer: bytes | bytearray | memoryview,
) -> tuple[HandshakeResponse | None, int]:
    """Client side: parse the server's handshake response (as the JS client does).

    Returns:
        (response, bytes consumed) or ``(None, 0)`` while incomplete.

    Raises:
        HandshakeError: not a JSON object, or a hub message (has ``type``) instead of the
            response (``Expected a handshake response from the server.``).
    """
    found = _find_record(buffer, None)
    if found is None:
        return None, 0
    record, consumed = found
    obj = _decode_object(record)
    if "type" in obj:
        raise HandshakeError("Expected a handshake response from the server.")
    error = obj.get("error")
    if error is not None and type(error) is not str:
        raise HandshakeError("Expected 'error' to be of type String.")
    return HandshakeResponse(error), consumed
