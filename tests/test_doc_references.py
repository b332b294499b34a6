"""Every document a comment or docstring cites resolves inside the repository.

Comments give reasons, not history, and a newcomer must be able to open what they cite: in the
Python and JavaScript sources of ``src/``, ``tests/`` and ``bench/``, a cited ``*.md`` path must
exist in the repository, a ``§`` clause must follow the document it belongs to (a repository
doc, or an RFC), a clause of ``docs/spec/`` must exist in the cited file, and no comment may cite
an issue number. The prose of the documentation (``README.md``, ``docs/``, the READMEs of
``bench/``, ``web/dashboard/`` and ``tests/conformance/``) and the deployment files of
``deploy/`` follow the same rules, except that a bare ``§n`` there may name a section of the
page itself.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("src", "tests", "bench")
PROSE = (
    "README.md",
    "docs",
    "bench",
    "deploy",
    "web/dashboard/README.md",
    "tests/conformance/README.md",
)
# Recorded benchmark outputs are data, quoted as they were written.
NOT_PROSE = ("bench/results",)
# Design notes that never were part of the repository: a reader cannot open them.
_OUTSIDE = re.compile(
    r"(?<![\w.-])(?:signalr-protocol|anchors|baseline|contract|architecture)\.md\b"
    r"|\.\./shared/|shared/design/"
)
_SPEC_REF = re.compile(r"(docs/spec/[\w-]+\.md)\s+§(\d+(?:\.\d+)*)")

_DOC = re.compile(r"(?<![\w/.*-])(`{0,2})((?:[\w.-]+/)*[\w.-]+\.md)\b")
_RFC = re.compile(r"\bRFC ?\d+")
_CLAUSE = re.compile(r"§\s?(\d+(?:\.\d+)*)")
_ISSUE = re.compile(r"\bissues?[- ]#?\d+|\(issue\b", re.IGNORECASE)
_SPEC_CLAUSE_DEF = re.compile(r"^#+ .*?§(\d+(?:\.\d+)*)|\*\*§(\d+(?:\.\d+)*)\*\*", re.MULTILINE)


@cache
def spec_clauses(path: str) -> frozenset[str]:
    """Clause numbers defined by a ``docs/spec`` file (in headings or bold list items)."""
    text = (ROOT / path).read_text(encoding="utf-8")
    return frozenset(a or b for a, b in _SPEC_CLAUSE_DEF.findall(text))


def problems_in(text: str) -> list[str]:
    """What is wrong with the citations of one comment block or docstring."""
    found: list[str] = []
    if _ISSUE.search(text):
        found.append(f"cites an issue number: {_ISSUE.search(text).group(0)!r}")  # type: ignore[union-attr]
    anchors: list[tuple[int, str]] = []
    for match in _DOC.finditer(text):
        quoted, path = match.groups()
        if not (ROOT / path).is_file():
            if quoted:
                continue  # a file name in code quotes (``summary.md``) is data, not a citation
            found.append(f"cites {path}, which is not a file of the repository")
        anchors.append((match.start(), path))
    anchors.extend((m.start(), "RFC") for m in _RFC.finditer(text))
    anchors.sort()
    for match in _CLAUSE.finditer(text):
        before = [doc for pos, doc in anchors if pos < match.start()]
        if not before:
            found.append(f"§{match.group(1)} names no document (write docs/spec/<file>.md §n)")
            continue
        doc = before[-1]
        spec = doc.startswith("docs/spec/") and (ROOT / doc).is_file()
        if spec and match.group(1) not in spec_clauses(doc):
            found.append(f"{doc} has no clause §{match.group(1)}")
    return found


def blocks(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every docstring (any string statement: module, class, function and
    attribute docs) and every run of consecutive comment lines. String values the code uses
    (file names it writes, messages) are not citations and are not read."""
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            yield node.lineno, node.value.value
    comment_start, comment_lines, last_line = 0, [], -2
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        line = token.start[0]
        if line != last_line + 1 and comment_lines:
            yield comment_start, "\n".join(comment_lines)
            comment_lines = []
        if not comment_lines:
            comment_start = line
        comment_lines.append(token.string)
        last_line = line
    if comment_lines:
        yield comment_start, "\n".join(comment_lines)


