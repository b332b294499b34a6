"""``aiusage migrate``: apply the database migrations (also done by ``aiusage serve`` at start).

Also home of the small helpers every state-touching command uses to open the same store as
``aiusage serve`` (``--data-dir`` / ``--database-url``, env ``AIUSAGE_*``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from aiusage.cli.common import add_store_options
from aiusage.errors import AiUsageError
from aiusage.settings import Settings
from aiusage.store.database import Database
from aiusage.store.migrate import current_revision

T = TypeVar("T")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Environment settings overridden by the store flags of ``args``."""
    settings = Settings.from_env().replace(
        data_dir=Path(args.data_dir) if getattr(args, "data_dir", None) else None,
        database_url=getattr(args, "database_url", None),
    )
    settings.validate()
    return settings


def run_with_database(
    args: argparse.Namespace,
    command: str,
    work: Callable[[Database], Awaitable[int]],
    *,
    migrate: bool = True,
) -> int:
    """Open the store of ``args``, migrate it, run ``work``; map platform errors to exit 1.

    Args:
        args: Parsed arguments (``--data-dir``, ``--database-url``).
        command: Name shown in error messages (``aiusage org create``).
        work: The command body.
        migrate: Bring the schema to head first (so commands work on a fresh data dir).
    """

    async def main() -> int:
        settings = settings_from_args(args)
        db = Database(settings.resolved_database_url, schema=settings.database_schema)
        try:
            if migrate:
                await db.migrate()
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except AiUsageError as exc:
        print(f"{command}: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{command}: database unreachable: {exc}", file=sys.stderr)
        return 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``migrate`` command."""
    parser = subparsers.add_parser("migrate", help="apply database migrations")
    add_store_options(parser)
    parser.set_defaults(func=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        await db.migrate()
        async with db.read() as conn:
            revision = await conn.run_sync(current_revision)
        print(f"database at revision {revision} ({db.dialect})")
        return 0

    return run_with_database(args, "aiusage migrate", work, migrate=False)
