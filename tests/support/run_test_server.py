"""Start a hub server with :class:`~tests.support.conformance_hub.ConformanceHub` on
127.0.0.1, print ``{"port": N}`` on stdout once listening, run until SIGTERM/SIGINT.

    python -m tests.support.run_test_server [--port 0] [--path /conformance] [--stateful]
        [--static] [--allowed-origin ORIGIN ...] [--functional [--tls-cert C --tls-key K]]

Used by tests/integration/test_official_clients.py so that Node and Python clients hit a real
socket in another process. ``--functional`` serves the hubs, echo endpoint and routes of
:mod:`tests.support.functional_hub` instead (tests/integration/test_functional_conformance.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

from hubserver.app import map_hub
from hubserver.connections.endpoint import ConnectionEndpoint
from hubserver.options import ConnectionOptions
from hubserver.server import HubServer
from hubserver.server.tls import load_tls_context
from tests.support.conformance_hub import ConformanceHub
from tests.support.functional_hub import build_functional_app, functional_server
from tests.support.static_pages import StaticApp

DEFAULT_PATH = "/conformance"


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--path", default=DEFAULT_PATH)
    parser.add_argument("--stateful", action="store_true", help="allow stateful reconnect")
    parser.add_argument("--access-log", action="store_true", help="log every request (stderr)")
    parser.add_argument(
        "--static", action="store_true", help="serve the browser test page under /browser/"
    )
    parser.add_argument(
        "--allowed-origin", action="append", default=[], help="CORS origin to allow (repeatable)"
    )
    parser.add_argument(
        "--functional", action="store_true", help="serve tests/support/functional_hub.py"
    )
    parser.add_argument("--tls-cert", help="with --functional: serve HTTPS with this PEM cert")
    parser.add_argument("--tls-key", help="the PEM key of --tls-cert")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.access_log:
        logging.getLogger("hubserver.access").setLevel(logging.INFO)
    mapped = map_hub(
        args.path,
        ConformanceHub,
        connection_options=ConnectionOptions(
            allow_stateful_reconnects=args.stateful, allowed_origins=tuple(args.allowed_origin)
        ),
    )
    endpoint: ConnectionEndpoint = mapped.endpoint
    server = HubServer(
        [endpoint],
        StaticApp() if args.static else None,
        host="127.0.0.1",
        port=args.port,
        access_log=args.access_log,
    )
    if args.functional:
        tls = load_tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
        server = functional_server(build_functional_app(), args.port, tls)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    print(json.dumps({"port": server.port, "path": args.path}), flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop(grace=2.0)


if __name__ == "__main__":
    asyncio.run(main())
