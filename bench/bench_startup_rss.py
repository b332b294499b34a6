"""Resident memory of an ``aiusage serve`` process at the moment it reports ready.

    .venv/bin/python bench/bench_startup_rss.py [--reps 3] [--compare-to /path/to/old/src]
                                                 [--database-url URL] [--fresh] [--importtime]

Starts ``python -m aiusage.cli serve`` (SQLite in a fresh temporary data directory that
``aiusage migrate`` brought to the newest schema first, as on every start after the first one,
or an empty one with ``--fresh``; port 0, default settings, no ``--demo``) ``--reps`` times,
reads ``VmRSS`` (with ``RssAnon``, the part not backed by files: the rest is mostly shared
libraries, whose pages the processes of one machine share, and ``VmHWM``, the peak) from
``/proc/<pid>/status`` as soon as the process prints its ready banner, stops it with SIGTERM
and prints a Markdown table of the medians.
``--compare-to`` runs the code found at that path (``PYTHONPATH``, e.g. a worktree of an older
commit) in the same run, alternating with this tree so both see the same machine.
``--importtime`` also reports the modules imported by the time the server is ready and the
slowest top-level imports (``python -X importtime``).

Everything is on 127.0.0.1 and bounded: a server that is not ready within ``--timeout`` s is
killed and the run fails.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY = "aiusage is serving on "
_IMPORT_RE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


@dataclass
class Start:
    """One start of the server."""

    rss_kb: int
    anon_kb: int
    hwm_kb: int
    seconds: float
    modules: int | None
    slowest: list[tuple[int, str]]


def _status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/{pid}/status")


def _importtime(stderr_text: str) -> tuple[int, list[tuple[int, str]]]:
    """Number of modules imported and the ten most expensive top-level imports (µs, name)."""
    count = 0
    top: list[tuple[int, str]] = []
    for line in stderr_text.splitlines():
        m = _IMPORT_RE.match(line)
        if m is None:
            continue
        count += 1
        if len(m.group(3)) == 1:  # one space of indentation: imported by the program itself
            top.append((int(m.group(2)), m.group(4)))
    top.sort(reverse=True)
    return count, top[:10]


def start_once(
    pythonpath: str, database_url: str | None, fresh: bool, importtime: bool, timeout: float
) -> Start:
    """Start one server, measure it at ready, stop it."""
    with tempfile.TemporaryDirectory(prefix="aiusage-rss-") as data_dir:
        env = dict(os.environ, PYTHONPATH=pythonpath, PYTHONUNBUFFERED="1")
        env.pop("AIUSAGE_DEMO", None)
        store = ["--data-dir", data_dir] + (
            ["--database-url", database_url] if database_url else []
        )
        if not fresh:
            subprocess.run(
                [sys.executable, "-m", "aiusage.cli", "migrate", *store],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                timeout=timeout,
            )
        cmd = [sys.executable]
        if importtime:
            cmd += ["-X", "importtime"]
        cmd += ["-m", "aiusage.cli", "serve", "--host", "127.0.0.1", "--port", "0"]
        cmd += store
        err_path = Path(data_dir) / "stderr.txt"
        with open(err_path, "w") as err:
            t0 = time.monotonic()
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, text=True
            )
            try:
                assert proc.stdout is not None
                deadline = t0 + timeout
                while True:
                    line = proc.stdout.readline()
                    if line.startswith(READY):
                        break
                    if not line or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"server not ready (exit {proc.poll()}): {err_path.read_text()[-2000:]}"
                        )
                seconds = time.monotonic() - t0
                rss = _status_kb(proc.pid, "VmRSS")
                anon = _status_kb(proc.pid, "RssAnon")
                hwm = _status_kb(proc.pid, "VmHWM")
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        modules: int | None = None
        slowest: list[tuple[int, str]] = []
        if importtime:
            modules, slowest = _importtime(err_path.read_text())
    return Start(rss, anon, hwm, seconds, modules, slowest)


def _row(label: str, starts: list[Start]) -> str:
    rss = [s.rss_kb / 1024 for s in starts]
    anon = [s.anon_kb / 1024 for s in starts]
    hwm = [s.hwm_kb / 1024 for s in starts]
    secs = [s.seconds for s in starts]
    per = ", ".join(f"{x:.1f}" for x in rss)
    mods = [s.modules for s in starts if s.modules is not None]
    mod_cell = str(int(statistics.median(mods))) if mods else "—"
    return (
        f"| {label} | **{statistics.median(rss):.1f}** ({per}) | {statistics.median(anon):.1f} "
        f"| {statistics.median(hwm):.1f} "
        f"| {statistics.median(secs):.2f} | {mod_cell} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reps", type=int, default=3, help="starts per code tree (default 3)")
    parser.add_argument("--compare-to", default=None, help="PYTHONPATH of older code to compare")
    parser.add_argument("--database-url", default=None, help="default: SQLite in the data dir")
    parser.add_argument("--fresh", action="store_true", help="start on an empty database")
    parser.add_argument("--importtime", action="store_true", help="also count imported modules")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to become ready")
    args = parser.parse_args()
    if not 1 <= args.reps <= 20:
        parser.error("--reps must be 1..20")

    trees = [("this tree", str(ROOT / "src"))]
    if args.compare_to:
        trees.insert(0, (f"compare: {args.compare_to}", str(Path(args.compare_to).resolve())))
    results: dict[str, list[Start]] = {label: [] for label, _ in trees}
    for _ in range(args.reps):  # alternate the trees so both see the same machine load
        for label, path in trees:
            results[label].append(
                start_once(path, args.database_url, args.fresh, args.importtime, args.timeout)
            )

    db = "empty database" if args.fresh else "database already migrated"
    print(
        f"`aiusage serve` at ready, {db}, median of {args.reps} starts "
        f"(Python {sys.version.split()[0]})"
    )
    print()
    print(
        "| code | VmRSS MB, median (per start) | of it RssAnon MB | VmHWM MB "
        "| seconds to ready | modules |"
    )
    print("|---|---|---|---|---|---|")
    for label, _ in trees:
        print(_row(label, results[label]))
    if args.importtime:
        for label, _ in trees:
            print(f"\nslowest top-level imports ({label}, first start, cumulative ms):")
            for us, name in results[label][0].slowest:
                print(f"  {us / 1000:7.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
