"""Redis URL parsing and client construction (no Redis needed: nothing connects here)."""

from __future__ import annotations

import re

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.sentinel import (
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)

from hubserver.lifetime.redis import RedisLifetimeManager
from hubserver.lifetime.redis_url import (
    RedisUrlError,
    parse_redis_url,
    redacted_redis_url,
    redis_client,
)

# --- parsing ---------------------------------------------------------------------------------


def test_a_plain_url_gives_host_port_and_db() -> None:
    e = parse_redis_url("redis://cache.internal:6380/2")
    assert (e.scheme, e.hosts, e.db, e.tls, e.sentinel) == (
        "redis",
        (("cache.internal", 6380),),
        2,
        False,
        False,
    )


def test_defaults_are_port_6379_and_db_0() -> None:
    assert parse_redis_url("redis://h").hosts == (("h", 6379),)
    assert parse_redis_url("redis://h/").db == 0


def test_credentials_are_percent_decoded_and_hidden_in_repr() -> None:
    e = parse_redis_url("redis://ann:p%40ss%3Aw@h:1/0")
    assert (e.username, e.password) == ("ann", "p@ss:w")
    assert "p@ss" not in repr(e)
    assert parse_redis_url("redis://:secret@h").username is None


def test_tls_url_takes_redis_py_ssl_options() -> None:
    e = parse_redis_url(
        "rediss://h:6390/0?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required&ssl_check_hostname=no"
    )
    assert e.tls
    assert e.options == {
        "ssl_ca_certs": "/etc/ca.pem",
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": False,
    }


def test_db_in_the_query_wins_over_the_path() -> None:
    e = parse_redis_url("redis://h/1?db=3")
    assert e.db == 3 and "db" not in e.options


def test_ipv6_hosts_in_brackets() -> None:
    assert parse_redis_url("redis://[::1]:7000").hosts == (("::1", 7000),)


def test_a_sentinel_url_lists_sentinels_service_and_db() -> None:
    e = parse_redis_url(
        "redis+sentinel://:pw@s1:26380,s2,[::1]:5000/mymaster/4?sentinel_password=x"
    )
    assert e.sentinel and not e.tls
    assert e.hosts == (("s1", 26380), ("s2", 26379), ("::1", 5000))
    assert (e.service_name, e.db, e.password) == ("mymaster", 4, "pw")
    assert e.sentinel_options == {"sentinel_password": "x"}
    assert e.options == {}


def test_a_unix_socket_url() -> None:
    e = parse_redis_url("unix:///run/redis/redis.sock?db=2")
    assert (e.path, e.db, e.hosts) == ("/run/redis/redis.sock", 2, ())


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h:6379", "must start with one of"),
        ("h:6379", "must start with one of"),
        ("redis+cluster://h", "must start with one of"),
        ("redis://h:abc/0", "bad port 'abc'"),
        ("redis://h:0", "bad port '0'"),
        ("redis://h:70000", "bad port '70000'"),
        ("redis://h/x", "bad database number 'x'"),
        ("redis://h/1/2", "path must be /db"),
        ("redis:///0", "names no host"),
        ("redis://a:1,b:2/0", "use redis+sentinel://"),
        ("redis+sentinel://s1:26379", "needs the master's service name"),
        ("redis+sentinel://s1:26379/", "needs the master's service name"),
        ("redis+sentinel://s1:x/m", "bad port 'x'"),
        ("redis+sentinel://s1/m/db", "bad database number 'db'"),
        ("redis+sentinel://s1/m/1/2", "path must be /service_name[/db]"),
        ("redis+sentinel:///m", "names no host"),
        ("redis://h?ssl_ca_certs=/ca.pem", "ssl_ca_certs needs a rediss:// URL"),
        ("redis://h?sentinel_password=x", "sentinel_password needs a redis+sentinel:// URL"),
        ("redis://h?bogus=1", "unknown option 'bogus'"),
        ("rediss://h?ssl_cert_reqs=maybe", "bad value 'maybe' for ssl_cert_reqs"),
        ("redis://h?socket_timeout=-1", "bad value '-1' for socket_timeout"),
        ("redis://h?socket_keepalive=perhaps", "bad value 'perhaps' for socket_keepalive"),
        ("unix://", "needs an absolute socket path"),
    ],
)
def test_bad_urls_are_refused_with_a_message_naming_the_problem(url: str, message: str) -> None:
    with pytest.raises(RedisUrlError, match=re.escape(message)):
        parse_redis_url(url)


def test_errors_never_show_the_password() -> None:
    with pytest.raises(RedisUrlError) as caught:
        parse_redis_url("redis://:hunter2@h:bad/0")
    assert "hunter2" not in str(caught.value) and "***" in str(caught.value)


