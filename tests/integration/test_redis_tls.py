"""The Redis backplane over TLS (``rediss://``) against a TLS-only redis-server.

The test makes a CA and a server certificate for 127.0.0.1 (``tests/hubserver/server/certs.py``),
starts its own ``redis-server --port 0 --tls-port P`` on a free loopback port, and checks that
two backplanes, then two real ``aiusage serve`` processes, share broadcasts through it; and that
the server certificate is verified (another CA is refused, the server stays "not ready").
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from hubserver.lifetime.redis import STATE_CONNECTING, RedisLifetimeManager
from tests.hubserver.lifetime.spec import FakeSink, eventually
from tests.hubserver.server.certs import make_certs
from tests.support.platform_procs import HAVE_NODE_CLIENT, Deployment, NodeClients
from tests.support.redis_procs import (
    RedisProc,
    assert_no_tracebacks,
    broadcast_reaches_both,
    start_two_servers,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("redis-server") is None, reason="redis-server is not installed"
    ),
]


class TlsRedis:
    """A TLS-only redis-server and the CA that signed its certificate."""

    def __init__(self, directory: Path) -> None:
        self.files = make_certs(directory)
        self.server = RedisProc(
            directory / "redis",
            "--tls-cert-file",
            str(self.files.cert),
            "--tls-key-file",
            str(self.files.key),
            "--tls-ca-cert-file",
            str(self.files.ca),
            "--tls-auth-clients",
            "no",
            tls_ca=self.files.ca,
        )

    def url(self, ca: Path | None = None) -> str:
        """``rediss://`` URL verifying the server against ``ca`` (default: the right CA)."""
        ca_file = quote(str(ca or self.files.ca), safe="/")
        return (
            f"rediss://127.0.0.1:{self.server.port}/0?ssl_ca_certs={ca_file}&ssl_cert_reqs=required"
        )


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[TlsRedis]:
    redis = TlsRedis(tmp_path)
    redis.server.start()
    try:
        yield redis
    finally:
        redis.server.stop()


def _manager(url: str, prefix: str, **kwargs: float) -> RedisLifetimeManager:
    kwargs.setdefault("connect_timeout", 2.0)
    return RedisLifetimeManager(
        url,
        channel_prefix=prefix,
        hub_name="Hub",
        canary_interval=0,
        backoff_base=0.02,
        backoff_max=0.2,
        **kwargs,
    )


async def test_two_backplanes_share_a_broadcast_over_tls(tls_redis: TlsRedis) -> None:
    prefix = f"tls-{uuid.uuid4().hex}-"
    m1, m2 = _manager(tls_redis.url(), prefix), _manager(tls_redis.url(), prefix)
    try:
        await m1.start()
        await m2.start()
        assert m1.is_healthy() and m2.is_healthy()
        b = FakeSink("b")
        await m2.on_connected(b)
        await m1.send_all("OverTls", ["x"])
        await eventually(lambda: b.received() == [("OverTls", ["x"])], within=5)
        assert await m1.check_canary()
        # The connections really are TLS: the server counts them as such.
        assert int(tls_redis.server.info("stats").get("total_connections_received", 0)) >= 2
    finally:
        await m1.stop()
        await m2.stop()


async def test_a_server_certificate_from_another_ca_is_refused(
    tls_redis: TlsRedis, tmp_path: Path
) -> None:
    (tmp_path / "other").mkdir()
    other_ca = make_certs(tmp_path / "other", prefix="other").ca
    m = _manager(tls_redis.url(other_ca), "tls-bad-", connect_timeout=0.5)
    try:
        await m.start()
        await eventually(lambda: m.stats()["connection_failures"] >= 2, within=5)
        assert not m.is_healthy() and m.stats()["state"] == STATE_CONNECTING
    finally:
        await m.stop()


async def test_plain_redis_to_a_tls_port_never_becomes_ready(tls_redis: TlsRedis) -> None:
    m = _manager(f"redis://127.0.0.1:{tls_redis.server.port}/0", "tls-plain-", connect_timeout=0.5)
    try:
        await m.start()
        await eventually(lambda: m.stats()["connection_failures"] >= 1, within=5)
        assert not m.is_healthy()
    finally:
        await m.stop()


@pytest.mark.skipif(not HAVE_NODE_CLIENT, reason="needs node and `npm ci` in tests/conformance")
def test_two_aiusage_servers_share_a_broadcast_over_rediss(
    tls_redis: TlsRedis, tmp_path: Path
) -> None:
    deployment = Deployment(tmp_path / "data", redis_url=tls_redis.url())
    node = NodeClients()
    try:
        servers = start_two_servers(deployment, node)
        assert broadcast_reaches_both(node, "c0", "from-c0")
        assert broadcast_reaches_both(node, "c1", "from-c1")
        assert_no_tracebacks(servers)
    finally:
        node.close()
        deployment.close()
