"""DashboardUpdate coalescing: at most one push per org per interval, never staler."""

from __future__ import annotations

import asyncio

from aiusage.metrics.coalescer import CoalescingSchedule, DashboardCoalescer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingPublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict, float]] = []
        self.clock: FakeClock | None = None

    async def dashboard_update(self, org_id, snapshot) -> None:
        self.sent.append((org_id, dict(snapshot), self.clock.now if self.clock else 0.0))


def make(interval: float = 1.0):
    clock = FakeClock()
    publisher = RecordingPublisher()
    publisher.clock = clock
    version = {"n": 0}

    async def snapshot(org: str) -> dict:
        return {"org": org, "version": version["n"]}

    return (
        DashboardCoalescer(snapshot, publisher, interval=interval, clock=clock),
        clock,
        publisher,
        version,
    )


async def test_first_change_after_quiet_period_is_pushed_at_once():
    coalescer, clock, publisher, _ = make()
    coalescer.mark_dirty("a")
    assert await coalescer.flush_due() == ["a"]
    assert [(o, t) for o, _, t in publisher.sent] == [("a", 1000.0)]


async def test_changes_within_the_interval_are_folded_into_one_push_at_its_end():
    coalescer, clock, publisher, version = make()
    coalescer.mark_dirty("a")
    await coalescer.flush_due()
    for step in range(9):  # nine changes in the next 0.9 s
        clock.now += 0.1
        version["n"] = step + 1
        coalescer.mark_dirty("a")
        assert await coalescer.flush_due() == []
    assert coalescer.schedule.next_deadline() == 1001.0
    clock.now = 1001.0
    assert await coalescer.flush_due() == ["a"]
    assert [(t, s["version"]) for _, s, t in publisher.sent] == [(1000.0, 0), (1001.0, 9)]


async def test_no_push_without_a_change_and_organizations_are_independent():
    coalescer, clock, publisher, _ = make()
    coalescer.mark_dirty("a")
    await coalescer.flush_due()
    clock.now += 0.2
    coalescer.mark_dirty("b")  # b was quiet: pushed immediately although a just was
    assert await coalescer.flush_due() == ["b"]
    clock.now += 5
    assert await coalescer.flush_due() == []
    assert [o for o, _, _ in publisher.sent] == ["a", "b"]


async def test_a_change_during_the_snapshot_query_gets_its_own_push():
    clock = FakeClock()
    publisher = RecordingPublisher()
    coalescer: DashboardCoalescer

    async def snapshot(org: str) -> dict:
        coalescer.mark_dirty(org)  # a commit lands while we read
        return {}

    coalescer = DashboardCoalescer(snapshot, publisher, interval=1.0, clock=clock)
    coalescer.mark_dirty("a")
    await coalescer.flush_due()
    assert coalescer.schedule.dirty == {"a"}
    assert coalescer.schedule.next_deadline() == 1001.0


async def test_pushes_are_never_closer_than_the_interval_under_constant_changes():
    schedule = CoalescingSchedule(1.0)
    pushes: list[float] = []
    now = 0.0
    for _ in range(1000):  # a change every 10 ms for 10 s
        schedule.mark("a")
        if schedule.take_due(now):
            pushes.append(now)
        now = round(now + 0.01, 2)
    gaps = [b - a for a, b in zip(pushes, pushes[1:], strict=False)]
    assert len(pushes) == 10
    assert all(abs(g - 1.0) < 1e-9 for g in gaps)


async def test_a_failing_snapshot_does_not_block_other_organizations():
    clock = FakeClock()
    publisher = RecordingPublisher()

    async def snapshot(org: str) -> dict:
        if org == "bad":
            raise RuntimeError("boom")
        return {}

    coalescer = DashboardCoalescer(snapshot, publisher, clock=clock)
    coalescer.mark_dirty("bad")
    coalescer.mark_dirty("good")
    assert await coalescer.flush_due() == ["bad", "good"]
    assert [o for o, _, _ in publisher.sent] == ["good"]


async def test_the_background_task_pushes_a_marked_organization_and_stops_cleanly():
    coalescer, clock, publisher, _ = make()
    await coalescer.start()
    coalescer.mark_dirty("a")
    for _ in range(20):  # bounded: a few loop turns, no sleeping
        if publisher.sent:
            break
        await asyncio.sleep(0)
    await coalescer.stop()
    assert [o for o, _, _ in publisher.sent] == ["a"]
    assert coalescer.published == 1


async def test_snapshots_keep_to_their_share_of_the_process_under_overload():
    clock = FakeClock()
    publisher = RecordingPublisher()
    publisher.clock = clock
    sleeps: list[float] = []

    async def snapshot(org: str) -> dict:
        clock.now += 0.010  # each snapshot costs 10 ms
        return {"org": org}

    async def sleep(seconds: float) -> None:
        sleeps.append(round(seconds, 6))
        clock.now += seconds

    coalescer = DashboardCoalescer(snapshot, publisher, clock=clock, max_share=0.25, sleep=sleep)
    for org in ("a", "b", "c"):
        coalescer.mark_dirty(org)
    assert await coalescer.flush_due() == ["a", "b", "c"]
    # 10 ms of work then 30 ms of pause each: snapshots use a quarter of the time.
    assert sleeps == [0.03, 0.03, 0.03]
    coalescer.mark_dirty("d")  # a single due org (leading edge) is never delayed
    clock.now += 1
    sleeps.clear()
    await coalescer.flush_due()
    assert sleeps == []