def script_blocks(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every run of consecutive ``//`` comment lines of a JavaScript file."""
    start, lines = 0, []
    for number, line in enumerate(source.splitlines(), 1):
        if line.lstrip().startswith("//"):
            if not lines:
                start = number
            lines.append(line)
        elif lines:
            yield start, "\n".join(lines)
            lines = []
    if lines:
        yield start, "\n".join(lines)


def source_files() -> list[Path]:
    files: list[Path] = []
    for top in SCANNED:
        for pattern in ("*.py", "*.mjs", "*.js"):
            files.extend(p for p in (ROOT / top).rglob(pattern) if "node_modules" not in p.parts)
    return sorted(files)


def prose_problems(text: str, base: Path) -> list[str]:
    """What is wrong with the citations of one documentation or deployment file (``base``: its
    directory, against which a Markdown link resolves)."""
    found: list[str] = []
    if match := _ISSUE.search(text):
        found.append(f"cites an issue number: {match.group(0)!r}")
    found.extend(
        f"cites {m.group(0)!r}, which is not part of the repository"
        for m in _OUTSIDE.finditer(text)
    )
    for match in _DOC.finditer(text):
        quoted, path = match.groups()
        if quoted or _OUTSIDE.search(path) or (ROOT / path).is_file() or (base / path).is_file():
            continue
        found.append(f"cites {path}, which is not a file of the repository")
    for match in _SPEC_REF.finditer(text):
        doc, clause = match.groups()
        if (ROOT / doc).is_file() and clause not in spec_clauses(doc):
            found.append(f"{doc} has no clause §{clause}")
        elif not (ROOT / doc).is_file():
            found.append(f"cites {doc}, which is not a file of the repository")
    return found


def prose_files() -> list[Path]:
    files: set[Path] = set()
    for top in PROSE:
        path = ROOT / top
        if path.is_file():
            files.add(path)
        elif top == "deploy":
            files.update(p for p in path.rglob("*") if p.is_file())
        else:
            files.update(path.rglob("*.md"))
    skipped = [ROOT / top for top in NOT_PROSE]
    return sorted(
        p
        for p in files
        if "node_modules" not in p.parts and not any(p.is_relative_to(s) for s in skipped)
    )


def test_documents_cite_only_documents_and_clauses_of_the_repository() -> None:
    report: list[str] = []
    for path in prose_files():
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            report.extend(
                f"{path.relative_to(ROOT)}:{number}: {problem}"
                for problem in prose_problems(line, path.parent)
            )
    assert report == [], "\n".join(report)


def test_comments_cite_only_documents_and_clauses_of_the_repository() -> None:
    report: list[str] = []
    for path in source_files():
        if path == Path(__file__).resolve():
            continue  # the examples below are wrong on purpose
        source = path.read_text(encoding="utf-8")
        found = blocks(source) if path.suffix == ".py" else script_blocks(source)
        for line, text in found:
            report.extend(
                f"{path.relative_to(ROOT)}:{line}: {problem}" for problem in problems_in(text)
            )
    assert report == [], "\n".join(report)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("# framing (signalr-protocol.md §3.1)", "signalr-protocol.md, which is not a file"),
        ("# see architecture.md convention 3", "architecture.md, which is not a file"),
        ("# fixed in issue 14", "cites an issue number"),
        ("Limits (issue 10).", "cites an issue number"),
        ("# the first poll returns at once (§2.4)", "§2.4 names no document"),
        ("# docs/spec/transports.md §3.4", "docs/spec/transports.md has no clause §3.4"),
    ],
)
def test_the_checker_reports_citations_a_newcomer_cannot_follow(text: str, problem: str) -> None:
    assert any(problem in found for found in problems_in(text))


@pytest.mark.parametrize(
    "text",
    [
        "# The first poll returns at once (docs/spec/transports.md §2.4).",
        "# docs/spec/backplane.md §6.1-§6.4, then §6.5",
        "# RFC 6455 §5.5.1: after sending Close, further data frames may be dropped.",
        "# README.md and docs/metrics.md §6 say so",
        "# writes ``summary.md`` next to ``report.json``",
        "# see ``docs/benchmarks.md`` §3 for what that bought",
    ],
)
def test_the_checker_accepts_citations_that_resolve(text: str) -> None:
    assert problems_in(text) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("the classic failure (anchors.md §3 #3)", "'anchors.md', which is not part"),
        ("the checklist in `shared/design/signalr-protocol.md` §7", "not part of the repository"),
        ("`../shared/design/baseline.md` measured on this machine", "not part of the repository"),
        ("## 1. Hub fan-out (issue 2)", "cites an issue number"),
        ("# --- Ingestion and analytics (issues 5, 7) ---", "cites an issue number"),
        ("is for the issue-2 benchmark to confirm", "cites an issue number"),
        ("Close with error (docs/spec/hub-protocol.md §2.8)", "hub-protocol.md has no clause §2.8"),
        ("see [the guide](nowhere.md)", "nowhere.md, which is not a file"),
    ],
)
def test_the_prose_checker_reports_citations_a_reader_cannot_follow(
    text: str, problem: str
) -> None:
    assert any(problem in found for found in prose_problems(text, ROOT / "docs"))


@pytest.mark.parametrize(
    "text",
    [
        "is in [ADR 0003](adr/0003-redis-backplane.md) and [deploy.md](deploy.md)",
        "browsers cannot send headers there, docs/spec/auth.md §9.1",
        "the ingestion table (§3) and docs/benchmarks.md",
        "(`bench/results/soak-N1000-*-validation.md`: 0 drops on all three)",
        "aiusage token issue --sub ann --org acme --role Admin",
    ],
)
def test_the_prose_checker_accepts_citations_that_resolve(text: str) -> None:
    assert prose_problems(text, ROOT / "docs") == []
