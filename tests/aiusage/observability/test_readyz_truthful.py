"""``/readyz`` and ``/metrics`` tell the truth about the backplane (docs/spec/backplane.md
§6.6: health must not stay green while the hub delivers nothing). A private redis-server on a free
loopback port is killed and restarted under a running platform."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.platform_procs import RedisServer

from aiusage.platform import Platform
from aiusage.settings import Settings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(90),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.2)


async def test_readyz_follows_the_backplane_down_and_back_up(
    tmp_path: Path, redis: RedisServer
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

            redis.stop()
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
