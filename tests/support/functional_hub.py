"""The server side of the functional conformance suite (tests/conformance/functional/).

ASP.NET Core tests its TypeScript client against a small test application: a test hub, the
same hub with WebSockets disabled, a hub that cannot be created, a hub behind authorization, a
raw (non-hub) echo connection endpoint and a few plain HTTP routes. This module is our own
port of that application's behaviour onto the engine:

==========================  =================================================================
``/testhub``                :class:`FunctionalHub`, detailed errors on, 1 s keep-alive
``/testhub-nodetail``       :class:`FunctionalHub`, detailed errors off
``/testhub-nowebsockets``   :class:`FunctionalHub`, ServerSentEvents and LongPolling only
``/uncreatable``            :class:`UncreatableHub` (``on_connected`` raises)
``/authorizedhub``          :class:`FunctionalHub` behind a bearer-token hook
``/echo``                   :class:`EchoApplication`, a raw connection endpoint
``GET /token``              issues a token ``/authorizedhub`` accepts
``POST /redirect/negotiate``  answers ``{"url": ...}`` (and ``accessToken`` with ``token=1``)
``GET /clientresult/{id}``  invokes the client's ``Result`` handler and answers its result
``GET /close/{id}``         closes a hub connection (``error=``, ``reconnect=1``)
``GET /drop/{id}``          drops a connection's transport without a Close message
==========================  =================================================================

:func:`functional_server` serves it over HTTPS as well when given an SSL context.

Hub method names are snake_case and reached under their PascalCase names (``Echo``,
``InvokeWithString``...), as docs/spec/hub-protocol.md §3.4 allows.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from hubserver.app import MappedHub, map_hub
from hubserver.connections.context import ConnectionContext, HttpRequestInfo, Principal
from hubserver.connections.endpoint import ConnectionEndpoint
from hubserver.errors import AuthenticationFailed
from hubserver.hub.hub import Hub
from hubserver.options import ConnectionOptions, HubOptions
from hubserver.server import HubServer
from hubserver.transports.base import TransportType
from tests.support.conformance_hub import COMPLEX_GUID, complex_object

TOKEN_USER = "testuser"
"""The user every token issued by ``GET /token`` names."""

TOKEN_LIFETIME = 120.0
"""Seconds a token from ``GET /token`` stays valid (long enough for any one test run)."""

KEEP_ALIVE_INTERVAL = 1.0
"""``/testhub`` pings this often, so the keep-alive case needs only a few idle seconds."""

UNCREATABLE_TEXT = "Unable to create hub."
"""What :class:`UncreatableHub` raises on connect (shown with detailed errors)."""


class InvalidOperationException(Exception):  # noqa: N818 (named after the .NET type on purpose)
    """Raised by the hub where ASP.NET Core's test hub throws ``InvalidOperationException``:
    detailed error texts name the exception's type, so the texts match .NET's byte for byte
    (docs/spec/hub-protocol.md §3.5)."""


# --- hubs ----------------------------------------------------------------------------------


class FunctionalHub(Hub):
    """The test hub: every behaviour the official client's functional tests rely on."""

    async def echo(self, message: str) -> str:
        return message

    async def get_caller_connection_id(self) -> str:
        return self.context.connection_id

    async def get_num_redirects(self) -> int:
        # The redirecting negotiate route appends its counter to the URL it hands out.
        return int(self.context.request.query.get("numRedirects", "0"))

    async def get_user(self) -> str | None:
        return self.context.user_id

    async def throw_exception(self, message: str) -> None:
        raise InvalidOperationException(message)

    async def invoke_with_string(self, message: str) -> None:
        await self.clients.caller.send("Message", message)

    async def send_custom_object(self, custom_object: dict[str, Any]) -> None:
        await self.clients.caller.send("CustomObject", custom_object)

    async def stream(self) -> AsyncIterator[str]:
        for item in ("a", "b", "c"):
            yield item

    async def infinite_stream(self) -> AsyncIterator[str]:
        # Yields nothing until the client cancels (CancelInvocation): the engine then closes
        # the generator, and the client is told that the cancellation reached the method.
        # "StreamStarted" lets a client cancel only once the method runs: a stream cancelled
        # before its first step is never called at all (hub/dispatcher.py).
        connection_id = self.context.connection_id
        clients = self.clients
        await clients.caller.send("StreamStarted")
        try:
            while True:
                await asyncio.sleep(3600)
                yield ""
        finally:
            await clients.client(connection_id).send("StreamCanceled")

    async def streaming_concat(self, stream: AsyncIterator[str]) -> str:
        return "".join([item async for item in stream])

    async def empty_stream(self) -> AsyncIterator[int]:
        nothing: tuple[int, ...] = ()
        for item in nothing:
            yield item

    def stream_throw_exception(self, message: str) -> AsyncIterator[str]:
        # Raises before any stream exists (as a C# method that throws instead of returning
        # its ChannelReader): the client gets the invocation-failure text.
        raise InvalidOperationException(message)

    async def stream_fail_midway(self, message: str) -> AsyncIterator[str]:
        yield "first"
        raise InvalidOperationException(message)

    async def get_active_transport_name(self) -> str:
        return self.context.transport.wire_name

    async def echo_complex_object(self, complex_object: dict[str, Any]) -> dict[str, Any]:
        return complex_object

    async def send_complex_object(self) -> dict[str, Any]:
        return complex_object()

    async def send_nested_object(self) -> dict[str, Any]:
        child = complex_object()
        return {
            "Name": "outer",
            "Children": [child, {"Name": "empty", "Children": []}],
            "Lookup": {"when": child["DateTime"], "id": COMPLEX_GUID, "bytes": b"\x00\xff"},
        }

    async def get_header(self, header_name: str) -> str | None:
        return self.context.request.headers.get(header_name.lower())

    async def get_query(self, name: str) -> str | None:
        return self.context.request.query.get(name)

    async def get_cookie(self, cookie_name: str) -> str | None:
        header = self.context.request.headers.get("cookie", "")
        for part in header.split(";"):
            name, _, value = part.strip().partition("=")
            if name == cookie_name:
                return value
        return None


