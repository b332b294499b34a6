"""``aiusage enroll-code create --org O [--user U] [--ttl SECONDS]`` (docs/agent.md).

Prints a one-time code that ``aiusage agent enroll --server URL --code CODE`` trades for a
revocable device token. Only a hash of the code is stored.
"""

from __future__ import annotations

import argparse
from datetime import timedelta

from aiusage.cli.common import add_store_options
from aiusage.cli.migrate import run_with_database
from aiusage.store.database import Database
from aiusage.store.repositories import AgentRepository


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``enroll-code`` command group."""
    parser = subparsers.add_parser("enroll-code", help="agent enrollment codes")
    actions = parser.add_subparsers(dest="enroll_command", required=True)
    create = actions.add_parser("create", help="create a one-time enrollment code")
    create.add_argument("--org", required=True, help="organization id")
    create.add_argument("--user", help="user id the device belongs to")
    create.add_argument(
        "--ttl", type=int, default=86400, help="validity in seconds (default 86400)"
    )
    add_store_options(create)
    create.set_defaults(func=_create)


def _create(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        async with db.write() as conn:
            code = await AgentRepository().create_enrollment_code(
                conn, args.org, user_id=args.user, ttl=timedelta(seconds=args.ttl)
            )
        print(code)
        return 0

    return run_with_database(args, "aiusage enroll-code create", work)
