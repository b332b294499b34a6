"""``aiusage serve`` as a real process on 127.0.0.1 (the README run command)."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from aiusage.cli import main

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(tmp_path, *extra):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIUSAGE_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiusage.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    banner = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        banner.append(line)
        if line.startswith("Press Ctrl+C"):
            return proc, port, "".join(banner)
    proc.kill()
    raise AssertionError(f"server did not start: {''.join(banner)}")


def _stop(proc) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_prints_the_dashboard_url_serves_and_stops_on_sigterm(tmp_path) -> None:
    proc, port, banner = _start(tmp_path)
    try:
        assert f"dashboard: http://127.0.0.1:{port}/" in banner
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    finally:
        assert _stop(proc) == 0


def test_serve_demo_seeds_a_login_and_live_simulated_sessions(tmp_path) -> None:
    proc, port, banner = _start(tmp_path, "--demo")
    try:
        line = next(x for x in banner.splitlines() if "login:" in x)
        email, password = line.split("login:")[1].split("(")[0].strip().split(" / ")
        base = f"http://127.0.0.1:{port}"
        login = httpx.post(
            f"{base}/api/auth/login", json={"email": email, "password": password}, timeout=10
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        items = []
        for _ in range(40):  # the simulator posts once a second
            items = httpx.get(f"{base}/api/sessions", headers=headers, timeout=10).json()["items"]
            if items:
                break
            time.sleep(0.25)
        assert items, "no simulated session reached the store"
        assert items[0]["userId"].startswith("sim-user-")
    finally:
        assert _stop(proc) == 0


def test_several_workers_need_a_redis_backplane(tmp_path, capsys) -> None:
    code = main(
        ["serve", "--workers", "2", "--port", str(_free_port()), "--data-dir", str(tmp_path)]
    )
    assert code == 2
    assert "--workers N needs --redis-url" in capsys.readouterr().err
