"""InvocationTracker: ids in use, background tasks, uploads, client results, abort."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from hubserver.errors import HubError
from hubserver.hub.tracker import InvocationTracker
from hubserver.protocol.messages import CompletionMessage


class Events:
    """Records the tracker's callbacks."""

    def __init__(self) -> None:
        self.space = 0
        self.cancelled: list[str] = []

    def on_space(self) -> None:
        self.space += 1

    def tracker(self, capacity: int = 2) -> InvocationTracker:
        return InvocationTracker(capacity, self.on_space, self.cancelled.append)


async def test_a_blocking_invocation_id_is_in_use_until_it_ends() -> None:
    tracker = Events().tracker()
    tracker.begin("1")
    assert tracker.in_use("1")
    assert tracker.active_ids == frozenset({"1"})
    tracker.end("1")
    assert not tracker.in_use("1")
    assert tracker.active_ids == frozenset()


async def test_a_background_stream_is_cancellable_by_id_and_frees_its_id() -> None:
    events = Events()
    tracker = events.tracker()
    started = asyncio.Event()

    async def stream() -> None:
        started.set()
        # As the dispatcher's streams: they end and send their own Completion.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)

    task = asyncio.get_running_loop().create_task(stream())
    tracker.track_background("7", task, is_stream=True)
    await started.wait()
    assert tracker.in_use("7")
    tracker.cancel_stream("unknown")  # ignored
    tracker.cancel_stream("7")
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)
    assert not tracker.in_use("7")
    # It had started: the stream itself sends its final Completion, not the tracker.
    assert events.cancelled == []


async def test_a_stream_cancelled_before_its_first_step_still_owes_a_completion() -> None:
    events = Events()
    tracker = events.tracker()

    async def never_runs() -> None:  # pragma: no cover - cancelled before the first step
        await asyncio.sleep(3600)

    task = asyncio.get_running_loop().create_task(never_runs())
    tracker.track_background("9", task, is_stream=True)
    tracker.cancel_stream("9")
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)
    assert events.cancelled == ["9"]


async def test_an_upload_invocation_is_not_cancellable() -> None:
    events = Events()
    tracker = events.tracker()
    gate = asyncio.Event()

    async def upload() -> None:
        await gate.wait()

    task = asyncio.get_running_loop().create_task(upload())
    tracker.track_background("u", task, is_stream=False)
    tracker.cancel_stream("u")
    await asyncio.sleep(0)
    assert not task.cancelled()
    assert tracker.in_use("u")
    gate.set()
    await task
    await asyncio.sleep(0)
    assert not tracker.in_use("u")


async def test_uploads_buffer_items_report_full_and_signal_space() -> None:
    events = Events()
    tracker = events.tracker(capacity=2)
    tracker.open_uploads(["s"])
    assert tracker.push_item("s", 1)
    assert not tracker.push_item("s", 2)  # now full
    assert tracker.uploads_full()
    assert tracker.push_item("unknown", 3)  # ignored, never blocks input
    upload = tracker.take_upload("s")
    assert await upload.__anext__() == 1  # reading from a full upload frees space
    assert events.space == 1
    assert not tracker.uploads_full()
    tracker.on_completion(CompletionMessage.empty("s"))
    assert await upload.__anext__() == 2
    with pytest.raises(StopAsyncIteration):
        await upload.__anext__()


async def test_discarding_uploads_ends_them_and_signals_space() -> None:
    events = Events()
    tracker = events.tracker()
    tracker.open_uploads(["a", "b"])
    upload = tracker.take_upload("a")
    tracker.discard_uploads(["a", "b"])
    assert events.space == 1
    with pytest.raises(StopAsyncIteration):
        await upload.__anext__()
    assert tracker.take_upload("a") is not upload  # forgotten: a new channel


async def test_a_failed_upload_raises_the_clients_error_in_the_method() -> None:
    tracker = Events().tracker()
    tracker.open_uploads(["s"])
    tracker.on_completion(CompletionMessage.with_error("s", "client broke"))
    with pytest.raises(HubError, match="client broke"):
        await tracker.take_upload("s").__anext__()


async def test_client_results_resolve_by_id_and_unknown_ids_are_ignored() -> None:
    tracker = Events().tracker()
    ok = tracker.expect_result("s1")
    bad = tracker.expect_result("s2")
    assert tracker.pending_results == 2
    tracker.on_completion(CompletionMessage.with_result("nobody", 0))
    tracker.on_completion(CompletionMessage.with_result("s1", 42))
    tracker.on_completion(CompletionMessage.with_error("s2", "no"))
    assert await ok == 42
    with pytest.raises(HubError, match="no"):
        await bad
    assert tracker.pending_results == 0
    late = tracker.expect_result("s3")
    tracker.drop_result("s3")
    tracker.on_completion(CompletionMessage.with_result("s3", 1))
    assert not late.done()


async def test_abort_all_ends_streams_uploads_and_waiting_results_with_the_error() -> None:
    tracker = Events().tracker()
    stream = asyncio.get_running_loop().create_task(asyncio.sleep(3600))
    tracker.track_background("1", stream, is_stream=True)
    tracker.open_uploads(["s"])
    result = tracker.expect_result("r")
    tracker.abort_all("Connection disconnected.")
    await asyncio.gather(stream, return_exceptions=True)
    assert stream.cancelled()
    with pytest.raises(HubError, match="Connection disconnected."):
        await tracker.take_upload("s").__anext__()
    with pytest.raises(HubError, match="Connection disconnected."):
        await result
