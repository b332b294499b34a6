"""The rollup tables are part of the store's migrations."""

from __future__ import annotations

from sqlalchemy import inspect

from aiusage.store.database import Database


async def test_migrations_create_the_rollup_tables(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/m.db")
    try:
        await db.migrate()
        async with db.engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await db.dispose()
    assert {"usage_hourly", "metrics_user_hour", "metrics_open_sessions"} <= names
