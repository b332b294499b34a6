"""The per-connection inbound budget (HubOptions.max_receive_*): a flooding connection is
closed with a clear error, one log line, and the other connections are not affected."""

from __future__ import annotations

import logging

import pytest

from hubserver.protocol.messages import PING, CloseMessage, InvocationMessage
from tests.hubserver.hub.conftest import ClientFactory, Factory
from tests.support.hub_client import FakeClock, HubTestClient, settle

FLOOD_TEXT = (
    "Connection closed with an error. Inbound message budget exceeded: "
    "more than 100 messages per second."
)


def budget_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("hub.inbound_budget_exceeded")]


async def test_a_burst_over_the_budget_closes_the_connection_once(
    connect: ClientFactory, handler, caplog: pytest.LogCaptureFixture
) -> None:
    flooder = await connect()
    other = await connect()
    caplog.set_level(logging.INFO, "hubserver.hub")
    # 201 Pings in one WebSocket message: one more than the burst of 200.
    flooder.send_raw(flooder.protocol.write(PING) * 201)
    await settle()
    close = flooder.last_close()
    assert close == CloseMessage(error=FLOOD_TEXT, allow_reconnect=False)
    assert flooder.ctx.closed
    assert handler.stats.inbound_budget_closes == 1
    assert len(budget_lines(caplog)) == 1
    assert "connection_id=" + flooder.connection_id in budget_lines(caplog)[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # Further bytes from the closed connection are ignored, and nobody else is affected.
    flooder.send_raw(flooder.protocol.write(PING) * 500)
    assert handler.stats.inbound_budget_closes == 1
    assert (await other.invoke("echo", "still here")).result == "still here"


async def test_the_flooded_batch_is_not_dispatched(connect: ClientFactory) -> None:
    client = await connect()
    messages = [InvocationMessage("nothing", []) for _ in range(201)]
    client.send_raw(b"".join(client.protocol.write(m) for m in messages))
    await settle()
    from tests.hubserver.hub.conftest import SampleHub

    assert SampleHub.log == []
    assert client.last_close().error == FLOOD_TEXT


async def test_a_steady_rate_within_the_budget_is_never_closed(
    connect: ClientFactory, clock: FakeClock, handler
) -> None:
    client = await connect()
    ping = client.protocol.write(PING)
    # An initial burst of 190, then 11 s at ~91 messages/s (one every 11 ms).
    client.send_raw(ping * 190)
    for _ in range(1000):
        clock.advance(0.011)
        client.send_raw(ping)
    await settle()
    assert not client.ctx.closed
    assert handler.stats.inbound_budget_closes == 0
    assert handler.stats.messages_received == 1190
    # The bucket holds at most the burst: 200 more at once are fine, 20 more are not.
    clock.advance(10.0)
    client.send_raw(ping * 200)
    await settle()
    assert not client.ctx.closed
    client.send_raw(ping * 20)
    await settle()
    assert client.last_close().error == FLOOD_TEXT


async def test_the_byte_budget_closes_a_connection_sending_too_much_data(
    make_handler: Factory, clock: FakeClock
) -> None:
    handler = make_handler(
        maximum_receive_message_size=1024,
        max_receive_messages_per_second=None,
        max_receive_bytes_per_second=2048,
    )
    client = HubTestClient(handler)
    await client.connect()
    big = client.protocol.write(InvocationMessage("echo", ["x" * 900], "1"))
    client.send_raw(big * 2)  # ~1.9 KB: within one second's worth
    await client.wait_completion("1")
    clock.advance(0.1)
    client.send_raw(big * 2)
    await settle()
    assert client.last_close().error == (
        "Connection closed with an error. Inbound message budget exceeded: "
        "more than 2048 bytes per second."
    )


async def test_no_budget_means_no_limit(make_handler: Factory) -> None:
    handler = make_handler(max_receive_messages_per_second=None, max_receive_bytes_per_second=None)
    client = HubTestClient(handler)
    await client.connect()
    client.send_raw(client.protocol.write(PING) * 5000)
    await settle()
    assert not client.ctx.closed
    assert handler.stats.messages_received == 5000
    # The same flood with the default options is refused.
    limited = HubTestClient(make_handler())
    await limited.connect()
    limited.send_raw(limited.protocol.write(PING) * 5000)
    await settle()
    assert limited.last_close().error == FLOOD_TEXT
