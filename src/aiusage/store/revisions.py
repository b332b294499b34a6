"""The newest migration revision, read from the migration files without importing alembic.

A started server whose database is already at the newest revision has nothing to migrate;
checking that with alembic would load it (~40 MB of RSS per process, kept for the life of the
process). :func:`head_revision` parses ``revision`` / ``down_revision`` from the packaged
files instead; a test checks it against alembic's own answer.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

VERSIONS_DIR = Path(__file__).parent / "migrations" / "versions"


def _assigned(tree: ast.Module, name: str) -> object:
    for node in tree.body:
        target = None
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target, value = node.target.id, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            first = node.targets[0]
            target, value = (first.id if isinstance(first, ast.Name) else None), node.value
        if target == name and value is not None:
            return ast.literal_eval(value)
    raise LookupError(f"{name} not assigned")


@cache
def head_revision() -> str:
    """The one revision no other revision names as its ``down_revision``.

    Raises:
        LookupError: The migration files have no single head (a broken package).
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted(VERSIONS_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        revision = _assigned(tree, "revision")
        down = _assigned(tree, "down_revision")
        if not isinstance(revision, str):
            raise LookupError(f"{path.name}: revision is not a string")
        revisions.add(revision)
        for parent in down if isinstance(down, tuple | list) else (down,):
            if isinstance(parent, str):
                parents.add(parent)
    heads = revisions - parents
    if len(heads) != 1:
        raise LookupError(f"expected one head revision, found {sorted(heads)}")
    return heads.pop()


__all__ = ["head_revision"]
