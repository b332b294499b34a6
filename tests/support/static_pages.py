"""Static files for the browser client runs (tests/integration/test_browser_clients.py).

The page ``tests/conformance/browser/index.html`` and the browser bundles that ship inside the
pinned npm packages (``@microsoft/signalr/dist/browser/signalr.min.js`` and
``@microsoft/signalr-protocol-msgpack/dist/browser/signalr-protocol-msgpack.min.js``) are served
under ``/browser/``:

* by the hub server itself through its ASGI fallback (:class:`StaticApp`, same-origin page), and
* by :func:`serve_in_thread` on another loopback address (cross-origin pages: 127.0.0.2 and
  127.0.0.3 are different origins from 127.0.0.1 for the browser).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE_DIR = ROOT / "tests" / "conformance"
_NODE_MODULES = CONFORMANCE_DIR / "node_modules" / "@microsoft"

FILES: dict[str, tuple[Path, str]] = {
    "/browser/index.html": (CONFORMANCE_DIR / "browser" / "index.html", "text/html; charset=utf-8"),
    "/browser/scenario.js": (CONFORMANCE_DIR / "browser" / "scenario.js", "text/javascript"),
    "/browser/signalr.min.js": (
        _NODE_MODULES / "signalr" / "dist" / "browser" / "signalr.min.js",
        "text/javascript",
    ),
    "/browser/signalr-protocol-msgpack.min.js": (
        _NODE_MODULES
        / "signalr-protocol-msgpack"
        / "dist"
        / "browser"
        / "signalr-protocol-msgpack.min.js",
        "text/javascript",
    ),
}
"""URL path -> (file, content type). Nothing else is served (no directory traversal)."""


def lookup(path: str) -> tuple[bytes, str] | None:
    """The body and content type for ``path``, or None (404)."""
    entry = FILES.get(path.split("?", 1)[0])
    if entry is None or not entry[0].is_file():
        return None
    return entry[0].read_bytes(), entry[1]


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class StaticApp:
    """ASGI 3 app serving :data:`FILES` (and answering lifespan events)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        found = lookup(scope["path"])
        body, content_type = found if found is not None else (b"not found", "text/plain")
        await send(
            {
                "type": "http.response.start",
                "status": 200 if found is not None else 404,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        found = lookup(self.path)
        body, content_type = found if found is not None else (b"not found", "text/plain")
        self.send_response(200 if found is not None else 404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server API)
        return


@contextlib.contextmanager
def serve_in_thread(host: str) -> Iterator[str]:
    """Serve :data:`FILES` on ``host`` (a loopback address), free port; yields the origin."""
    httpd = ThreadingHTTPServer((host, 0), _Handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
