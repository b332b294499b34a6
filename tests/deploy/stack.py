"""A real deployment on 127.0.0.1 for tests: nginx (rendered from deploy/) in front of two
``aiusage serve`` processes sharing Redis (unique channel prefix) and PostgreSQL (unique
schema). Every process runs in its own process group and is killed on exit."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from aiusage.auth.issuer import BuiltinIssuer
from tests.deploy.nginx_kit import make_certificate, nginx_command, write_nginx_prefix

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
ORG = "acme"
SHUTDOWN_GRACE_S = 5.0
HERE = Path(__file__).resolve().parent
NODE_CLIENT = HERE / "proxy_client.cjs"
SIGNALR = HERE.parent / "conformance" / "node_modules" / "@microsoft" / "signalr"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def stop_group(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, wait: float = 10.0) -> None:
    """Signal the process group of ``proc``, then SIGKILL it if it does not exit in time."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    else:  # the leader is gone; make sure nothing of its group survives
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


@dataclass
class Backend:
    """One ``aiusage serve`` process."""

    name: str
    port: int
    log: Path
    proc: subprocess.Popen[Any] | None = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Stack:
    """nginx + two aiusage processes; build with :meth:`start`, always :meth:`close`."""

    root: Path
    schema: str = field(default_factory=lambda: f"t_{uuid.uuid4().hex[:16]}")
    prefix: str = field(default_factory=lambda: f"test-deploy-{uuid.uuid4().hex[:8]}")
    http_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    backends: list[Backend] = field(default_factory=list)
    nginx: subprocess.Popen[Any] | None = None
    issuer: BuiltinIssuer | None = None
    others: list[subprocess.Popen[Any]] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIUSAGE_")}
        env.update(
            {
                "AIUSAGE_DATA_DIR": str(self.data_dir),
                "AIUSAGE_DATABASE_URL": POSTGRES_URL,
                "AIUSAGE_DATABASE_SCHEMA": self.schema,
                "AIUSAGE_REDIS_URL": REDIS_URL,
                "AIUSAGE_CHANNEL_PREFIX": self.prefix,
                "AIUSAGE_TRUSTED_PROXIES": "127.0.0.1",
                "AIUSAGE_SHUTDOWN_GRACE": str(SHUTDOWN_GRACE_S),
                "AIUSAGE_LOG_FORMAT": "json",
                "AIUSAGE_DASHBOARD_INTERVAL": "0.5",
                # Tokens are minted for subjects never created in the store.
                "AIUSAGE_ALLOW_UNKNOWN_USERS": "true",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Stack:
        self.data_dir.mkdir(parents=True)
        # Create the schema, the organization and the signing keys BEFORE the servers start,
        # so the two processes never race to migrate or to generate keys.
        subprocess.run(
            [sys.executable, "-m", "aiusage.cli", "org", "create", "--id", ORG, "--name", "Acme"],
            env=self.env(),
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.issuer = BuiltinIssuer.load_or_create(self.data_dir)
        self.backends = [
            Backend(name, free_port(), self.root / f"{name}.log") for name in ("a", "b")
        ]
        for backend in self.backends:
            self.spawn(backend)
        for backend in self.backends:
            self.wait_ready(backend)
        cert, key = make_certificate(self.root)
        prefix = self.root / "nginx"
        prefix.mkdir()
        conf = write_nginx_prefix(
            prefix,
            http_port=self.http_port,
            https_port=self.https_port,
            upstream_ports=[b.port for b in self.backends],
            cert=cert,
            key=key,
        )
        self.nginx = subprocess.Popen(
            nginx_command(prefix, conf),
            stdout=subprocess.DEVNULL,
            stderr=open(prefix / "logs" / "stderr.log", "wb"),  # noqa: SIM115
            start_new_session=True,
        )
        wait_port(self.http_port)
        wait_port(self.https_port)
        return self

    def spawn(self, backend: Backend) -> None:
        log = open(backend.log, "ab")  # noqa: SIM115 - owned by the child
        backend.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aiusage.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(backend.port),
            ],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_ready(self, backend: Backend, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert backend.proc is not None
            if backend.proc.poll() is not None:
                raise RuntimeError(f"backend {backend.name} exited:\n{backend.log_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.get(f"http://127.0.0.1:{backend.port}/readyz", timeout=1.0)
                if r.status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"backend {backend.name} not ready:\n{backend.log_text()[-3000:]}")

    def close(self) -> None:
        for proc in self.others:
            stop_group(proc, signal.SIGKILL, 5)
        if self.nginx is not None:
            stop_group(self.nginx, signal.SIGQUIT, 5)
        for backend in self.backends:
            if backend.proc is not None:
                stop_group(backend.proc, signal.SIGTERM, SHUTDOWN_GRACE_S + 5)
        with contextlib.suppress(Exception):
            drop = f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'
            subprocess.run(
                ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-q", "-c", drop],
                capture_output=True,
                timeout=30,
            )

    # -- helpers --------------------------------------------------------------------------------

    def token(self, sub: str, role: str, org: str = ORG) -> str:
        assert self.issuer is not None
        return self.issuer.issue(sub, org, role, ttl=3600)

    def served_by(self, request_id: str) -> list[str]:
        """Backends whose access log mentions ``request_id`` (nginx forwards X-Request-ID)."""
        needle = f"rid={request_id}"
        return [b.name for b in self.backends if needle in b.log_text()]

    def affinity_cookies(self, per_backend: int = 1) -> dict[str, list[str]]:
        """Cookie values that nginx's consistent hash maps to each backend, found by asking:
        a request carrying the cookie and a known X-Request-ID, then the backend logs."""
        found: dict[str, list[str]] = {b.name: [] for b in self.backends}
        with httpx.Client(base_url=self.http_url, timeout=5.0) as client:
            for i in range(64):
                if all(len(v) >= per_backend for v in found.values()):
                    break
                value = f"probe{i}-{uuid.uuid4().hex[:6]}"
                rid = f"affinity-{value}"
                r = client.get(
                    "/healthz", headers={"Cookie": f"aiusage_affinity={value}", "X-Request-ID": rid}
                )
                assert r.status_code == 200, r.text
                assert r.headers.get("x-request-id") == rid  # echoed end to end
                owner: list[str] = []
                for _ in range(40):
                    owner = self.served_by(rid)
                    if owner:
                        break
                    time.sleep(0.025)
                assert len(owner) == 1, (rid, owner)
                if len(found[owner[0]]) < per_backend:
                    found[owner[0]].append(value)
        assert all(len(v) >= per_backend for v in found.values()), found
        return found

    def metrics(self, backend: Backend) -> dict[str, float]:
        """Parsed ``/metrics`` of one backend (directly, as Prometheus scrapes it)."""
        text = httpx.get(f"http://127.0.0.1:{backend.port}/metrics", timeout=5.0).text
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples


def node_command(config: dict[str, Any]) -> list[str]:
    return ["node", str(NODE_CLIENT), json.dumps(config)]


def node_env() -> dict[str, str]:
    # The self-signed certificate of the test: accept it in the Node client only.
    return {**os.environ, "NODE_TLS_REJECT_UNAUTHORIZED": "0", "NODE_NO_WARNINGS": "1"}
