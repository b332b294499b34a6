"""Streaming methods that fail when called, before an iterator exists, fail the *invocation*,
with the text of a failing plain method (.NET: a method returning ``ChannelReader<T>`` that
throws); once iterated (an async generator's body, like a C# async iterator's) they fail the
*stream*, with or without an item sent. Plain ``def`` and ``async def`` methods annotated to
return an async iterator are streaming methods too. Bytes are pinned for JSON and MessagePack."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgpack
import pytest

from hubserver.errors import HubError
from hubserver.hub.hub import Hub
from hubserver.protocol.messages import InvocationMessage
from tests.support.hub_client import HubTestClient


class InvalidOperationException(Exception):  # noqa: N818 - named as in ASP.NET's TestHub
    """Carries .NET's type name into the detailed error text."""


async def _count(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


class StreamingHub(Hub):
    """The streaming shapes a hub can declare, each failing or not."""

    def stream_throw_exception(self, message: str) -> AsyncIterator[str]:
        raise InvalidOperationException(message)

    async def awaited_throw(self, message: str) -> AsyncIterator[int]:
        raise InvalidOperationException(message)

    async def throw_before_first_item(self, message: str) -> AsyncIterator[int]:
        raise InvalidOperationException(message)
        yield 0  # an async generator

    async def throw_after_first_item(self, message: str) -> AsyncIterator[int]:
        yield 1
        raise InvalidOperationException(message)

    def refuse(self) -> AsyncIterator[int]:
        raise HubError("Not allowed")

    def plain_stream(self, n: int) -> AsyncIterator[int]:
        return _count(n)

    async def awaited_stream(self, n: int) -> AsyncIterator[int]:
        return _count(n)

    def returns_none(self) -> AsyncIterator[int]:
        return None  # type: ignore[return-value]

    def helper(self) -> int:  # a plain method that is not a stream stays private
        return 1


INVOKE = "An unexpected error occurred invoking '{}' on the server."
STREAMING = "An error occurred on the server while streaming results."


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def completion_bytes(protocol: str, iid: str, error: str) -> bytes:
    """A Completion with an error as the wire carries it (independent of our writers)."""
    if protocol == "json":
        quoted = error.replace("\\", "\\\\").replace('"', '\\"')
        return f'{{"type":3,"invocationId":"{iid}","error":"{quoted}"}}\x1e'.encode()
    body = msgpack.packb([3, {}, iid, 1, error])
    return _varint(len(body)) + body


async def connected(make_handler, protocol: str, detailed: bool) -> HubTestClient:
    client = HubTestClient(make_handler(StreamingHub, detailed_errors=detailed), protocol)
    await client.connect()
    return client


@pytest.mark.parametrize("protocol", ["json", "messagepack"])
@pytest.mark.parametrize("target", ["StreamThrowException", "AwaitedThrow"])
@pytest.mark.parametrize("detailed", [True, False])
async def test_a_stream_failing_at_invocation_gets_the_invocation_text(
    make_handler, protocol: str, target: str, detailed: bool
) -> None:
    client = await connected(make_handler, protocol, detailed)
    items, completion = await client.stream(target, "An error occurred.")
    detail = " InvalidOperationException: An error occurred." if detailed else ""
    text = INVOKE.format(target) + detail
    assert items == []
    assert completion.error == text
    assert client.ctx.sent[-1][0] == completion_bytes(protocol, "0", text)


async def test_the_exact_json_bytes_of_the_dotnet_test_hub_case(make_handler) -> None:
    client = await connected(make_handler, "json", True)
    await client.stream("streamThrowException", "An error occurred.")
    assert client.ctx.sent[-1][0] == (
        b'{"type":3,"invocationId":"0","error":"An unexpected error occurred invoking '
        b"'streamThrowException' on the server. InvalidOperationException: An error occurred."
        b'"}\x1e'
    )


async def test_the_exact_messagepack_bytes_without_detailed_errors(make_handler) -> None:
    client = await connected(make_handler, "messagepack", False)
    await client.stream("StreamThrowException", "secret")
    text = b"An unexpected error occurred invoking 'StreamThrowException' on the server."
    # length prefix, fixarray(5), 3, {}, "0", 1 (error result), str8 text
    body = b"\x95\x03\x80\xa10\x01\xd9" + bytes([len(text)]) + text
    assert client.ctx.sent[-1][0] == bytes([len(body)]) + body


@pytest.mark.parametrize("protocol", ["json", "messagepack"])
@pytest.mark.parametrize("detailed", [True, False])
async def test_a_hub_error_at_invocation_always_shows_its_message(
    make_handler, protocol: str, detailed: bool
) -> None:
    client = await connected(make_handler, protocol, detailed)
    _, completion = await client.stream("Refuse")
    text = INVOKE.format("Refuse") + " HubException: Not allowed"
    assert completion.error == text
    assert client.ctx.sent[-1][0] == completion_bytes(protocol, "0", text)


@pytest.mark.parametrize("protocol", ["json", "messagepack"])
@pytest.mark.parametrize("detailed", [True, False])
@pytest.mark.parametrize(
    ("target", "expected_items"), [("ThrowAfterFirstItem", [1]), ("ThrowBeforeFirstItem", [])]
)
async def test_a_failure_while_iterating_keeps_the_streaming_text(
    make_handler, protocol: str, detailed: bool, target: str, expected_items: list[int]
) -> None:
    client = await connected(make_handler, protocol, detailed)
    items, completion = await client.stream(target, "late")
    text = STREAMING + (" InvalidOperationException: late" if detailed else "")
    assert items == expected_items
    assert completion.error == text
    assert client.ctx.sent[-1][0] == completion_bytes(protocol, "0", text)


@pytest.mark.parametrize("target", ["PlainStream", "AwaitedStream"])
async def test_plain_and_coroutine_methods_returning_an_iterator_stream(
    make_handler, target: str
) -> None:
    client = await connected(make_handler, "json", False)
    items, completion = await client.stream(target, 3)
    assert items == [0, 1, 2]
    assert completion.error is None and not completion.has_result
    assert client.ctx.sent[-1][0] == b'{"type":3,"invocationId":"0"}\x1e'


async def test_a_plain_streaming_method_refuses_a_non_streaming_invocation(make_handler) -> None:
    client = await connected(make_handler, "json", False)
    completion = await client.invoke("PlainStream", 3)
    assert completion.error == (
        "The client attempted to invoke the streaming 'PlainStream' method with a "
        "non-streaming invocation."
    )


async def test_a_streaming_method_returning_no_iterator_gets_the_dotnet_text(make_handler) -> None:
    client = await connected(make_handler, "json", True)
    _, completion = await client.stream("ReturnsNone")
    assert completion.error == (
        "The value returned by the streaming method 'ReturnsNone' is not a ChannelReader<> "
        "or IAsyncEnumerable<>."
    )


async def test_a_plain_method_not_returning_a_stream_is_not_a_hub_method(make_handler) -> None:
    client = await connected(make_handler, "json", False)
    client.send_message(InvocationMessage("Helper", [], invocation_id="9"))
    completion = await client.wait_completion("9")
    assert completion.error == (
        "Failed to invoke 'Helper' due to an error on the server. "
        "HubException: Method does not exist."
    )
