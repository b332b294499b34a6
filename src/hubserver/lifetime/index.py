"""The local index of a lifetime manager: connections, groups and users hosted by this process.

Shared by the in-memory and the pub/sub managers, which differ only in what they do when a
group or a user gains its first, or loses its last, local connection (a backplane subscribes or
unsubscribes a channel then). Group and user entries map connection ids straight to sinks, so a
fan-out walks one dictionary and never looks a sink up per member.
"""

from __future__ import annotations

from typing import NamedTuple

from hubserver.lifetime.base import ConnectionSink
from hubserver.types import ConnectionId

__all__ = ["Departure", "LocalIndex", "Members"]

Members = dict[ConnectionId, ConnectionSink]
"""Connection id -> sink, for one group or one user."""


class Departure(NamedTuple):
    """What a connection leaving the index left behind empty."""

    emptied_groups: tuple[str, ...]
    """Groups that no longer have a local member (in the order the connection joined them)."""
    last_of_user: bool
    """True when it was the last local connection of its user."""


class LocalIndex:
    """Who is connected here, and which groups and users they belong to.

    Group names and user ids are case-sensitive. Every method is synchronous: callers change
    the index first and then await their bus, so the index never reflects half an operation.
    """

    __slots__ = ("connections", "groups", "memberships", "users")

    def __init__(self) -> None:
        self.connections: Members = {}
        """Every local connection."""
        self.groups: dict[str, Members] = {}
        """Group -> its local members; a group without local members has no entry."""
        self.memberships: dict[ConnectionId, tuple[str, ...]] = {}
        """Reverse index (in joining order) so a departure leaves its groups in O(its groups).
        A tuple, not a set or dict: a connection is in a handful of groups, and 10,000 idle
        connections then hold 56-byte tuples instead of 200-byte dicts."""
        self.users: dict[str, Members] = {}
        """User id -> that user's local connections; no entry without connections."""

    def add(self, sink: ConnectionSink) -> bool:
        """Register ``sink``; True when it is the first local connection of its user."""
        cid = sink.connection_id
        self.connections[cid] = sink
        uid = sink.user_id
        if uid is None:
            return False
        conns = self.users.get(uid)
        if conns is None:
            self.users[uid] = {cid: sink}
            return True
        conns[cid] = sink
        return False

    def remove(self, connection_id: ConnectionId) -> Departure | None:
        """Forget a connection and its memberships; None when it was not registered."""
        sink = self.connections.pop(connection_id, None)
        if sink is None:
            return None
        emptied: list[str] = []
        for group in self.memberships.pop(connection_id, ()):
            members = self.groups.get(group)
            if members is not None:
                members.pop(connection_id, None)
                if not members:
                    del self.groups[group]
                    emptied.append(group)
        last_of_user = False
        uid = sink.user_id
        if uid is not None:
            conns = self.users.get(uid)
            if conns is not None:
                conns.pop(connection_id, None)
                if not conns:
                    del self.users[uid]
                    last_of_user = True
        return Departure(tuple(emptied), last_of_user)

    def join(self, sink: ConnectionSink, group: str) -> bool:
        """Add a local connection to ``group`` (idempotent); True when it is the first member."""
        cid = sink.connection_id
        members = self.groups.get(group)
        if members is None:
            self.groups[group] = {cid: sink}
            first = True
        elif cid in members:
            return False
        else:
            members[cid] = sink
            first = False
        memberships = self.memberships
        memberships[cid] = (*memberships.get(cid, ()), group)
        return first

    def leave(self, connection_id: ConnectionId, group: str) -> bool:
        """Remove a connection from ``group`` (no-op for non-members); True when it was the
        last local member."""
        members = self.groups.get(group)
        if members is None or members.pop(connection_id, None) is None:
            return False
        groups = self.memberships.get(connection_id)
        if groups is not None:
            rest = tuple(g for g in groups if g != group)
            if rest:
                self.memberships[connection_id] = rest
            else:
                del self.memberships[connection_id]
        if members:
            return False
        del self.groups[group]
        return True
