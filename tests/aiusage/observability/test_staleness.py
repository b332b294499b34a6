"""DashboardUpdate staleness (aiusage.observability.staleness)."""

from __future__ import annotations

from typing import Any

from tests.support.hub_client import FakeClock

from aiusage.observability.staleness import DashboardStaleness


class Marker:
    def __init__(self) -> None:
        self.marked: list[str] = []

    def mark_dirty(self, org_id: str) -> None:
        self.marked.append(org_id)


class Publisher:
    def __init__(self) -> None:
        self.pushed: list[str] = []

    async def dashboard_update(self, org_id: str, snapshot: Any) -> None:
        self.pushed.append(org_id)


async def test_staleness_runs_from_the_first_unpushed_change_to_the_push():
    clock = FakeClock(100.0)
    staleness = DashboardStaleness(clock)
    inner_marker, inner_publisher = Marker(), Publisher()
    marker = staleness.marker(inner_marker)
    publisher = staleness.publisher(inner_publisher)

    marker.mark_dirty("acme")
    clock.advance(0.3)
    marker.mark_dirty("acme")  # folded into the same push: the first change counts
    assert abs(staleness.oldest_pending_age() - 0.3) < 1e-9
    clock.advance(0.9)
    await publisher.dashboard_update("acme", {})

    assert inner_marker.marked == ["acme", "acme"] and inner_publisher.pushed == ["acme"]
    hist = staleness.histogram
    assert hist.count == 1 and abs(hist.sum - 1.2) < 1e-9
    assert staleness.oldest_pending_age() == 0.0


async def test_a_push_without_a_recorded_change_observes_nothing():
    staleness = DashboardStaleness(FakeClock())
    await staleness.publisher(Publisher()).dashboard_update("acme", {})
    assert staleness.histogram.count == 0
