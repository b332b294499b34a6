"""The ``messagepack`` hub protocol (docs/spec/messagepack.md §4).

Wire form: ``VarInt(length) + body`` per message; each body is a MessagePack array:

==================  =====================================================================
type                array
==================  =====================================================================
1 Invocation        ``[1, headers, invocationId|nil, target, [args], [streamIds]]``
2 StreamItem        ``[2, headers, invocationId, item]``
3 Completion        ``[3, headers, invocationId, kind, result?]`` (1 error, 2 void, 3 value)
4 StreamInvocation  ``[4, headers, invocationId, target, [args], [streamIds]]``
5 CancelInvocation  ``[5, headers, invocationId]``
6 Ping              ``[6]``
7 Close             ``[7, error|nil, allowReconnect]``
8 Ack / 9 Sequence  ``[8|9, sequenceId]``
==================  =====================================================================

Written exactly as .NET writes them: Invocations always with 6 elements (signalrcore reads
index 5 unconditionally), Close with 3. Read leniently: 5-element Invocations (the JS client),
2-element Close (``[7, nil]`` from JS) and extra trailing items are accepted. Error texts
follow ASP.NET Core's ``MessagePackHubProtocolWorker``. Nesting deeper than 64 is refused at
parse time (``protocol._limits``): the packer could not write it back to recipients.

Values: bytes <-> bin, datetimes <-> timestamp extension -1 (naive datetimes are written as
UTC; read back tz-aware in UTC), other Python types as described in ``_values``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack

from hubserver.errors import ProtocolError
from hubserver.protocol._limits import MAX_DEPTH, find_invalid
from hubserver.protocol._values import msgpack_default
from hubserver.protocol.base import TransferFormat
from hubserver.protocol.framing import split_binary_frames, write_varint
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

__all__ = ["MessagePackHubProtocol"]

_ERROR_RESULT = 1
_VOID_RESULT = 2
_NON_VOID_RESULT = 3

_MISSING: Any = object()


def _unpack(body: Any) -> Any:
    try:
        return msgpack.unpackb(
            body,
            raw=False,  # str <-> str, bin <-> bytes
            timestamp=3,  # ext -1 -> tz-aware UTC datetime
            strict_map_key=False,  # argument maps may have int keys (MessagePack-CSharp)
        )
    except (ValueError, TypeError, OverflowError, RecursionError, msgpack.UnpackException) as exc:
        # ValueError covers ExtraData, FormatError, StackError and invalid UTF-8.
        raise ProtocolError("Error reading MessagePack.") from exc


# Every byte that can start an array or a map (fixmap, fixarray, array16/32, map16/32).
_CONTAINER_BYTES = frozenset(range(0x80, 0xA0)) | {0xDC, 0xDD, 0xDE, 0xDF}
_NOT_CONTAINER = bytes(b for b in range(256) if b not in _CONTAINER_BYTES)


def _check_depth(body: Any, value: Any) -> None:
    # Strings need no check: msgpack decodes them as strict UTF-8, which has no surrogates.
    # Nesting needs one container header byte per level; bodies with fewer such bytes than
    # the limit (nearly all) skip the walk. Called only for bodies longer than the limit.
    if len(bytes(body).translate(None, _NOT_CONTAINER)) <= MAX_DEPTH:
        return
    problem = find_invalid(value, strings=False)
    if problem is not None:
        raise ProtocolError(f"Error reading MessagePack. {problem}")


def _item(array: list[Any], index: int) -> Any:
    return array[index] if index < len(array) else _MISSING


def _read_str(array: list[Any], index: int, field: str) -> str | None:
    value = _item(array, index)
    if value is None or type(value) is str:
        return value
    raise ProtocolError(f"Reading '{field}' as String failed.")


def _not_empty(value: str | None, what: str) -> str:
    if not value:
        raise ProtocolError(f"Null or empty {what}.")
    return value


def _read_headers(array: list[Any]) -> dict[str, str] | None:
    value = _item(array, 1)
    if type(value) is not dict:
        raise ProtocolError("Reading map length for 'headers' failed.")
    if not value:
        return None
    for i, (key, item) in enumerate(value.items()):
        if key is not None and type(key) is not str:
            raise ProtocolError(f"Reading 'headers[{i}].Key' as String failed.")
        _not_empty(key, "key in header")
        if item is not None and type(item) is not str:
            raise ProtocolError(f"Reading 'headers[{i}].Value' as String failed.")
        _not_empty(item, "value in header")
    return value


def _read_arguments(array: list[Any]) -> list[Any]:
    value = _item(array, 4)
    if type(value) is not list:
        raise ProtocolError("Reading array length for 'arguments' failed.")
    return value


def _read_stream_ids(array: list[Any]) -> list[str] | None:
    # "Previous clients will send 5 items": streamIds only when a 6th element exists.
    if len(array) <= 5:
        return None
    value = array[5]
    if type(value) is not list:
        raise ProtocolError("Reading array length for 'streamIds' failed.")
    for item in value:
        if not item or type(item) is not str:
            raise ProtocolError("Null or empty value in streamIds received.")
    return value or None


def _invocation(array: list[Any]) -> HubMessage:
    headers = _read_headers(array)
    # nil and "" both mean non-blocking (.NET normalizes "" to null here).
    invocation_id = _read_str(array, 2, "invocationId") or None
    target = _not_empty(_read_str(array, 3, "target"), "target for Invocation message")
    arguments = _read_arguments(array)
    stream_ids = _read_stream_ids(array)
    if headers:
        return InvocationMessage(target, arguments, invocation_id, stream_ids, headers)
    return InvocationMessage(target, arguments, invocation_id, stream_ids)


def _stream_invocation(array: list[Any]) -> HubMessage:
    headers = _read_headers(array)
    invocation_id = _not_empty(
        _read_str(array, 2, "invocationId"), "invocation ID for StreamInvocation message"
    )
    target = _not_empty(_read_str(array, 3, "target"), "target for StreamInvocation message")
    arguments = _read_arguments(array)
    stream_ids = _read_stream_ids(array)
    if headers:
        return StreamInvocationMessage(invocation_id, target, arguments, stream_ids, headers)
    return StreamInvocationMessage(invocation_id, target, arguments, stream_ids)


def _stream_item(array: list[Any]) -> HubMessage:
    headers = _read_headers(array)
    invocation_id = _not_empty(
        _read_str(array, 2, "invocationId"), "invocation ID for StreamItem message"
    )
    item = _item(array, 3)
    if item is _MISSING:
        raise ProtocolError("Reading 'item' failed.")
    if headers:
        return StreamItemMessage(invocation_id, item, headers)
    return StreamItemMessage(invocation_id, item)


def _completion(array: list[Any]) -> HubMessage:
    headers = _read_headers(array)
    invocation_id = _not_empty(
        _read_str(array, 2, "invocationId"), "invocation ID for Completion message"
    )
    kind = _item(array, 3)
    if type(kind) is not int:
        raise ProtocolError("Reading 'resultKind' as Int32 failed.")
    error: str | None = None
    result: Any = None
    has_result = False
    if kind == _ERROR_RESULT:
        error = _read_str(array, 4, "error")
    elif kind == _NON_VOID_RESULT:
        result = _item(array, 4)
        if result is _MISSING:
            raise ProtocolError("Reading 'result' failed.")
        has_result = True
    elif kind != _VOID_RESULT:
        raise ProtocolError("Invalid invocation result kind.")
    if headers:
        return CompletionMessage(invocation_id, error, result, has_result, headers)
    return CompletionMessage(invocation_id, error, result, has_result)


def _cancel(array: list[Any]) -> HubMessage:
    headers = _read_headers(array)
    invocation_id = _not_empty(
        _read_str(array, 2, "invocationId"), "invocation ID for CancelInvocation message"
    )
    if headers:
        return CancelInvocationMessage(invocation_id, headers)
    return CancelInvocationMessage(invocation_id)


def _ping(array: list[Any]) -> HubMessage:
    return PING


def _close(array: list[Any]) -> HubMessage:
    error = _read_str(array, 1, "error")
    allow_reconnect = False
    # .NET >= 5 writes a 3rd element; JS sends [7, nil]: read it only if present.
    if len(array) > 2:
        allow_reconnect = array[2]
        if type(allow_reconnect) is not bool:
            raise ProtocolError("Reading 'allowReconnect' as Boolean failed.")
    return CloseMessage(error, allow_reconnect)


def _sequence_id(array: list[Any]) -> int:
    value = _item(array, 1)
    if type(value) is not int:
        raise ProtocolError("Reading 'sequenceId' as Int64 failed.")
    return value


def _ack(array: list[Any]) -> HubMessage:
    return AckMessage(_sequence_id(array))


def _sequence(array: list[Any]) -> HubMessage:
    return SequenceMessage(_sequence_id(array))


_BINDERS: dict[int, Callable[[list[Any]], HubMessage]] = {
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


def _parse_body(body: Any) -> HubMessage:
    array = _unpack(body)
    if len(body) > MAX_DEPTH:
        _check_depth(body, array)
    if type(array) is not list:
        raise ProtocolError("Reading array length for 'message' failed.")
    message_type = array[0] if array else None
    if type(message_type) is not int:
        raise ProtocolError("Reading 'messageType' as Int32 failed.")
    binder = _BINDERS.get(message_type)
    if binder is None:
        # .NET skips unknown types; this server closes instead (same rule as the JSON codec).
        raise ProtocolError(f"Unknown message type '{message_type}'.")
    return binder(array)


# docs/spec/messagepack.md §4: Ping is always exactly 91 06, framed 02 91 06
_PING_BYTES = b"\x02\x91\x06"
_EMPTY_MAP = b"\x80"


class MessagePackHubProtocol:
    """The ``messagepack`` hub protocol, version 2, Binary transfer format.

    Holds one reusable ``msgpack.Packer``; like every codec here it is pure and shared by
    all connections of a process (asyncio runs writes one at a time).
    """

    __slots__ = ("_pack", "_writers")

    def __init__(self) -> None:
        packer = msgpack.Packer(
            default=msgpack_default,
            use_bin_type=True,  # bytes -> bin, str -> str (JS Uint8Array <-> bin)
            datetime=True,  # tz-aware datetime -> timestamp ext -1
            autoreset=True,
        )
        self._pack: Callable[[Any], bytes] = packer.pack
        self._writers: dict[type, Callable[[Any], bytes]] = {
            InvocationMessage: self._write_invocation,
            StreamInvocationMessage: self._write_stream_invocation,
            StreamItemMessage: self._write_stream_item,
            CompletionMessage: self._write_completion,
            CancelInvocationMessage: self._write_cancel,
            PingMessage: _write_ping,
            CloseMessage: self._write_close,
            AckMessage: self._write_ack,
            SequenceMessage: self._write_sequence,
        }

    @property
    def name(self) -> str:
        """``"messagepack"``."""
        return "messagepack"

    @property
    def version(self) -> int:
        """2 (stateful reconnect messages included)."""
        return 2

    @property
    def transfer_format(self) -> TransferFormat:
        """Binary."""
        return TransferFormat.BINARY

    def parse(self, buffer: bytes | bytearray | memoryview) -> tuple[list[HubMessage], int]:
        """Parse every complete length-prefixed frame in ``buffer``.

        Returns:
            (messages in order, bytes consumed); an incomplete trailing frame is left
            unconsumed.

        Raises:
            ProtocolError: bad length prefix or malformed message; texts as ASP.NET Core,
                e.g. ``Null or empty target for Invocation message.``
        """
        spans, consumed = split_binary_frames(buffer)
        if not spans:
            return [], consumed
        error: str | None = None
        with memoryview(buffer) as view:
            try:
                messages = [_parse_body(view[start:stop]) for start, stop in spans]
            except ProtocolError as exc:
                # The traceback's frames hold slices of ``buffer``; raised as is, they would
                # keep a caller's bytearray exported (BufferError on resize) for as long as
                # the exception lives. Re-raise a fresh error once they are gone.
                error = str(exc)
        if error is not None:
            raise ProtocolError(error)
        return messages, consumed

    def write(self, message: HubMessage) -> bytes:
        """Serialize ``message`` as ``VarInt(length) + msgpack array``.

        Raises:
            TypeError: an argument/result/item has no MessagePack representation.
        """
        return self._writers[type(message)](message)

    def _frame(self, obj: Any) -> bytes:
        body = self._pack(obj)
        return write_varint(len(body)) + body

    def _write_invocation(self, m: InvocationMessage) -> bytes:
        return self._frame(
            [
                1,
                m.headers,
                m.invocation_id or None,
                m.target,
                m.arguments,
                m.stream_ids or (),
            ]
        )

    def _write_stream_invocation(self, m: StreamInvocationMessage) -> bytes:
        return self._frame(
            [4, m.headers, m.invocation_id, m.target, m.arguments, m.stream_ids or ()]
        )

    def _write_stream_item(self, m: StreamItemMessage) -> bytes:
        return self._frame([2, m.headers, m.invocation_id, m.item])

    def _write_completion(self, m: CompletionMessage) -> bytes:
        # .NET: kind = error if Error != null, else value if HasResult, else void.
        if m.error is not None:
            return self._frame([3, m.headers, m.invocation_id, _ERROR_RESULT, m.error])
        if m.has_result:
            return self._frame([3, m.headers, m.invocation_id, _NON_VOID_RESULT, m.result])
        return self._frame([3, m.headers, m.invocation_id, _VOID_RESULT])

    def _write_cancel(self, m: CancelInvocationMessage) -> bytes:
        return self._frame([5, m.headers, m.invocation_id])

    def _write_close(self, m: CloseMessage) -> bytes:
        return self._frame([7, m.error or None, m.allow_reconnect])

    def _write_ack(self, m: AckMessage) -> bytes:
        return self._frame([8, m.sequence_id])

    def _write_sequence(self, m: SequenceMessage) -> bytes:
        return self._frame([9, m.sequence_id])

    def __repr__(self) -> str:
        return "MessagePackHubProtocol()"


def _write_ping(m: PingMessage) -> bytes:
    return _PING_BYTES
