"""Multi-row ``INSERT`` / ``INSERT ... ON CONFLICT DO UPDATE`` with a driver-level fast path on
SQLite, for the hottest statements of ingestion (raw rows and rollups).

On SQLite the rows go to the driver as tuples through a SQL text rendered once: SQLAlchemy's
per-row parameter processing cost more than the statements themselves (profiled under
bench/bench_ingest.py). Datetimes are rendered in SQLAlchemy's SQLite storage format, so a
row written either way is the same row. Other dialects use the equivalent SQLAlchemy
statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from sqlalchemy import Integer, Table, func, insert
from sqlalchemy.engine import Connection

from aiusage.store.repositories import insert_for
from aiusage.store.tables import UTCDateTime

_SQLITE_MERGE = {
    "add": "{0} + excluded.{0}",
    "min": "min({0}, excluded.{0})",
    "max": "max({0}, excluded.{0})",
    "set": "excluded.{0}",
}


class BulkWrite:
    """One multi-row write of ``table``.

    Args:
        dialect: ``sqlite`` or ``postgresql``.
        table: The table; a row lists the primary key, then ``updates``, then ``extra``.
        updates: Column -> what a conflicting row keeps: ``add`` (the sum), ``min``, ``max``
            or ``set`` (the new value). Empty: a plain INSERT.
        extra: More columns written by a plain INSERT.
    """

    def __init__(
        self,
        dialect: str,
        table: Table,
        updates: Mapping[str, str],
        extra: Sequence[str] = (),
    ) -> None:
        pk = [c.name for c in table.primary_key.columns]
        self.columns: tuple[str, ...] = (*pk, *updates, *extra)
        self.counters = tuple(
            i for i, name in enumerate(updates) if isinstance(table.c[name].type, Integer)
        )
        """Positions (among ``updates``) of integer columns."""
        self._datetimes = tuple(
            i for i, name in enumerate(self.columns) if isinstance(table.c[name].type, UTCDateTime)
        )
        self._dialect = dialect
        names = ", ".join(self.columns)
        marks = ", ".join("?" for _ in self.columns)
        # Names come from the table metadata, never from input: no injection vector.
        self._sqlite_sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608
        if not updates:
            self._statement: Any = insert(table)
            return
        self._sqlite_sql += f" ON CONFLICT ({', '.join(pk)}) DO UPDATE SET " + ", ".join(
            f"{name} = {_SQLITE_MERGE[how].format(name)}" for name, how in updates.items()
        )
        ins = insert_for(dialect, table)
        least = func.min if dialect == "sqlite" else func.least
        greatest = func.max if dialect == "sqlite" else func.greatest
        merge = {
            "add": lambda old, new: old + new,
            "min": least,
            "max": greatest,
            "set": lambda _old, new: new,
        }
        self._statement = ins.on_conflict_do_update(
            index_elements=pk,
            set_={
                name: merge[how](table.c[name], ins.excluded[name]) for name, how in updates.items()
            },
        )

    def execute(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Write ``rows`` (tuples in :attr:`columns` order; aware datetimes) in the caller's
        transaction."""
        if not rows:
            return
        if self._dialect != "sqlite":
            conn.execute(self._statement, [dict(zip(self.columns, r, strict=True)) for r in rows])
            return
        if self._datetimes:
            rows = [_sqlite_times(r, self._datetimes) for r in rows]
        conn.exec_driver_sql(self._sqlite_sql, list(rows))


def _sqlite_times(row: tuple[Any, ...], positions: tuple[int, ...]) -> tuple[Any, ...]:
    values = list(row)
    for i in positions:
        if values[i] is None:
            continue
        if values[i].tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        # SQLAlchemy's SQLite DATETIME storage format (what UTCDateTime columns hold):
        # "YYYY-MM-DD HH:MM:SS.ffffff". isoformat renders it in C, a third faster than
        # strftime on the writer thread, which holds the GIL while it formats.
        moment = values[i].astimezone(UTC).replace(tzinfo=None)
        values[i] = moment.isoformat(" ", "microseconds")
    return tuple(values)


__all__ = ["BulkWrite"]
