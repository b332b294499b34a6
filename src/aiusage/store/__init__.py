"""Persistence: SQLAlchemy 2 tables, the async :class:`~aiusage.store.database.Database`,
alembic migrations and repositories (SQLite embedded default, PostgreSQL in production)."""
