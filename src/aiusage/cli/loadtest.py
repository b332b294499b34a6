"""``aiusage loadtest --url URL --connections N --orgs K --transport ws|sse|lp|mix
--protocol json|messagepack --duration S --event-rate R [--report DIR] [--data-dir D]
[--token-file F] [--create-orgs]``: load an ``aiusage serve`` instance on this machine.

Tokens are minted from the instance's data dir (like ``aiusage token issue``) for K
organizations ``loadtest-0000``...; ``--create-orgs`` creates them (subscription active) in the
instance's store first, since the hub refuses unknown organizations. ``--token-file`` supplies
tokens instead (``{"orgs": {"<org>": {"dashboard": "<jwt>", "agent": "<jwt>"}}}``). Only
loopback targets are accepted. The load tester is an optional part of the product:
``pip install 'aiusage[loadtest]'`` adds what it needs (matplotlib for the report's plots).

Exit status: 0 when every connection opened and no message was lost, 3 otherwise (the report
says what), 2 for unusable arguments or targets, 1 for store errors.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
from typing import Any

from aiusage.cli.common import add_store_options
from aiusage.errors import AiUsageError
from aiusage.loadtest.coordinator import (
    PROTOCOL_CHOICES,
    TRANSPORT_CHOICES,
    LoadTestConfig,
    LoadTestError,
    run_loadtest,
)
from aiusage.loadtest.report import write_report
from aiusage.loadtest.setup import ensure_organizations, load_token_file, mint_tokens, org_ids

MAX_DURATION_S = 24 * 3600

EXTRA_MODULES = ("matplotlib", "picows")
"""What ``pip install 'aiusage[loadtest]'`` adds to the product's dependencies (the plots,
the WebSocket client)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``loadtest`` command."""
    p = subparsers.add_parser(
        "loadtest",
        help="open N SignalR connections against a local server and measure it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--url", default="http://127.0.0.1:8080/hubs/analytics", help="hub URL (loopback only)"
    )
    p.add_argument("--connections", type=int, required=True, help="dashboard connections to hold")
    p.add_argument("--orgs", type=int, default=1, help="organizations the connections spread over")
    p.add_argument("--transport", choices=TRANSPORT_CHOICES, default="ws")
    p.add_argument("--protocol", choices=PROTOCOL_CHOICES, default="json")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of agent traffic")
    p.add_argument(
        "--event-rate", type=float, default=10.0, help="agent events per second (0: idle)"
    )
    p.add_argument("--report", default=None, help="directory for report.json, summary.md, *.png")
    p.add_argument("--token-file", default=None, help="tokens to use instead of minting them")
    p.add_argument(
        "--create-orgs", action="store_true", help="create the organizations in the store first"
    )
    p.add_argument("--workers", type=int, default=0, help="client processes (default: N/12000)")
    p.add_argument("--sources", type=int, default=2, help="source addresses 127.0.0.x per worker")
    p.add_argument("--concurrency", type=int, default=200, help="handshakes in flight per worker")
    p.add_argument("--keepalive", type=float, default=15.0, help="client ping interval (0: off)")
    p.add_argument(
        "--server-pid", type=int, action="append", default=[], help="server pid(s) to sample"
    )
    p.add_argument(
        "--skip-negotiation",
        action="store_true",
        help="WebSockets without negotiate (several server processes on one port, no affinity)",
    )
    p.add_argument("--label", default="", help="name shown in the report")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_store_options(p)
    p.set_defaults(func=_run)


def build_config(args: argparse.Namespace) -> LoadTestConfig:
    """Tokens (minted or read) and the coordinator's configuration from the flags.

    Raises:
        LoadTestError: Invalid flags or token file.
    """
    if args.connections < 1 or args.orgs < 1:
        raise LoadTestError("--connections and --orgs must be at least 1")
    if not 0 < args.duration <= MAX_DURATION_S:
        raise LoadTestError(f"--duration must be in (0, {MAX_DURATION_S}] seconds")
    if args.event_rate < 0:
        raise LoadTestError("--event-rate must be >= 0")
    if args.token_file:
        try:
            orgs, dashboard, agent = load_token_file(args.token_file)
        except (OSError, ValueError) as exc:
            raise LoadTestError(f"--token-file: {exc}") from exc
        if args.event_rate > 0 and set(agent) != set(orgs):
            raise LoadTestError(
                "--token-file needs an 'agent' token per organization for --event-rate > 0"
            )
    else:
        orgs = org_ids(args.orgs)
        ttl = int(args.duration + max(600, args.connections / 10) + 600)
        dashboard, agent = mint_tokens(args.data_dir, orgs, ttl)
    return LoadTestConfig(
        url=args.url,
        connections=args.connections,
        orgs=orgs,
        dashboard_tokens=dashboard,
        agent_tokens=agent,
        transport=args.transport,
        protocol=args.protocol,
        duration=args.duration,
        event_rate=args.event_rate,
        workers=args.workers,
        sources=args.sources,
        concurrency=args.concurrency,
        keepalive_s=args.keepalive,
        skip_negotiation=args.skip_negotiation,
        server_pids=list(args.server_pid),
        label=args.label,
        quiet=args.quiet,
    )


def _run(args: argparse.Namespace) -> int:
    missing = missing_extra()
    if missing:
        print(
            f"aiusage loadtest: the load tester needs the optional 'loadtest' extra "
            f"(missing: {', '.join(missing)}); install it with: pip install 'aiusage[loadtest]'",
            file=sys.stderr,
        )
        return 2
    try:
        cfg = build_config(args)
        from aiusage.loadtest.coordinator import parse_target

        parse_target(cfg.url)  # refuse non-loopback targets before touching the store
        if args.create_orgs and not args.token_file:
            created = asyncio.run(ensure_organizations(cfg.orgs, args.data_dir, args.database_url))
            print(f"organizations ready ({created} created)", file=sys.stderr)
        report = _run_loop(cfg)
    except LoadTestError as exc:
        print(f"aiusage loadtest: {exc}", file=sys.stderr)
        return 2
    except AiUsageError as exc:
        print(f"aiusage loadtest: {exc.message}", file=sys.stderr)
        return 1
    if args.report:
        paths = write_report(report, args.report)
        print(f"report written to {paths['json'].parent}", file=sys.stderr)
    print(json.dumps(report["result"], indent=2))
    d = report["result"]["delivery"]
    return 0 if d["lost"] == 0 and report["result"]["connections"]["failed"] == 0 else 3


def _run_loop(cfg: LoadTestConfig) -> dict[str, Any]:
    from hubserver.server.runner import run

    return run(run_loadtest(cfg))


def missing_extra() -> list[str]:
    """Modules of the ``loadtest`` extra that are not installed (empty when it is)."""
    return [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]
