"""Long-polling shell (docs/spec/transports.md §2.4)."""

from __future__ import annotations

import asyncio

from hubserver.transports.long_polling import LongPollingTransport, respond_first_poll
from tests.hubserver.transports.fakes import FakeExchange, FakeOwner

NO_CACHE = {
    "Cache-Control": "no-cache, no-store",
    "Pragma": "no-cache",
    "Expires": "Thu, 01 Jan 1970 00:00:00 GMT",
}


def make(timeout: float = 90.0):
    owner = FakeOwner()
    return LongPollingTransport(owner, timeout), owner


def test_first_poll_is_an_immediate_empty_200() -> None:
    exchange = FakeExchange()
    respond_first_poll(exchange)
    assert (exchange.status, exchange.body, exchange.content_type) == (
        200,
        b"",
        "application/octet-stream",
    )
    assert dict(exchange.headers) == NO_CACHE


async def test_pending_data_is_returned_at_once() -> None:
    lp, owner = make()
    lp.send(b"a", False)
    lp.send(b"b", False)
    poll = FakeExchange()
    lp.poll(poll)
    assert (poll.status, poll.body) == (200, b"ab")
    assert dict(poll.headers) == NO_CACHE
    assert owner.activity == [False]


async def test_parked_poll_gets_the_data_of_one_tick() -> None:
    lp, owner = make()
    poll = FakeExchange()
    lp.poll(poll)
    assert poll.status is None and owner.activity == [True]
    lp.send(b"x", False)
    lp.send(b"y", False)
    await asyncio.sleep(0)
    assert (poll.status, poll.body) == (200, b"xy")
    assert owner.activity == [True, False]


async def test_idle_poll_returns_empty_200_after_the_poll_timeout() -> None:
    lp, owner = make(timeout=0.01)
    poll = FakeExchange()
    lp.poll(poll)
    await asyncio.sleep(0.05)
    assert (poll.status, poll.body) == (200, b"")
    assert owner.activity == [True, False]


async def test_newer_poll_displaces_the_older_with_204() -> None:
    lp, _ = make()
    old, new = FakeExchange(), FakeExchange()
    lp.poll(old)
    lp.poll(new)
    assert old.status == 204 and new.status is None


async def test_close_delivers_pending_then_ends_the_transport_and_later_polls_get_204() -> None:
    lp, owner = make()
    lp.send(b"close-message", False)
    lp.close()
    first = FakeExchange()
    lp.poll(first)
    assert (first.status, first.body) == (200, b"close-message")
    # Ended as soon as the final bytes went out: no waiting for another poll (server stops
    # would otherwise hang on clients that, having read the Close, never poll again).
    assert owner.closed == [(lp, True, None)]
    second = FakeExchange()
    lp.poll(second)
    assert second.status == 204
    assert owner.closed == [(lp, True, None)]


async def test_close_with_a_parked_poll_and_pending_bytes_ends_once_they_are_sent() -> None:
    lp, owner = make()
    poll = FakeExchange()
    lp.poll(poll)
    lp.send(b"close-message", False)
    lp.close()
    assert (poll.status, poll.body) == (200, b"close-message")
    assert owner.closed == [(lp, True, None)]


async def test_close_answers_a_parked_poll_with_204() -> None:
    lp, owner = make()
    poll = FakeExchange()
    lp.poll(poll)
    lp.close()
    assert poll.status == 204 and owner.closed == [(lp, True, None)]


async def test_abort_answers_a_parked_poll_with_204_without_telling_the_owner() -> None:
    lp, owner = make()
    poll = FakeExchange()
    lp.poll(poll)
    lp.abort()
    assert poll.status == 204 and owner.closed == []
    later = FakeExchange()
    lp.poll(later)
    assert later.status == 204


async def test_client_dropping_its_poll_makes_the_connection_inactive() -> None:
    lp, owner = make()
    poll = FakeExchange()
    lp.poll(poll)
    poll.disconnect()
    assert owner.activity == [True, False] and not lp.polling
