"""Server resource sampling: RSS and CPU of the processes listening on the target port
(psutil, when the server runs on this machine), else the Prometheus ``/metrics`` endpoint
(``process_resident_memory_bytes``, ``process_cpu_seconds_total``) when the server has one."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psutil


def listening_pids(port: int) -> list[int]:
    """Pids of the processes with a listening TCP socket on ``port`` (several with
    ``SO_REUSEPORT`` workers)."""
    pids: set[int] = set()
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return []
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            pids.add(c.pid)
    return sorted(pids)


def process_tree(pids: list[int]) -> list[psutil.Process]:
    """The processes and their children, each once."""
    seen: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            p = psutil.Process(pid)
            seen[p.pid] = p
            for child in p.children(recursive=True):
                seen[child.pid] = child
        except psutil.Error:
            continue
    return list(seen.values())


@dataclass(slots=True)
class Sample:
    """One observation of the server."""

    t: float
    rss_bytes: int
    cpu_seconds: float
    processes: int


def parse_prometheus(text: str) -> tuple[int | None, float | None]:
    """``(rss bytes, cpu seconds)`` summed over every series of the two process metrics."""
    rss: float | None = None
    cpu: float | None = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, value = line.rpartition(" ")
        name = name_part.split("{", 1)[0].strip()
        try:
            v = float(value)
        except ValueError:
            continue
        if name == "process_resident_memory_bytes":
            rss = (rss or 0.0) + v
        elif name == "process_cpu_seconds_total":
            cpu = (cpu or 0.0) + v
    return (int(rss) if rss is not None else None), cpu


class ServerMonitor:
    """Samples the server processes found by port; re-discovers them after a restart."""

    def __init__(self, port: int, pids: list[int] | None = None) -> None:
        self.port = port
        self._fixed = pids
        self._procs: list[psutil.Process] = []
        self.source = "none"

    def _refresh(self) -> None:
        pids = self._fixed if self._fixed else listening_pids(self.port)
        self._procs = process_tree(pids)
        self.source = "psutil" if self._procs else "none"

    def sample(self) -> Sample | None:
        """RSS summed over the server processes and their total CPU seconds, or None."""
        if not self._procs or any(not p.is_running() for p in self._procs):
            self._refresh()
        if not self._procs:
            return None
        rss = 0
        cpu = 0.0
        alive = 0
        for p in self._procs:
            try:
                rss += p.memory_info().rss
                t = p.cpu_times()
                cpu += t.user + t.system
                alive += 1
            except psutil.Error:
                continue
        if alive == 0:
            self._procs = []
            return None
        return Sample(time.time(), rss, cpu, alive)
