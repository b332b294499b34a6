"""Alembic environment for the aiusage store.

Normally run through :meth:`aiusage.store.database.Database.migrate`, which passes an open
connection in ``config.attributes["connection"]``. When alembic is run by hand
(``alembic -c src/aiusage/store/alembic.ini upgrade head``) the URL comes from
``-x url=...`` or ``AIUSAGE_DATABASE_URL`` and an async engine is created here.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import aiusage.metrics.tables  # noqa: F401  (registers the rollup tables on the metadata)
from aiusage.store.tables import metadata

config = context.config
target_metadata = metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place: batch mode recreates tables.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Run against the given connection, or against a URL when invoked from the alembic CLI."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "AIUSAGE_DATABASE_URL"
    )
    if not url:
        raise RuntimeError("give -x url=... or set AIUSAGE_DATABASE_URL")
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()
