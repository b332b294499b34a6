"""Close semantics (docs/spec/hub-protocol.md §3.7), message size (§3.8), disconnect hooks and the
slow-consumer policy (docs/adr/0002)."""

from __future__ import annotations

from hubserver.hub.hub import Hub
from hubserver.protocol.messages import InvocationMessage
from tests.support.hub_client import HubTestClient, settle, wait_until


class TrackingHub(Hub):
    events: list[tuple[str, str, object]] = []  # noqa: RUF012

    async def on_connected(self) -> None:
        TrackingHub.events.append(("connected", self.context.connection_id, None))
        await self.groups.add(self.context.connection_id, "all")

    async def on_disconnected(self, exception: BaseException | None) -> None:
        # Groups still work here: lifetime.on_disconnected runs after this hook.
        await self.clients.group("all").send("Left", self.context.connection_id)
        TrackingHub.events.append(("disconnected", self.context.connection_id, exception))

    async def echo(self, x: str) -> str:
        return x

    async def abort_me(self) -> None:
        self.context.abort()


def _tracking(make_handler, **options):
    TrackingHub.events = []
    return make_handler(TrackingHub, **options)


async def test_client_close_is_graceful(make_handler, lifetime):
    handler = _tracking(make_handler)
    client = HubTestClient(handler)
    await client.connect()
    client.close()
    await wait_until(lambda: handler.connection_count() == 0)
    assert client.ctx.sent[1:] == [(b'{"type":7}\x1e', False)]
    assert client.ctx.closed
    assert TrackingHub.events[-1] == ("disconnected", client.connection_id, None)
    assert lifetime.local_connection_count() == 0


async def test_messages_after_a_client_close_are_not_dispatched(client):
    client.send_raw(
        b'{"type":7}\x1e{"type":1,"invocationId":"1","target":"Echo","arguments":["x"]}\x1e'
    )
    await settle(20)
    assert [p for p, _ in client.ctx.sent[1:]] == [b'{"type":7}\x1e']


async def test_context_abort_sends_a_plain_close(client):
    client.send_message(InvocationMessage("AbortMe", [], invocation_id="1"))
    await wait_until(lambda: client.ctx.closed)
    assert client.ctx.sent[-1][0] == b'{"type":7}\x1e'


async def test_server_shutdown_allows_reconnect(handler, connect):
    a = await connect()
    b = await connect("messagepack")
    await handler.shutdown()
    assert a.ctx.sent[-1] == (b'{"type":7,"allowReconnect":true}\x1e', False)
    assert b.ctx.sent[-1] == (bytes.fromhex("04 93 07 c0 c3"), True)
    assert handler.connection_count() == 0


async def test_close_with_error_text(client):
    client.app.close("Going away.", allow_reconnect=False)
    assert client.ctx.sent[-1][0] == b'{"type":7,"error":"Going away."}\x1e'


async def test_transport_drop_runs_disconnect_hooks_exactly_once(make_handler, lifetime):
    handler = _tracking(make_handler)
    a = HubTestClient(handler)
    b = HubTestClient(handler)
    await a.connect()
    await b.connect()
    error = ConnectionResetError("gone")
    a.ctx.drop(error)
    a.app.connection_lost(error)
    a.app.close()
    await wait_until(lambda: handler.connection_count() == 1)
    await settle(10)
    disconnects = [e for e in TrackingHub.events if e[0] == "disconnected"]
    assert disconnects == [("disconnected", a.connection_id, error)]
    assert lifetime.local_connection_count() == 1
    left = [m for m in b.invocations() if m.target == "Left"]
    assert [list(m.arguments) for m in left] == [[a.connection_id]]


async def test_message_over_the_size_limit_closes_with_error(make_handler):
    handler = make_handler(maximum_receive_message_size=100)
    client = HubTestClient(handler)
    await client.connect()
    ok = await client.invoke("Echo", "x" * 20)
    assert ok.result == "x" * 20
    client.send_message(InvocationMessage("Echo", ["y" * 120], invocation_id="big"))
    await settle()
    assert client.ctx.sent[-1][0] == (
        b'{"type":7,"error":"Connection closed with an error.","allowReconnect":true}\x1e'
    )
    assert client.ctx.closed


async def test_size_limit_applies_per_message_not_per_chunk(make_handler):
    handler = make_handler(maximum_receive_message_size=100)
    client = HubTestClient(handler)
    await client.connect()
    chunk = b"".join(
        client.protocol.write(InvocationMessage("Echo", [str(i) * 30], invocation_id=str(i)))
        for i in range(1, 8)
    )
    assert len(chunk) > 300
    client.send_raw(chunk)
    assert (await client.wait_completion("7")).result == "7" * 30
    assert not client.ctx.closed


async def test_size_limit_detail_with_detailed_errors(make_handler):
    handler = make_handler(maximum_receive_message_size=100, detailed_errors=True)
    client = HubTestClient(handler)
    await client.connect()
    client.send_raw(b'{"type":1,"target":"Echo","arguments":["' + b"z" * 200)
    await settle()
    assert client.last_close().error == (
        "Connection closed with an error. InvalidDataException: The maximum message size of "
        "100B was exceeded. The message size can be configured in AddHubOptions."
    )


async def test_stalled_connection_is_aborted_and_others_are_not_delayed(make_handler):
    handler = make_handler(max_outgoing_buffer=1000)
    clients = [HubTestClient(handler) for _ in range(3)]
    for c in clients:
        await c.connect()
    stalled, a, b = clients
    stalled.ctx.stalled = True
    context = handler.hub_context
    for i in range(40):
        await context.clients.all.send("Tick", i, "p" * 20)
        # Delivered synchronously to the healthy ones: nothing waits for the stalled socket.
        assert len(a.ctx.sent) == len(b.ctx.sent) == i + 2
    assert stalled.ctx.aborted
    assert handler.stats.slow_consumer_aborts == 1
    assert handler.stats_snapshot()["slow_consumer_aborts"] == 1
    await wait_until(lambda: handler.connection_count() == 2)
    assert [m.arguments[0] for m in a.invocations()] == list(range(40))


async def test_broadcast_bytes_are_serialized_once_per_protocol(connect, handler):
    jsons = [await connect() for _ in range(3)]
    packs = [await connect("messagepack") for _ in range(2)]
    await handler.hub_context.clients.all.send("News", {"n": 1})
    json_frames = [c.ctx.sent[-1][0] for c in jsons]
    pack_frames = [c.ctx.sent[-1][0] for c in packs]
    # The very same bytes object reached every connection of a protocol.
    assert all(f is json_frames[0] for f in json_frames)
    assert all(f is pack_frames[0] for f in pack_frames)
    assert json_frames[0] == b'{"type":1,"target":"News","arguments":[{"n":1}]}\x1e'
    assert all(c.ctx.serialized_sends == 1 for c in jsons + packs)
