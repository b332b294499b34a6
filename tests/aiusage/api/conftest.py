import sys
from pathlib import Path

# tests/ is not a package: make tests/support importable as "support".
_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

import pytest  # noqa: E402
from tests.aiusage.api.p2b_support import platform  # noqa: E402,F401  (fixture per backend)

from support.api_app import open_harness  # noqa: E402
from support.database import db, sqlite_db  # noqa: E402,F401  (fixtures)


@pytest.fixture
async def api(db, tmp_path_factory):  # noqa: F811  (db is the imported fixture)
    harness = await open_harness(db, tmp_path_factory.getbasetemp())
    try:
        yield harness
    finally:
        await harness.client.aclose()
