"""The sender against a fake ingestion endpoint we own (httpx.MockTransport handler)."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from aiusage.agent.queue import Outbox
from aiusage.agent.sender import Sender, TokenRevoked, TransientFailure

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


class FakeServer:
    """Stores events idempotently by id, like the real ingestion API; can be switched down."""

    def __init__(self) -> None:
        self.stored: dict[str, dict] = {}
        self.down = False
        self.status: int | None = None
        self.date = NOW
        self.requests = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        headers = {"date": self.date.strftime("%a, %d %b %Y %H:%M:%S GMT")}
        if self.status is not None:
            return httpx.Response(self.status, headers=headers, json={"detail": "x"})
        assert request.headers["authorization"] == "Bearer tok"
        events = httpx.Response(200, content=request.content).json()["events"]
        bad = [
            {"index": i, "eventId": e["eventId"], "errors": ["bad"]}
            for i, e in enumerate(events)
            if e.get("bad")
        ]
        if bad:
            return httpx.Response(422, headers=headers, json={"detail": bad})
        for e in events:
            self.stored.setdefault(e["eventId"], e)
        return httpx.Response(200, headers=headers, json={"accepted": len(events)})


def make(tmp_path, server, **kw):
    q = Outbox(tmp_path / "q.db")
    client = httpx.AsyncClient(transport=httpx.MockTransport(server.handler))
    sleeps = []

    async def sleep(s):
        sleeps.append(s)
        if len(sleeps) == 3:
            server.down = False  # the outage ends after three backoffs

    sender = Sender("http://srv", "tok", q, client, now=lambda: NOW, sleep=sleep, **kw)
    return q, sender, sleeps


def ev(i, **extra):
    return {
        "eventId": f"e{i}",
        "type": "AIDetected",
        "occurredAt": "2026-11-26T09:00:00Z",
        "userId": "u",
        "tool": "Claude",
        "duration": 1.0,
        **extra,
    }


async def test_drain_delivers_everything_in_batches(tmp_path):
    server = FakeServer()
    q, sender, _ = make(tmp_path, server, batch_size=10)
    q.put([ev(i) for i in range(25)])
    await sender.drain()
    assert len(server.stored) == 25 and len(q) == 0
    assert server.requests == 3


async def test_outage_loses_and_duplicates_nothing(tmp_path):
    server = FakeServer()
    q, sender, sleeps = make(tmp_path, server, batch_size=10)
    q.put([ev(i) for i in range(15)])
    server.down = True
    await sender.drain()
    assert len(sleeps) == 3  # backed off while down
    assert all(0 < s <= 60 for s in sleeps)
    assert sorted(server.stored) == sorted(f"e{i}" for i in range(15))
    assert len(q) == 0


async def test_revoked_token_stops_sending_and_keeps_events(tmp_path):
    server = FakeServer()
    server.status = 401
    q, sender, _ = make(tmp_path, server)
    q.put([ev(1)])
    with pytest.raises(TokenRevoked):
        await sender.send_once()
    assert len(q) == 1


async def test_server_error_is_transient(tmp_path):
    server = FakeServer()
    server.status = 503
    q, sender, _ = make(tmp_path, server)
    q.put([ev(1)])
    with pytest.raises(TransientFailure):
        await sender.send_once()
    assert len(q) == 1


async def test_refused_events_are_dropped_and_the_rest_delivered(tmp_path):
    server = FakeServer()
    q, sender, _ = make(tmp_path, server)
    q.put([ev(1), ev(2, bad=True), ev(3)])
    await sender.drain()
    assert sorted(server.stored) == ["e1", "e3"]
    assert sender.dropped == 1 and len(q) == 0


async def test_clock_skew_shifts_timestamps_to_server_time(tmp_path):
    server = FakeServer()
    server.date = NOW + timedelta(minutes=10)  # workstation clock is 10 minutes slow
    q, sender, _ = make(tmp_path, server)
    q.put([ev(1)])
    await sender.drain()  # first answer teaches the offset
    q.put([ev(2)])
    await sender.drain()
    assert server.stored["e1"]["occurredAt"] == "2026-11-26T09:00:00Z"
    assert server.stored["e2"]["occurredAt"] == "2026-11-26T09:10:00Z"
