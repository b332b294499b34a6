"""The async database: one SQLAlchemy engine for SQLite (embedded) or PostgreSQL (production).

SQLite is opened in WAL mode with ``synchronous=NORMAL`` (durable across process crashes, and
a commit costs no fsync of the main file), a ``busy_timeout`` so concurrent writers wait instead
of failing, and foreign keys on. Write transactions start with ``BEGIN IMMEDIATE`` on SQLite:
a deferred transaction that reads first and writes later can fail with SQLITE_BUSY_SNAPSHOT
when another process committed in between, which busy_timeout cannot fix. Inside one process
writers are additionally serialized by an asyncio lock so they queue fairly instead of
spinning in sqlite's busy handler.

Hot write paths (agent ingestion) use :meth:`Database.run_write`: a synchronous function gets
a synchronous SQLAlchemy connection for one transaction. On SQLite it runs in a dedicated
writer thread with its own pysqlite connection, so a whole batch costs one thread hop instead
of one per statement (aiosqlite hands every statement to its thread and back); on PostgreSQL
it runs through ``AsyncConnection.run_sync`` on the asyncpg engine.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from aiusage.errors import ConfigurationError, StoreError
from aiusage.store.wal_checkpoint import WRITER_AUTOCHECKPOINT_PAGES, WalCheckpointer

log = logging.getLogger("aiusage.store")

SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite writer waits for another process's write lock before failing."""

_BEGIN_MODE_OPTION = "aiusage_sqlite_begin"
_SCHEMA_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_MIGRATE_LOCK = 0x61697573616765  # "aiusage": PostgreSQL advisory lock key for migrations

SQLITE_READ_POOL = 20
"""aiosqlite connections kept open (and as many again allowed in a burst)."""

WRITER_CACHE_KIB = 32 * 1024
"""Page cache of the SQLite writer connection (allocated as pages are used)."""

MAX_WRITE_GROUP = 32
"""Most :meth:`Database.run_write` calls applied in one SQLite transaction."""

T = TypeVar("T")