class UncreatableHub(FunctionalHub):
    """A hub whose connection fails right after the handshake: the server sends a Close with
    the error (docs/spec/hub-protocol.md §3.7)."""

    async def on_connected(self) -> None:
        raise InvalidOperationException(UNCREATABLE_TEXT)


# --- the raw connection endpoint -----------------------------------------------------------


class EchoApplication:
    """A raw connection application (no hub protocol): sends every message back as it came.

    The counterpart of ASP.NET Core's ``EchoConnectionHandler``: it exercises the connection
    layer alone (negotiate and the three transports, docs/spec/transports.md §2).
    """

    def __init__(self, ctx: ConnectionContext) -> None:
        self._ctx = ctx

    def data_received(self, data: bytes) -> None:
        """Echo ``data`` as one text message."""
        self._ctx.send(data, False)

    def transport_paused(self) -> None:
        """Nothing to buffer: an echo has no state."""

    def transport_resumed(self) -> None:
        """Nothing to replay."""

    def connection_lost(self, exc: BaseException | None) -> None:
        """Nothing to release."""


# --- tokens --------------------------------------------------------------------------------


@dataclass
class TokenIssuer:
    """Opaque bearer tokens for ``/authorizedhub`` (what the test app's JWTs stand for)."""

    lifetime: float = TOKEN_LIFETIME
    clock: Callable[[], float] = time.monotonic
    _tokens: dict[str, float] = field(default_factory=dict)

    def issue(self) -> str:
        """A new token, valid for :attr:`lifetime` seconds."""
        token = secrets.token_urlsafe(24)
        self._tokens[token] = self.clock() + self.lifetime
        return token

    async def authenticate(self, request: HttpRequestInfo) -> Principal:
        """The endpoint's hook: ``Authorization: Bearer`` or ``?access_token=``
        (docs/spec/auth.md §9.1); anything else is 401."""
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        token = token or request.query.get("access_token", "")
        expires = self._tokens.get(token)
        if expires is None or expires < self.clock():
            raise AuthenticationFailed(401, "Unauthorized")
        return Principal(TOKEN_USER)


# --- plain HTTP routes (ASGI) --------------------------------------------------------------

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_EXPIRED = "Thu, 01 Jan 1970 00:00:00 GMT"


