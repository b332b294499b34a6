"""Fixtures of the metrics tests: a migrated store on SQLite, and on PostgreSQL (marked)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

import aiusage.metrics.tables  # noqa: F401 - registers the rollup tables on the metadata
from aiusage.store.database import Database
from aiusage.store.tables import metadata

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def open_store(kind: str, tmp_path) -> tuple[Database, str | None]:
    if kind == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path}/store.db")
        schema = None
    else:
        schema = f"p2b_{uuid.uuid4().hex[:12]}"
        db = Database(PG_URL, schema=schema)
    await db.migrate()
    # The rollup tables belong in the migration (test_tables checks it); create them here if
    # the migration does not have them yet, so the KPI tests do not depend on that.
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all, checkfirst=True)
    return db, schema


async def close_store(db: Database, schema: str | None) -> None:
    if schema is not None:
        async with db.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await db.dispose()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.integration]),
    ]
)
async def db(request, tmp_path) -> AsyncIterator[Database]:
    store, schema = await open_store(request.param, tmp_path)
    try:
        yield store
    finally:
        await close_store(store, schema)


@pytest.fixture
async def sqlite_db(tmp_path) -> AsyncIterator[Database]:
    store, schema = await open_store("sqlite", tmp_path)
    try:
        yield store
    finally:
        await close_store(store, schema)
