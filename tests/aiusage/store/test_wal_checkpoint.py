"""WalCheckpointer: commits are copied from the WAL into the database file off the writer."""

from __future__ import annotations

import shutil
import sqlite3

from aiusage.store.wal_checkpoint import WalCheckpointer


def _writer(path):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # only the checkpointer copies pages
    conn.execute("CREATE TABLE t (x INTEGER)")
    return conn


def _main_file_rows(path, tmp_path):
    copy = tmp_path / "copy.db"
    shutil.copyfile(path, copy)  # without the -wal file
    return sqlite3.connect(copy).execute("SELECT count(*) FROM t").fetchone()[0]


def test_nothing_reaches_the_main_file_without_a_checkpoint(tmp_path) -> None:
    path = tmp_path / "a.db"
    conn = _writer(path)
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    # Control for the next test: the copy of the main file alone has no table yet.
    try:
        _main_file_rows(path, tmp_path)
        raise AssertionError("table visible without checkpoint")
    except sqlite3.OperationalError as exc:
        assert "no such table" in str(exc)
    conn.close()


def test_close_checkpoints_what_was_committed_and_stops_the_thread(tmp_path) -> None:
    path = tmp_path / "a.db"
    conn = _writer(path)
    checkpointer = WalCheckpointer(path, interval_s=0.01)
    for i in range(20):
        conn.execute("INSERT INTO t VALUES (?)", (i,))
        checkpointer.notify()
    checkpointer.close()
    assert checkpointer.checkpoints >= 1
    assert checkpointer._thread is not None and not checkpointer._thread.is_alive()
    assert _main_file_rows(path, tmp_path) == 20
    checkpointer.close()  # idempotent
    conn.close()


def test_a_checkpointer_never_notified_starts_no_thread(tmp_path) -> None:
    checkpointer = WalCheckpointer(tmp_path / "a.db")
    checkpointer.close()
    assert checkpointer._thread is None and checkpointer.checkpoints == 0
