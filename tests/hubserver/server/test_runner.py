"""The one serve runner: start, wait for a stop signal or event, always stop; loop choice."""

import asyncio
import os
import signal

import pytest

from hubserver.server.runner import run, serve_until_stopped


class Service:
    def __init__(self, fail_start: bool = False) -> None:
        self.calls: list[str] = []
        self.fail_start = fail_start

    async def start(self) -> None:
        self.calls.append("start")
        if self.fail_start:
            raise OSError("address in use")

    async def stop(self) -> None:
        self.calls.append("stop")


async def test_the_stop_event_ends_serving_after_on_started() -> None:
    service, event = Service(), asyncio.Event()

    async def started() -> None:
        service.calls.append("started")
        event.set()

    await serve_until_stopped(
        service.start,
        service.stop,
        stop_event=event,
        on_started=started,
        install_signal_handlers=False,
    )
    assert service.calls == ["start", "started", "stop"]


async def test_stop_runs_when_start_fails() -> None:
    service = Service(fail_start=True)
    with pytest.raises(OSError, match="address in use"):
        await serve_until_stopped(service.start, service.stop, install_signal_handlers=False)
    assert service.calls == ["start", "stop"]


async def test_sigterm_stops_gracefully_and_the_handlers_are_removed() -> None:
    service = Service()
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
    async with asyncio.timeout(5):
        await serve_until_stopped(service.start, service.stop)
    assert service.calls == ["start", "stop"]
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.SIG_IGN, None)


def test_run_returns_the_result_on_either_event_loop() -> None:
    async def loop_name() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run(loop_name()).startswith("uvloop")
    assert run(loop_name(), event_loop="asyncio").startswith("asyncio")
