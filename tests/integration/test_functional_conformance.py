"""The functional conformance suite: the official Node client against our engine, one test per
behaviour x transport x protocol (docs/spec/checklist.md §8.1; docs/compliance.md, "Functional
conformance suite").

The server is ``tests/support/run_test_server.py --functional`` (the hubs, echo endpoint and
routes of :mod:`tests.support.functional_hub`); the client side is
``tests/conformance/functional/run.mjs``. ``run.mjs --list`` names every case at collection
time; each group (one transport x protocol, plus the "global" specs that pick their own
transport, and the same groups over HTTPS) runs once in its own Node process, a few at a
time, and every case becomes one pytest test reading its group's JSON result.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import IO, Any

import pytest

from tests.hubserver.server.certs import make_certs
from tests.integration.test_official_clients import (
    CONFORMANCE_DIR,
    NODE,
    ServerProcess,
    needs_node,
    start_server,
)

pytestmark = [pytest.mark.integration, needs_node]

FUNCTIONAL_DIR = CONFORMANCE_DIR / "functional"
GROUP_TIMEOUT = 120.0
PARALLEL = 4
"""Node processes at a time: the groups mostly wait (keep-alive idling, reconnects), but 12 at
once would crowd 2 cores."""
MATRIX = {
    ("WebSockets", "json"),
    ("WebSockets", "messagepack"),
    ("ServerSentEvents", "json"),
    ("LongPolling", "json"),
    ("LongPolling", "messagepack"),
}
"""Every transport x protocol pair; MessagePack never over Server-Sent Events (the client
refuses binary over SSE)."""


def _list_cases() -> list[dict[str, Any]]:
    if NODE is None or not (CONFORMANCE_DIR / "node_modules").is_dir():
        return []
    done = subprocess.run(
        [NODE, "run.mjs", "--list"],
        cwd=FUNCTIONAL_DIR,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    cases: list[dict[str, Any]] = json.loads(done.stdout)
    return cases


CASES = _list_cases()


def _output(group: str, out: IO[str], err: IO[str]) -> dict[str, Any]:
    out.seek(0)
    err.seek(0)
    text = out.read()
    lines = text.strip().splitlines()
    try:
        outcome: dict[str, Any] = json.loads(lines[-1])["results"]
    except (IndexError, json.JSONDecodeError, KeyError):
        outcome = {"__crash__": {"ok": False, "error": f"{group}: {text}\n{err.read()}"}}
    return outcome


def _run_groups(jobs: list[tuple[str, str, dict[str, str]]]) -> dict[str, dict[str, Any]]:
    """Run ``(group, base URL, environment)`` jobs, PARALLEL Node processes at a time, each
    bounded by GROUP_TIMEOUT; group -> {spec: result}. Output goes to files, never a pipe
    that could fill up while nobody reads it."""
    assert NODE is not None
    waiting = list(jobs)
    running: dict[str, tuple[subprocess.Popen[str], float, IO[str], IO[str]]] = {}
    results: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as files:
        while waiting or running:
            while waiting and len(running) < PARALLEL:
                group, base, env = waiting.pop(0)
                out: IO[str] = files.enter_context(tempfile.TemporaryFile("w+"))
                err: IO[str] = files.enter_context(tempfile.TemporaryFile("w+"))
                proc = subprocess.Popen(
                    [NODE, "run.mjs", base, group],
                    cwd=FUNCTIONAL_DIR,
                    stdout=out,
                    stderr=err,
                    text=True,
                    env=env,
                )
                running[group] = (proc, time.monotonic() + GROUP_TIMEOUT, out, err)
            for group, (proc, deadline, out, err) in list(running.items()):
                if proc.poll() is None and time.monotonic() > deadline:
                    proc.kill()
                if proc.poll() is not None:
                    results[group] = _output(group, out, err)
                    del running[group]
            time.sleep(0.05)
    return results


def _stop(server: ServerProcess) -> None:
    log = server.stop()
    # Hub methods that raise on purpose log WARNINGs; an ERROR is an engine bug.
    errors = [line for line in log.splitlines() if line.startswith(("ERROR:", "CRITICAL:"))]
    assert not errors, log


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """Every group's results: plain groups against an HTTP server, "tls-" groups against the
    same app over HTTPS (Node trusts the test CA through NODE_EXTRA_CA_CERTS)."""
    certs = make_certs(tmp_path_factory.mktemp("functional-tls"))
    groups = sorted({case["group"] for case in CASES})
    plain = start_server("--functional")
    try:
        tls = start_server(
            "--functional", "--tls-cert", str(certs.cert), "--tls-key", str(certs.key)
        )
        try:
            tls_env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(certs.ca)}
            yield _run_groups(
                [
                    (g, f"https://127.0.0.1:{tls.port}", tls_env)
                    if g.startswith("tls-")
                    else (g, f"http://127.0.0.1:{plain.port}", dict(os.environ))
                    for g in groups
                ]
            )
        finally:
            _stop(tls)
    finally:
        _stop(plain)


@pytest.mark.parametrize("case", CASES, ids=[f"{c['spec']}-{c['group']}" for c in CASES])
def test_official_client_functional_case(
    results: dict[str, dict[str, Any]], case: dict[str, Any]
) -> None:
    group = results[case["group"]]
    assert "__crash__" not in group, group["__crash__"]["error"]
    outcome = group.get(case["spec"])
    assert outcome is not None, f"run.mjs did not report {case['spec']} in {case['group']}"
    assert outcome["ok"], f"{outcome['error']}\nclient log: {outcome.get('log')}"


def test_every_behaviour_runs_on_every_transport_and_protocol() -> None:
    """The matrix is complete: each hub behaviour runs on all five transport x protocol pairs
    unless it is limited on purpose (keep-alive and server timeout not over long polling, the
    long-polling DELETE only there, raw connections only in text), the global specs run, and
    every group has its HTTPS counterpart."""
    by_spec: dict[str, set[tuple[str, str]]] = {}
    for case in CASES:
        if case["group"] != "global" and not case["group"].startswith("tls-"):
            by_spec.setdefault(case["spec"], set()).add((case["transport"], case["protocol"]))
    plain = {f"{t}-{p}" for t, p in MATRIX} | {"global"}
    assert {c["group"] for c in CASES} == plain | {f"tls-{g}" for g in plain}
    no_long_polling = {pair for pair in MATRIX if pair[0] != "LongPolling"}
    limited = {
        "server_timeout": no_long_polling,
        "keep_alive": no_long_polling,
        "long_polling_delete": {pair for pair in MATRIX if pair[0] == "LongPolling"},
        "raw_echo": {pair for pair in MATRIX if pair[1] == "json"},
        "raw_echo_message_logging": {pair for pair in MATRIX if pair[1] == "json"},
    }
    for spec, pairs in by_spec.items():
        assert pairs == limited.get(spec, MATRIX), spec
    assert len(by_spec) >= 40
