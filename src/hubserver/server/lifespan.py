"""ASGI lifespan protocol runner (startup/shutdown events for the fallback app)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from hubserver.types import ASGIApp, Message

logger = logging.getLogger("hubserver.server")


class LifespanError(RuntimeError):
    """The application reported ``lifespan.startup.failed`` or ``shutdown.failed``."""


class Lifespan:
    """Runs one ``lifespan`` scope for the life of the server.

    Apps that do not support lifespan (raise before receiving ``lifespan.startup``) are
    tolerated, as uvicorn's ``lifespan="auto"`` does.

    Args:
        app: The ASGI application.
        timeout: Seconds to wait for each of startup and shutdown.
    """

    def __init__(self, app: ASGIApp, timeout: float = 30.0) -> None:
        self.app = app
        self.timeout = timeout
        self.state: dict[str, Any] = {}
        self._receive: asyncio.Queue[Message] = asyncio.Queue()
        self._sent: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._supported = True
        self._started = False

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._receive.get, self._send)
        except BaseException as exc:
            if not self._started:
                self._supported = False
                logger.debug("ASGI app does not support lifespan: %r", exc)
            else:
                logger.exception("ASGI lifespan task failed")
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            # Unblock whoever waits for a lifespan answer.
            self._sent.put_nowait({"type": "lifespan.exited"})

    async def _send(self, message: Message) -> None:
        await self._sent.put(message)

    async def startup(self) -> None:
        """Send ``lifespan.startup`` and wait for the answer.

        Raises:
            LifespanError: the app reported ``lifespan.startup.failed``.
        """
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._receive.put({"type": "lifespan.startup"})
        message = await asyncio.wait_for(self._sent.get(), self.timeout)
        if message["type"] == "lifespan.startup.complete":
            self._started = True
        elif message["type"] == "lifespan.startup.failed":
            raise LifespanError(message.get("message", ""))

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait for the answer (no-op if unsupported)."""
        task = self._task
        if task is None:
            return
        if self._supported and self._started and not task.done():
            await self._receive.put({"type": "lifespan.shutdown"})
            try:
                message = await asyncio.wait_for(self._sent.get(), self.timeout)
            except TimeoutError:
                logger.error("ASGI lifespan shutdown timed out")
            else:
                if message["type"] == "lifespan.shutdown.failed":
                    logger.error("ASGI lifespan shutdown failed: %s", message.get("message"))
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
