"""The async database: one SQLAlchemy engine for SQLite (embedded) or PostgreSQL (production).

SQLite is opened in WAL mode with ``synchronous=NORMAL`` (durable across process crashes, and
a commit costs no fsync of the main file), a ``busy_timeout`` so concurrent writers wait instead
of failing, and foreign keys on. Write transactions start with ``BEGIN IMMEDIATE`` on SQLite:
a deferred transaction that reads first and writes later can fail with SQLITE_BUSY_SNAPSHOT
when another process committed in between, which busy_timeout cannot fix. Inside one process
writers are additionally serialized by an asyncio lock so they queue fairly instead of
spinning in sqlite's busy handler.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from aiusage.errors import ConfigurationError, StoreError

log = logging.getLogger("aiusage.store")

SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite writer waits for another process's write lock before failing."""

_BEGIN_MODE_OPTION = "aiusage_sqlite_begin"
_SCHEMA_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_MIGRATE_LOCK = 0x61697573616765  # "aiusage": PostgreSQL advisory lock key for migrations


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
        if self.dialect == "sqlite":
            _install_sqlite_hooks(self.engine)

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

    async def migrate(self) -> None:
        """Apply every alembic migration up to head (idempotent; run at start).

        Raises:
            StoreError: The database is unreachable or a migration failed.
        """
        from aiusage.store.migrate import upgrade_head  # alembic import is slow: lazy

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
        """Close every pooled connection."""
        await self.engine.dispose()


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

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
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_MODE_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
