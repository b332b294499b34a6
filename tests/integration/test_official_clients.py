"""Real clients against a real server process (docs/spec/checklist.md §7 checklist, §8).

A server with :class:`tests.support.conformance_hub.ConformanceHub` runs in a subprocess
(``tests/support/run_test_server.py``) on 127.0.0.1; then

* the official ``@microsoft/signalr`` 10.0.11 client (``tests/conformance/client.mjs``, Node)
  runs its scenario over WebSockets x {json, messagepack}, ServerSentEvents x json and
  LongPolling x {json, messagepack};
* pysignalr 1.3.3 (WebSockets, json and messagepack) and
* signalrcore 1.0.2 (WebSockets, ServerSentEvents, LongPolling) drive the same hub in-process.

Node tests are skipped only when ``node`` or ``tests/conformance/node_modules`` is missing
(``npm ci`` inside tests/conformance installs the pinned client).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE_DIR = ROOT / "tests" / "conformance"
GUID = "00010203-0405-0607-0706-050403020100"
STARTUP_TIMEOUT = 20.0
NODE_TIMEOUT = 120.0
CLIENT_TIMEOUT = 10.0


class ServerProcess:
    """The conformance server subprocess and its URL."""

    def __init__(self, process: subprocess.Popen[str], port: int, path: str) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}{path}"

    def stop(self) -> str:
        """SIGTERM (graceful), then SIGKILL after 10 s; returns what the server logged."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        assert self.process.stderr is not None
        return self.process.stderr.read()


