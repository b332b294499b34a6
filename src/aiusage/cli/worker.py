"""``aiusage worker``: run background jobs (exports) in a separate process.

The worker claims pending export jobs from the shared store (each job runs exactly once, see
:mod:`aiusage.exports.service`), writes the files to the shared data dir, and publishes
ExportCompleted through the Redis backplane with a write-only publisher, so the requesting
user's dashboard receives it on whichever server it is connected to. It also runs the
"agent silent" alert sweep (stored once thanks to the alerts' dedupe keys, so running it next to
``aiusage serve`` is harmless). Without ``--redis-url`` jobs still complete (clients see them
via ``GET /api/exports/{id}``) but nothing can be pushed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiusage.cli.common import add_store_options

log = logging.getLogger("aiusage.worker")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``worker`` command."""
    parser = subparsers.add_parser("worker", help="run export jobs in a separate process")
    add_store_options(parser)
    parser.add_argument(
        "--redis-url",
        default=None,
        help="backplane to publish through: redis://, rediss:// or redis+sentinel:// "
        "(env AIUSAGE_REDIS_URL)",
    )
    parser.add_argument(
        "--poll-interval", type=float, default=1.0, help="seconds between polls (default 1)"
    )
    parser.add_argument("--once", action="store_true", help="run pending jobs once, then exit")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from aiusage.errors import AiUsageError
    from aiusage.observability.logs import configure_logging
    from aiusage.settings import Settings

    fmt = os.environ.get("AIUSAGE_LOG_FORMAT", "text").strip().lower()
    configure_logging(
        fmt if fmt in ("text", "json") else "text", os.environ.get("AIUSAGE_LOG_LEVEL", "INFO")
    )
    try:
        settings = Settings.from_env().replace(
            data_dir=Path(args.data_dir),
            database_url=args.database_url,
            redis_url=args.redis_url,
        )
        settings.validate()
    except AiUsageError as exc:
        print(f"aiusage worker: {exc.message}", file=sys.stderr)
        return 2
    if args.poll_interval <= 0:
        print("aiusage worker: --poll-interval must be positive", file=sys.stderr)
        return 2
    return asyncio.run(run_worker(settings, poll_interval=args.poll_interval, once=args.once))


async def run_worker(
    settings: Any,
    *,
    poll_interval: float = 1.0,
    once: bool = False,
    stop: asyncio.Event | None = None,
) -> int:
    """The worker loop (also used by tests with ``once=True`` or a ``stop`` event)."""
    from aiusage.alerts.rules import AlertRules
    from aiusage.alerts.service import AlertService
    from aiusage.exports.service import ExportService
    from aiusage.exports.signing import UrlSigner
    from aiusage.realtime.publisher import EventPublisher
    from aiusage.store.database import Database
    from hubserver import HubContext

    db = Database(settings.resolved_database_url, schema=settings.database_schema)
    backplane: Any = None
    publisher: EventPublisher | None = None
    if settings.redis_url:
        from hubserver.lifetime.redis import RedisPublisher

        backplane = RedisPublisher(settings.redis_url, channel_prefix=settings.channel_prefix)
        await backplane.start()
        publisher = EventPublisher(HubContext(backplane))
    else:
        log.warning("no --redis-url: export notifications cannot reach hub clients")
    exports = ExportService(
        db,
        settings.data_dir,
        UrlSigner.load_or_create(settings.data_dir),
        publisher,
        run_in_process=False,
        url_ttl_s=settings.export_url_ttl_s,
        base_url=settings.public_url or "",
    )
    alerts = AlertService(
        db,
        publisher,
        rules=AlertRules(silent_after=timedelta(minutes=settings.agent_silent_minutes)),
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await db.migrate()
        sweep_every = max(1, int(60 / poll_interval))
        rounds = 0
        while not stop.is_set():
            ran = await exports.run_pending()
            if rounds % sweep_every == 0:
                await alerts.check_silent_agents()
            rounds += 1
            if once:
                break
            if ran == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=poll_interval)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        if backplane is not None:
            await backplane.stop()
        await db.dispose()
    return 0


__all__ = ["register", "run_worker"]
