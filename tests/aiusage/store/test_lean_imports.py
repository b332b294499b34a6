"""A server process loads neither the PostgreSQL dialect it does not use nor our ORM classes,
and those classes still import and work for the code that wants them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src"


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={"PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


def test_platform_import_leaves_the_postgresql_dialect_out() -> None:
    out = _run(
        """
        import sys
        import aiusage.platform
        print("sqlalchemy.dialects.postgresql" in sys.modules)
        """
    )
    assert out == "False"


def test_platform_import_maps_no_orm_class() -> None:
    # The tables are Core tables; the ORM classes of aiusage.store.models are built only
    # when something asks for them (the tests do).
    out = _run(
        """
        import sys
        import aiusage.platform
        print("aiusage.store.models" in sys.modules)
        """
    )
    assert out == "False"


def test_mapped_classes_still_importable_from_tables() -> None:
    out = _run(
        """
        from sqlalchemy import select
        from aiusage.metrics.tables import Cover, cover
        from aiusage.store.tables import AISession, ai_sessions
        assert AISession.__table__ is ai_sessions and Cover.__table__ is cover
        print(select(AISession.user_id).where(AISession.org_id == "o").selected_columns[0].name)
        """
    )
    assert out == "user_id"