class Database:
    """An async engine plus transaction helpers.

    Args:
        url: ``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://...``.
        schema: PostgreSQL schema to work in (created by :meth:`migrate` when missing); used by
            tests to isolate runs. Ignored on SQLite.
        echo: Log every SQL statement (debugging).

    Raises:
        ConfigurationError: The URL names an unsupported driver.
    """

    def __init__(self, url: str, *, schema: str | None = None, echo: bool = False) -> None:
        parsed = make_url(url)
        if schema is not None and not _SCHEMA_RE.fullmatch(schema):
            # The name is interpolated into DDL (identifiers cannot be bound parameters).
            raise ConfigurationError("database schema must be a plain SQL identifier")
        self.url = url
        self.schema = schema
        kwargs: dict[str, Any] = {"echo": echo}
        if parsed.drivername == "sqlite+aiosqlite":
            self.dialect = "sqlite"
            db_path = parsed.database
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            else:
                # Every pooled connection to ":memory:" would be a separate empty database.
                raise ConfigurationError("in-memory SQLite is not supported; use a file path")
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            # read() and write() always end their transaction; the pool's extra rollback on
            # return would cost one more aiosqlite thread hop per transaction.
            kwargs["pool_reset_on_return"] = None
            # Every aiosqlite connection is a thread plus a sqlite open and its pragmas; with
            # the default 5 kept, bursts of reads (snapshots, alert rules, access checks under
            # 1,000 organizations) opened and closed overflow connections continuously. The
            # pool grows lazily, so a quiet process still holds one or two.
            kwargs["pool_size"] = SQLITE_READ_POOL
            kwargs["max_overflow"] = SQLITE_READ_POOL
        elif parsed.drivername == "postgresql+asyncpg":
            self.dialect = "postgresql"
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 10
            kwargs["pool_pre_ping"] = True
            if schema:
                kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
        else:
            raise ConfigurationError(
                f"unsupported database driver {parsed.drivername!r}: use sqlite+aiosqlite or "
                "postgresql+asyncpg"
            )
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        self._sync_writer: Engine | None = None
        self._writer_thread: ThreadPoolExecutor | None = None
        self._pending_writes: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]] = []
        self._group_writer: asyncio.Task[None] | None = None
        self._checkpointer: WalCheckpointer | None = None
        if self.dialect == "sqlite":
            assert db_path is not None
            self._checkpointer = WalCheckpointer(Path(db_path))
            _install_sqlite_hooks(self.engine.sync_engine)
            # The writer thread's own engine on the same file (pysqlite; same pragmas). One
            # thread, one pooled connection: statements of a batch never leave that thread.
            self._sync_writer = create_engine(
                parsed.set(drivername="sqlite+pysqlite"),
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                pool_size=1,
                max_overflow=0,
                pool_reset_on_return=None,
            )
            _install_sqlite_hooks(self._sync_writer)

            @event.listens_for(self._sync_writer, "connect")
            def _writer_cache(dbapi_connection: Any, _record: Any) -> None:
                # Ingestion touches random index pages (agent-made event ids): with SQLite's
                # default 2 MiB page cache most of them are read back from the OS per batch.
                dbapi_connection.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite store."""
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a read transaction (rolled back at exit: reads never write)."""
        async with self.engine.connect() as conn:
            try:
                yield conn
            finally:
                await conn.rollback()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a write transaction, committed when the block exits normally and
        rolled back when it raises. On SQLite the transaction is ``BEGIN IMMEDIATE``."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.connect() as raw:
            conn = await raw.execution_options(**{_BEGIN_MODE_OPTION: "IMMEDIATE"})
            async with conn.begin():
                yield conn
            assert self._checkpointer is not None
            self._checkpointer.notify()

    async def run_write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` in a write transaction and return its result.

        ``fn`` is synchronous and uses the SQLAlchemy *sync* API on the connection it is given.
        Its changes are committed before this returns, and undone when it raises (the
        exception propagates to this caller only).

        PostgreSQL: one transaction per call (``AsyncConnection.run_sync`` on asyncpg).

        SQLite: *group commit*. Calls that arrive while the writer thread is busy are applied
        together in the next transaction, each inside its own SAVEPOINT: a function that
        raises rolls back to its savepoint and leaves the others in, and one commit (one WAL
        append, the dominant cost of a small transaction) covers the group. Nobody is told
        "done" before that commit. Alone, a call is exactly one transaction; under load the
        commits per call fall. Runs in the writer thread (``BEGIN IMMEDIATE``, serialized with
        :meth:`write` by the same lock), so ``fn`` must not touch the event loop.
        """
        if self._sync_writer is None:
            async with self.write() as conn:
                return await conn.run_sync(fn)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending_writes.append((fn, future))
        if self._group_writer is None or self._group_writer.done():
            self._group_writer = loop.create_task(self._write_groups())
        return cast(T, await future)

    async def _write_groups(self) -> None:
        """Drain the queue of :meth:`run_write` calls, one group per transaction."""
        assert self._write_lock is not None
        if self._writer_thread is None:
            self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="aiusage-sqlite-writer")
        loop = asyncio.get_running_loop()
        while self._pending_writes:
            async with self._write_lock:
                group = self._pending_writes[:MAX_WRITE_GROUP]
                del self._pending_writes[:MAX_WRITE_GROUP]
                try:
                    outcomes = await loop.run_in_executor(
                        self._writer_thread, self._apply_group, [fn for fn, _ in group]
                    )
                except BaseException as exc:  # BEGIN or COMMIT failed: nothing was applied
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
            for (_, future), (ok, value) in zip(group, outcomes, strict=True):
                if future.done():  # the caller was cancelled; its work is committed anyway
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def _apply_group(self, fns: list[Callable[[Connection], Any]]) -> list[tuple[bool, Any]]:
        """Writer thread: one transaction, one savepoint per function of a group.

        Raises:
            Exception: BEGIN or COMMIT of a group failed (nothing of the group was applied).
        """
        assert self._sync_writer is not None
        with self._sync_writer.connect() as raw:
            conn = raw.execution_options(**{_BEGIN_MODE_OPTION: "IMMEDIATE"})
            if len(fns) == 1:
                # Alone: the transaction itself is the unit, no savepoint needed.
                try:
                    with conn.begin():
                        value = fns[0](conn)
                except Exception as exc:
                    return [(False, exc)]
                self._after_commit()
                return [(True, value)]
            outcomes: list[tuple[bool, Any]] = []
            with conn.begin():
                for fn in fns:
                    savepoint = conn.begin_nested()
                    try:
                        value = fn(conn)
                    except Exception as exc:
                        savepoint.rollback()
                        outcomes.append((False, exc))
                    else:
                        savepoint.commit()
                        outcomes.append((True, value))
            self._after_commit()
            return outcomes

    def _after_commit(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.notify()

    async def ping(self, limit_s: float = 2.0) -> bool:
        """True when a trivial query succeeds within ``limit_s`` seconds (``/readyz``)."""
        try:
            async with asyncio.timeout(limit_s):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            return True
        except Exception as exc:  # any failure means "not ready"
            log.warning("database ping failed: %s", type(exc).__name__)
            return False

    async def at_head(self) -> bool:
        """True when the database is at the newest migration (read without alembic)."""
        from aiusage.store.revisions import head_revision

        try:
            async with self.read() as conn:
                current = (
                    (await conn.execute(text("SELECT version_num FROM alembic_version")))
                    .scalars()
                    .all()
                )
        except Exception:  # no such table (never migrated), or unreachable: migrate() decides
            return False
        return current == [head_revision()]

    async def migrate(self) -> None:
        """Apply every alembic migration up to head (idempotent; run at start).

        Raises:
            StoreError: The database is unreachable or a migration failed.
        """
        if await self.at_head():
            return  # the usual start: no alembic import (it stays in memory once loaded)
        from aiusage.store.migrate import upgrade_head

        try:
            # Several processes (serve --workers N) may start at once: serialize them so the
            # second one sees the first one's tables instead of racing to create them.
            if self.dialect == "sqlite":
                async with self.write() as conn:
                    await conn.run_sync(upgrade_head)
            else:
                async with self.engine.begin() as conn:
                    await conn.execute(
                        text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK}
                    )
                    if self.schema:
                        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
                    await conn.run_sync(upgrade_head)
        except OSError as exc:
            raise StoreError(f"database unreachable: {exc}") from exc

    async def dispose(self) -> None:
        """Close every pooled connection (and the SQLite writer thread)."""
        await self.engine.dispose()
        if self._checkpointer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._checkpointer.close)
        if self._writer_thread is not None:
            writer, self._writer_thread = self._writer_thread, None
            assert self._sync_writer is not None
            await asyncio.get_running_loop().run_in_executor(writer, self._sync_writer.dispose)
            writer.shutdown(wait=True)


def _install_sqlite_hooks(sync_engine: Engine) -> None:

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so "begin" below decides the
        # mode (the documented SQLAlchemy recipe for pysqlite/aiosqlite).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Checkpoints run in WalCheckpointer's thread; commits only checkpoint themselves
        # when it has fallen far behind.
        cursor.execute(f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_MODE_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
