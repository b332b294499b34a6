"""Cost of one access-log call per request, in process, with the logging of ``aiusage serve``.

    .venv/bin/python bench/micro_access_log.py [--n 200000] [--reps 5]

Configures logging as ``aiusage serve`` does (:func:`aiusage.observability.logs.configure_logging`,
JSON and text, redacting filter) writing to ``/dev/null`` (a journal or a file costs more), then
times ``--n`` calls of the engine's :func:`hubserver.server.access_log.log_access` for a
long-polling poll (a target with an ``access_token`` to redact): at INFO (every poll printed, as
before routine requests moved to DEBUG) and at the routine level with the default settings.
Prints ns per request, median of ``--reps``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from aiusage.observability.logs import configure_logging
from hubserver.server.access_log import ROUTINE, log_access

CLIENT = ("127.0.0.1", 51234)
TARGET = "/hubs/analytics?id=Zm9vYmFyYmF6cXV4cXV1eA&_=1733330000000&access_token=eyJhbGciOi.x.y"


def ns_per_call(n: int, level: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(n):
        log_access(CLIENT, "GET", TARGET, 200, 0.0012, "a1b2c3-1f", level)
    return (time.perf_counter_ns() - t0) / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    if not (1 <= args.n <= 10_000_000 and 1 <= args.reps <= 50):
        parser.error("--n must be 1..10M and --reps 1..50")
    sink = open(os.devnull, "w")
    print("| log format | poll logged at INFO (before), ns/request | routine, default (after) |")
    print("|---|---|---|")
    for fmt in ("json", "text"):
        configure_logging(fmt, "INFO", stream=sink)
        rows = {}
        for label, level in (("info", logging.INFO), ("routine", ROUTINE)):
            ns_per_call(min(args.n, 10_000), level)  # warm up
            rows[label] = statistics.median(ns_per_call(args.n, level) for _ in range(args.reps))
        print(f"| {fmt} | {rows['info']:,.0f} | {rows['routine']:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
