"""``aiusage user create --email E --org O --role R [--password P]`` (issue 4).

Without ``--password`` the user has no password and cannot log in to the dashboard (employees
reported by agents, or users of an external identity provider).
"""

from __future__ import annotations

import argparse

from aiusage.auth.passwords import hash_password
from aiusage.cli.common import add_store_options
from aiusage.cli.migrate import run_with_database
from aiusage.domain.organizations import ROLES
from aiusage.store.database import Database
from aiusage.store.repositories import UserRepository


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``user`` command group."""
    parser = subparsers.add_parser("user", help="manage users")
    actions = parser.add_subparsers(dest="user_command", required=True)

    create = actions.add_parser("create", help="create a user")
    create.add_argument("--email", required=True, help="e-mail address (login name)")
    create.add_argument("--org", required=True, help="organization id")
    create.add_argument("--role", required=True, choices=ROLES, help="role")
    create.add_argument("--password", help="password for dashboard login (argon2-hashed)")
    create.add_argument("--id", dest="user_id", help="user id (default: generated)")
    add_store_options(create)
    create.set_defaults(func=_create)

    listing = actions.add_parser("list", help="list the users of an organization")
    listing.add_argument("--org", required=True, help="organization id")
    add_store_options(listing)
    listing.set_defaults(func=_list)


def _create(args: argparse.Namespace) -> int:
    password_hash = hash_password(args.password) if args.password else None

    async def work(db: Database) -> int:
        async with db.write() as conn:
            user = await UserRepository().create(
                conn,
                args.org,
                email=args.email,
                role=args.role,
                password_hash=password_hash,
                user_id=args.user_id,
            )
        note = "" if password_hash else " (no password: cannot log in)"
        print(f"created user {user.id} <{user.email}> in {user.org_id} as {user.role}{note}")
        return 0

    return run_with_database(args, "aiusage user create", work)


def _list(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        async with db.read() as conn:
            users = await UserRepository().list(conn, args.org)
        for user in users:
            state = "active" if user.active else "inactive"
            print(f"{user.id}\t{user.email or '-'}\t{user.role}\t{state}")
        return 0

    return run_with_database(args, "aiusage user list", work)
