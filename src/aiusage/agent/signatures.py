"""AI-tool signatures: which processes and window titles mean which tool.

The list ships with the agent (``signatures.json``) and can be extended by configuration
(``extra_signatures`` in the agent's config file, same shape). Matching happens on the
workstation; only the tool's *name* is ever reported (docs/agent.md, "Privacy").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any


@dataclass(frozen=True, slots=True)
class ToolSignature:
    """How to recognise one AI tool."""

    name: str
    process_names: frozenset[str]
    cmdline_substrings: tuple[str, ...] = ()
    title_patterns: tuple[re.Pattern[str], ...] = ()

    def matches_process(self, name: str, cmdline: Sequence[str]) -> bool:
        """True when an executable name (any case, ``.exe`` ignored) or command line matches."""
        base = name.lower().removesuffix(".exe")
        if base in self.process_names:
            return True
        if self.cmdline_substrings and cmdline:
            joined = " ".join(cmdline).lower()
            return any(s in joined for s in self.cmdline_substrings)
        return False

    def matches_title(self, title: str) -> bool:
        """True when a window title matches one of the patterns."""
        return any(p.search(title) for p in self.title_patterns)


def _parse(entry: Mapping[str, Any]) -> ToolSignature:
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"signature without a name: {entry!r}")
    return ToolSignature(
        name=name.strip(),
        process_names=frozenset(str(p).lower() for p in entry.get("process", ())),
        cmdline_substrings=tuple(str(s).lower() for s in entry.get("cmdline", ())),
        title_patterns=tuple(re.compile(str(t), re.IGNORECASE) for t in entry.get("title", ())),
    )


def load_signatures(extra: Iterable[Mapping[str, Any]] = ()) -> list[ToolSignature]:
    """The shipped signatures plus ``extra`` ones (an extra entry with the name of a shipped
    tool replaces it).

    Raises:
        ValueError: an entry is malformed (no name, bad regular expression).
    """
    text = resources.files("aiusage.agent").joinpath("signatures.json").read_text("utf-8")
    by_name = {s.name: s for s in map(_parse, json.loads(text)["tools"])}
    for entry in extra:
        try:
            sig = _parse(entry)
        except re.error as exc:
            raise ValueError(
                f"bad title pattern in signature {entry.get('name')!r}: {exc}"
            ) from exc
        by_name[sig.name] = sig
    return list(by_name.values())
