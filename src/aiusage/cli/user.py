"""``aiusage user create|list|deactivate|activate|remove|set-role|set-team``.

``create --org O --role R [--email E] [--password P] [--id ID]``; the lifecycle commands take
``ID --org O``. A change is seen by every process within seconds: REST at the next request,
new hub connections at once, open hub connections at the next revalidation sweep
(docs/security.md "User lifecycle"). Deactivating, demoting or removing the last active Admin
of an organization is refused unless ``--force`` is given.

Without ``--password`` the user has no password and cannot log in to the dashboard (employees
reported by agents, or users of an external identity provider). When a Redis backplane is
configured (``--redis-url`` / ``AIUSAGE_REDIS_URL``), UserJoined is published to the
organization's live dashboards through it (seed event table: UserJoined, source Auth).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

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
    create.add_argument("--email", help="e-mail address (login name; none: cannot log in)")
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

    def member(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = actions.add_parser(name, help=help_text)
        cmd.add_argument("user_id", metavar="ID", help="user id")
        cmd.add_argument("--org", required=True, help="organization id")
        add_store_options(cmd)
        return cmd

    def forceable(cmd: argparse.ArgumentParser) -> argparse.ArgumentParser:
        cmd.add_argument(
            "--force",
            action="store_true",
            help="allow leaving the organization without an active Admin",
        )
        return cmd

    forceable(member("deactivate", "deactivate a user (tokens refused, kept in the list)"))
    member("activate", "reactivate a deactivated user")
    forceable(member("remove", "remove a user from the organization (tokens refused)"))
    set_role = forceable(member("set-role", "change a user's role"))
    set_role.add_argument("--role", required=True, choices=ROLES, help="the new role")
    set_team = member("set-team", "set or clear a user's team")
    team = set_team.add_mutually_exclusive_group(required=True)
    team.add_argument("--team", help="team name (empty: unassigned)")
    team.add_argument("--clear", action="store_true", help="unassign the team")
    for name, func in (
        ("deactivate", _deactivate),
        ("activate", _activate),
        ("remove", _remove),
        ("set-role", _set_role),
        ("set-team", _set_team),
    ):
        actions.choices[name].set_defaults(func=func)


def _create(args: argparse.Namespace) -> int:
    redis_url = args.redis_url or settings_from_args(args).redis_url
    if redis_url:
        # A bad URL must stop the command before the user exists, not after.
        from hubserver.lifetime.redis_url import RedisUrlError, parse_redis_url

        try:
            parse_redis_url(redis_url)
        except RedisUrlError as exc:
            print(f"aiusage user create: {exc}", file=sys.stderr)
            return 2
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
        print(f"created user {user.id} <{user.email or '-'}> in {user.org_id} as {user.role}{note}")
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
            print(f"{user.id}\t{user.email or '-'}\t{user.role}\t{state}\t{user.team or '-'}")
        return 0

    return run_with_database(args, "aiusage user list", work)


def _change(args: argparse.Namespace, command: str, **change: Any) -> int:
    """Apply one membership change in one transaction (the last-Admin rule included)."""
    repo = UserRepository()

    async def work(db: Database) -> int:
        async with db.write() as conn:
            if "team" not in change and not getattr(args, "force", False):
                await repo.ensure_an_admin_remains(conn, args.org, args.user_id, **change)
            if change.get("remove"):
                await repo.remove(conn, args.org, args.user_id)
            elif "role" in change:
                await repo.set_role(conn, args.org, args.user_id, change["role"])
            elif "active" in change:
                await repo.set_active(conn, args.org, args.user_id, change["active"])
            else:
                await repo.set_team(conn, args.org, args.user_id, change["team"])
        print(f"{command.removeprefix('aiusage user ')}: {args.user_id} in {args.org}: done")
        return 0

    return run_with_database(args, command, work)


def _deactivate(args: argparse.Namespace) -> int:
    return _change(args, "aiusage user deactivate", active=False)


def _activate(args: argparse.Namespace) -> int:
    return _change(args, "aiusage user activate", active=True)


def _remove(args: argparse.Namespace) -> int:
    return _change(args, "aiusage user remove", remove=True)


def _set_role(args: argparse.Namespace) -> int:
    return _change(args, "aiusage user set-role", role=args.role)


def _set_team(args: argparse.Namespace) -> int:
    return _change(args, "aiusage user set-team", team=None if args.clear else args.team)
