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


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (used by ``main`` and by tests)."""
    parser = argparse.ArgumentParser(
        prog="aiusage",
        description="Live AI-usage analytics with a SignalR-compatible real-time hub. "
        "Start with `aiusage serve --demo`.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
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
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
