"""Bookkeeping of one connection's running invocations: ids in use, streams, uploads, results.

The connection parses messages and the dispatcher runs methods; both record here what is
running, so that a reused id is refused, a CancelInvocation finds its stream, a StreamItem
finds its upload, a Completion finds the client-result call waiting for it, and a disconnect
ends all of them at once (docs/spec/hub-protocol.md §3.4).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from hubserver.errors import HubError
from hubserver.hub.upload import UploadStream
from hubserver.protocol.messages import CompletionMessage

__all__ = ["InvocationTracker"]


class InvocationTracker:
    """What one connection has running (cf. HubConnectionContext's stream tracker and
    ActiveInvocations).

    Args:
        capacity: Items an upload stream buffers (``HubOptions.stream_buffer_capacity``).
        on_space: Called when an upload stream may have room again (a full one was read from,
            or uploads were discarded); the connection resumes parsing input if it paused.
        on_cancelled: Called with the id of a stream cancelled before its first step, which
            still owes the client its final Completion.
    """

    __slots__ = (
        "_active",
        "_capacity",
        "_early_cancels",
        "_on_cancelled",
        "_on_space",
        "_results",
        "_streams",
        "_uploads",
    )

    def __init__(
        self,
        capacity: int,
        on_space: Callable[[], None],
        on_cancelled: Callable[[str], None],
    ) -> None:
        self._capacity = capacity
        self._on_space = on_space
        self._on_cancelled = on_cancelled
        self._active: set[str] = set()
        self._early_cancels: set[str] = set()
        self._streams: dict[str, asyncio.Task[None]] = {}
        self._uploads: dict[str, UploadStream] = {}
        self._results: dict[str, asyncio.Future[Any]] = {}

    # -- invocation ids ----------------------------------------------------------------------

    @property
    def active_ids(self) -> frozenset[str]:
        """Invocation ids currently running (blocking calls, streams, uploads)."""
        return frozenset(self._active)

    def in_use(self, invocation_id: str) -> bool:
        """True while a call or stream with this id is still running."""
        return invocation_id in self._active or invocation_id in self._streams

    def begin(self, invocation_id: str) -> None:
        """A blocking invocation with this id started (ended by :meth:`end`)."""
        self._early_cancels.discard(invocation_id)
        self._active.add(invocation_id)

    def end(self, invocation_id: str) -> None:
        """The invocation started by :meth:`begin` finished."""
        self._active.discard(invocation_id)

    def track_background(
        self, invocation_id: str, task: asyncio.Task[None], is_stream: bool
    ) -> None:
        """Record a stream or upload invocation running beside the ordered dispatch; its id
        stays in use until the task ends, and a stream can be cancelled by id meanwhile."""
        self._active.add(invocation_id)
        if is_stream:
            self._streams[invocation_id] = task
            if invocation_id in self._early_cancels:
                self.cancel_stream(invocation_id)
        self._early_cancels.discard(invocation_id)

        def _done(t: asyncio.Task[None]) -> None:
            self._active.discard(invocation_id)
            if self._streams.get(invocation_id) is t:
                del self._streams[invocation_id]
                if t.cancelled():
                    # Cancelled before its first step: the stream never ran, but the client
                    # still gets its final Completion (as after any CancelInvocation).
                    self._on_cancelled(invocation_id)

        task.add_done_callback(_done)

    def cancel_when_started(self, invocation_id: str) -> None:
        """CancelInvocation for a stream still queued behind other invocations: it is cancelled
        as soon as it starts (the dispatcher would otherwise start it after the cancel was
        dropped as unknown). The id is forgotten when any invocation with it starts."""
        self._early_cancels.add(invocation_id)

    def cancel_stream(self, invocation_id: str) -> None:
        """CancelInvocation: cancel the stream with this id; other ids are ignored."""
        task = self._streams.get(invocation_id)
        if task is not None:
            # Deferred one loop turn: a task that has not taken its first step yet would be
            # cancelled before its coroutine starts, so the method would never be called and
            # no Completion sent. Its first step is already queued ahead of this callback, so
            # the method runs and then sees the cancellation, as a .NET stream method sees its
            # token cancelled (docs/spec/hub-protocol.md §3.4).
            task.get_loop().call_soon(task.cancel)

    # -- upload streams ----------------------------------------------------------------------

    def open_uploads(self, stream_ids: Iterable[str]) -> None:
        """Create the channels of an arriving invocation: items may come before it runs."""
        uploads = self._uploads
        for sid in stream_ids:
            if sid not in uploads:
                uploads[sid] = UploadStream(self._capacity, self._on_space)

    def take_upload(self, stream_id: str) -> UploadStream:
        """The channel of ``stream_id`` (created when its invocation arrived)."""
        upload = self._uploads.get(stream_id)
        if upload is None:
            upload = self._uploads[stream_id] = UploadStream(self._capacity, self._on_space)
        return upload

    def push_item(self, stream_id: str, item: Any) -> bool:
        """Hand a StreamItem to its upload; False when that upload is now full (unknown ids
        are ignored)."""
        upload = self._uploads.get(stream_id)
        return upload is None or upload.push(item)

    def uploads_full(self) -> bool:
        """True while some upload's consumer lags its full capacity behind."""
        return any(u.full for u in self._uploads.values())

    def discard_uploads(self, stream_ids: Iterable[str]) -> None:
        """Forget upload channels once their invocation ended or failed to start."""
        for sid in stream_ids:
            upload = self._uploads.pop(sid, None)
            if upload is not None:
                upload.complete(None)
        self._on_space()

    # -- client results ----------------------------------------------------------------------

    def expect_result(self, invocation_id: str) -> asyncio.Future[Any]:
        """A future resolved by the client's Completion for ``invocation_id``."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._results[invocation_id] = future
        return future

    def drop_result(self, invocation_id: str) -> None:
        """Stop waiting for ``invocation_id`` (answered, timed out or abandoned)."""
        self._results.pop(invocation_id, None)

    @property
    def pending_results(self) -> int:
        """Client-result calls still waiting for their Completion."""
        return len(self._results)

    def on_completion(self, message: CompletionMessage) -> None:
        """A client Completion: the answer to a client-result call, or the end of an upload.

        Unknown ids are ignored (docs/spec/hub-protocol.md §3.4).
        """
        iid = message.invocation_id
        future = self._results.pop(iid, None)
        if future is not None:
            if not future.done():
                if message.error is not None:
                    future.set_exception(HubError(message.error))
                else:
                    future.set_result(message.result)
            return
        upload = self._uploads.get(iid)
        if upload is not None:
            upload.complete(message.error)

    # -- disconnect --------------------------------------------------------------------------

    def abort_all(self, error: str) -> None:
        """The connection ended: cancel streams, end uploads and client-result calls with
        ``error``."""
        for task in self._streams.values():
            task.cancel()
        for upload in self._uploads.values():
            upload.complete(error)
        for future in self._results.values():
            if not future.done():
                future.set_exception(HubError(error))
