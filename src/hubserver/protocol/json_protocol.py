"""The ``json`` hub protocol (docs/spec/hub-protocol.md §3).

Wire form: one compact JSON object per message, each followed by ``0x1E``.

Parsing is order-independent and lenient where real clients need it (§3.3): unknown
properties are skipped (as .NET does), ``null`` counts as absent (signalrcore sends
``"error":null``/``"result":null``/``"invocationId":null``), and ``headers`` are accepted and
kept. Invalid input raises :class:`~hubserver.errors.ProtocolError` with the exact texts of
ASP.NET Core's ``JsonHubProtocol`` / ``SystemTextJsonExtensions``. Values that could not be
written back to a recipient (a lone surrogate, nesting deeper than 64) are refused here, once,
rather than at every delivery (``protocol._limits``).

Writing emits exactly the properties of §3.3 in .NET's order (``type``, ``headers``,
``invocationId``, then the payload) because pysignalr builds its message dataclasses with
``**fields`` and breaks on any extra key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hubserver.errors import ProtocolError
from hubserver.protocol._limits import MAX_DEPTH, find_invalid
from hubserver.protocol._values import json_default
from hubserver.protocol.base import TransferFormat
from hubserver.protocol.framing import split_text_records
from hubserver.protocol.messages import (
    PING,
    AckMessage,
    CancelInvocationMessage,
    CloseMessage,
    CompletionMessage,
    HubMessage,
    InvocationMessage,
    PingMessage,
    SequenceMessage,
    StreamInvocationMessage,
    StreamItemMessage,
)

__all__ = ["JsonHubProtocol"]

_RS = "\x1e"
_BACKSLASH = 0x5C
_DEEP_ENOUGH = 2 * MAX_DEPTH
_decode_json = json.JSONDecoder().decode

# System.Text.Json token names as printed by SystemTextJsonExtensions.GetTokenString().
_TOKEN_NAMES: dict[type, str] = {
    list: "Array",
    str: "String",
    int: "Number",
    float: "Number",
    type(None): "Null",
}


def _token_name(value: Any) -> str:
    if value is True:
        return "True"
    if value is False:
        return "False"
    return _TOKEN_NAMES.get(type(value), "Object")


def _missing(name: str) -> ProtocolError:
    return ProtocolError(f"Missing required property '{name}'.")


def _optional_str(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None or type(value) is str:
        return value
    raise ProtocolError(f"Expected '{name}' to be of type String.")


def _required_id(obj: dict[str, Any]) -> str:
    # .NET: string.IsNullOrEmpty(invocationId) -> missing (types 2, 3, 4, 5).
    value = _optional_str(obj, "invocationId")
    if not value:
        raise _missing("invocationId")
    return value


def _target(obj: dict[str, Any]) -> str:
    value = _optional_str(obj, "target")
    if not value:
        raise _missing("target")
    return value


def _arguments(obj: dict[str, Any]) -> list[Any] | None:
    value = obj.get("arguments")
    if value is None or type(value) is list:
        return value
    raise ProtocolError("Expected 'arguments' to be of type Array.")


def _stream_ids(obj: dict[str, Any]) -> list[str] | None:
    value = obj.get("streamIds")
    if value is None:
        return None
    if type(value) is not list:
        raise ProtocolError("Expected 'streamIds' to be of type Array.")
    for item in value:
        if item is None:
            raise ProtocolError("Null value for 'streamIds' is not valid.")
        if type(item) is not str:
            raise ProtocolError("Expected 'streamIds' items to be of type String.")
    # An empty list means "no upload streams", same as absent (msgpack reads it that way too).
    return value or None


def _headers(obj: dict[str, Any]) -> dict[str, str] | None:
    value = obj.get("headers")
    if value is None:
        return None
    if type(value) is not dict:
        raise ProtocolError("Expected 'headers' to be of type StartObject.")
    for key, item in value.items():
        if type(item) is not str:
            raise ProtocolError(f"Expected header '{key}' to be of type String.")
    return value or None


def _sequence_id(obj: dict[str, Any]) -> int:
    value = obj.get("sequenceId")
    if value is None:
        raise _missing("sequenceId")
    if type(value) is not int:
        raise ProtocolError("Expected 'sequenceId' to be of type Number.")
    return value


def _invocation(obj: dict[str, Any]) -> HubMessage:
    arguments = _arguments(obj)
    stream_ids = _stream_ids(obj)
    target = _target(obj)
    if arguments is None:
        raise _missing("arguments")
    # "" is as good as absent: a non-blocking invocation (.NET WriteInvocationId/IsNullOrEmpty).
    invocation_id = _optional_str(obj, "invocationId") or None
    headers = _headers(obj)
    if headers:
        return InvocationMessage(target, arguments, invocation_id, stream_ids, headers)
    return InvocationMessage(target, arguments, invocation_id, stream_ids)


def _stream_invocation(obj: dict[str, Any]) -> HubMessage:
    arguments = _arguments(obj)
    stream_ids = _stream_ids(obj)
    if obj.get("target") is None:
        raise _missing("target")
    invocation_id = _required_id(obj)
    if arguments is None:
        raise _missing("arguments")
    target = _target(obj)
    headers = _headers(obj)
    if headers:
        return StreamInvocationMessage(invocation_id, target, arguments, stream_ids, headers)
    return StreamInvocationMessage(invocation_id, target, arguments, stream_ids)


def _stream_item(obj: dict[str, Any]) -> HubMessage:
    invocation_id = _required_id(obj)
    # The one place where null is a value: an item must be present but may be null
    # (docs/spec/hub-protocol.md §3.3).
    if "item" not in obj:
        raise _missing("item")
    headers = _headers(obj)
    if headers:
        return StreamItemMessage(invocation_id, obj["item"], headers)
    return StreamItemMessage(invocation_id, obj["item"])


def _completion(obj: dict[str, Any]) -> HubMessage:
    invocation_id = _required_id(obj)
    error = _optional_str(obj, "error")
    has_result = "result" in obj
    result = obj.get("result")
    if error is not None:
        if result is not None:
            raise ProtocolError("The 'error' and 'result' properties are mutually exclusive.")
        # signalrcore sends "result":null next to a real error: null counts as absent.
        has_result = False
    headers = _headers(obj)
    if headers:
        return CompletionMessage(invocation_id, error, result, has_result, headers)
    return CompletionMessage(invocation_id, error, result, has_result)


def _cancel(obj: dict[str, Any]) -> HubMessage:
    invocation_id = _required_id(obj)
    headers = _headers(obj)
    if headers:
        return CancelInvocationMessage(invocation_id, headers)
    return CancelInvocationMessage(invocation_id)


def _ping(obj: dict[str, Any]) -> HubMessage:
    return PING


def _close(obj: dict[str, Any]) -> HubMessage:
    error = _optional_str(obj, "error")
    allow = obj.get("allowReconnect")
    if allow is None:
        allow = False
    elif type(allow) is not bool:
        raise ProtocolError("Expected 'allowReconnect' to be true or false.")
    return CloseMessage(error, allow)


def _ack(obj: dict[str, Any]) -> HubMessage:
    return AckMessage(_sequence_id(obj))


def _sequence(obj: dict[str, Any]) -> HubMessage:
    return SequenceMessage(_sequence_id(obj))


_BINDERS: dict[int, Callable[[dict[str, Any]], HubMessage]] = {
    1: _invocation,
    2: _stream_item,
    3: _completion,
    4: _stream_invocation,
    5: _cancel,
    6: _ping,
    7: _close,
    8: _ack,
    9: _sequence,
}


def _parse_record(record: bytes) -> HubMessage:
    try:
        obj = _decode_json(record.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        # Includes UnicodeDecodeError and JSONDecodeError (.NET: JsonException -> this text).
        raise ProtocolError("Error reading JSON.") from exc
    # Lone surrogates only arrive as \u escapes (raw ones fail UTF-8 decoding above), and
    # nesting needs an opening and a closing bracket per level. The scans run in C: a
    # backslash test (memchr) first, bracket counts only for records long enough to be too
    # deep; only a record that could hold a problem is walked.
    strings = _BACKSLASH in record and b"\\u" in record
    if strings or (
        len(record) > _DEEP_ENOUGH and record.count(b"[") + record.count(b"{") > MAX_DEPTH
    ):
        problem = find_invalid(obj, strings=strings)
        if problem is not None:
            raise ProtocolError(f"Error reading JSON. {problem}")
    if type(obj) is not dict:
        raise ProtocolError(
            f"Unexpected JSON Token Type '{_token_name(obj)}'. Expected a JSON Object."
        )
    message_type = obj.get("type")
    if message_type is None:
        raise _missing("type")
    if type(message_type) is not int:
        raise ProtocolError("Expected 'type' to be of type Number.")
    binder = _BINDERS.get(message_type)
    if binder is None:
        # .NET skips unknown types for forward compatibility; this server treats them as a
        # protocol violation (no supported client sends any), which closes the connection.
        raise ProtocolError(f"Unknown message type '{message_type}'.")
    return binder(obj)


# --- writing ----------------------------------------------------------------------------------


def _make_encoder() -> Callable[[Any], str]:
    # The C encoder of the json module, built once: JSONEncoder.encode() would rebuild it on
    # every call, which costs about half of a small message's write time. No circular-reference
    # check (markers=None): a self-referencing argument raises RecursionError instead.
    # NaN/Infinity are refused (allow_nan=False): JS JSON.parse and .NET both reject them.
    from json import encoder as _json_encoder

    c_make_encoder = getattr(_json_encoder, "c_make_encoder", None)
    c_encode_string = getattr(_json_encoder, "c_encode_basestring", None)
    if c_make_encoder is not None and c_encode_string is not None:
        c_encoder = c_make_encoder(
            None, json_default, c_encode_string, None, ":", ",", False, False, False
        )

        def encode(obj: Any) -> str:
            return "".join(c_encoder(obj, 0))

        return encode
    return json.JSONEncoder(  # pragma: no cover - pure-Python interpreters only
        ensure_ascii=False, separators=(",", ":"), default=json_default, allow_nan=False
    ).encode


_encode = _make_encoder()

_PING_BYTES = b'{"type":6}\x1e'
_CLOSE_PLAIN = b'{"type":7}\x1e'
_CLOSE_RECONNECT = b'{"type":7,"allowReconnect":true}\x1e'


def _frame(obj: dict[str, Any]) -> bytes:
    return (_encode(obj) + _RS).encode("utf-8")


def _write_invocation(m: InvocationMessage) -> bytes:
    obj: dict[str, Any] = {"type": 1}
    if m.headers:
        obj["headers"] = m.headers
    # Ordinary server->client calls carry no invocationId (docs/spec/hub-protocol.md §3.4 client
    # results).
    if m.invocation_id:
        obj["invocationId"] = m.invocation_id
    obj["target"] = m.target
    obj["arguments"] = m.arguments
    if m.stream_ids is not None:
        obj["streamIds"] = m.stream_ids
    return _frame(obj)


def _write_stream_invocation(m: StreamInvocationMessage) -> bytes:
    obj: dict[str, Any] = {"type": 4}
    if m.headers:
        obj["headers"] = m.headers
    obj["invocationId"] = m.invocation_id
    obj["target"] = m.target
    obj["arguments"] = m.arguments
    if m.stream_ids is not None:
        obj["streamIds"] = m.stream_ids
    return _frame(obj)


def _write_stream_item(m: StreamItemMessage) -> bytes:
    if m.headers:
        return _frame(
            {"type": 2, "headers": m.headers, "invocationId": m.invocation_id, "item": m.item}
        )
    return _frame({"type": 2, "invocationId": m.invocation_id, "item": m.item})


def _write_completion(m: CompletionMessage) -> bytes:
    obj: dict[str, Any] = {"type": 3}
    if m.headers:
        obj["headers"] = m.headers
    obj["invocationId"] = m.invocation_id
    # .NET: a non-empty error wins; else "result" (null included) only when has_result; else
    # neither (void / end of stream).
    if m.error:
        obj["error"] = m.error
    elif m.has_result:
        obj["result"] = m.result
    return _frame(obj)


def _write_cancel(m: CancelInvocationMessage) -> bytes:
    if m.headers:
        return _frame({"type": 5, "headers": m.headers, "invocationId": m.invocation_id})
    return _frame({"type": 5, "invocationId": m.invocation_id})


def _write_ping(m: PingMessage) -> bytes:
    return _PING_BYTES


def _write_close(m: CloseMessage) -> bytes:
    if m.error is None:
        return _CLOSE_RECONNECT if m.allow_reconnect else _CLOSE_PLAIN
    obj: dict[str, Any] = {"type": 7, "error": m.error}
    # docs/spec/hub-protocol.md §3.7: JSON writes allowReconnect only when true.
    if m.allow_reconnect:
        obj["allowReconnect"] = True
    return _frame(obj)


def _write_ack(m: AckMessage) -> bytes:
    return b'{"type":8,"sequenceId":%d}\x1e' % m.sequence_id


def _write_sequence(m: SequenceMessage) -> bytes:
    return b'{"type":9,"sequenceId":%d}\x1e' % m.sequence_id


_WRITERS: dict[type, Callable[[Any], bytes]] = {
    InvocationMessage: _write_invocation,
    StreamInvocationMessage: _write_stream_invocation,
    StreamItemMessage: _write_stream_item,
    CompletionMessage: _write_completion,
    CancelInvocationMessage: _write_cancel,
    PingMessage: _write_ping,
    CloseMessage: _write_close,
    AckMessage: _write_ack,
    SequenceMessage: _write_sequence,
}


class JsonHubProtocol:
    """The ``json`` hub protocol, version 2, Text transfer format.

    Stateless and shareable between connections. Implements
    :class:`hubserver.protocol.base.HubProtocol`.
    """

    __slots__ = ()

    @property
    def name(self) -> str:
        """``"json"``."""
        return "json"

    @property
    def version(self) -> int:
        """2 (stateful reconnect messages included)."""
        return 2

    @property
    def transfer_format(self) -> TransferFormat:
        """Text."""
        return TransferFormat.TEXT

    def parse(self, buffer: bytes | bytearray | memoryview) -> tuple[list[HubMessage], int]:
        """Parse every complete 0x1E-terminated record in ``buffer``.

        Returns:
            (messages in order, bytes consumed); a trailing partial record is left unconsumed.

        Raises:
            ProtocolError: a complete record is malformed; texts as ASP.NET Core, e.g.
                ``Missing required property 'target'.``
        """
        records, consumed = split_text_records(buffer)
        return [_parse_record(record) for record in records], consumed

    def write(self, message: HubMessage) -> bytes:
        """Serialize ``message`` as compact JSON plus ``0x1E``.

        Raises:
            TypeError: an argument/result/item has no JSON representation.
            ValueError: a float is NaN or infinite.
        """
        return _WRITERS[type(message)](message)

    def __repr__(self) -> str:
        return "JsonHubProtocol()"