def test_redaction_keeps_everything_but_the_password() -> None:
    assert (
        redacted_redis_url("redis+sentinel://u:pw@a:1,b:2/m") == "redis+sentinel://u:***@a:1,b:2/m"
    )
    assert redacted_redis_url("redis://h:6379/0") == "redis://h:6379/0"


def test_the_backplane_refuses_a_bad_url_when_it_is_created() -> None:
    with pytest.raises(RedisUrlError, match="service name"):
        RedisLifetimeManager("redis+sentinel://127.0.0.1:26379")


# --- clients (built, never connected) --------------------------------------------------------


def _connection_kwargs(client: Redis) -> dict[str, object]:
    return dict(client.connection_pool.connection_kwargs)


async def test_a_plain_url_gives_a_plain_client_with_caller_defaults() -> None:
    client = redis_client("redis://:pw@h:6380/3", socket_connect_timeout=1.5)
    try:
        kwargs = _connection_kwargs(client)
        assert client.connection_pool.connection_class is Connection
        assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == (
            "h",
            6380,
            3,
            "pw",
        )
        assert kwargs["socket_connect_timeout"] == 1.5
    finally:
        await client.aclose()


async def test_url_options_override_caller_defaults() -> None:
    client = redis_client("redis://h?socket_connect_timeout=9", socket_connect_timeout=1.5)
    try:
        assert _connection_kwargs(client)["socket_connect_timeout"] == 9.0
    finally:
        await client.aclose()


async def test_a_tls_url_gives_an_ssl_connection_with_its_options() -> None:
    client = redis_client("rediss://h:6390?ssl_ca_certs=/ca.pem&ssl_cert_reqs=none")
    try:
        assert client.connection_pool.connection_class is SSLConnection
        kwargs = _connection_kwargs(client)
        assert (kwargs["ssl_ca_certs"], kwargs["ssl_cert_reqs"]) == ("/ca.pem", "none")
    finally:
        await client.aclose()


async def test_a_unix_url_gives_a_socket_connection() -> None:
    client = redis_client("unix:///tmp/r.sock")
    try:
        assert client.connection_pool.connection_class is UnixDomainSocketConnection
        assert _connection_kwargs(client)["path"] == "/tmp/r.sock"
    finally:
        await client.aclose()


async def test_a_sentinel_url_gives_a_master_client_resolved_through_the_sentinels() -> None:
    client = redis_client(
        "redis+sentinel://:masterpw@s1:26380,s2/mymaster/2?sentinel_password=spw",
        socket_connect_timeout=0.5,
    )
    try:
        pool = client.connection_pool
        assert isinstance(pool, SentinelConnectionPool)
        assert pool.is_master and pool.service_name == "mymaster"
        assert pool.connection_class is SentinelManagedConnection
        kwargs = _connection_kwargs(client)
        assert (kwargs["db"], kwargs["password"]) == (2, "masterpw")
        sentinels = pool.sentinel_manager.sentinels
        addresses = [
            (
                s.connection_pool.connection_kwargs["host"],
                s.connection_pool.connection_kwargs["port"],
            )
            for s in sentinels
        ]
        assert addresses == [("s1", 26380), ("s2", 26379)]
        first = sentinels[0].connection_pool.connection_kwargs
        # The sentinels get their own password, and a read timeout so a dead one is skipped.
        assert first["password"] == "spw"
        assert first["socket_timeout"] == 0.5
    finally:
        await client.aclose()


async def test_a_tls_sentinel_url_uses_tls_to_master_and_sentinels() -> None:
    client = redis_client("rediss+sentinel://s1/m?ssl_ca_certs=/ca.pem")
    try:
        pool = client.connection_pool
        assert pool.connection_class is SentinelManagedSSLConnection
        assert _connection_kwargs(client)["ssl_ca_certs"] == "/ca.pem"
        sentinel = pool.sentinel_manager.sentinels[0].connection_pool
        assert sentinel.connection_class is SSLConnection
        assert sentinel.connection_kwargs["ssl_ca_certs"] == "/ca.pem"
    finally:
        await client.aclose()


async def test_closing_a_sentinel_client_closes_its_sentinel_connections() -> None:
    client = redis_client("redis+sentinel://s1,s2/m")
    manager = client.connection_pool.sentinel_manager
    closed: list[object] = []
    for sentinel in manager.sentinels:
        original = sentinel.aclose

        async def record(original=original, sentinel=sentinel) -> None:
            closed.append(sentinel)
            await original()

        sentinel.aclose = record
    await client.aclose()
    assert closed == manager.sentinels
