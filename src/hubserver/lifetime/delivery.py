"""Local fan-out: hand one serialized message to many connection sinks.

Every broadcast ends here, so the loop does one method call per connection and nothing else (a
``try`` block costs nothing in CPython 3.11 until something raises). A sink that raises is
logged and skipped: one broken connection must not silence a whole group (ASP.NET Core's
``ScaleoutHubLifetimeManagerTests``: "a write failing on one connection doesn't stop the group").
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable

from hubserver.lifetime.base import ConnectionSink
from hubserver.lifetime.index import Members
from hubserver.protocol.serialized import SerializedMessage

__all__ = ["EVENT_WRITE_FAILED", "deliver", "deliver_except", "deliver_one"]

_log = logging.getLogger("hubserver.lifetime")

EVENT_WRITE_FAILED = "hub.lifetime.write_failed"
"""Log event of a sink that raised from ``write_serialized``."""


def deliver(sinks: Iterable[ConnectionSink], message: SerializedMessage) -> None:
    """Write ``message`` to every sink; pass a list, not a live view of an index (a failing sink
    may disconnect synchronously and change the index)."""
    for sink in sinks:
        try:
            sink.write_serialized(message)
        except Exception:
            _log.exception("%s connection_id=%s", EVENT_WRITE_FAILED, sink.connection_id)


def deliver_one(sink: ConnectionSink, message: SerializedMessage) -> None:
    """Write ``message`` to one sink, logging instead of raising."""
    deliver((sink,), message)


def deliver_except(
    members: Members | None, message: SerializedMessage, excluded: Collection[str]
) -> None:
    """Write ``message`` to every member of a group/user/connection map except ``excluded``."""
    if not members:
        return
    if excluded:
        skip = excluded if isinstance(excluded, set | frozenset) else frozenset(excluded)
        deliver([s for cid, s in members.items() if cid not in skip], message)
    else:
        deliver(list(members.values()), message)
