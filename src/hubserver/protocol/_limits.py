"""Structural limits on parsed hub message values: nesting depth and well-formed strings.

A value the server accepted must be writable again to every recipient in every protocol;
otherwise a broadcast fails once per recipient instead of once at the sender. Two things
parse but cannot always be written back:

* a lone UTF-16 surrogate (``"\\ud800"`` in JSON) cannot be encoded as UTF-8;
* deep nesting exhausts the encoders' recursion limits (MessagePack's packer stops at 511).

Both are refused at parse time as invalid data, as System.Text.Json does (MaxDepth 64,
invalid surrogates). The protocols call :func:`find_invalid` only when a cheap scan of the
raw bytes says a problem is possible, so ordinary messages pay nothing beyond that scan.
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["MAX_DEPTH", "SURROGATE_TEXT", "depth_text", "find_invalid"]

MAX_DEPTH: Final = 64
"""Deepest nesting of arrays/objects in one message, the message itself counting as 1
(System.Text.Json's default ``MaxDepth``)."""

SURROGATE_TEXT: Final = "A string contains a lone UTF-16 surrogate."

_SURROGATE = re.compile("[\ud800-\udfff]").search


def depth_text(limit: int = MAX_DEPTH) -> str:
    """Description of a depth violation."""
    return f"The maximum nesting depth of {limit} was exceeded."


def find_invalid(root: Any, *, strings: bool, max_depth: int = MAX_DEPTH) -> str | None:
    """Why ``root`` cannot be accepted, or None when it can.

    Walks iteratively (an explicit stack), so the check itself never recurses.

    Args:
        root: A decoded message (dicts, lists and scalars).
        strings: Also look for lone surrogates in strings (keys included).
        max_depth: Deepest allowed container nesting, ``root`` being at depth 1.
    """
    stack: list[tuple[Any, int]] = [(root, 1)]
    pop = stack.pop
    push = stack.append
    while stack:
        value, depth = pop()
        kind = type(value)
        if kind is str:
            if strings and not value.isascii() and _SURROGATE(value):
                return SURROGATE_TEXT
        elif kind is list or kind is dict:
            if depth > max_depth:
                return depth_text(max_depth)
            child = depth + 1
            if kind is dict:
                for key, item in value.items():
                    push((key, child))
                    push((item, child))
            else:
                for item in value:
                    push((item, child))
    return None
