"""``aiusage serve``: run the platform (REST API, hub at ``/hubs/analytics``, dashboard at ``/``).

``--workers N`` (N > 1) runs N server processes on the same port (``SO_REUSEPORT``) that share
the database and the Redis backplane (so ``--redis-url`` is required): this process migrates
the database (and seeds the demo), then supervises the children and forwards SIGINT/SIGTERM.
SSE and long polling need the same client to reach the same process across requests: put a
proxy with affinity in front (docs/deploy.md); WebSockets need nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aiusage.cli.common import add_store_options
from aiusage.errors import AiUsageError
from aiusage.settings import Settings

log = logging.getLogger("aiusage.serve")

_CHILD_FLAG = "--worker-index"
_TRUE = ("1", "true", "yes", "on")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command."""
    parser = subparsers.add_parser("serve", help="run the platform server")
    parser.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default 8080; 0 = any)")
    add_store_options(parser)
    parser.add_argument(
        "--redis-url",
        default=None,
        help="Redis backplane URL: redis://, rediss:// (TLS) or "
        "redis+sentinel://host:port[,host:port]/service (env AIUSAGE_REDIS_URL)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="seed a demo organization and run the agent simulator in process",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="server processes sharing the port (needs --redis-url)",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=None,
        dest="cors_origins",
        help="allowed cross-origin caller (repeat)",
    )
    parser.add_argument(
        "--public-url", default=None, help="externally visible base URL (links in notifications)"
    )
    parser.add_argument(
        "--web-dir",
        default=None,
        help="built dashboard to serve at / "
        "(default: web/dashboard/dist/dashboard/browser when built)",
    )
    parser.add_argument(
        "--tls-cert",
        default=None,
        help="PEM certificate chain: serve https:// and wss:// (env AIUSAGE_SERVER_TLS_CERT)",
    )
    parser.add_argument(
        "--tls-key", default=None, help="PEM private key of --tls-cert (env AIUSAGE_SERVER_TLS_KEY)"
    )
    parser.add_argument(_CHILD_FLAG, type=int, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(func=_serve)


def settings_from_serve_args(args: argparse.Namespace) -> Settings:
    """Environment settings overridden by the flags given."""
    settings = Settings.from_env().replace(
        host=args.host,
        port=args.port,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        database_url=args.database_url,
        redis_url=args.redis_url,
        demo=True if args.demo else None,
        workers=args.workers,
        cors_origins=tuple(args.cors_origins) if args.cors_origins else None,
        public_url=args.public_url,
        web_dir=Path(args.web_dir) if args.web_dir else None,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )
    settings.validate()
    # Load the certificate now: a bad file is reported before anything starts.
    from aiusage.platform import tls_context

    tls_context(settings)
    return settings


def _configure_logging() -> None:
    # Text or JSON lines (AIUSAGE_LOG_FORMAT), always through the token-redacting filter
    # (aiusage.observability.logs). Invalid formats fall back to text here and are
    # reported by Settings.validate().
    from aiusage.observability.logs import configure_logging

    level = os.environ.get("AIUSAGE_LOG_LEVEL", "INFO").upper()
    fmt = os.environ.get("AIUSAGE_LOG_FORMAT", "text").strip().lower()
    access_all = os.environ.get("AIUSAGE_ACCESS_LOG_ALL", "").strip().lower() in _TRUE
    configure_logging(fmt if fmt in ("text", "json") else "text", level, access_all=access_all)


def _banner(base_url: str, password: str | None, workers: int) -> str:
    lines = [
        f"aiusage is serving on {base_url}" + (f" ({workers} processes)" if workers > 1 else ""),
        f"  dashboard: {base_url}/",
        f"  hub:       {base_url}/hubs/analytics",
        f"  API docs:  {base_url}/api/docs",
    ]
    if password is not None:
        from aiusage.demo import DEMO_ADMIN, DEMO_MANAGER

        lines.append(f"  login:     {DEMO_ADMIN} / {password}  (also {DEMO_MANAGER})")
    else:
        lines.append(
            "  login:     create one with `aiusage org create` and "
            "`aiusage user create --password ...`"
        )
    lines.append("Press Ctrl+C to stop.")
    return "\n".join(lines)


def _serve(args: argparse.Namespace) -> int:
    _configure_logging()
    try:
        settings = settings_from_serve_args(args)
    except AiUsageError as exc:
        print(f"aiusage serve: {exc.message}", file=sys.stderr)
        return 2
    if settings.workers > 1 and args.worker_index is None:
        return _supervise(args, settings)
    try:
        _run_uvloop(_serve_one(settings, worker_index=args.worker_index))
    except AiUsageError as exc:
        print(f"aiusage serve: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"aiusage serve: {exc}", file=sys.stderr)
        return 1
    return 0


def _run_uvloop(coro: Any) -> None:
    """Run on uvloop (the fast path), or on asyncio's loop with ``AIUSAGE_EVENT_LOOP=asyncio``
    (the engine's runner, :func:`hubserver.server.runner.run`)."""
    from hubserver.server.runner import EventLoop, run

    loop: EventLoop = "asyncio" if os.environ.get("AIUSAGE_EVENT_LOOP") == "asyncio" else "uvloop"
    run(coro, event_loop=loop)


async def _serve_one(settings: Settings, worker_index: int | None) -> None:
    from aiusage.platform import Platform

    child = worker_index is not None
    # Children find the schema migrated (and the demo seeded) by their supervisor.
    platform = await Platform.create(settings, migrate=not child)
    password = None
    if settings.demo and not child:
        # Only with --demo: the demo's simulator brings httpx (and rich and click with it).
        from aiusage.demo import seed_demo

        password = await seed_demo(platform.db)

    def started(p: Platform) -> None:
        if not child:
            print(_banner(p.base_url, password, settings.workers), flush=True)
        if settings.demo and (worker_index or 0) == 0:
            from aiusage.demo import run_simulator

            # Over TLS the simulator checks the certificate like any client (valid for
            # 127.0.0.1, and trusted: a private CA through SSL_CERT_FILE; docs/deploy.md).
            url = f"{settings.scheme}://127.0.0.1:{p.port}"
            p.spawn(run_simulator(url, p.db, p.issuer), "demo-simulator")

    await platform.serve(started)


def _child_argv(settings: Settings) -> list[str]:
    """``serve`` arguments reproducing ``settings`` in a worker process."""
    argv = [
        "serve",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--data-dir",
        str(settings.data_dir),
        "--workers",
        str(settings.workers),
    ]
    if settings.database_url:
        argv += ["--database-url", settings.database_url]
    if settings.redis_url:
        argv += ["--redis-url", settings.redis_url]
    if settings.demo:
        argv.append("--demo")
    for origin in settings.cors_origins:
        argv += ["--cors-origin", origin]
    if settings.public_url:
        argv += ["--public-url", settings.public_url]
    if settings.web_dir:
        argv += ["--web-dir", str(settings.web_dir)]
    if settings.tls_cert and settings.tls_key:
        argv += ["--tls-cert", settings.tls_cert, "--tls-key", settings.tls_key]
    return argv


def _supervise(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate (and seed), start N children on the shared port, forward signals, wait."""
    if not settings.redis_url:
        print(
            "aiusage serve: --workers N needs --redis-url (processes share hub groups "
            "through the backplane)",
            file=sys.stderr,
        )
        return 2
    if settings.port == 0:
        print("aiusage serve: --workers N needs a fixed --port", file=sys.stderr)
        return 2

    async def prepare() -> str | None:
        from aiusage.demo import seed_demo
        from aiusage.store.database import Database

        db = Database(settings.resolved_database_url, schema=settings.database_schema)
        try:
            await db.migrate()
            return await seed_demo(db) if settings.demo else None
        finally:
            await db.dispose()

    try:
        password = asyncio.run(prepare())
    except (AiUsageError, OSError) as exc:
        print(f"aiusage serve: {exc}", file=sys.stderr)
        return 1
    argv = _child_argv(settings)
    children = [
        subprocess.Popen([sys.executable, "-m", "aiusage.cli", *argv, _CHILD_FLAG, str(i)])
        for i in range(settings.workers)
    ]
    print(_banner(settings.base_url, password, settings.workers), flush=True)
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in children:
            if proc.poll() is None:
                proc.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    # Supervise: if one child dies unexpectedly, stop the others (fail loudly, not half-up).
    while any(p.poll() is None for p in children):
        if not stopping and any(p.poll() is not None for p in children):
            log.error("a worker exited unexpectedly; stopping the others")
            forward(signal.SIGTERM, None)
        time.sleep(0.2)
    return max((p.returncode or 0) for p in children) if not stopping else 0
