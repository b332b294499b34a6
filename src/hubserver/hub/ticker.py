"""One periodic task per handler that drives every connection's timers.

Per-connection timers would cost one timer handle (or task) per idle connection; ASP.NET Core
likewise scans all connections from one 1 s heartbeat (HttpConnectionManager).
The task exists only while there is something to watch and ends on its own otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from hubserver.hub import _log

__all__ = ["Ticker"]


class Ticker:
    """Calls ``callback`` every ``interval`` seconds while ``has_work()`` is true.

    Args:
        callback: Work for one tick (synchronous, must not block).
        has_work: Whether the ticker should keep running.
        interval: Period in seconds (1 s, as .NET's heartbeat).
        enabled: False disables the background task; tests then call ``callback`` directly.
    """

    __slots__ = ("_callback", "_enabled", "_has_work", "_interval", "_task")

    def __init__(
        self,
        callback: Callable[[], None],
        has_work: Callable[[], bool],
        interval: float = 1.0,
        enabled: bool = True,
    ) -> None:
        self._callback = callback
        self._has_work = has_work
        self._interval = interval
        self._enabled = enabled
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """True while the background task is alive."""
        return self._task is not None and not self._task.done()

    def ensure_running(self) -> None:
        """Start the task if enabled and not running (needs a running event loop)."""
        if not self._enabled or self.running:
            return
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._has_work():
            await asyncio.sleep(self._interval)
            try:
                self._callback()
            except Exception:
                # A bug in one tick must not stop keep-alives for everyone.
                _log.logger.exception(_log.TICK_FAILED)

    async def stop(self) -> None:
        """Cancel the task and wait for it."""
        task = self._task
        self._task = None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
