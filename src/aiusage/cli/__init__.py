"""aiusage: live AI-usage analytics with a SignalR-compatible real-time hub.

Each sub-command lives in its own module of ``aiusage.cli`` and exposes
``register(subparsers)``; this module only wires them together (thin CLI, services elsewhere).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Sub-command modules, in help order. Each defines register(subparsers) which adds its parser
# and sets ``func`` (argparse.Namespace -> int exit code).
_COMMAND_MODULES = (
    "serve",
    "migrate",
    "worker",
    "token",
    "org",
    "user",
    "enroll_code",
    "agent",
    "loadtest",
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser (used by ``main`` and by tests).

    Args:
        command: Register only this sub-command when it is one of ours (``main`` passes the
            one on the command line), else all of them (``aiusage --help``, a typo).
    """
    parser = argparse.ArgumentParser(
        prog="aiusage",
        description="Live AI-usage analytics with a SignalR-compatible real-time hub. "
        "Start with `aiusage serve --demo`.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    # Importing a command's module imports what it runs (alembic for migrate, httpx for the
    # agent, psutil for the load tester...): a server process must not carry the others.
    module_name = command.replace("-", "_") if command else None
    names = (module_name,) if module_name in _COMMAND_MODULES else _COMMAND_MODULES
    for name in names:
        try:
            module = importlib.import_module(f"aiusage.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"aiusage.cli.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aiusage`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # The top-level parser has no option taking a value, so the first word is the command.
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
