"""Rolling restart handover: stateful dashboards across a restart of both processes.

    .venv/bin/python bench/bench_handover.py [--dashboards 200] [--rate 100]

Starts the deployment of ``tests/deploy`` (nginx + two ``aiusage serve`` processes on
PostgreSQL 127.0.0.1:5432 and Redis 127.0.0.1:6379, unique schema and channel prefix),
``--dashboards`` official JS clients with ``withStatefulReconnect()`` in one Node process and an
agent posting ``--rate`` numbered sessions per second through nginx; then SIGTERM to each
process in turn, restart, and the same for the other (docs/spec/stateful-reconnect.md §5.5).
Prints one table: events acknowledged, events lost and duplicated over all dashboards (each
dashboard checked against every acknowledged session number), dashboards that had to start
over, the reconnect gap of the stateful resumes (lost socket to replay sent, timed in the
client) p50/p99, the longest pause between two pushes per dashboard p50/p99, and how long each
process took to exit. Bounded: one restart cycle, about 40 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.deploy.handover_kit import rolling_restart, summary  # noqa: E402
from tests.deploy.stack import Stack  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dashboards", type=int, default=200)
    parser.add_argument("--rate", type=int, default=100, help="agent events per second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp))
        try:
            stack.start()
            run = rolling_restart(stack, args.dashboards, args.rate)
        finally:
            stack.close()
    rows = summary(run)
    width = max(len(k) for k in rows)
    print(f"{'Rolling restart handover':<{width}} | value")
    print(f"{'-' * width}-|------")
    for key, value in rows.items():
        print(f"{key:<{width}} | {value}")


if __name__ == "__main__":
    main()
