"""``aiusage agent ...``: agent-side commands.

Sub-commands register through :data:`AGENT_COMMANDS` (``name -> register function``), so the
desktop agent's ``enroll`` and ``run`` are one function and one table entry each:

* ``aiusage agent simulate --server URL --org O --users N --rate R --duration S
  [--data-dir D | --token T] [--seed N]``: post realistic sessions through the real ingestion
  API (README.md "Using it"). With ``--token`` the given Agent token is used; otherwise
  one is minted from the data dir's built-in issuer, as ``aiusage token issue --role Agent``
  does. Prints a JSON summary; exit 0 when every batch was accepted, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    SubParsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
else:  # not subscriptable at runtime on 3.11
    SubParsers = argparse._SubParsersAction

OPTIONAL_MODULES = ("aiusage.cli.agent_desktop",)
"""Modules that may add agent sub-commands: each exposes ``register_agent_commands(actions)``
(e.g. the desktop agent's ``enroll``/``run``); missing ones are skipped."""


def _register_simulate(actions: SubParsers) -> None:
    sim = actions.add_parser(
        "simulate", help="post simulated AI-usage sessions through the ingestion API"
    )
    sim.add_argument("--server", required=True, help="server base URL, e.g. http://127.0.0.1:8080")
    sim.add_argument("--org", required=True, help="organization id")
    sim.add_argument("--users", type=int, default=10, help="simulated users (default 10)")
    sim.add_argument("--rate", type=float, default=5.0, help="events per second (default 5)")
    sim.add_argument("--duration", type=float, default=60.0, help="seconds to run (default 60)")
    sim.add_argument("--seed", type=int, default=None, help="random seed (reproducible runs)")
    sim.add_argument(
        "--batch-interval", type=float, default=1.0, help="seconds between batches (default 1)"
    )
    source = sim.add_mutually_exclusive_group()
    source.add_argument("--token", help="Agent token to use (else minted from --data-dir)")
    source.add_argument(
        "--data-dir",
        default=None,
        help="data dir whose built-in issuer mints the Agent token "
        "(default: env AIUSAGE_DATA_DIR or ./.data)",
    )
    sim.set_defaults(func=_simulate)


AGENT_COMMANDS: dict[str, Callable[[SubParsers], None]] = {"simulate": _register_simulate}
"""Built-in agent sub-commands."""


def register(subparsers: SubParsers) -> None:
    """Add the ``agent`` command and its sub-commands."""
    parser = subparsers.add_parser("agent", help="agent commands (simulator, desktop agent)")
    actions = parser.add_subparsers(dest="agent_command", required=True)
    for add in AGENT_COMMANDS.values():
        add(actions)
    for name in OPTIONAL_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register_agent_commands(actions)


def _simulate(args: argparse.Namespace) -> int:
    from aiusage.agent.simulator import mint_agent_token, simulate

    if args.users < 1 or args.rate <= 0 or args.duration < 0 or args.batch_interval <= 0:
        print(
            "aiusage agent simulate: --users >= 1, --rate > 0, --duration >= 0 and "
            "--batch-interval > 0 are required",
            file=sys.stderr,
        )
        return 2
    token = args.token
    if token is None:
        data_dir = args.data_dir or os.environ.get("AIUSAGE_DATA_DIR", ".data")
        try:
            token = mint_agent_token(data_dir, args.org, ttl=int(args.duration) + 3600)
        except (OSError, ValueError) as exc:
            print(f"aiusage agent simulate: cannot mint a token: {exc}", file=sys.stderr)
            return 1
    stats = asyncio.run(
        simulate(
            args.server,
            token,
            org=args.org,
            users=args.users,
            rate=args.rate,
            duration=args.duration,
            seed=args.seed,
            batch_interval=args.batch_interval,
        )
    )
    print(json.dumps(stats.as_dict()))
    return 0 if stats.failed_batches == 0 else 1


__all__ = ["AGENT_COMMANDS", "OPTIONAL_MODULES", "register"]
