"""Run a serving process: pick the event loop, start, wait for SIGINT/SIGTERM, stop gracefully.

The one runner of the code base: :meth:`HubServer.serve <hubserver.server.server.HubServer.serve>`
and applications built on hubserver (the aiusage platform) use it, so signal handling and the
event-loop choice live in one place::

    from hubserver.server.runner import run, serve_until_stopped

    async def main() -> None:
        await serve_until_stopped(app.start, app.stop)

    run(main())  # uvloop; run(main(), event_loop="asyncio") for asyncio's own loop
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["STOP_SIGNALS", "EventLoop", "run", "serve_until_stopped"]

logger = logging.getLogger("hubserver.server")

T = TypeVar("T")

EventLoop = Literal["uvloop", "asyncio"]
"""``uvloop`` (the fast path, a pinned dependency) or ``asyncio`` (the standard loop)."""

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
"""Signals that ask a serving process to stop gracefully."""


async def serve_until_stopped(
    start: Callable[[], Awaitable[None]],
    stop: Callable[[], Awaitable[None]],
    *,
    stop_event: asyncio.Event | None = None,
    on_started: Callable[[], object] | None = None,
    install_signal_handlers: bool = True,
) -> None:
    """Start, run until a stop signal arrives or ``stop_event`` is set, then stop.

    ``stop`` always runs, also when ``start`` or ``on_started`` raised (it must therefore
    tolerate a partial start). Signal handlers are installed before ``start`` so a signal
    during a slow start still stops the process, and removed before ``stop``.

    Args:
        start: Brings the service up.
        stop: Graceful stop.
        stop_event: Set it to stop without a signal; a fresh event when None.
        on_started: Called after ``start``; awaited when it returns an awaitable.
        install_signal_handlers: False when the caller owns signals (tests, embedding).
    """
    event = stop_event if stop_event is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    if install_signal_handlers:
        for sig in STOP_SIGNALS:
            # Not available off the main thread or on some platforms: then only stop_event
            # stops the service.
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, event.set)
                installed.append(sig)
    try:
        await start()
        if on_started is not None:
            result = on_started()
            if inspect.isawaitable(result):
                await result
        await event.wait()
        logger.info("shutting down")
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await stop()


def run(main: Coroutine[Any, Any, T], *, event_loop: EventLoop = "uvloop") -> T:
    """Run ``main`` to completion on a new event loop and return its result.

    Args:
        main: The process's top-level coroutine (typically one awaiting
            :func:`serve_until_stopped`).
        event_loop: ``uvloop`` (falls back to asyncio's loop if uvloop is not installed) or
            ``asyncio``.
    """
    if event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a pinned dependency
            pass
        else:
            result: T = uvloop.run(main)
            return result
    return asyncio.run(main)
