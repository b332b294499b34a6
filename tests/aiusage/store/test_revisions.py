"""The head revision read from the migration files matches alembic's, and a database already
at head is opened without loading alembic."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from alembic.script import ScriptDirectory

from aiusage.store.database import Database
from aiusage.store.migrate import alembic_config
from aiusage.store.revisions import head_revision


def test_head_revision_matches_alembic() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_at_head_is_false_before_and_true_after_migrating(tmp_path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    try:
        assert await db.at_head() is False
        await db.migrate()
        assert await db.at_head() is True
    finally:
        await db.dispose()


async def test_a_database_at_head_is_opened_without_importing_alembic(tmp_path) -> None:
    path = tmp_path / "a.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    await db.dispose()
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from aiusage.store.database import Database

        async def main():
            db = Database("sqlite+aiosqlite:///{path}")
            await db.migrate()
            await db.dispose()
            print("alembic" in sys.modules)

        asyncio.run(main())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False"
