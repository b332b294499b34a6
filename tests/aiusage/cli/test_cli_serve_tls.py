"""``aiusage serve --tls-cert/--tls-key`` (or AIUSAGE_SERVER_TLS_CERT/_KEY): the banner
says https://, the REST API and the hub answer over TLS, and unusable files are refused with
a message naming them before anything starts."""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets
from tests.aiusage.cli.test_cli_serve import _start, _stop
from tests.hubserver.server.certs import CertFiles, make_certs

from aiusage.cli import build_parser
from aiusage.cli.serve import _child_argv, settings_from_serve_args
from aiusage.errors import ConfigurationError
from aiusage.settings import Settings


@pytest.fixture
def certs(tmp_path: Path) -> CertFiles:
    return make_certs(tmp_path)


def serve_args(*argv: str) -> argparse.Namespace:
    return build_parser("serve").parse_args(["serve", *argv])


def test_flags_set_tls_and_workers_inherit_them(
    certs: CertFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("AIUSAGE_")]:
        monkeypatch.delenv(name)
    settings = settings_from_serve_args(
        serve_args("--tls-cert", str(certs.cert), "--tls-key", str(certs.key), "--port", "9443")
    )
    assert (settings.tls_cert, settings.tls_key) == (str(certs.cert), str(certs.key))
    assert settings.base_url == "https://127.0.0.1:9443"
    argv = _child_argv(settings)
    assert argv[argv.index("--tls-cert") + 1] == str(certs.cert)
    assert argv[argv.index("--tls-key") + 1] == str(certs.key)


def test_the_environment_sets_tls_too(certs: CertFiles) -> None:
    env = {"AIUSAGE_SERVER_TLS_CERT": str(certs.cert), "AIUSAGE_SERVER_TLS_KEY": str(certs.key)}
    settings = Settings.from_env(env)
    assert settings.scheme == "https"
    with pytest.raises(ConfigurationError, match="both --tls-cert and --tls-key"):
        Settings.from_env({"AIUSAGE_SERVER_TLS_CERT": str(certs.cert)})


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("missing", "TLS certificate file not found"),
        ("mismatch", "does not belong to the certificate"),
        ("key-only", "both --tls-cert and --tls-key"),
    ],
)
def test_unusable_tls_files_stop_serve_with_a_clear_message(
    certs: CertFiles, tmp_path: Path, which: str, message: str
) -> None:
    if which == "missing":
        flags = ["--tls-cert", str(tmp_path / "absent.pem"), "--tls-key", str(certs.key)]
    elif which == "mismatch":
        other = make_certs(tmp_path, prefix="other")
        flags = ["--tls-cert", str(certs.cert), "--tls-key", str(other.key)]
    else:
        flags = ["--tls-key", str(certs.key)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIUSAGE_")}
    done = subprocess.run(
        [sys.executable, "-m", "aiusage.cli", "serve", "--data-dir", str(tmp_path), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.integration
def test_serve_over_tls_prints_https_and_serves_the_api_and_the_hub(
    certs: CertFiles, tmp_path: Path
) -> None:
    proc, port, banner = _start(
        tmp_path, "--tls-cert", str(certs.cert), "--tls-key", str(certs.key)
    )
    try:
        assert f"dashboard: https://127.0.0.1:{port}/" in banner
        assert f"hub:       https://127.0.0.1:{port}/hubs/analytics" in banner
        base = f"https://127.0.0.1:{port}"
        context = ssl.create_default_context(cafile=str(certs.ca))
        with httpx.Client(base_url=base, verify=context, timeout=5) as c:
            assert c.get("/healthz").json() == {"status": "ok"}
            # The hub is behind authentication: negotiate answers 401 over TLS.
            assert c.post("/hubs/analytics/negotiate?negotiateVersion=1").status_code == 401

        async def refused_websocket() -> int:
            try:
                async with websockets.connect(
                    f"wss://127.0.0.1:{port}/hubs/analytics", ssl=context
                ):
                    return 101
            except websockets.InvalidStatus as exc:
                return exc.response.status_code

        assert asyncio.run(refused_websocket()) == 401
    finally:
        assert _stop(proc) == 0
