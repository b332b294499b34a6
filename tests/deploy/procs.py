"""Reading JSON lines from a child process with timeouts (no unbounded blocking reads)."""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any


class LineReader:
    """Collects the JSON lines a child prints on stdout, from a daemon thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "garbage", "line": line}
            self._queue.put(event)

    def drain(self) -> list[dict[str, Any]]:
        """Every event received so far."""
        while True:
            try:
                self.events.append(self._queue.get_nowait())
            except queue.Empty:
                return self.events

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        """The first event (old or new) matching ``predicate``."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            events = self.drain()
            for event in events[seen:]:
                if predicate(event):
                    return event
            seen = len(events)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching event in {timeout}s; got {events}")
            with contextlib.suppress(queue.Empty):
                self.events.append(self._queue.get(timeout=min(remaining, 0.2)))
