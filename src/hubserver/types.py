"""Type aliases shared by every hubserver layer (cf. starlette/types.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, NewType

ConnectionId = NewType("ConnectionId", str)
"""Public connection id: what hub code and other clients see (``Clients.client(id)``)."""

ConnectionToken = NewType("ConnectionToken", str)
"""Secret token used in the ``id=`` query of every transport request (negotiate v1)."""

UserId = NewType("UserId", str)
GroupName = NewType("GroupName", str)

JSONValue = Any
"""Anything ``json.dumps`` / msgpack can encode (kept as Any: recursive aliases hurt mypy)."""

Headers = Mapping[str, str]

# ASGI aliases (used by the ASGI fallback of the HTTP server and by map_hub()).
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
