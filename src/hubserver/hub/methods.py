"""The method table of a hub class: which methods clients may invoke, under which names.

The table is built once per hub class: every public ``async def`` (not ``_``-prefixed, not a
hook) is a hub method, and so is a plain ``def`` annotated to return an async iterator (a
streaming method, like a C# method returning ``ChannelReader<T>``). Lookup is
case-insensitive (.NET uses OrdinalIgnoreCase, the JS client lower-cases too;
docs/spec/hub-protocol.md §3.4), and a snake_case method is also reachable under its PascalCase
name, so ``join_group`` answers ``JoinGroup`` as well. Each parameter's converter is built
here too, so binding an invocation is a list of plain calls.
"""

from __future__ import annotations

import collections.abc as cabc
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hubserver.hub.binding import Converter, converter_for
from hubserver.hub.hub import Hub

__all__ = ["HubMethod", "build_method_table"]


_HOOKS = frozenset({"on_connected", "on_disconnected"})
_STREAM_ORIGINS = frozenset({cabc.AsyncIterator, cabc.AsyncIterable, cabc.AsyncGenerator})


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    convert: Converter
    is_stream: bool
    required: bool


@dataclass(frozen=True, slots=True)
class HubMethod:
    """One invocable hub method.

    Attributes:
        name: Python attribute name.
        func: The unbound function.
        params: Non-stream and stream parameters in declaration order.
        is_streaming: A server-to-client stream: an async generator, or a function (plain or
            ``async``) annotated to return ``AsyncIterator``/``AsyncIterable``/``AsyncGenerator``.
    """

    name: str
    func: Callable[..., Any]
    params: tuple[_Param, ...]
    is_streaming: bool
    value_params: int
    required_params: int
    stream_params: int


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception:  # unresolved forward refs: fall back to raw values
        return {}


def _returns_stream(hints: dict[str, Any]) -> bool:
    ret = hints.get("return")
    return ret in _STREAM_ORIGINS or typing.get_origin(ret) in _STREAM_ORIGINS


def _build_method(name: str, func: Callable[..., Any]) -> HubMethod:
    hints = _type_hints(func)
    params: list[_Param] = []
    sig = inspect.signature(func)
    for p in list(sig.parameters.values())[1:]:  # skip self
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        ann = hints.get(p.name, Any)
        origin = typing.get_origin(ann)
        if origin in _STREAM_ORIGINS:
            args = typing.get_args(ann)
            item = converter_for(args[0]) if args else converter_for(Any)
            params.append(_Param(p.name, item, True, True))
        else:
            params.append(_Param(p.name, converter_for(ann), False, p.default is p.empty))
    values = [p for p in params if not p.is_stream]
    return HubMethod(
        name=name,
        func=func,
        params=tuple(params),
        is_streaming=inspect.isasyncgenfunction(func) or _returns_stream(hints),
        value_params=len(values),
        required_params=sum(1 for p in values if p.required),
        stream_params=len(params) - len(values),
    )


def build_method_table(hub_cls: type[Hub]) -> dict[str, HubMethod]:
    """Case-folded name -> method for every public async method of ``hub_cls`` (and every
    public plain method that returns an async iterator)."""
    table: dict[str, HubMethod] = {}
    base_names = set(dir(Hub))
    for name in dir(hub_cls):
        if name.startswith("_") or name in _HOOKS or name in base_names:
            continue
        func = inspect.getattr_static(hub_cls, name)
        if isinstance(func, staticmethod | classmethod):
            continue
        if not (
            inspect.iscoroutinefunction(func)
            or inspect.isasyncgenfunction(func)
            or (inspect.isfunction(func) and _returns_stream(_type_hints(func)))
        ):
            continue
        method = _build_method(name, func)
        for alias in (name, _pascal(name)):
            table.setdefault(alias.casefold(), method)
    return table
