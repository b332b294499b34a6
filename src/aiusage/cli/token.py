"""``aiusage token issue --sub S --org O --role R [--ttl SECONDS]``: print a signed token.

The token comes from the built-in issuer of the data dir (the same key ``aiusage serve`` uses,
created on first use), so it is accepted by a server started on that data dir.
"""

from __future__ import annotations

import argparse
import sys

from aiusage.auth.errors import KeySourceError
from aiusage.auth.issuer import MAX_TTL, BuiltinIssuer
from aiusage.auth.principal import KNOWN_ROLES
from aiusage.cli.common import add_store_options


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``token`` command."""
    parser = subparsers.add_parser("token", help="issue access tokens from the built-in issuer")
    actions = parser.add_subparsers(dest="token_command", required=True)
    issue = actions.add_parser("issue", help="print an RS256 JWT signed by the built-in issuer")
    issue.add_argument("--sub", required=True, help="user id (the 'sub' claim)")
    issue.add_argument("--org", required=True, help="organization id (the 'org' claim)")
    issue.add_argument(
        "--role",
        required=True,
        action="append",
        choices=sorted(KNOWN_ROLES),
        help="role; repeat for several",
    )
    issue.add_argument(
        "--ttl", type=int, default=3600, help=f"lifetime in seconds (1..{MAX_TTL}, default 3600)"
    )
    add_store_options(issue)
    issue.set_defaults(func=_issue)


def _issue(args: argparse.Namespace) -> int:
    if not 1 <= args.ttl <= MAX_TTL:
        print(f"aiusage token issue: --ttl must be between 1 and {MAX_TTL}", file=sys.stderr)
        return 2
    try:
        issuer = BuiltinIssuer.load_or_create(args.data_dir)
        roles: list[str] = args.role
        token = issuer.issue(args.sub, args.org, roles[0] if len(roles) == 1 else roles, args.ttl)
    except (KeySourceError, ValueError, OSError) as exc:
        print(f"aiusage token issue: {exc}", file=sys.stderr)
        return 1
    print(token)
    return 0
