"""Options shared by every command that touches state (README.md "Using it")."""

from __future__ import annotations

import argparse
import os


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--database-url`` (env AIUSAGE_DATA_DIR, AIUSAGE_DATABASE_URL)."""
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("AIUSAGE_DATA_DIR", ".data"),
        help="directory for the embedded database and signing keys (default: ./.data, "
        "env AIUSAGE_DATA_DIR)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("AIUSAGE_DATABASE_URL"),
        help="SQLAlchemy async URL, e.g. postgresql+asyncpg://127.0.0.1/test "
        "(default: SQLite in the data dir; env AIUSAGE_DATABASE_URL)",
    )
