"""Named golden vectors of the SignalR hub protocols (docs/spec/hub-protocol.md §3.3,
docs/spec/messagepack.md §4).

Layout::

    vectors.json                    name -> {"message", "json": dir, "messagepack": dir, "note"}
    json/<name>.json                  exact wire bytes, including the trailing 0x1E
    messagepack/<name>.msgpack.hex    exact wire bytes (length prefix included) as hex

``dir`` says which way a vector holds: ``"both"`` (write gives these bytes and parsing them
gives the message), ``"parse"`` (bytes another client sends, e.g. the JS client's property
order or a 5-element msgpack Invocation) or ``"write"`` (what we send; parsing gives other
Python types, e.g. JSON dates come back as strings).

The files are generated from the table in ``generate.py`` (``python -m
tests.support.golden.generate``); ``js_*`` vectors are the bytes @microsoft/signalr 10.0.11
really sends, as recorded by tests/conformance/capture_vectors.mjs (checked by
tests/integration/test_official_clients.py).

Messages are described codec-neutrally: ``{"kind": "Invocation", "target": ..., ...}`` with the
JSON property names of docs/spec/hub-protocol.md §3.3 plus ``hasResult``; argument values tagged
``{"$bytes": b64}``,
``{"$datetime": iso}`` and ``{"$uuid": text}`` become ``bytes``/aware ``datetime``/``UUID``.

Usage::

    from tests.support.golden import load_vectors
    for v in load_vectors("json"):
        assert JsonHubProtocol().write(v.message) == v.wire
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from hubserver.protocol.messages import (
    PING,
    AckMessage,
    CancelInvocationMessage,
    CloseMessage,
    CompletionMessage,
    HubMessage,
    InvocationMessage,
    SequenceMessage,
    StreamInvocationMessage,
    StreamItemMessage,
)

GOLDEN_DIR = Path(__file__).parent
Codec = Literal["json", "messagepack"]
Direction = Literal["both", "parse", "write"]


@dataclass(frozen=True)
class Vector:
    """One named vector for one codec."""

    name: str
    codec: Codec
    direction: Direction
    message: HubMessage
    wire: bytes
    note: str = ""

    @property
    def parses(self) -> bool:
        """Parsing ``wire`` must give ``message``."""
        return self.direction in ("both", "parse")

    @property
    def writes(self) -> bool:
        """Writing ``message`` must give ``wire``."""
        return self.direction in ("both", "write")


def _value(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, inner),) = value.items()
            if key == "$bytes":
                return base64.b64decode(inner)
            if key == "$datetime":
                return dt.datetime.fromisoformat(inner)
            if key == "$uuid":
                return uuid.UUID(inner)
        return {k: _value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_value(v) for v in value]
    return value


def build_message(spec: dict[str, Any]) -> HubMessage:
    """Turn a codec-neutral description into a message dataclass."""
    kind = spec["kind"]
    headers = spec.get("headers")
    extra: dict[str, Any] = {"headers": headers} if headers else {}
    if kind == "Invocation":
        return InvocationMessage(
            spec["target"],
            _value(spec["arguments"]),
            spec.get("invocationId"),
            spec.get("streamIds"),
            **extra,
        )
    if kind == "StreamInvocation":
        return StreamInvocationMessage(
            spec["invocationId"],
            spec["target"],
            _value(spec["arguments"]),
            spec.get("streamIds"),
            **extra,
        )
    if kind == "StreamItem":
        return StreamItemMessage(spec["invocationId"], _value(spec["item"]), **extra)
    if kind == "Completion":
        return CompletionMessage(
            spec["invocationId"],
            error=spec.get("error"),
            result=_value(spec.get("result")),
            has_result=spec.get("hasResult", False),
            **extra,
        )
    if kind == "CancelInvocation":
        return CancelInvocationMessage(spec["invocationId"], **extra)
    if kind == "Ping":
        return PING
    if kind == "Close":
        return CloseMessage(spec.get("error"), spec.get("allowReconnect", False))
    if kind == "Ack":
        return AckMessage(spec["sequenceId"])
    if kind == "Sequence":
        return SequenceMessage(spec["sequenceId"])
    raise ValueError(f"unknown kind {kind!r}")


def read_hex(path: Path) -> bytes:
    """Bytes of a ``.hex`` file: hex digits, whitespace ignored, ``#`` starts a comment."""
    digits = "".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
    return bytes.fromhex("".join(digits.split()))


@cache
def _manifest() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads((GOLDEN_DIR / "vectors.json").read_text())
    return data


def wire_bytes(name: str, codec: Codec) -> bytes:
    """Exact bytes of vector ``name`` for ``codec``."""
    if codec == "json":
        return (GOLDEN_DIR / "json" / f"{name}.json").read_bytes()
    return read_hex(GOLDEN_DIR / "messagepack" / f"{name}.msgpack.hex")


def load_vectors(codec: Codec, direction: Direction | None = None) -> list[Vector]:
    """Every vector of ``codec`` (optionally only those holding in ``direction``)."""
    vectors = []
    for name, entry in _manifest().items():
        entry_direction = entry.get(codec)
        if entry_direction is None:
            continue
        vector = Vector(
            name=name,
            codec=codec,
            direction=entry_direction,
            message=build_message(entry["message"]),
            wire=wire_bytes(name, codec),
            note=entry.get("note", ""),
        )
        if direction is None or (vector.parses if direction == "parse" else vector.writes):
            vectors.append(vector)
    return vectors


def vector(name: str, codec: Codec) -> Vector:
    """One vector by name."""
    for v in load_vectors(codec):
        if v.name == name:
            return v
    raise KeyError(name)
