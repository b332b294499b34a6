"""What AI tools are in use right now on this workstation.

Two sources: running processes (psutil, every platform) and, where a desktop session allows
it, the foreground window title (X11 through ``xdotool``; browsers put the tab title there).
An observer returns tool *names* only: process lists and titles never leave this module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence

import psutil

from aiusage.agent.signatures import ToolSignature

TitleSource = Callable[[], str | None]


def foreground_title_x11() -> str | None:
    """The active window's title on X11 via xdotool, or None when unavailable."""
    if not os.environ.get("DISPLAY") or shutil.which("xdotool") is None:
        return None
    try:
        out = subprocess.run(
            ["xdotool", "getactivewindow", "getwindowname"],
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _process_snapshot() -> Iterable[tuple[str, Sequence[str]]]:
    for proc in psutil.process_iter(["name", "cmdline"]):
        info = proc.info
        yield (info.get("name") or "", info.get("cmdline") or ())


class Observer:
    """Samples processes and the foreground title against the signatures.

    Args:
        signatures: Tools to recognise.
        processes: Source of (name, cmdline) pairs; defaults to the live process table.
        title: Source of the foreground window title; defaults to X11 when present.
    """

    def __init__(
        self,
        signatures: Sequence[ToolSignature],
        processes: Callable[[], Iterable[tuple[str, Sequence[str]]]] = _process_snapshot,
        title: TitleSource | None = foreground_title_x11,
    ) -> None:
        self._signatures = list(signatures)
        self._processes = processes
        self._title = title

    def observe(self) -> frozenset[str]:
        """Names of the tools in use now."""
        found: set[str] = set()
        pending = list(self._signatures)
        for name, cmdline in self._processes():
            for sig in pending:
                if sig.matches_process(name, cmdline):
                    found.add(sig.name)
            pending = [s for s in pending if s.name not in found]
            if not pending:
                break
        title = self._title() if self._title is not None else None
        if title:
            found.update(s.name for s in self._signatures if s.matches_title(title))
        return frozenset(found)
