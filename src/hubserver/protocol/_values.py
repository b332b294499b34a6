"""Conversion of Python argument values to what each codec can encode natively.

Both codecs call these only for values their encoder does not know (``default=`` hooks), so
plain str/int/float/bool/None/list/dict arguments never pay for them. The rules follow what
.NET clients expect from an ASP.NET Core server (docs/spec/messagepack.md §4.5):

=====================  =================================  ==================================
value                  JSON                               MessagePack
=====================  =================================  ==================================
datetime               ISO-8601 in UTC with ``Z``         timestamp ext -1 (naive = UTC)
date / time            ISO-8601 string                    ISO-8601 string
UUID                   string                             string (as MessagePack-CSharp Guid)
bytes-like             base64 string                      bin
Enum                   its ``value``                      its ``value``
dataclass instance     object of its fields               map of its fields
pydantic model         ``model_dump(mode="json",          ``model_dump(by_alias=True)``
                       by_alias=True)``
set / frozenset        array                              array
Decimal                number                             float
=====================  =================================  ==================================
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import decimal
import enum
import uuid
from collections.abc import Callable
from typing import Any

_UTC = _dt.UTC


def iso_utc(value: _dt.datetime) -> str:
    """ISO-8601 text of ``value`` in UTC with a ``Z`` suffix; naive values are taken as UTC.

    .NET serializes ``DateTime`` (Kind=Utc) as ``2000-01-01T00:00:00Z`` (docs/spec/checklist.md
    §8.1 ``SendComplexObject``); the JS client and ``new Date(...)`` parse that form.
    """
    if value.tzinfo is not None:
        value = value.astimezone(_UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


def _dataclass_fields(value: Any) -> dict[str, Any]:
    # Shallow on purpose: nested values go through the encoder (and this hook) again, which
    # is cheaper than dataclasses.asdict()'s deep copy.
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def _json_object(value: Any) -> Any:
    model_dump = getattr(value, "model_dump", None)
    if model_dump is not None and callable(model_dump):
        return model_dump(mode="json", by_alias=True)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _dataclass_fields(value)
    if isinstance(value, _dt.datetime):
        return iso_utc(value)
    if isinstance(value, _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_JSON_EXACT: dict[type, Callable[[Any], Any]] = {
    _dt.datetime: iso_utc,
    _dt.date: _dt.date.isoformat,
    uuid.UUID: str,
    bytes: lambda v: base64.b64encode(v).decode("ascii"),
    bytearray: lambda v: base64.b64encode(v).decode("ascii"),
}


def json_default(value: Any) -> Any:
    """``default=`` hook of the JSON encoder (see the module table).

    Raises:
        TypeError: the value has no JSON representation.
    """
    exact = _JSON_EXACT.get(type(value))
    if exact is not None:
        return exact(value)
    return _json_object(value)


def _naive_as_utc(value: _dt.datetime) -> _dt.datetime:
    return value.replace(tzinfo=_UTC)


_MSGPACK_EXACT: dict[type, Callable[[Any], Any]] = {
    # tz-aware datetimes never reach the hook (msgpack packs them as ext -1 itself).
    _dt.datetime: _naive_as_utc,
    _dt.date: _dt.date.isoformat,
    uuid.UUID: str,
    memoryview: bytes,
}


def msgpack_default(value: Any) -> Any:
    """``default=`` hook of the MessagePack packer (see the module table).

    Raises:
        TypeError: the value has no MessagePack representation.
    """
    exact = _MSGPACK_EXACT.get(type(value))
    if exact is not None:
        return exact(value)
    model_dump = getattr(value, "model_dump", None)
    if model_dump is not None and callable(model_dump):
        # Python mode keeps datetimes and bytes as such, so they become ext -1 and bin.
        return model_dump(by_alias=True)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _dataclass_fields(value)
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo is not None else _naive_as_utc(value)
    if isinstance(value, _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not MessagePack serializable")
