import sys
from pathlib import Path

# tests/ is not a package: make tests/support importable as "support".
_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from support.database import db, sqlite_db  # noqa: E402,F401  (fixtures)
