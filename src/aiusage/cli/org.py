"""``aiusage org create --id O --name N [--subscription S]``, ``aiusage org set-subscription O
STATUS``, ``aiusage org set-seats O N|--clear``, ``aiusage org remove O --yes`` (README.md
"Using it"; docs/security.md "User lifecycle").

``remove`` deletes the organization and all its data (users, devices, sessions, rollups,
exports, alerts): every token of it is refused within seconds, everywhere."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from sqlalchemy import select

from aiusage.cli.common import add_store_options
from aiusage.cli.migrate import run_with_database
from aiusage.domain.organizations import SUBSCRIPTION_STATUSES
from aiusage.store.database import Database
from aiusage.store.repositories import OrganizationRepository
from aiusage.store.tables import export_jobs


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``org`` command group."""
    parser = subparsers.add_parser("org", help="manage organizations")
    actions = parser.add_subparsers(dest="org_command", required=True)

    create = actions.add_parser("create", help="create an organization")
    create.add_argument("--id", required=True, dest="org_id", help="organization id")
    create.add_argument("--name", required=True, help="display name")
    create.add_argument(
        "--subscription",
        choices=SUBSCRIPTION_STATUSES,
        default="active",
        help="subscription status (default: active)",
    )
    create.add_argument(
        "--approved-tool",
        action="append",
        default=[],
        dest="approved_tools",
        help="an approved AI tool (repeat); detections of other tools raise alerts",
    )
    add_store_options(create)
    create.set_defaults(func=_create)

    status = actions.add_parser("set-subscription", help="change an organization's subscription")
    status.add_argument("org_id", metavar="ORG", help="organization id")
    status.add_argument(
        "status",
        metavar="STATUS",
        choices=SUBSCRIPTION_STATUSES,
        help="one of: " + ", ".join(SUBSCRIPTION_STATUSES),
    )
    add_store_options(status)
    status.set_defaults(func=_set_subscription)

    tools = actions.add_parser("set-approved-tools", help="replace the approved AI tools")
    tools.add_argument("org_id", metavar="ORG", help="organization id")
    tools.add_argument("tools", metavar="TOOL", nargs="*", help="approved tool names")
    add_store_options(tools)
    tools.set_defaults(func=_set_tools)

    seats = actions.add_parser("set-seats", help="set the seats an organization monitors")
    seats.add_argument("org_id", metavar="ORG", help="organization id")
    count = seats.add_mutually_exclusive_group(required=True)
    count.add_argument("seats", metavar="N", type=int, nargs="?", help="number of seats")
    count.add_argument("--clear", action="store_true", help="unset (adoption uses devices)")
    add_store_options(seats)
    seats.set_defaults(func=_set_seats)

    remove = actions.add_parser("remove", help="delete an organization and all its data")
    remove.add_argument("org_id", metavar="ORG", help="organization id")
    remove.add_argument("--yes", action="store_true", required=True, help="confirm deletion")
    add_store_options(remove)
    remove.set_defaults(func=_remove)

    listing = actions.add_parser("list", help="list organizations")
    add_store_options(listing)
    listing.set_defaults(func=_list)


def _create(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        async with db.write() as conn:
            org = await OrganizationRepository().create(
                conn,
                args.org_id,
                args.name,
                subscription_status=args.subscription,
                approved_tools=args.approved_tools,
            )
        print(f"created organization {org.id} ({org.name}), subscription {org.subscription_status}")
        return 0

    return run_with_database(args, "aiusage org create", work)


def _set_subscription(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        async with db.write() as conn:
            await OrganizationRepository().set_subscription(conn, args.org_id, args.status)
        print(f"organization {args.org_id}: subscription {args.status}")
        return 0

    return run_with_database(args, "aiusage org set-subscription", work)


def _set_tools(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        async with db.write() as conn:
            await OrganizationRepository().set_approved_tools(conn, args.org_id, args.tools)
        print(f"organization {args.org_id}: approved tools {', '.join(sorted(args.tools)) or '-'}")
        return 0

    return run_with_database(args, "aiusage org set-approved-tools", work)


def _set_seats(args: argparse.Namespace) -> int:
    seats: int | None = None if args.clear else args.seats

    async def work(db: Database) -> int:
        async with db.write() as conn:
            await OrganizationRepository().set_seats(conn, args.org_id, seats)
        print(f"organization {args.org_id}: seats {seats if seats is not None else '-'}")
        return 0

    return run_with_database(args, "aiusage org set-seats", work)


def _remove(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        jobs = export_jobs
        async with db.write() as conn:
            files = [
                Path(path)
                for (path,) in await conn.execute(
                    select(jobs.c.path).where(
                        jobs.c.org_id == args.org_id, jobs.c.path.is_not(None)
                    )
                )
            ]
            rows = await OrganizationRepository().remove(conn, args.org_id)
        for file in files:  # the organization's export files go with it
            with contextlib.suppress(OSError):
                file.unlink()
        print(f"removed organization {args.org_id} ({rows} rows, {len(files)} export files)")
        return 0

    return run_with_database(args, "aiusage org remove", work)


def _list(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        async with db.read() as conn:
            orgs = await OrganizationRepository().list(conn)
        for org in orgs:
            print(f"{org.id}\t{org.subscription_status}\t{org.name}")
        return 0

    return run_with_database(args, "aiusage org list", work)
