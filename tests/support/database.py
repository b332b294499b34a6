"""Database fixtures for aiusage tests: a migrated store on SQLite (always) and PostgreSQL.

PostgreSQL runs use a fresh schema per test (``t_<random>``) on 127.0.0.1:5432 db ``test``
(trust auth), dropped afterwards, so parallel runs never see each other's rows.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from aiusage.store.database import Database

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"

BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.integration]),
]

_template: dict[str, Path] = {}


async def _sqlite(tmp_path: Path, tmp_root: Path) -> Database:
    # Migrating costs ~0.2 s: migrate one template per session and copy it per test.
    template = _template.get("db")
    if template is None:
        template = tmp_root / "template.db"
        db = Database(f"sqlite+aiosqlite:///{template}")
        await db.migrate()
        await db.dispose()
        _template["db"] = template
    target = tmp_path / "aiusage.db"
    shutil.copyfile(template, target)
    return Database(f"sqlite+aiosqlite:///{target}")


async def make_database(kind: str, tmp_path: Path, tmp_root: Path) -> tuple[Database, str | None]:
    """A migrated database of ``kind`` and, for PostgreSQL, the schema to drop afterwards."""
    if kind == "sqlite":
        return await _sqlite(tmp_path, tmp_root), None
    schema = f"t_{uuid.uuid4().hex[:16]}"
    db = Database(POSTGRES_URL, schema=schema)
    await db.migrate()
    return db, schema


async def drop_schema(schema: str) -> None:
    """Remove a test schema and everything in it."""
    engine = create_async_engine(POSTGRES_URL)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
async def db(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    """A migrated, empty database on each backend."""
    database, schema = await make_database(request.param, tmp_path, tmp_path_factory.getbasetemp())
    try:
        yield database
    finally:
        await database.dispose()
        if schema is not None:
            await drop_schema(schema)


@pytest.fixture
async def sqlite_db(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    """A migrated, empty SQLite database (for tests that are about SQLite itself)."""
    database, _ = await make_database("sqlite", tmp_path, tmp_path_factory.getbasetemp())
    try:
        yield database
    finally:
        await database.dispose()
