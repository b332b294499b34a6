"""Sans-I/O codec of the Redis backplane, wire-compatible with ASP.NET Core's
``Microsoft.AspNetCore.SignalR.StackExchangeRedis`` (docs/spec/backplane.md §6).

Everything here is pure: bytes in, values out. No asyncio, no Redis client, no clock. This module
is also the ONLY place channel names are built (:class:`RedisChannels`), so the mapping to .NET's
``RedisChannels.cs`` can be checked in one screen.

Payloads (all MessagePack, docs/spec/backplane.md §6.2):

* invocation envelope ``[excludedIds, {protocol: bin}]``; for client results
  ``[excludedIds, {protocol: bin}, invocationId, returnChannel]``. Our servers append the
  *origin server name* as a third item of the 2-item form (``[excludedIds, map, origin]``), which
  .NET ignores (it reads invocationId/returnChannel only when the array has more than 3 items),
  and which lets the origin skip its own echo (see docs/adr/0003-redis-backplane.md);
* group command ``[id, serverName, action, group, connectionId]`` (action 1 = add, 2 = remove);
* ack ``[id]``;
* client-result completion ``[protocolName, bin]``.

Readers accept extra trailing items and integers of any MessagePack width, as .NET does.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import msgpack

from hubserver.errors import BackplaneError

__all__ = [
    "GroupAction",
    "GroupCommand",
    "RedisChannels",
    "RedisCompletion",
    "RedisInvocation",
    "make_server_name",
    "read_ack",
    "read_canary",
    "read_completion",
    "read_group_command",
    "read_invocation",
    "write_ack",
    "write_canary",
    "write_completion",
    "write_group_command",
    "write_invocation",
]


class GroupAction(IntEnum):
    """``GroupAction.cs``: the action byte of a group command."""

    ADD = 1
    REMOVE = 2


@dataclass(frozen=True, slots=True)
class RedisInvocation:
    """A decoded invocation envelope.

    Attributes:
        excluded_ids: Connection ids that must not receive the message.
        payloads: Protocol name -> the framed hub message in that protocol.
        invocation_id: Set for client results (4-item form).
        return_channel: Where the hosting server publishes the client's completion.
        origin: Server name of the sender when it is one of ours (3rd item of the 2-item
            form, or 5th item); ``None`` for .NET senders.
    """

    excluded_ids: tuple[str, ...]
    payloads: dict[str, bytes]
    invocation_id: str | None = None
    return_channel: str | None = None
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class GroupCommand:
    """A decoded ``internal:groups`` command (``RedisGroupCommand.cs``)."""

    id: int
    server_name: str
    action: GroupAction
    group: str
    connection_id: str


@dataclass(frozen=True, slots=True)
class RedisCompletion:
    """A decoded client-result completion: the client's framed Completion in ``protocol``."""

    protocol: str
    payload: bytes


class RedisChannels:
    """Builds every channel name of one hub (cf. ``RedisChannels.cs``).

    ``prefix`` is the configured channel prefix followed directly by the hub's full name: .NET
    computes ``typeof(THub).FullName`` and StackExchange.Redis prepends ``ChannelPrefix`` with no
    separator (docs/spec/backplane.md §6.1), so
    ``RedisChannels("AIUsagePlatform" + "AnalyticsHub")`` yields
    ``AIUsagePlatformAnalyticsHub:all``.

    Args:
        prefix: ``channel_prefix + hub_full_name``.
    """

    __slots__ = ("all", "group_management", "prefix")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.all = f"{prefix}:all"
        """Every server subscribes at startup."""
        self.group_management = f"{prefix}:internal:groups"
        """Group add/remove commands; every server subscribes at startup."""

    def group(self, group: str) -> str:
        """Channel of a group (subscribed while ≥1 local member)."""
        return f"{self.prefix}:group:{group}"

    def connection(self, connection_id: str) -> str:
        """Channel of one connection (subscribed by its hosting server)."""
        return f"{self.prefix}:connection:{connection_id}"

    def user(self, user_id: str) -> str:
        """Channel of one user (subscribed while ≥1 local connection of the user)."""
        return f"{self.prefix}:user:{user_id}"

    def ack(self, server_name: str) -> str:
        """Acks for group commands sent by ``server_name``."""
        return f"{self.prefix}:internal:ack:{server_name}"

    def return_results(self, server_name: str) -> str:
        """Client-result completions for invocations sent by ``server_name`` (.NET 7+)."""
        return f"{self.prefix}:internal:return:{server_name}"

    def canary(self, server_name: str) -> str:
        """Our own liveness probe channel (not part of .NET's set; .NET never subscribes)."""
        return f"{self.prefix}:internal:canary:{server_name}"


def make_server_name(hostname: str | None = None) -> str:
    """A fresh server name ``<hostname>_<32 hex>``, as .NET's ``MachineName_Guid:N``."""
    host = hostname if hostname is not None else socket.gethostname()
    return f"{host}_{uuid.uuid4().hex}"


# --- writers -------------------------------------------------------------------------------


def _pack(obj: Any) -> bytes:
    # use_bin_type=True: bytes -> MessagePack *bin*, str -> *str* (docs/spec/backplane.md §6.4).
    data: bytes = msgpack.packb(obj, use_bin_type=True)
    return data


