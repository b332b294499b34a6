"""``aiusage agent enroll`` and ``aiusage agent run``: the desktop agent (docs/agent.md).

* ``aiusage agent enroll --server URL --code CODE [--name N] [--config-dir D]`` trades a one-time
  code (``aiusage enroll-code create`` or ``POST /api/agent/enrollment-codes``) for a revocable
  device token, stored in the user's config dir (``agent.json``, mode 0600).
* ``aiusage agent run [--config-dir D] [--poll SECONDS] [--once] [--no-tray]`` watches the
  workstation for AI tools and reports sessions through the durable outbox. SIGINT/SIGTERM end
  the open session and flush what can be flushed; the rest waits on disk for the next start.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiusage.cli.agent import SubParsers


def register_agent_commands(actions: SubParsers) -> None:
    """Add ``enroll`` and ``run`` to ``aiusage agent``."""
    enroll = actions.add_parser("enroll", help="enroll this workstation with an enrollment code")
    enroll.add_argument("--server", required=True, help="aiusage base URL")
    enroll.add_argument("--code", required=True, help="one-time enrollment code")
    enroll.add_argument("--name", default=None, help="device name (default: host name)")
    enroll.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        help="where agent.json and the outbox live (default: per-user config "
        "dir, env AIUSAGE_AGENT_HOME)",
    )
    enroll.set_defaults(func=_enroll)

    run = actions.add_parser("run", help="run the desktop agent")
    run.add_argument("--config-dir", type=Path, default=None)
    run.add_argument("--poll", type=float, default=None, help="seconds between observations")
    run.add_argument(
        "--idle-minutes", type=float, default=None, help="idle time that ends a session"
    )
    run.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="stop after this long (default: run until signalled)",
    )
    run.add_argument("--no-tray", action="store_true", help="never show a tray icon")
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=_run)


def _config_dir(arg: Path | None) -> Path:
    from aiusage.agent.config import default_config_dir

    return arg if arg is not None else default_config_dir()


def _enroll(args: argparse.Namespace) -> int:
    from aiusage.agent.enroll import EnrollmentError, enroll

    directory = _config_dir(args.config_dir)
    try:
        config = asyncio.run(enroll(args.server, args.code, directory, device_name=args.name))
    except EnrollmentError as exc:
        print(f"aiusage agent enroll: {exc}", file=sys.stderr)
        return 1
    print(
        f"enrolled device {config.device_id} in organization {config.organization_id} "
        f"as user {config.user_id}; credentials in {directory / 'agent.json'}"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from aiusage.agent.config import AgentConfig

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    directory = _config_dir(args.config_dir)
    try:
        config = AgentConfig.load(directory)
    except FileNotFoundError:
        print(
            f"aiusage agent run: not enrolled (no {directory / 'agent.json'}); "
            "run `aiusage agent enroll --server URL --code CODE` first",
            file=sys.stderr,
        )
        return 2
    except ValueError as exc:
        print(f"aiusage agent run: {exc}", file=sys.stderr)
        return 2
    if args.poll is not None:
        config.poll_seconds = args.poll
    if args.idle_minutes is not None:
        config.idle_minutes = args.idle_minutes
    return asyncio.run(_run_async(config, directory, args))


async def _run_async(config: Any, directory: Path, args: argparse.Namespace) -> int:
    import httpx

    from aiusage.agent.queue import Outbox
    from aiusage.agent.runner import AgentRunner
    from aiusage.agent.tray import start_tray

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.max_seconds is not None:
        loop.call_later(args.max_seconds, stop.set)
    outbox = Outbox(directory / "outbox.db")
    async with httpx.AsyncClient() as client:
        runner = AgentRunner(config, outbox, client, config_dir=directory)
        if not args.no_tray:

            def quit_from_tray() -> None:
                loop.call_soon_threadsafe(stop.set)

            start_tray(lambda: f"aiusage agent: {len(outbox)} queued", quit_from_tray)
        await runner.run(stop)
    outbox.close()
    if runner.revoked:
        print(
            "aiusage agent run: the server refused the device token (revoked?); "
            "events stay queued until the device is enrolled again",
            file=sys.stderr,
        )
        return 3
    return 0
