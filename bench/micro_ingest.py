"""In-process ingestion micro-benchmark: ``Ingestor.ingest`` of batches of 100 events on a
fresh SQLite (or PostgreSQL) store, one batch at a time, no HTTP and no hub.

    .venv/bin/python bench/micro_ingest.py [--batches 250] [--database-url URL]

Prints the serial rate and the median batch time; the server-level figures are
``bench/bench_ingest.py``'s (docs/benchmarks.md §3). Bounded: ``--batches`` batches.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ingest import batch  # noqa: E402

from aiusage.domain.events import parse_batch  # noqa: E402
from aiusage.store.database import Database  # noqa: E402
from aiusage.store.ingest import Ingestor  # noqa: E402
from aiusage.store.repositories import OrganizationRepository  # noqa: E402


async def run(url: str | None, batches: int, warmup: int) -> None:
    schema = None
    if url is None:
        url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='micro-ingest-')}/a.db"
    elif url.startswith("postgresql"):
        schema = f"micro_{uuid.uuid4().hex[:10]}"
    db = Database(url, schema=schema)
    await db.migrate()
    try:
        async with db.write() as conn:
            await OrganizationRepository().create(conn, "bench", "Bench")
        ingestor = Ingestor(db)
        now = dt.datetime.now(dt.UTC)
        parsed = [
            parse_batch({"events": batch(100)[0]}, max_events=1000, now=now)
            for _ in range(warmup + batches)
        ]
        for events in parsed[:warmup]:
            await ingestor.ingest("bench", "agent-1", events, now=now)
        times = []
        started = time.perf_counter()
        for events in parsed[warmup:]:
            t = time.perf_counter()
            await ingestor.ingest("bench", "agent-1", events, now=now)
            times.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - started
        print(
            f"{db.dialect}: {batches * 100 / elapsed:,.0f} events/s serial, batch of 100 "
            f"median {statistics.median(times) * 1e3:.2f} ms, p90 "
            f"{sorted(times)[int(0.9 * len(times))] * 1e3:.2f} ms"
        )
    finally:
        if schema is not None:
            from sqlalchemy import text

            async with db.engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, default=250)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    a = ap.parse_args()
    asyncio.run(run(a.database_url, a.batches, a.warmup))


if __name__ == "__main__":
    main()
