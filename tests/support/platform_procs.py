"""Real ``aiusage serve`` / ``aiusage worker`` processes for the scale-out tests (docs/scaleout.md).

* :class:`Deployment` is one shared data dir (signing key, exports), one database (SQLite WAL
  file in the data dir, or a fresh PostgreSQL schema in db ``test``) and one Redis URL with a
  channel prefix unique to the deployment, so runs in parallel never hear each other.
* :meth:`Deployment.start_server` / :meth:`Deployment.start_worker` start the CLI in its own
  process group on a free 127.0.0.1 port and wait for ``/healthz``; :meth:`Deployment.close`
  (always call it in ``finally``) SIGTERMs, then SIGKILLs every group it started.
* :class:`RedisServer` is a private redis-server on a free port for fault tests: the shared
  127.0.0.1:6379 is never stopped.
* :class:`NodeClients` drives many official ``@microsoft/signalr`` clients through
  ``tests/conformance/scaleout.mjs`` (one Node process, JSON lines over stdin/stdout).

Every wait is bounded; every process started here is killed by the owner's ``close``/``stop``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE_DIR = ROOT / "tests" / "conformance"
SHARED_REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
HUB_PATH = "/hubs/analytics"
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

NODE = shutil.which("node")
HAVE_NODE_CLIENT = (
    NODE is not None and (CONFORMANCE_DIR / "node_modules" / "@microsoft" / "signalr").is_dir()
)
HAVE_REDIS_SERVER = shutil.which("redis-server") is not None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """``(status, body)`` of a GET (0 and the error text when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            return int(response.status), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode("utf-8", "replace")
    except (OSError, TimeoutError) as exc:
        return 0, str(exc)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _kill_group(proc: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the process group of ``proc`` (graceful), SIGKILL it after ``timeout``."""
    if proc.poll() is not None:
        # The leader is gone; children of a --workers supervisor may still be around.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


# --- Redis ------------------------------------------------------------------------------------


class RedisServer:
    """A private redis-server on a free 127.0.0.1 port that a test may stop and restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or restart, on the same port) and wait for PONG."""
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

        def pong() -> bool:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s,
            ):
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
            return False

        if not wait_until(pong, 10.0):
            self.stop()
            raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Stop it (idempotent)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            _kill_group(proc, 5.0)


# --- aiusage processes ------------------------------------------------------------------------


@dataclass
class Proc:
    """One started CLI process (its own process group) and its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def hub_url(self) -> str:
        """The AnalyticsHub URL of this process."""
        return f"{self.base_url}{HUB_PATH}"

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def log(self) -> str:
        """Everything the process wrote so far."""
        try:
            return self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def error_lines(self) -> list[str]:
        """Logged ERROR/CRITICAL lines and tracebacks (bugs, whatever the clients saw)."""
        return [
            line
            for line in self.log().splitlines()
            if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
        ]

    def ready_status(self) -> int:
        """HTTP status of ``/readyz`` (0 when nothing answers)."""
        return http_status(f"{self.base_url}/readyz")[0]

    def wait_ready_status(self, status: int, timeout: float) -> bool:
        """Wait until ``/readyz`` answers ``status``."""
        return wait_until(lambda: self.ready_status() == status, timeout, 0.05)

    def stop(self) -> None:
        """Graceful stop of the whole process group (SIGKILL after a timeout)."""
        _kill_group(self.proc)


@dataclass
class Deployment:
    """One aiusage installation: shared data dir, database and Redis channel prefix.

    Args:
        data_dir: Shared by every process (built-in issuer key, exports, SQLite file).
        redis_url: Backplane (the shared 6379, or a :class:`RedisServer`).
        database: ``sqlite`` (WAL file in the data dir) or ``postgres`` (fresh schema).
    """

    data_dir: Path
    redis_url: str = SHARED_REDIS_URL
    database: str = "sqlite"
    channel_prefix: str = field(default_factory=lambda: f"it-{uuid.uuid4().hex[:12]}-")
    schema: str | None = None
    procs: list[Proc] = field(default_factory=list)
    _names: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.database == "postgres" and self.schema is None:
            self.schema = f"t_{uuid.uuid4().hex[:16]}"
        elif self.database not in ("sqlite", "postgres"):
            raise ValueError(f"unknown database {self.database}")

    # -- environment ----------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of every process of this deployment."""
        env = dict(os.environ)
        env.update(
            AIUSAGE_DATA_DIR=str(self.data_dir),
            AIUSAGE_REDIS_URL=self.redis_url,
            AIUSAGE_CHANNEL_PREFIX=self.channel_prefix,
            AIUSAGE_SHUTDOWN_GRACE="2",
            AIUSAGE_ACCESS_LOG="false",
            AIUSAGE_LOG_LEVEL="INFO",
            # These deployments mint operator tokens for subjects they never create in the
            # store; tests/security/ runs the default (unknown users refused).
            AIUSAGE_ALLOW_UNKNOWN_USERS="true",
            PYTHONUNBUFFERED="1",
        )
        for key in (
            "AIUSAGE_DATABASE_URL",
            "AIUSAGE_DATABASE_SCHEMA",
            "AIUSAGE_PORT",
            "AIUSAGE_WORKERS",
            "AIUSAGE_DEMO",
        ):
            env.pop(key, None)
        if self.database == "postgres":
            assert self.schema is not None
            env["AIUSAGE_DATABASE_URL"] = POSTGRES_URL
            env["AIUSAGE_DATABASE_SCHEMA"] = self.schema
        env.update(extra)
        return env

    @property
    def cli(self) -> list[str]:
        """The ``aiusage`` command of this venv."""
        return [sys.executable, "-m", "aiusage.cli"]

    def run_cli(self, *args: str, timeout: float = 60.0) -> str:
        """Run an ``aiusage`` command to completion; its stdout (raises on failure)."""
        done = subprocess.run(
            [*self.cli, *args],
            env=self.env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"aiusage {' '.join(args[:2])} failed: {done.stderr[-2000:]}")
        return done.stdout

    def migrate(self) -> None:
        """Create the schema once, before servers start (they then find it up to date)."""
        self.run_cli("migrate")

    def create_org(self, org_id: str) -> None:
        """``aiusage org create`` (active subscription)."""
        self.run_cli("org", "create", "--id", org_id, "--name", f"Org {org_id}")

    def token(self, sub: str, org: str, role: str = "Admin", ttl: int = 3600) -> str:
        """A token of the deployment's built-in issuer (what ``aiusage token issue`` prints)."""
        from aiusage.auth.issuer import BuiltinIssuer

        return BuiltinIssuer.load_or_create(self.data_dir).issue(sub, org, role, ttl)

    # -- processes -------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> Proc:
        log_path = self.data_dir / f"{name}.log"
        log_file = log_path.open("wb")
        try:
            proc = subprocess.Popen(
                [*self.cli, *args],
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: killpg reaches --workers children
            )
        finally:
            log_file.close()
        handle = Proc(name, proc, log_path)
        self.procs.append(handle)
        return handle

    def start_server(
        self, *extra_args: str, port: int | None = None, wait: bool = True, **env: str
    ) -> Proc:
        """``aiusage serve`` on ``port`` (default: a free one); waits for ``/healthz``.

        Raises:
            RuntimeError: The server did not answer within the startup timeout (log attached).
        """
        port = port or free_port()
        name = f"serve-{next(self._names)}-{port}"
        proc = self._spawn(
            name,
            ["serve", "--host", "127.0.0.1", "--port", str(port), *extra_args],
            self.env(**env),
        )
        proc.port = port
        if wait:
            self.wait_healthy(proc)
        return proc

    def wait_healthy(self, proc: Proc, timeout: float = STARTUP_TIMEOUT) -> None:
        """Wait for ``/healthz`` 200.

        Raises:
            RuntimeError: It did not come up (or exited); the log is in the message.
        """
        ok = wait_until(
            lambda: not proc.alive() or http_status(f"{proc.base_url}/healthz", 1.0)[0] == 200,
            timeout,
            0.05,
        )
        if not ok or not proc.alive():
            raise RuntimeError(f"{proc.name} did not start:\n{proc.log()[-4000:]}")

    def start_worker(self, *extra_args: str, **env: str) -> Proc:
        """``aiusage worker`` polling every 0.1 s (no port)."""
        name = f"worker-{next(self._names)}"
        return self._spawn(name, ["worker", "--poll-interval", "0.1", *extra_args], self.env(**env))

    def close(self) -> None:
        """Stop every process (process groups), then drop the PostgreSQL schema."""
        for proc in reversed(self.procs):
            proc.stop()
        if self.schema is not None:
            with contextlib.suppress(Exception):
                subprocess.run(
                    [
                        "psql",
                        "-h",
                        "127.0.0.1",
                        "-U",
                        "postgres",
                        "-d",
                        "test",
                        "-q",
                        "-c",
                        f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE',
                    ],
                    capture_output=True,
                    timeout=20,
                )


# --- official clients -------------------------------------------------------------------------


@dataclass
class Received:
    """One client method call delivered to a client (``t``: wall-clock ms of receipt)."""

    name: str
    method: str
    args: list[Any]
    t: float


def _outcome_of(name: str) -> Callable[[dict[str, Any]], bool]:
    def match(event: dict[str, Any]) -> bool:
        return event.get("name") == name and event.get("ev") in ("connected", "error")

    return match


def arg_has(key: str, value: Any) -> Callable[[Received], bool]:
    """Predicate: the call's first argument is an object with ``key == value``."""

    def match(received: Received) -> bool:
        first = received.args[0] if received.args else None
        return isinstance(first, dict) and first.get(key) == value

    return match


class NodeClients:
    """Official ``@microsoft/signalr`` clients in one Node process (``scaleout.mjs``).

    A reader thread collects every event; the ``wait_*`` methods poll it with a deadline.
    """

    def __init__(self) -> None:
        if not HAVE_NODE_CLIENT:
            raise RuntimeError("needs node and `npm ci` in tests/conformance")
        assert NODE is not None
        self.proc = subprocess.Popen(
            [NODE, "scaleout.mjs"],
            cwd=CONFORMANCE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self._lock = threading.Lock()
        self.received: list[Received] = []
        self.events: list[dict[str, Any]] = []
        self.connection_ids: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._lock:
                if event.get("ev") == "msg":
                    self.received.append(
                        Received(event["name"], event["method"], event["args"], event["t"])
                    )
                else:
                    self.events.append(event)

    def _send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def _wait_event(
        self, match: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def check() -> bool:
            with self._lock:
                found.extend(e for e in self.events if match(e))
            return bool(found)

        if not wait_until(check, timeout, 0.005):
            raise TimeoutError("no answer from the Node client")
        return found[0]

    def connect_many(
        self,
        specs: Iterable[tuple[str, str, str]],
        *,
        transport: str | Callable[[str], str] = "WebSockets",
        protocol: str | Callable[[str], str] = "json",
        skip_negotiation: bool = False,
        timeout: float = 20.0,
    ) -> dict[str, str]:
        """Start ``(name, url, token)`` connections concurrently; name -> connection id.

        Raises:
            RuntimeError: A connection failed to start (the client's error text).
        """
        names = []
        for name, url, token in specs:
            names.append(name)
            self._send(
                {
                    "op": "connect",
                    "name": name,
                    "url": url,
                    "token": token,
                    "transport": transport(name) if callable(transport) else transport,
                    "protocol": protocol(name) if callable(protocol) else protocol,
                    "skipNegotiation": skip_negotiation,
                }
            )
        for name in names:
            event = self._wait_event(_outcome_of(name), timeout)
            if event["ev"] == "error":
                raise RuntimeError(f"{name}: {event['error']}")
            self.connection_ids[name] = event["connectionId"]
        return {n: self.connection_ids[n] for n in names}

    def connect(self, name: str, url: str, token: str, **options: Any) -> str:
        """One connection; its connection id."""
        return self.connect_many([(name, url, token)], **options)[name]

    def connect_error(self, name: str, url: str, token: str, **options: Any) -> str:
        """Try to connect and return the failure text (raises if it connected)."""
        try:
            self.connect(name, url, token, **options)
        except RuntimeError as exc:
            return str(exc)
        raise AssertionError(f"{name} connected but should not have")

    def _call(self, command: dict[str, Any], timeout: float) -> Any:
        call_id = f"c{next(self._ids)}"
        self._send({**command, "id": call_id})
        event = self._wait_event(
            lambda e: e.get("ev") == "result" and e.get("id") == call_id, timeout
        )
        if not event["ok"]:
            raise RuntimeError(event["error"])
        return event["value"]

    def invoke(self, name: str, method: str, *args: Any, timeout: float = 15.0) -> Any:
        """``connection.invoke(method, ...args)``; raises RuntimeError with the hub error."""
        return self._call(
            {"op": "invoke", "name": name, "method": method, "args": list(args)}, timeout
        )

    def ping(
        self, name: str, org: str, count: int, interval_ms: float, timeout: float = 60.0
    ) -> str:
        """Invoke ``BroadcastDashboardUpdate(org, {probe, seq, t0})`` ``count`` times; the
        probe id (payloads carry it as ``probe``)."""
        call_id = f"c{next(self._ids)}"
        self._send(
            {
                "op": "ping",
                "name": name,
                "id": call_id,
                "org": org,
                "count": count,
                "intervalMs": interval_ms,
            }
        )
        event = self._wait_event(
            lambda e: e.get("ev") == "result" and e.get("id") == call_id, timeout
        )
        if not event["ok"]:
            raise RuntimeError(event["error"])
        return call_id

    def close_connection(self, name: str, timeout: float = 10.0) -> None:
        """Stop one connection and wait for its close."""
        self._send({"op": "close", "name": name})
        self._wait_event(lambda e: e.get("ev") == "closed" and e.get("name") == name, timeout)

    def closed(self, name: str) -> dict[str, Any] | None:
        """The ``closed`` event of ``name`` if it closed."""
        with self._lock:
            return next(
                (e for e in self.events if e.get("ev") == "closed" and e.get("name") == name), None
            )

    # -- received messages -----------------------------------------------------------------

    def messages(
        self, method: str | None = None, where: Callable[[Received], bool] | None = None
    ) -> list[Received]:
        """Snapshot of the received calls (optionally of one method / matching ``where``)."""
        with self._lock:
            items = list(self.received)
        return [
            r
            for r in items
            if (method is None or r.method == method) and (where is None or where(r))
        ]

    def wait_messages(
        self,
        count: int,
        method: str | None = None,
        where: Callable[[Received], bool] | None = None,
        timeout: float = 10.0,
    ) -> list[Received]:
        """Wait until at least ``count`` matching calls arrived; returns them (maybe fewer
        after the timeout, so the caller's assertion shows what was missing)."""
        wait_until(lambda: len(self.messages(method, where)) >= count, timeout, 0.005)
        return self.messages(method, where)

    def close(self) -> None:
        """Stop every connection and the Node process."""
        with contextlib.suppress(OSError, ValueError):
            self._send({"op": "exit"})
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        _kill_group(self.proc, 1.0)
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]