def write_invocation(
    payloads: Mapping[str, bytes],
    excluded_ids: Sequence[str] = (),
    *,
    invocation_id: str | None = None,
    return_channel: str | None = None,
    origin: str | None = None,
) -> bytes:
    """Encode an invocation envelope (``RedisProtocol.WriteInvocation``).

    Args:
        payloads: Protocol name -> framed message bytes (written as *bin*).
        excluded_ids: Connection ids to skip (empty array when none).
        invocation_id: Client-result invocation id; requires ``return_channel``.
        return_channel: Channel where the completion must be published.
        origin: Our server name, for echo suppression. Written as the 3rd item of the 2-item
            form or the 5th of the 4-item form; .NET readers ignore it.

    Returns:
        The MessagePack bytes to PUBLISH.
    """
    if (invocation_id is None) != (return_channel is None):
        raise ValueError("invocation_id and return_channel go together")
    items: list[Any] = [list(excluded_ids), {k: bytes(v) for k, v in payloads.items()}]
    if invocation_id is not None:
        items += [invocation_id, return_channel]
    if origin is not None:
        items.append(origin)
    return _pack(items)


def write_group_command(
    command_id: int, server_name: str, action: GroupAction, group: str, connection_id: str
) -> bytes:
    """Encode a group command (``RedisProtocol.WriteGroupCommand``)."""
    return _pack([command_id, server_name, int(action), group, connection_id])


def write_ack(command_id: int) -> bytes:
    """Encode an ack (``RedisProtocol.WriteAck``)."""
    return _pack([command_id])


def write_completion(protocol: str, payload: bytes) -> bytes:
    """Encode a client-result completion (``RedisProtocol.WriteCompletionMessage``)."""
    return _pack([protocol, bytes(payload)])


def write_canary(sequence: int) -> bytes:
    """Encode a canary probe (our extension; same shape as an ack)."""
    return _pack([sequence])


# --- readers -------------------------------------------------------------------------------


def _unpack_array(data: bytes, minimum: int, kind: str) -> list[Any]:
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        raise BackplaneError(f"Invalid {kind} payload: {exc}") from exc
    if not isinstance(obj, list):
        raise BackplaneError(f"Invalid {kind} payload: not an array.")
    if len(obj) < minimum:
        # Same text as RedisProtocol.ValidateArraySize.
        raise BackplaneError(f"Insufficient items in {kind} array.")
    return obj


def _str(value: Any, kind: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):  # tolerate writers that emit str as bin
        try:
            return value.decode()
        except UnicodeDecodeError as exc:
            raise BackplaneError(f"Invalid {kind} payload: bad UTF-8.") from exc
    raise BackplaneError(f"Invalid {kind} payload: expected a string, got {type(value).__name__}.")


def _int(value: Any, kind: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise BackplaneError(f"Invalid {kind} payload: expected an integer.")


def read_invocation(data: bytes) -> RedisInvocation:
    """Decode an invocation envelope (``RedisProtocol.ReadInvocation``).

    Raises:
        BackplaneError: not a MessagePack array of ≥2 items of the right types.
    """
    items = _unpack_array(data, 2, "Invocation")
    raw_ids, raw_map = items[0], items[1]
    if raw_ids is None:
        raw_ids = []
    if not isinstance(raw_ids, list) or not isinstance(raw_map, dict):
        raise BackplaneError("Invalid Invocation payload: bad excluded ids or protocol map.")
    excluded = tuple(_str(i, "Invocation") for i in raw_ids)
    payloads: dict[str, bytes] = {}
    for name, blob in raw_map.items():
        if blob is None:
            blob = b""
        if isinstance(blob, str):
            blob = blob.encode()
        if not isinstance(blob, bytes):
            raise BackplaneError("Invalid Invocation payload: protocol bytes must be bin.")
        payloads[_str(name, "Invocation")] = blob
    invocation_id = return_channel = origin = None
    n = len(items)
    # .NET: ``if (length > 3)`` -> invocationId, returnChannel. A 3rd item alone is our origin.
    if n > 3:
        invocation_id = None if items[2] is None else _str(items[2], "Invocation")
        return_channel = None if items[3] is None else _str(items[3], "Invocation")
        if n > 4 and isinstance(items[4], str):
            origin = items[4]
    elif n == 3 and isinstance(items[2], str):
        origin = items[2]
    return RedisInvocation(excluded, payloads, invocation_id, return_channel, origin)


def read_group_command(data: bytes) -> GroupCommand:
    """Decode a group command (``RedisProtocol.ReadGroupCommand``).

    Raises:
        BackplaneError: malformed payload or unknown action.
    """
    items = _unpack_array(data, 5, "GroupCommand")
    action = _int(items[2], "GroupCommand")
    try:
        group_action = GroupAction(action)
    except ValueError as exc:
        raise BackplaneError(f"Invalid GroupCommand payload: unknown action {action}.") from exc
    return GroupCommand(
        id=_int(items[0], "GroupCommand"),
        server_name=_str(items[1], "GroupCommand"),
        action=group_action,
        group=_str(items[3], "GroupCommand"),
        connection_id=_str(items[4], "GroupCommand"),
    )


def read_ack(data: bytes) -> int:
    """Decode an ack and return the command id (``RedisProtocol.ReadAck``)."""
    return _int(_unpack_array(data, 1, "Ack")[0], "Ack")


def read_completion(data: bytes) -> RedisCompletion:
    """Decode a client-result completion (``RedisProtocol.ReadCompletion``)."""
    items = _unpack_array(data, 2, "CompletionMessage")
    payload = items[1]
    if payload is None:
        payload = b""
    if not isinstance(payload, bytes):
        raise BackplaneError("Invalid CompletionMessage payload: completion must be bin.")
    return RedisCompletion(_str(items[0], "CompletionMessage"), payload)


def read_canary(data: bytes) -> int:
    """Decode a canary probe and return its sequence number."""
    return _int(_unpack_array(data, 1, "Canary")[0], "Canary")
