"""Alembic glue: run the migrations of ``aiusage/store/migrations`` on a given connection.

Alembic's ``env.py`` is synchronous; :meth:`aiusage.store.database.Database.migrate` hands it an
already-open connection through ``config.attributes`` (the documented pattern for async
engines), so migrations run inside the caller's event loop.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic :class:`Config` pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade_head(connection: Connection) -> None:
    """Upgrade the database behind ``connection`` to the newest revision."""
    command.upgrade(alembic_config(connection), "head")


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None when never migrated)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