def start_server(*extra_args: str) -> ServerProcess:
    """Start ``run_test_server`` and wait for its ``{"port": N}`` line."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.run_test_server", *extra_args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        line = lines.get(timeout=STARTUP_TIMEOUT)
        info = json.loads(line)
    except (queue.Empty, json.JSONDecodeError):
        process.kill()
        _, err = process.communicate(timeout=5)
        pytest.fail(f"test server did not start:\n{err}")
    return ServerProcess(process, int(info["port"]), info["path"])


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    proc = start_server()
    try:
        yield proc
    finally:
        log = proc.stop()
        # Errors logged by the server are bugs even when every client assertion passed (hub
        # method exceptions are expected and logged as WARNING).
        errors = [line for line in log.splitlines() if line.startswith(("ERROR:", "CRITICAL:"))]
        assert not errors, log


# --- @microsoft/signalr ------------------------------------------------------------------------

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(
    NODE is None or not (CONFORMANCE_DIR / "node_modules" / "@microsoft" / "signalr").is_dir(),
    reason="needs node and `npm ci` in tests/conformance",
)


def run_node_client(url: str, transport: str, protocol: str) -> dict[str, Any]:
    assert NODE is not None
    done = subprocess.run(
        [NODE, "client.mjs", url, transport, protocol],
        cwd=CONFORMANCE_DIR,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["stderr"] = done.stderr
    return result


def expected_steps(transport: str, protocol: str) -> dict[str, dict[str, Any]]:
    """What every step of client.mjs must report (docs/spec/hub-protocol.md §3.4, §3.5)."""

    def ok(value: Any) -> dict[str, Any]:
        return {"ok": True, "value": value}

    def error(text: str) -> dict[str, Any]:
        return {"ok": False, "error": text}

    if protocol == "json":
        complex_value = {
            "ByteArray": "AQID",
            "DateTime": "2000-01-01T00:00:00Z",
            "Guid": GUID,
            "IntArray": [1, 2, 3],
            "String": "hello world",
        }
    else:
        complex_value = {
            "ByteArray": {"$bytes": [1, 2, 3]},
            "DateTime": {"$date": "2000-01-01T00:00:00.000Z"},
            "Guid": GUID,
            "IntArray": [1, 2, 3],
            "String": "hello world",
        }
    return {
        "start": ok({"connectionIdIsSet": True}),
        "welcome_push_after_handshake": ok({"matchesConnectionId": True}),
        "transport_seen_by_server": ok(transport),
        "protocol_seen_by_server": ok(protocol),
        "invoke_with_result": ok("hello ✓"),
        "invoke_void": ok(None),
        "send_then_server_push": ok(["pushed"]),
        "group": ok(["g1", "to the group"]),
        "unknown_method": error(
            "Failed to invoke 'NoSuchMethod' due to an error on the server. "
            "HubException: Method does not exist."
        ),
        "wrong_argument_count": error("Failed to invoke 'Echo' due to an error on the server."),
        "wrong_argument_type": error("Failed to invoke 'Add' due to an error on the server."),
        "exception_in_method": error(
            "An unexpected error occurred invoking 'Throw' on the server."
        ),
        "hub_error_in_method": error(
            "An unexpected error occurred invoking 'ThrowHubError' on the server. "
            "HubException: visible text"
        ),
        "complex_values": ok(complex_value),
        "stream": ok([0, 1, 2]),
        "stream_error": ok(
            {"items": [0], "error": "An error occurred on the server while streaming results."}
        ),
        "upload_stream": ok({"result": 6, "pushed": 6}),
        "still_usable_after_errors": ok("again"),
        "stop": ok({"state": "Disconnected", "closeError": None}),
    }


@needs_node
@pytest.mark.parametrize(
    ("transport", "protocol"),
    [
        ("WebSockets", "json"),
        ("WebSockets", "messagepack"),
        ("ServerSentEvents", "json"),
        ("LongPolling", "json"),
        ("LongPolling", "messagepack"),
    ],
)
def test_official_js_client_runs_the_whole_scenario(server, transport, protocol):
    result = run_node_client(server.url, transport, protocol)
    expected = expected_steps(transport, protocol)
    assert result["steps"] == expected, result["stderr"]


JS_CAPTURE_ORDER = [
    "ping",
    "js_invocation",
    "js_send",
    "js_stream_invocation",
    "js_cancel",
    "js_invocation_with_stream_ids",
    "js_stream_item",
    "js_upload_complete",
    "js_send_with_stream_ids",
    "js_upload_error",
    "js_client_result",
    "js_client_no_result",
    "js_close",
]


@needs_node
@pytest.mark.parametrize("protocol", ["json", "messagepack"])
def test_official_js_client_sends_exactly_the_golden_bytes(protocol):
    """tests/support/golden's js_* vectors are what @microsoft/signalr really sends."""
    from hubserver.protocol.handshake import write_handshake_request
    from tests.support.golden import vector

    assert NODE is not None
    done = subprocess.run(
        [NODE, "capture_vectors.mjs", protocol],
        cwd=CONFORMANCE_DIR,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    frames = [
        f["text"].encode() if "text" in f else bytes.fromhex(f["hex"])
        for f in json.loads(done.stdout)["frames"]
    ]
    assert frames[0] == write_handshake_request(protocol, 1)
    assert frames[1:] == [vector(name, protocol).wire for name in JS_CAPTURE_ORDER]


@pytest.fixture(scope="module")
def stateful_server() -> Iterator[ServerProcess]:
    proc = start_server("--stateful")
    try:
        yield proc
    finally:
        log = proc.stop()
        errors = [line for line in log.splitlines() if line.startswith(("ERROR:", "CRITICAL:"))]
        assert not errors, log


@needs_node
@pytest.mark.parametrize("protocol", ["json", "messagepack"])
def test_official_js_client_survives_a_dropped_websocket_with_stateful_reconnect(
    stateful_server, protocol
):
    """docs/spec/stateful-reconnect.md §5.3: same connection after an ungraceful drop, replays
    deduped."""
    assert NODE is not None
    done = subprocess.run(
        [NODE, "stateful.mjs", stateful_server.url, protocol],
        cwd=CONFORMANCE_DIR,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout.strip().splitlines()[-1])["steps"]
    assert steps == {
        "start": {"ok": True, "value": "Connected"},
        "before_drop": {"ok": True, "value": {"sameId": True, "count": 1}},
        "drop_and_invoke": {"ok": True, "value": {"echoed": "after drop", "state": "Connected"}},
        "same_connection_after_drop": {"ok": True, "value": {"sameId": True, "count": 2}},
        "push_after_drop": {"ok": True, "value": "pushed after drop"},
        "stop": {"ok": True, "value": {"closed": True, "state": "Disconnected"}},
    }, done.stderr
    assert "Error" not in done.stderr, done.stderr


# --- pysignalr ---------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol_name", ["json", "messagepack"])
async def test_pysignalr_invokes_streams_uploads_and_receives_pushes(server, protocol_name):
    from pysignalr.client import SignalRClient
    from pysignalr.messages import CompletionMessage
    from pysignalr.protocol.json import JSONProtocol
    from pysignalr.protocol.messagepack import MessagepackProtocol

    protocol = JSONProtocol() if protocol_name == "json" else MessagepackProtocol()
    client = SignalRClient(server.url, protocol=protocol)
    loop = asyncio.get_running_loop()
    events: dict[str, asyncio.Queue[Any]] = {
        name: asyncio.Queue()
        for name in ("open", "Welcome", "Message", "GroupMessage", "UploadComplete", "error")
    }

    async def on_open() -> None:
        events["open"].put_nowait(True)

    def pusher(name: str):
        async def handler(args: list[Any]) -> None:
            events[name].put_nowait(args)

        return handler

    async def on_error(message: CompletionMessage) -> None:
        events["error"].put_nowait(message.error)

    client.on_open(on_open)
    client.on_error(on_error)
    for name in ("Welcome", "Message", "GroupMessage", "UploadComplete"):
        client.on(name, pusher(name))

    async def invoke(method: str, args: list[Any]) -> Any:
        done: asyncio.Future[Any] = loop.create_future()

        async def on_result(message: CompletionMessage) -> None:
            if not done.done():
                done.set_result(message.result)

        await client.send(method, args, on_result)
        return await asyncio.wait_for(done, CLIENT_TIMEOUT)

    async def next_event(name: str) -> Any:
        return await asyncio.wait_for(events[name].get(), CLIENT_TIMEOUT)

    run = asyncio.create_task(client.run())
    try:
        await next_event("open")
        assert len((await next_event("Welcome"))[0]) > 0
        assert await invoke("Echo", ["hi"]) == "hi"
        assert await invoke("Void", []) is None
        await client.send("SendToCaller", ["pushed"])
        assert await next_event("Message") == ["pushed"]
        await invoke("JoinGroup", ["g"])
        await invoke("SendToGroup", ["g", "hello group"])
        assert await next_event("GroupMessage") == ["g", "hello group"]

        await client.send("NoSuchMethod", [], lambda _: asyncio.sleep(0))
        assert await next_event("error") == (
            "Failed to invoke 'NoSuchMethod' due to an error on the server. "
            "HubException: Method does not exist."
        )

        items: list[Any] = []
        completed: asyncio.Future[None] = loop.create_future()

        async def on_next(item: Any) -> None:
            items.append(item)

        async def on_complete(_: Any) -> None:
            completed.set_result(None)

        await client.stream("Counter", [3], on_next, on_complete)
        await asyncio.wait_for(completed, CLIENT_TIMEOUT)
        assert items == [0, 1, 2]

        # pysignalr uploads as a non-blocking invocation with UUID stream ids
        # (docs/spec/hub-protocol.md §3.4).
        async with client.client_stream("UploadSum") as stream:
            for n in (1, 2, 3):
                await stream.send(n)
        assert await next_event("UploadComplete") == [6]
        assert await invoke("Echo", ["still alive"]) == "still alive"
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await run


# --- signalrcore -------------------------------------------------------------------------------


# signalrcore 1.0.2's long-polling client extracts only the FIRST record of each poll response
# (long_polling_client.py `_append` splits at the first 0x1E and keeps the rest buffered until
# another response arrives). Our long poll answers with everything pending, as .NET does when
# several records are queued, so the hub's first push (sent right after the handshake reply)
# waits in signalrcore's buffer until the next poll ends. A client bug, not a server one: the
# JS client and the spec (docs/spec/transports.md §2.4: a poll returns all pending messages) agree.
_SIGNALRCORE_LP_ONE_RECORD_PER_POLL = pytest.mark.xfail(
    reason="signalrcore 1.0.2 long polling parses one record per poll response (client bug)",
    strict=True,
)


def _signalrcore_cases() -> list[Any]:
    return [
        pytest.param("web_sockets", "json", id="WebSockets-json"),
        pytest.param("web_sockets", "messagepack", id="WebSockets-messagepack"),
        pytest.param("server_sent_events", "json", id="ServerSentEvents-json"),
        pytest.param(
            "long_polling", "json", id="LongPolling-json", marks=_SIGNALRCORE_LP_ONE_RECORD_PER_POLL
        ),
        pytest.param(
            "long_polling",
            "messagepack",
            id="LongPolling-messagepack",
            marks=_SIGNALRCORE_LP_ONE_RECORD_PER_POLL,
        ),
    ]


@pytest.mark.parametrize(("transport_name", "protocol_name"), _signalrcore_cases())
def test_signalrcore_invokes_streams_uploads_and_receives_pushes(
    server, transport_name, protocol_name
):
    from signalrcore.hub_connection_builder import HubConnectionBuilder
    from signalrcore.protocol.messagepack_protocol import MessagePackHubProtocol
    from signalrcore.subject import Subject
    from signalrcore.types import HttpTransportType

    transport = getattr(HttpTransportType, transport_name)
    builder = HubConnectionBuilder().with_url(server.url, options={"transport": transport})
    if protocol_name == "messagepack":
        builder = builder.with_hub_protocol(MessagePackHubProtocol())
    connection = builder.build()
    events: dict[str, queue.Queue[Any]] = {
        name: queue.Queue()
        for name in (
            "open",
            "close",
            "Welcome",
            "Message",
            "GroupMessage",
            "UploadComplete",
            "error",
        )
    }
    connection.on_open(lambda: events["open"].put(True))
    connection.on_close(lambda: events["close"].put(True))
    connection.on_error(lambda message: events["error"].put(message.error))
    for name in ("Welcome", "Message", "GroupMessage", "UploadComplete"):
        connection.on(name, lambda args, name=name: events[name].put(args))

    def next_event(name: str) -> Any:
        return events[name].get(timeout=CLIENT_TIMEOUT)

    def invoke(method: str, args: list[Any]) -> Any:
        results: queue.Queue[Any] = queue.Queue()
        connection.invoke(method, args, on_invocation=lambda message: results.put(message.result))
        return results.get(timeout=CLIENT_TIMEOUT)

    connection.start()
    try:
        next_event("open")
        assert len(next_event("Welcome")[0]) > 0
        assert invoke("GetTransport", []) == transport.value
        assert invoke("GetProtocol", []) == protocol_name
        assert invoke("Echo", ["hi"]) == "hi"
        connection.send("SendToCaller", ["pushed"])
        assert next_event("Message") == ["pushed"]
        invoke("JoinGroup", ["g"])
        invoke("SendToGroup", ["g", "hello group"])
        assert next_event("GroupMessage") == ["g", "hello group"]

        connection.invoke("Throw", ["secret"])
        assert next_event("error") == "An unexpected error occurred invoking 'Throw' on the server."

        items: list[Any] = []
        completed = threading.Event()
        # signalrcore subscribes only after sending the invocation: let the server wait a bit.
        connection.stream("DelayedCounter", [3, 100]).subscribe(
            {
                "next": items.append,
                "complete": lambda _: completed.set(),
                "error": lambda message: events["error"].put(message),
            }
        )
        assert completed.wait(CLIENT_TIMEOUT)
        assert items == [0, 1, 2]

        if protocol_name == "json":
            # signalrcore's msgpack encoder drops the invocationId of upload invocations
            # ([1, headers, target, ...]) and the result kind of their completion, which .NET
            # rejects as well; only its JSON uploads are conformant.
            subject = Subject()
            connection.send("UploadSum", subject)
            for n in (1, 2, 3):
                subject.next(n)
            subject.complete()
            assert next_event("UploadComplete") == [6]
        assert invoke("Echo", ["still alive"]) == "still alive"
    finally:
        connection.stop()
    deadline = time.monotonic() + CLIENT_TIMEOUT
    while events["close"].empty() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not events["close"].empty(), "signalrcore did not report the close"
