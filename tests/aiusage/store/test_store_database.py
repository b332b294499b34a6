from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from aiusage.errors import ConfigurationError
from aiusage.store.database import Database
from aiusage.store.migrate import current_revision
from aiusage.store.repositories import OrganizationRepository
from aiusage.store.revisions import head_revision


async def test_migrations_reach_head_and_are_idempotent(db: Database) -> None:
    await db.migrate()  # second run is a no-op
    async with db.read() as conn:
        assert await conn.run_sync(current_revision) == head_revision()


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
            assert await conn.run_sync(current_revision) == head_revision()
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
            assert await conn.run_sync(current_revision) == head_revision()
    finally:
        await first.dispose()
        await second.dispose()
        await drop_schema(schema)


# -- run_write: synchronous work in one transaction (group commit on SQLite) -------------------


def _insert_org(org_id: str, *, fail: bool = False):
    def work(conn):
        conn.execute(
            text(
                "INSERT INTO organizations (id, name, subscription_status, approved_tools, "
                "created_at) VALUES (:id, :id, 'active', '[]', '2026-01-01 00:00:00')"
            ),
            {"id": org_id},
        )
        if fail:
            raise RuntimeError(f"{org_id} refused")
        return org_id

    return work


async def _org_ids(db: Database) -> set[str]:
    async with db.read() as conn:
        return set((await conn.execute(text("SELECT id FROM organizations"))).scalars())


async def test_run_write_returns_the_result_and_commits(db: Database) -> None:
    assert await db.run_write(_insert_org("o1")) == "o1"
    assert await _org_ids(db) == {"o1"}


async def test_run_write_alone_rolls_back_what_a_failing_function_did(db: Database) -> None:
    with pytest.raises(RuntimeError, match="o1 refused"):
        await db.run_write(_insert_org("o1", fail=True))
    assert await _org_ids(db) == set()


async def test_concurrent_run_writes_fail_alone_and_the_others_are_committed(
    db: Database,
) -> None:
    import asyncio

    calls = [db.run_write(_insert_org(f"o{i}", fail=i % 3 == 1)) for i in range(9)]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for i, outcome in enumerate(outcomes):
        if i % 3 == 1:
            assert isinstance(outcome, RuntimeError) and str(outcome) == f"o{i} refused"
        else:
            assert outcome == f"o{i}"
    assert await _org_ids(db) == {f"o{i}" for i in range(9) if i % 3 != 1}


async def test_sqlite_run_writes_that_arrive_together_share_one_commit(
    sqlite_db: Database,
) -> None:
    import asyncio

    from sqlalchemy import event

    commits = []
    assert sqlite_db._sync_writer is not None
    event.listen(sqlite_db._sync_writer, "commit", lambda conn: commits.append(1))
    await asyncio.gather(*(sqlite_db.run_write(_insert_org(f"o{i}")) for i in range(10)))
    # All ten are queued before the writer task first runs: one transaction, one commit.
    assert len(commits) == 1
    assert len(await _org_ids(sqlite_db)) == 10


async def test_sqlite_commits_are_checkpointed_into_the_database_file(
    sqlite_db: Database, tmp_path
) -> None:
    import shutil
    import sqlite3

    for i in range(5):
        await sqlite_db.run_write(_insert_org(f"o{i}"))
    async with sqlite_db.write() as conn:
        await conn.execute(text("UPDATE organizations SET name = 'renamed' WHERE id = 'o0'"))
    await sqlite_db.dispose()  # stops the checkpointer after a last checkpoint
    path = sqlite_db.url.split("///", 1)[1]
    # Only the main file, no -wal: what it holds was checkpointed, not merely logged.
    copy = tmp_path / "main-file-only.db"
    shutil.copyfile(path, copy)
    rows = dict(sqlite3.connect(copy).execute("SELECT id, name FROM organizations").fetchall())
    assert rows == {"o0": "renamed", **{f"o{i}": f"o{i}" for i in range(1, 5)}}