class FunctionalRoutes:
    """ASGI 3 app for the suite's plain HTTP routes (the paths no endpoint serves)."""

    def __init__(self, test_hub: MappedHub, tokens: TokenIssuer) -> None:
        self._hub = test_hub
        self._tokens = tokens
        self._redirects = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            # No lifespan work: returning tells the server the app has no lifespan support.
            return
        path: str = scope["path"]
        query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        status, body, headers = 404, "not found", list[tuple[str, str]]()
        first, _, rest = path.strip("/").partition("/")
        if path == "/token":
            status, body = 200, self._tokens.issue()
        elif first == "redirect":
            status, body, headers = 200, self._redirect(query), self._cookies()
        elif first == "clientresult" and rest:
            status, body = 200, await self._client_result(rest)
        elif first == "close" and rest:
            status, body = self._close(rest, query)
        elif first == "drop" and rest:
            status, body = self._drop(rest)
        await _respond(send, status, body, headers)

    def _redirect(self, query: dict[str, str]) -> str:
        # The client negotiates here and is sent on to the hub; the counter shows that every
        # (re)connection negotiates again (docs/spec/negotiate.md §1.4).
        count = next(self._redirects)
        base = query.get("baseUrl", "")
        if query.get("token") == "1":
            return json.dumps(
                {
                    "url": f"{base}/authorizedhub?numRedirects={count}",
                    "accessToken": self._tokens.issue(),
                }
            )
        return json.dumps({"url": f"{base}/testhub?numRedirects={count}"})

    @staticmethod
    def _cookies() -> list[tuple[str, str]]:
        return [
            ("set-cookie", "testCookie=testValue; Path=/"),
            ("set-cookie", "testCookie2=testValue2; Path=/"),
            ("set-cookie", f"expiredCookie=doesntmatter; Path=/; Expires={_EXPIRED}"),
        ]

    async def _client_result(self, connection_id: str) -> str:
        try:
            result = await self._hub.hub_context.clients.client(connection_id).invoke(
                "Result", timeout=10
            )
        except Exception as exc:  # the route reports the error text, as the test app does
            return str(exc)
        return json.dumps(result)

    def _close(self, connection_id: str, query: dict[str, str]) -> tuple[int, str]:
        for connection in self._hub.handler.local_connections():
            if connection.connection_id == connection_id:
                connection.close(query.get("error"), allow_reconnect=query.get("reconnect") == "1")
                return 200, "closed"
        return 404, "no such connection"

    def _drop(self, connection_id: str) -> tuple[int, str]:
        for ctx in self._hub.endpoint.connections():
            if ctx.connection_id == connection_id:
                ctx.abort()
                return 200, "dropped"
        return 404, "no such connection"


async def _respond(send: Send, status: int, body: str, headers: list[tuple[str, str]]) -> None:
    data = body.encode()
    raw = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(data)).encode()),
    ]
    raw += [(name.encode(), value.encode()) for name, value in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


# --- composition ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionalApp:
    """Everything the functional suite's server serves."""

    hubs: dict[str, MappedHub]
    endpoints: list[ConnectionEndpoint]
    routes: FunctionalRoutes


def build_functional_app() -> FunctionalApp:
    """Mount the hubs and the echo endpoint of the table in this module's docstring."""
    tokens = TokenIssuer()
    detailed = HubOptions(detailed_errors=True, keep_alive_interval=KEEP_ALIVE_INTERVAL)
    hubs = {
        "/testhub": map_hub("/testhub", FunctionalHub, hub_options=detailed),
        "/testhub-nodetail": map_hub("/testhub-nodetail", FunctionalHub),
        "/testhub-nowebsockets": map_hub(
            "/testhub-nowebsockets",
            FunctionalHub,
            hub_options=detailed,
            connection_options=ConnectionOptions(
                transports=TransportType.SERVER_SENT_EVENTS | TransportType.LONG_POLLING
            ),
        ),
        "/uncreatable": map_hub("/uncreatable", UncreatableHub, hub_options=detailed),
        "/authorizedhub": map_hub(
            "/authorizedhub", FunctionalHub, hub_options=detailed, authenticate=tokens.authenticate
        ),
    }
    echo = ConnectionEndpoint("/echo", EchoApplication)
    routes = FunctionalRoutes(hubs["/testhub"], tokens)
    return FunctionalApp(hubs, [m.endpoint for m in hubs.values()] + [echo], routes)


def functional_server(
    app: FunctionalApp, port: int = 0, ssl_context: ssl.SSLContext | None = None
) -> HubServer:
    """A :class:`HubServer` on 127.0.0.1 serving ``app`` (over HTTPS with ``ssl_context``)."""
    return HubServer(
        app.endpoints,
        app.routes,
        host="127.0.0.1",
        port=port,
        access_log=False,
        ssl_context=ssl_context,
    )
