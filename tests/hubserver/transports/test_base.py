"""WriteCoalescer (transports/base.py): one flush per marked transport per tick, in slices so
that a broadcast to thousands of connections does not hold the loop for the whole fan-out."""

import asyncio

from hubserver.transports.base import FLUSH_BUDGET_S, FLUSH_CHECK, FLUSH_SLICE, WriteCoalescer


class Item:
    def __init__(self, log: list[int], index: int) -> None:
        self.log = log
        self.index = index

    def flush(self) -> None:
        self.log.append(self.index)


def frozen() -> float:
    return 0.0


async def test_a_large_fan_out_is_flushed_in_slices_with_the_loop_running_in_between():
    coalescer = WriteCoalescer(asyncio.get_running_loop(), clock=frozen)
    flushed: list[int] = []
    count = 2 * FLUSH_SLICE + 200
    for i in range(count):
        coalescer.mark(Item(flushed, i))
    seen_by_other_callback: list[int] = []
    asyncio.get_running_loop().call_soon(lambda: seen_by_other_callback.append(len(flushed)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert seen_by_other_callback == [FLUSH_SLICE]  # it ran after one slice, not after all
    assert flushed == list(range(count))  # every item once, in mark order


async def test_items_marked_during_a_sliced_flush_follow_the_rest():
    coalescer = WriteCoalescer(asyncio.get_running_loop(), clock=frozen)
    flushed: list[int] = []
    for i in range(FLUSH_SLICE + 10):
        coalescer.mark(Item(flushed, i))
    asyncio.get_running_loop().call_soon(lambda: coalescer.mark(Item(flushed, -1)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert flushed == [*range(FLUSH_SLICE + 10), -1]


async def test_a_small_tick_is_one_pass():
    coalescer = WriteCoalescer(asyncio.get_running_loop())
    flushed: list[int] = []
    for i in range(10):
        coalescer.mark(Item(flushed, i))
    generation = coalescer.generation
    await asyncio.sleep(0)
    assert flushed == list(range(10)) and coalescer.generation == generation + 1


class SlowItem(Item):
    """A flush that takes 1 ms of the coalescer's clock (a socket write on a loaded machine)."""

    def __init__(self, log: list[int], index: int, clock: list[float]) -> None:
        super().__init__(log, index)
        self.clock = clock

    def flush(self) -> None:
        super().flush()
        self.clock[0] += 0.001


async def test_a_slice_also_ends_when_its_time_budget_is_spent():
    now = [0.0]
    coalescer = WriteCoalescer(asyncio.get_running_loop(), clock=lambda: now[0])
    flushed: list[int] = []
    count = FLUSH_SLICE
    for i in range(count):
        coalescer.mark(SlowItem(flushed, i, now))
    seen_by_other_callback: list[int] = []
    asyncio.get_running_loop().call_soon(lambda: seen_by_other_callback.append(len(flushed)))
    while len(flushed) < count:
        await asyncio.sleep(0)
    # The clock is looked at every FLUSH_CHECK items: the first multiple past the budget.
    budget_items = -(-round(FLUSH_BUDGET_S / 0.001) // FLUSH_CHECK) * FLUSH_CHECK
    assert seen_by_other_callback == [budget_items]
    assert budget_items < FLUSH_SLICE and flushed == list(range(count))
