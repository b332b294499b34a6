"""``aiusage user create --email E --org O --role R [--password P]`` (issue 4).

Without ``--password`` the user has no password and cannot log in to the dashboard (employees
reported by agents, or users of an external identity provider). When a Redis backplane is
configured (``--redis-url`` / ``AIUSAGE_REDIS_URL``), UserJoined is published to the
organization's live dashboards through it (seed event table: UserJoined, source Auth).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from aiusage.auth.passwords import hash_password
from aiusage.cli.common import add_store_options
from aiusage.cli.migrate import run_with_database, settings_from_args
from aiusage.domain.organizations import ROLES
from aiusage.settings import Settings
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
    create.add_argument(
        "--redis-url",
        default=None,
        help="publish UserJoined through this backplane (env AIUSAGE_REDIS_URL)",
    )
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
        redis_url = args.redis_url or settings_from_args(args).redis_url
        if redis_url:
            await _publish_user_joined(redis_url, user.org_id, user.id, user.email, user.created_at)
        return 0

    return run_with_database(args, "aiusage user create", work)


async def _publish_user_joined(
    redis_url: str, org_id: str, user_id: str, email: str | None, created_at: datetime
) -> None:
    from aiusage.platform import HUB_NAME
    from aiusage.realtime.publisher import EventPublisher
    from hubserver import HubContext, RedisPublisher

    settings = Settings.from_env()
    backplane = RedisPublisher(redis_url, channel_prefix=settings.channel_prefix, hub_name=HUB_NAME)
    try:
        await backplane.start()
        await EventPublisher(HubContext(backplane)).user_joined(org_id, user_id, email, created_at)
    except Exception as exc:  # the user exists; a missed live notice is not an error
        print(f"note: UserJoined not published ({type(exc).__name__})", file=sys.stderr)
    finally:
        await backplane.stop()


def _list(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        async with db.read() as conn:
            users = await UserRepository().list(conn, args.org)
        for user in users:
            state = "active" if user.active else "inactive"
            print(f"{user.id}\t{user.email or '-'}\t{user.role}\t{state}")
        return 0

    return run_with_database(args, "aiusage user list", work)
