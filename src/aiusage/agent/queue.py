"""The agent's durable outbox: SQLite in the agent's data dir.

Every event is written here (committed) before any attempt to send it, and removed only after
the server acknowledged the batch holding it, so agent restarts and server outages lose
nothing; the server's idempotency on ``eventId`` turns at-least-once sending into exactly-once
storage. The same file keeps small key/value state (the open session, the clock offset).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Outbox:
    """A FIFO of JSON events that survives crashes.

    Args:
        path: SQLite file (created with its directory).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def put(self, events: Iterable[dict[str, Any]]) -> None:
        """Append events atomically (an event id already queued is kept once)."""
        rows = [(e["eventId"], json.dumps(e, separators=(",", ":")), time.time()) for e in events]
        if not rows:
            return
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR IGNORE INTO outbox(event_id, body, created) VALUES (?, ?, ?)", rows
            )

    def peek(self, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """The oldest ``limit`` events with their sequence numbers, without removing them."""
        cur = self._db.execute("SELECT seq, body FROM outbox ORDER BY seq LIMIT ?", (limit,))
        return [(int(seq), json.loads(body)) for seq, body in cur.fetchall()]

    def remove(self, seqs: Sequence[int]) -> None:
        """Forget delivered events."""
        if seqs:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def get_state(self, key: str) -> Any:
        """A value stored with :meth:`set_state`, or None."""
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_state(self, key: str, value: Any) -> None:
        """Store a JSON-able value."""
        with self._db:
            self._db.execute(
                "INSERT INTO kv(key, value) VALUES (?, ?) ON CONFLICT(key) "
                "DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )
