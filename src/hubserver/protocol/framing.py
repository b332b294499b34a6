"""Record framing of the two hub protocols (docs/spec/hub-protocol.md §3.1,
docs/spec/messagepack.md §4).

* Text (JSON): every record ends with the ASCII record separator ``0x1E``. A JSON text can never
  contain a raw ``0x1E`` (control characters must be escaped inside strings), so splitting on the
  separator is exact.
* Binary (MessagePack): every record is ``VarInt(length) + body``; the VarInt is unsigned,
  7 bits per byte, least significant group first, high bit = "more bytes follow", 1-5 bytes,
  at most ``0x7FFFFFFF`` (BinaryMessageParser.cs).

Two shapes are offered. The stateless ``split_*`` functions take a buffer and return the
complete records plus the number of bytes they used (what :meth:`HubProtocol.parse` needs).
The stateful :class:`TextFramer` / :class:`BinaryFramer` keep the partial remainder between
``feed()`` calls, for callers that receive arbitrary byte chunks.
"""

from __future__ import annotations

from hubserver.errors import MessageTooLargeError, ProtocolError

RECORD_SEPARATOR = 0x1E
"""The JSON record terminator (docs/spec/hub-protocol.md §3.1)."""
RECORD_SEPARATOR_BYTES = b"\x1e"

MAX_BINARY_MESSAGE_SIZE = 0x7FFFFFFF
"""Largest body a VarInt length prefix may announce (2 GB, ``FF FF FF FF 07``)."""
_MAX_LENGTH_PREFIX_SIZE = 5

_OVER_2GB = "Messages over 2GB in size are not supported."

Buffer = bytes | bytearray | memoryview


def _too_large(limit: int) -> MessageTooLargeError:
    # Text of .NET's HubConnectionHandler detail (docs/spec/hub-protocol.md §3.8).
    return MessageTooLargeError(
        f"The maximum message size of {limit}B was exceeded. "
        "The message size can be configured in AddHubOptions."
    )


def split_text_records(buffer: Buffer) -> tuple[list[bytes], int]:
    """Split ``buffer`` into complete 0x1E-terminated records.

    Args:
        buffer: Bytes received so far (may end in the middle of a record).

    Returns:
        (records without their separator, bytes consumed). The caller keeps
        ``buffer[consumed:]`` for the next call.
    """
    data = bytes(buffer) if isinstance(buffer, memoryview) else buffer
    last = data.rfind(RECORD_SEPARATOR_BYTES)
    if last < 0:
        return [], 0
    # Everything up to the last separator is whole records; split() yields a trailing empty
    # element after the final separator, which is dropped.
    records = bytes(data[:last]).split(RECORD_SEPARATOR_BYTES)
    return records, last + 1


def write_varint(n: int) -> bytes:
    """Encode a length prefix (docs/spec/messagepack.md §4: 53 -> ``35``, 5248 -> ``80 29``).

    Raises:
        ValueError: ``n`` is negative or over 2 GB.
    """
    if n < 0x80:
        if n < 0:
            raise ValueError("length must not be negative")
        return bytes((n,))
    if n > MAX_BINARY_MESSAGE_SIZE:
        raise ValueError(_OVER_2GB)
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_varint(buffer: Buffer, offset: int = 0) -> tuple[int, int] | None:
    """Decode a length prefix at ``offset``.

    Returns:
        (length, prefix size in bytes), or None when the prefix itself is incomplete.

    Raises:
        ProtocolError: the prefix is longer than 5 bytes or announces more than 2 GB
            (BinaryMessageParser.cs: "Messages over 2GB in size are not supported.").
    """
    length = 0
    end = len(buffer)
    for i in range(_MAX_LENGTH_PREFIX_SIZE):
        pos = offset + i
        if pos >= end:
            return None
        byte = buffer[pos]
        length |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            # The 5th byte may only carry the top 3 bits of a 31-bit length.
            if i == _MAX_LENGTH_PREFIX_SIZE - 1 and byte > 7:
                raise ProtocolError(_OVER_2GB)
            return length, i + 1
    raise ProtocolError(_OVER_2GB)


