"""Coordinator pieces that need no server: target checks, worker planning, accounting."""

from __future__ import annotations

import pytest

from aiusage.loadtest.coordinator import (
    MAX_CONNS_PER_WORKER,
    Coordinator,
    LoadTestConfig,
    LoadTestError,
    delivery_accounting,
    parse_target,
)


def config(**kw: object) -> LoadTestConfig:
    base: dict[str, object] = {
        "url": "http://127.0.0.1:8080/hubs/analytics",
        "connections": 10,
        "orgs": ["a", "b"],
        "dashboard_tokens": {"a": "t", "b": "t"},
        "agent_tokens": {"a": "t", "b": "t"},
    }
    base.update(kw)
    return LoadTestConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:80/hubs/analytics",
        "http://example.com/h",
        "http://[::1]:80/h",
        "http://128.0.0.1/h",
        "ftp://127.0.0.1/h",
    ],
)
def test_non_loopback_targets_are_refused(url: str) -> None:
    with pytest.raises(LoadTestError):
        parse_target(url)


def test_loopback_targets_are_accepted_with_the_default_hub_path() -> None:
    assert parse_target("http://127.0.0.1:8080/hubs/analytics/") == (
        "127.0.0.1",
        8080,
        "/hubs/analytics",
    )
    assert parse_target("http://localhost:9") == ("127.0.0.1", 9, "/hubs/analytics")
    assert parse_target("http://127.3.2.1:1/x")[0] == "127.3.2.1"


def test_connections_are_split_over_workers_below_the_fd_budget() -> None:
    coord = Coordinator(config(connections=50_000))
    plan = coord._plan()
    assert sum(n for _, n in plan) == 50_000
    assert all(n <= MAX_CONNS_PER_WORKER for _, n in plan)
    firsts = [f for f, _ in plan]
    assert firsts == sorted(firsts) and firsts[0] == 0
    # Each worker gets its own source addresses.
    sources = [coord._client_config(w, f, n).sources for w, (f, n) in enumerate(plan)]
    flat = [s for group in sources for s in group]
    assert len(flat) == len(set(flat))
    assert all(s.startswith("127.0.0.") for s in flat)


def test_invalid_transport_or_protocol_is_refused() -> None:
    with pytest.raises(LoadTestError):
        Coordinator(config(transport="quic"))
    with pytest.raises(LoadTestError):
        Coordinator(config(protocol="xml"))


def test_accounting_counts_lost_and_duplicates_per_organization() -> None:
    finals = [
        {"orgs": {"a": [2, 20, 0], "b": [1, 9, 1]}, "transports": {"ws": 3}},
        {"orgs": {"a": [1, 10, 2]}, "transports": {"sse": 1}},
    ]
    acc = delivery_accounting(finals, {"a": 10, "b": 10})
    assert acc["expected"] == 40
    assert acc["received"] == 39
    assert acc["lost"] == 1
    assert acc["duplicates"] == 3
    assert acc["connections"] == 4
    assert acc["transports"] == {"ws": 3, "sse": 1}


def test_event_batches_carry_one_marker_per_event_with_increasing_sequence() -> None:
    coord = Coordinator(config())
    import json

    body = json.loads(coord._batch("a", 3))
    seqs = [e["sessionId"].split(".")[1] for e in body["events"]]
    assert seqs == ["1", "2", "3"]
    assert all(e["type"] == "SessionStarted" and len(e["sessionId"]) <= 64 for e in body["events"])
    assert coord.seq == {"a": 3, "b": 0}
