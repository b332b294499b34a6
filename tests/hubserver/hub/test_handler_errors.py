"""Error texts sent to clients (docs/spec/hub-protocol.md §3.5) and error Close messages (§3.7)."""

from __future__ import annotations

import pytest

from hubserver.errors import HubError
from hubserver.hub.hub import Hub
from hubserver.protocol.messages import InvocationMessage, StreamInvocationMessage
from tests.support.hub_client import HubTestClient, settle, wait_until

BINDING = (
    "Error binding arguments. Make sure that the types of the provided values match the "
    "types of the hub method being invoked."
)


async def test_unknown_method_has_the_exact_dotnet_text(client):
    completion = await client.invoke("Nope", 1)
    assert client.ctx.sent[-1][0] == (
        b'{"type":3,"invocationId":"0","error":"Failed to invoke \'Nope\' due to an error on the '
        b'server. HubException: Method does not exist."}\x1e'
    )
    assert completion.result is None


async def test_wrong_argument_count_is_sanitised_by_default(client):
    completion = await client.invoke("Add", 1)
    assert completion.error == "Failed to invoke 'Add' due to an error on the server."
    completion = await client.invoke("Echo", "a", "b")
    assert completion.error == "Failed to invoke 'Echo' due to an error on the server."


async def test_wrong_argument_count_with_detailed_errors(make_handler):
    client = HubTestClient(make_handler(detailed_errors=True))
    await client.connect()
    assert (await client.invoke("Add", 1)).error == (
        "Failed to invoke 'Add' due to an error on the server. InvalidDataException: "
        "Invocation provides 1 argument(s) but target expects 2."
    )
    assert (await client.invoke("Echo", "a", "b")).error == (
        "Failed to invoke 'Echo' due to an error on the server. InvalidDataException: "
        "Invocation provides 2 argument(s) but target expects 1."
    )


@pytest.mark.parametrize(
    ("target", "args"),
    [
        ("Add", ["1", 2]),
        ("Add", [1.5, 2]),
        ("Add", [True, 2]),
        ("Echo", [5]),
        ("Total", [[1, "x"]]),
        ("Total", [{"a": 1}]),
        ("Distance", [{"x": 1}]),
        ("Describe", [{"name": "n"}]),
        ("Year", ["not a date"]),
    ],
)
async def test_bad_argument_types_are_sanitised_by_default(client, target, args):
    completion = await client.invoke(target, *args)
    assert completion.error == f"Failed to invoke '{target}' due to an error on the server."


async def test_bad_argument_types_with_detailed_errors(make_handler):
    client = HubTestClient(make_handler(detailed_errors=True))
    await client.connect()
    assert (await client.invoke("Add", "1", 2)).error == (
        f"Failed to invoke 'Add' due to an error on the server. InvalidDataException: {BINDING}"
    )


async def test_exception_in_method_is_sanitised_by_default(client):
    completion = await client.invoke("Fail")
    assert completion.error == "An unexpected error occurred invoking 'Fail' on the server."
    assert "secret" not in str(client.ctx.sent)


async def test_exception_in_method_with_detailed_errors_shows_type_and_text(make_handler):
    client = HubTestClient(make_handler(detailed_errors=True))
    await client.connect()
    assert (await client.invoke("Fail")).error == (
        "An unexpected error occurred invoking 'Fail' on the server. ValueError: secret detail"
    )


async def test_hub_error_text_is_always_shown(client):
    assert (await client.invoke("FailHub")).error == (
        "An unexpected error occurred invoking 'FailHub' on the server. "
        "HubException: visible to client"
    )


async def test_streaming_method_called_with_invoke(client):
    assert (await client.invoke("Counter", 3)).error == (
        "The client attempted to invoke the streaming 'Counter' method with a non-streaming "
        "invocation."
    )


async def test_plain_method_called_with_stream(client):
    items, completion = await client.stream("Echo", "x")
    assert items == []
    assert completion.error == (
        "The client attempted to invoke the non-streaming 'Echo' method with a streaming "
        "invocation."
    )


async def test_reusing_the_id_of_a_running_stream_is_refused(client):
    client.send_message(StreamInvocationMessage(invocation_id="s", target="Endless", arguments=[]))
    await client.wait_for(lambda m: m.type == 2)
    client.send_message(InvocationMessage("Echo", ["x"], invocation_id="s"))
    completion = await client.wait_for(lambda m: m.type == 3 and m.invocation_id == "s")
    assert completion.error == "Invocation ID 's' is already in use."
    client.cancel("s")

    def two_completions() -> bool:
        client.read()
        return len([m for m in client.received if m.type == 3 and m.invocation_id == "s"]) == 2

    await wait_until(two_completions)
    await wait_until(lambda: not client.app.invocations.active_ids)


async def test_protocol_error_closes_with_error_and_allow_reconnect(client, lifetime):
    client.send_raw(b'{"type":1,"arguments":[]}\x1e')
    await settle()
    assert client.ctx.sent[-1][0] == (
        b'{"type":7,"error":"Connection closed with an error.","allowReconnect":true}\x1e'
    )
    assert client.ctx.closed
    await wait_until(lambda: lifetime.local_connection_count() == 0)


async def test_protocol_error_with_detailed_errors_carries_the_parser_text(make_handler):
    client = HubTestClient(make_handler(detailed_errors=True))
    await client.connect()
    client.send_raw(b'{"type":1,"arguments":[]}\x1e')
    await settle()
    close = client.last_close()
    assert close.error == (
        "Connection closed with an error. InvalidDataException: Missing required property 'target'."
    )
    assert close.allow_reconnect


class FailingConnectHub(Hub):
    disconnected: list[object] = []  # noqa: RUF012

    async def on_connected(self) -> None:
        raise RuntimeError("nope")

    async def on_disconnected(self, exception: BaseException | None) -> None:
        FailingConnectHub.disconnected.append(exception)

    async def echo(self, x: str) -> str:
        return x


class RefusingHub(FailingConnectHub):
    async def on_connected(self) -> None:
        raise HubError("not allowed")


async def test_on_connected_failure_closes_with_error_and_no_reconnect(make_handler, lifetime):
    handler = make_handler(FailingConnectHub)
    client = HubTestClient(handler)
    await client.connect()
    await wait_until(lambda: client.ctx.closed)
    assert client.ctx.sent[1:] == [
        (b'{"type":7,"error":"Connection closed with an error."}\x1e', False)
    ]
    await wait_until(lambda: handler.connection_count() == 0)
    assert lifetime.local_connection_count() == 0
    assert FailingConnectHub.disconnected == []  # on_disconnected is not called


async def test_on_connected_hub_error_text_is_shown(make_handler):
    client = HubTestClient(make_handler(RefusingHub))
    await client.connect()
    await wait_until(lambda: client.ctx.closed)
    close = client.last_close()
    assert close.error == "Connection closed with an error. HubException: not allowed"
    assert close.allow_reconnect is False


async def test_invocations_sent_during_a_failing_on_connected_never_run(make_handler):
    client = HubTestClient(make_handler(FailingConnectHub))
    client.send_raw(
        b'{"protocol":"json","version":1}\x1e'
        b'{"type":1,"invocationId":"1","target":"Echo","arguments":["x"]}\x1e'
    )
    await wait_until(lambda: client.ctx.closed)
    await settle()
    client.read()
    assert [m.type for m in client.received] == [7]
