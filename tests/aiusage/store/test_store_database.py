from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from aiusage.errors import ConfigurationError
from aiusage.store.database import Database
from aiusage.store.migrate import current_revision
from aiusage.store.repositories import OrganizationRepository


async def test_migrations_reach_head_and_are_idempotent(db: Database) -> None:
    await db.migrate()  # second run is a no-op
    async with db.read() as conn:
        assert await conn.run_sync(current_revision) == "0001"


async def test_the_migrated_schema_matches_the_models(db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import aiusage.metrics.tables  # noqa: F401
    from aiusage.store.tables import metadata

    def diff(sync_conn):
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": False})
        return compare_metadata(ctx, metadata)

    async with db.read() as conn:
        changes = await conn.run_sync(diff)
    assert changes == []


async def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_busy_timeout(
    sqlite_db: Database,
) -> None:
    async with sqlite_db.read() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 10000


async def test_write_commits_on_success_and_rolls_back_on_error(db: Database) -> None:
    repo = OrganizationRepository()
    async with db.write() as conn:
        await repo.create(conn, "kept", "Kept")
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await repo.create(conn, "dropped", "Dropped")
            raise RuntimeError("boom")
    async with db.read() as conn:
        assert [o.id for o in await repo.list(conn)] == ["kept"]


async def test_datetimes_come_back_timezone_aware_utc(db: Database) -> None:
    repo = OrganizationRepository()
    created = datetime(2026, 3, 1, 12, 30, tzinfo=UTC) + timedelta(hours=2)
    async with db.write() as conn:
        await repo.create(conn, "o1", "One", now=created.astimezone())
    async with db.read() as conn:
        org = await repo.get(conn, "o1")
    assert org is not None
    assert org.created_at == created
    assert org.created_at.tzinfo is not None


async def test_ping_reports_a_reachable_database(db: Database) -> None:
    assert await db.ping() is True


async def test_ping_reports_an_unreachable_postgres_as_not_ready() -> None:
    dead = Database("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    try:
        assert await dead.ping(limit_s=2.0) is False
    finally:
        await dead.dispose()


def test_unsupported_drivers_and_memory_sqlite_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        Database("mysql+aiomysql://x/y")
    with pytest.raises(ConfigurationError):
        Database("sqlite+aiosqlite:///:memory:")
    with pytest.raises(ConfigurationError):
        Database("postgresql+asyncpg://x/y", schema='a"; DROP TABLE users; --')


async def test_concurrent_first_migrations_on_one_sqlite_file_both_succeed(tmp_path) -> None:
    """serve --workers N: several processes may migrate a fresh data dir at once."""
    import asyncio

    url = f"sqlite+aiosqlite:///{tmp_path}/shared.db"
    first, second = Database(url), Database(url)
    try:
        await asyncio.gather(first.migrate(), second.migrate())
        async with second.read() as conn:
            assert await conn.run_sync(current_revision) == "0001"
    finally:
        await first.dispose()
        await second.dispose()


@pytest.mark.postgres
@pytest.mark.integration
async def test_concurrent_first_migrations_on_postgresql_both_succeed() -> None:
    import asyncio
    import sys
    import uuid
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from support.database import POSTGRES_URL, drop_schema

    schema = f"t_{uuid.uuid4().hex[:12]}"
    first, second = Database(POSTGRES_URL, schema=schema), Database(POSTGRES_URL, schema=schema)
    try:
        await asyncio.gather(first.migrate(), second.migrate())
        async with second.read() as conn:
            assert await conn.run_sync(current_revision) == "0001"
    finally:
        await first.dispose()
        await second.dispose()
        await drop_schema(schema)
