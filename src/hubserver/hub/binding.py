"""Argument binding: wire values (JSON / MessagePack) -> the types a hub method declares.

Converters are built once per parameter when the method table is built, so binding an
invocation is a list of plain function calls. A value that does not fit raises
:class:`BindingError`; the dispatcher turns it into the .NET text of docs/spec/hub-protocol.md §3.5
("Error binding arguments. Make sure that the types ...").
"""

from __future__ import annotations

import base64
import binascii
import collections.abc as cabc
import dataclasses
import datetime as _dt
import enum
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["BindingError", "Converter", "converter_for"]

Converter = Callable[[Any], Any]


class BindingError(Exception):
    """A wire value does not fit the declared parameter type."""


def _identity(value: Any) -> Any:
    return value


def _fail(value: Any, expected: str) -> BindingError:
    return BindingError(f"cannot convert {type(value).__name__} to {expected}")


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _fail(value, "str")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _fail(value, "int")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _fail(value, "int")


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(value, "float")
    return float(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _fail(value, "bool")


def _to_none(value: Any) -> None:
    if value is None:
        return None
    raise _fail(value, "None")


def _to_bytes(value: Any) -> bytes:
    # MessagePack carries bin; JSON carries base64 text (as .NET's byte[] binding does).
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BindingError("invalid base64") from exc
    raise _fail(value, "bytes")


def _to_datetime(value: Any) -> _dt.datetime:
    # MessagePack timestamps arrive as datetime (ext -1); JSON carries ISO-8601 text.
    if isinstance(value, _dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return _dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise BindingError("invalid ISO-8601 datetime") from exc
    raise _fail(value, "datetime")


def _to_date(value: Any) -> _dt.date:
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError as exc:
            raise BindingError("invalid ISO-8601 date") from exc
    raise _fail(value, "date")


def _to_uuid(value: Any) -> uuid.UUID:
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError as exc:
            raise BindingError("invalid UUID") from exc
    raise _fail(value, "UUID")


_SIMPLE: dict[Any, Converter] = {
    str: _to_str,
    int: _to_int,
    float: _to_float,
    bool: _to_bool,
    type(None): _to_none,
    None: _to_none,
    bytes: _to_bytes,
    _dt.datetime: _to_datetime,
    _dt.date: _to_date,
    uuid.UUID: _to_uuid,
    Any: _identity,
    object: _identity,
}


_SEQUENCE_ORIGINS: dict[Any, Callable[[Any], Any]] = {
    list: list,
    cabc.Sequence: list,
    cabc.MutableSequence: list,
    cabc.Iterable: list,
    cabc.Collection: list,
    set: set,
    cabc.Set: set,
    cabc.MutableSet: set,
    frozenset: frozenset,
}
_MAPPING_ORIGINS = frozenset({dict, cabc.Mapping, cabc.MutableMapping})


def converter_for(annotation: Any) -> Converter:
    """Build a converter for a (resolved) type annotation.

    Supported: ``str``, ``int``, ``float``, ``bool``, ``None``/``Optional``, unions, ``bytes``,
    ``datetime``/``date``, ``UUID``, enums, ``list``/``tuple``/``set``/``dict``/``Mapping``
    generics, dataclasses (camelCase keys accepted) and pydantic models. Anything else is
    passed through unchanged.
    """
    simple = _SIMPLE.get(annotation)
    if simple is not None:
        return simple
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return converter_for(args[0])
    if origin is typing.Union or origin is types.UnionType:
        return _union_converter(args)
    if origin is typing.Literal:
        allowed = args

        def _literal(value: Any) -> Any:
            if value in allowed:
                return value
            raise BindingError("value not allowed")

        return _literal
    if origin in _SEQUENCE_ORIGINS:
        item = converter_for(args[0]) if args else _identity
        return _sequence_converter(item, _SEQUENCE_ORIGINS[origin])
    if origin is tuple:
        return _tuple_converter(args)
    if origin in _MAPPING_ORIGINS:
        key = converter_for(args[0]) if args else _identity
        val = converter_for(args[1]) if len(args) > 1 else _identity
        return _mapping_converter(key, val)
    if annotation is list or annotation is tuple:
        return _sequence_converter(_identity, annotation)
    if annotation is dict:
        return _mapping_converter(_identity, _identity)
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return _enum_converter(annotation)
        if dataclasses.is_dataclass(annotation):
            return _dataclass_converter(annotation)
        validate = getattr(annotation, "model_validate", None)
        if callable(validate):  # pydantic v2 model
            return _pydantic_converter(annotation)
    return _identity


def _union_converter(options: tuple[Any, ...]) -> Converter:
    converters = [converter_for(o) for o in options]
    accepts_none = any(o is type(None) for o in options)

    def _union(value: Any) -> Any:
        if value is None and accepts_none:
            return None
        for conv in converters:
            try:
                return conv(value)
            except BindingError:
                continue
        raise _fail(value, "union")

    return _union


def _sequence_converter(item: Converter, build: Callable[[Any], Any]) -> Converter:
    def _seq(value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise _fail(value, "array")
        return build([item(v) for v in value])

    return _seq


def _tuple_converter(args: tuple[Any, ...]) -> Converter:
    if len(args) == 2 and args[1] is Ellipsis:
        item = converter_for(args[0])
        return _sequence_converter(item, tuple)
    if not args:
        return _sequence_converter(_identity, tuple)
    items = [converter_for(a) for a in args]

    def _fixed(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple) or len(value) != len(items):
            raise _fail(value, "tuple")
        return tuple(conv(v) for conv, v in zip(items, value, strict=True))

    return _fixed


def _mapping_converter(key: Converter, val: Converter) -> Converter:
    def _map(value: Any) -> dict[Any, Any]:
        if not isinstance(value, Mapping):
            raise _fail(value, "object")
        return {key(k): val(v) for k, v in value.items()}

    return _map


def _enum_converter(cls: type[enum.Enum]) -> Converter:
    def _enum(value: Any) -> enum.Enum:
        try:
            return cls(value)
        except ValueError:
            pass
        if isinstance(value, str) and value in cls.__members__:
            return cls.__members__[value]
        raise _fail(value, cls.__name__)

    return _enum


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _dataclass_converter(cls: type[Any]) -> Converter:
    hints = typing.get_type_hints(cls)
    fields = [
        (
            f.name,
            _camel(f.name),
            converter_for(hints.get(f.name, Any)),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
        if f.init
    ]

    def _dc(value: Any) -> Any:
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise _fail(value, cls.__name__)
        kwargs: dict[str, Any] = {}
        for name, camel, conv, required in fields:
            if name in value:
                kwargs[name] = conv(value[name])
            elif camel in value:
                kwargs[name] = conv(value[camel])
            elif required:
                raise BindingError(f"missing field {name!r}")
        return cls(**kwargs)

    return _dc


def _pydantic_converter(cls: type[Any]) -> Converter:
    def _model(value: Any) -> Any:
        try:
            return cls.model_validate(value)
        except Exception as exc:  # pydantic.ValidationError; pydantic is optional here
            raise BindingError(str(exc)) from exc

    return _model
