"""``/readyz`` and ``/metrics`` tell the truth about the backplane (issue 10; anchors.md §3
#15: health stayed green while the hub delivered nothing). A private redis-server on a free
loopback port is killed and restarted under a running platform."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from aiusage.platform import Platform
from aiusage.settings import Settings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(90),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    def __init__(self, port: int, directory: Path) -> None:
        self.port = port
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
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
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.2)


async def test_readyz_follows_the_backplane_down_and_back_up(
    tmp_path: Path, redis: PrivateRedis
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        port=0,
        redis_url=f"redis://127.0.0.1:{redis.port}/0",
        web_dir=tmp_path / "no-dashboard",
    )
    platform = await Platform.create(settings)
    await platform.start()
    try:
        async with httpx.AsyncClient(base_url=platform.base_url, timeout=5.0) as http:

            async def ready_is(status: int, backplane: str) -> bool:
                r = await http.get("/readyz")
                return r.status_code == status and r.json()["backplane"] == backplane

            async def metric(name: str) -> float:
                for line in (await http.get("/metrics")).text.splitlines():
                    if line.startswith(name + " "):
                        return float(line.split()[-1])
                raise AssertionError(f"{name} missing")

            await eventually(lambda: ready_is(200, "ok"), 10, "ready with Redis up")
            assert await metric("aiusage_backplane_state") == 2
            reconnects = await metric("aiusage_backplane_reconnects_total")

            redis.kill()
            await eventually(lambda: ready_is(503, "down"), 15, "503 with Redis down")
            assert (await http.get("/readyz")).json()["database"] == "ok"
            assert await metric("aiusage_backplane_healthy") == 0
            assert await metric("aiusage_backplane_state") != 2

            redis.start()
            await eventually(lambda: ready_is(200, "ok"), 30, "ready again after Redis")
            assert await metric("aiusage_backplane_healthy") == 1
            assert await metric("aiusage_backplane_reconnects_total") > reconnects
    finally:
        await platform.stop(grace=1.0)
