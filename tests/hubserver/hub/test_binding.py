"""Argument converters built from type hints (hub.binding)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from typing import Any, Literal

import pytest

from hubserver.hub.binding import BindingError, converter_for


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Inner:
    value: int


@dataclasses.dataclass
class Outer:
    inner_item: Inner
    tags: list[str] = dataclasses.field(default_factory=list)


@pytest.mark.parametrize(
    ("annotation", "wire", "expected"),
    [
        (str, "a", "a"),
        (int, 3, 3),
        (int, 3.0, 3),
        (float, 3, 3.0),
        (bool, True, True),
        (int | None, None, None),
        (int | None, 4, 4),
        (int | str, "x", "x"),
        (list[int], [1, 2], [1, 2]),
        (tuple[int, str], [1, "a"], (1, "a")),
        (tuple[int, ...], [1, 2], (1, 2)),
        (set[int], [1, 1, 2], {1, 2}),
        (dict[str, int], {"a": 1}, {"a": 1}),
        (bytes, "aGk=", b"hi"),
        (bytes, b"hi", b"hi"),
        (dt.date, "2024-01-02", dt.date(2024, 1, 2)),
        (
            uuid.UUID,
            "12345678-1234-5678-1234-567812345678",
            uuid.UUID("12345678-1234-5678-1234-567812345678"),
        ),
        (Color, "red", Color.RED),
        (Color, "BLUE", Color.BLUE),
        (Literal["a", "b"], "b", "b"),
        (Any, {"x": [1]}, {"x": [1]}),
        (Outer, {"innerItem": {"value": 1}}, Outer(Inner(1))),
        (Outer, {"inner_item": {"value": 2}, "tags": ["t"]}, Outer(Inner(2), ["t"])),
    ],
)
def test_values_that_fit_are_converted(annotation, wire, expected) -> None:
    assert converter_for(annotation)(wire) == expected


def test_iso_datetimes_with_z_are_timezone_aware() -> None:
    value = converter_for(dt.datetime)("2024-05-01T10:00:00Z")
    assert value == dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("annotation", "wire"),
    [
        (str, 1),
        (int, "1"),
        (int, True),
        (int, 1.5),
        (float, "1"),
        (bool, 1),
        (int, None),
        (list[int], "12"),
        (dict[str, int], [1]),
        (bytes, "***"),
        (dt.datetime, "yesterday"),
        (Color, "green"),
        (Literal["a"], "b"),
        (tuple[int, str], [1]),
        (Outer, {"tags": []}),
        (Outer, "x"),
    ],
)
def test_values_that_do_not_fit_raise_binding_error(annotation, wire) -> None:
    with pytest.raises(BindingError):
        converter_for(annotation)(wire)