def split_binary_frames(buffer: Buffer) -> tuple[list[tuple[int, int]], int]:
    """Locate the complete VarInt-prefixed frames in ``buffer``.

    Offsets rather than views are returned on purpose: a live ``memoryview`` into a caller's
    ``bytearray`` would stop that caller from trimming its buffer ("Existing exports of data").

    Returns:
        ([(body_start, body_stop), ...], bytes consumed). An incomplete trailing frame (prefix
        or body) is not consumed.

    Raises:
        ProtocolError: invalid length prefix.
    """
    spans: list[tuple[int, int]] = []
    offset = 0
    end = len(buffer)
    while offset < end:
        first = buffer[offset]
        if first < 0x80:  # fast path: one-byte prefix, bodies under 128 bytes
            length, size = first, 1
        else:
            decoded = read_varint(buffer, offset)
            if decoded is None:
                break
            length, size = decoded
        start = offset + size
        stop = start + length
        if stop > end:
            break
        spans.append((start, stop))
        offset = stop
    return spans, offset


class TextFramer:
    """Stateful 0x1E record splitter for arbitrary chunks.

    Args:
        max_message_size: Largest record (without separator) accepted; ``None`` = unlimited.
            A partial record that already exceeds it raises at once, so a client cannot make
            the server buffer an unbounded record (docs/spec/hub-protocol.md §3.8).
    """

    __slots__ = ("_buffer", "_max")

    def __init__(self, max_message_size: int | None = None) -> None:
        self._buffer = bytearray()
        self._max = max_message_size

    @property
    def pending(self) -> int:
        """Bytes of an incomplete record kept for the next :meth:`feed`."""
        return len(self._buffer)

    def feed(self, data: Buffer) -> list[bytes]:
        """Add ``data`` and return every record completed by it (separators removed).

        Raises:
            MessageTooLargeError: a record is larger than ``max_message_size``.
        """
        buf = self._buffer
        buf += data
        records, consumed = split_text_records(buf)
        if consumed:
            del buf[:consumed]
        limit = self._max
        if limit is not None:
            if len(buf) > limit:
                raise _too_large(limit)
            for record in records:
                if len(record) > limit:
                    raise _too_large(limit)
        return records


class BinaryFramer:
    """Stateful VarInt-length-prefix frame splitter for arbitrary chunks.

    Args:
        max_message_size: Largest body accepted; ``None`` = unlimited (2 GB cap). Checked as
            soon as the prefix is readable, before the body is buffered.
    """

    __slots__ = ("_buffer", "_max")

    def __init__(self, max_message_size: int | None = None) -> None:
        self._buffer = bytearray()
        self._max = max_message_size

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame kept for the next :meth:`feed`."""
        return len(self._buffer)

    def feed(self, data: Buffer) -> list[bytes]:
        """Add ``data`` and return the bodies of every frame completed by it.

        Raises:
            ProtocolError: invalid length prefix.
            MessageTooLargeError: a frame announces more than ``max_message_size`` bytes.
        """
        buf = self._buffer
        buf += data
        bodies: list[bytes] = []
        offset = 0
        end = len(buf)
        limit = self._max
        while offset < end:
            decoded = read_varint(buf, offset)
            if decoded is None:
                break
            length, size = decoded
            if limit is not None and length > limit:
                raise _too_large(limit)
            start = offset + size
            stop = start + length
            if stop > end:
                break
            bodies.append(bytes(buf[start:stop]))
            offset = stop
        if offset:
            del buf[:offset]
        return bodies

    @staticmethod
    def frame(body: bytes) -> bytes:
        """Prefix ``body`` with its VarInt length."""
        return write_varint(len(body)) + body
