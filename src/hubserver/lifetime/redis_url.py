"""Turn a Redis URL into a ``redis.asyncio`` client: plain, TLS, Unix socket or Sentinel.

Every Redis client of the product is made by :func:`redis_client`, so one ``--redis-url`` can
name a single server or a Sentinel-managed master (docs/scaleout.md "Redis high availability"):

* ``redis://[[user]:password@]host[:port][/db][?options]`` (port 6379, db 0 by default);
* ``rediss://...`` the same over TLS (``ssl_ca_certs``, ``ssl_cert_reqs``, ``ssl_certfile``,
  ``ssl_keyfile``, ``ssl_check_hostname`` as redis-py names them);
* ``unix:///path/to/redis.sock[?db=N]``;
* ``redis+sentinel://[[user]:password@]host1[:port1][,host2[:port2]...]/service[/db][?options]``
  (sentinel port 26379 by default; the credentials are the master's, ``sentinel_username`` and
  ``sentinel_password`` the sentinels'), and ``rediss+sentinel://`` with TLS to sentinels and
  master alike. The client asks the sentinels for the master's address on every new
  connection, so after a failover reconnecting reaches the promoted replica.

:func:`parse_redis_url` validates without connecting, so a bad URL stops a process at start
with a message naming the problem instead of failing later on the first connection.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

__all__ = [
    "DEFAULT_REDIS_PORT",
    "DEFAULT_SENTINEL_PORT",
    "RedisEndpoint",
    "RedisUrlError",
    "parse_redis_url",
    "redacted_redis_url",
    "redis_client",
]

DEFAULT_REDIS_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379

_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel")


class RedisUrlError(ValueError):
    """The Redis URL cannot work; the message names the part that is wrong."""


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


def _cert_reqs(value: str) -> str:
    if value not in ("none", "optional", "required"):
        raise ValueError(value)
    return value


def _non_negative(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(value: str) -> float:
        number = kind(value)
        if number < 0:
            raise ValueError(value)
        return number

    return parse


# Query parameters accepted for the master (or single server) connections, with their parsers.
_OPTIONS: Mapping[str, Callable[[str], Any]] = {
    "db": _non_negative(int),
    "client_name": str,
    "socket_timeout": _non_negative(float),
    "socket_connect_timeout": _non_negative(float),
    "socket_keepalive": _boolean,
    "health_check_interval": _non_negative(int),
    "max_connections": _non_negative(int),
}
_TLS_OPTIONS: Mapping[str, Callable[[str], Any]] = {
    "ssl_ca_certs": str,
    "ssl_ca_path": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
    "ssl_password": str,
    "ssl_cert_reqs": _cert_reqs,
    "ssl_check_hostname": _boolean,
}
# Only meaningful with a Sentinel URL; never passed to the master connections.
_SENTINEL_OPTIONS: Mapping[str, Callable[[str], Any]] = {
    "sentinel_username": str,
    "sentinel_password": str,
    "min_other_sentinels": _non_negative(int),
}

_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]/]+))(?::(?P<port>.*))?$")


@dataclass(frozen=True, slots=True)
class RedisEndpoint:
    """A validated Redis URL.

    Attributes:
        scheme: One of ``redis``, ``rediss``, ``unix``, ``redis+sentinel``, ``rediss+sentinel``.
        hosts: ``(host, port)`` of the server, or of every sentinel; empty for ``unix``.
        path: Socket path of a ``unix`` URL, else None.
        service_name: The Sentinel master name, else None.
        db: Database number (irrelevant to pub/sub, which ignores databases).
        username: ACL user of the server or master, if any.
        password: Password of the server or master, if any.
        options: Further connection options for the server or master (parsed query).
        sentinel_options: ``sentinel_username``, ``sentinel_password``, ``min_other_sentinels``.
    """

    scheme: str
    hosts: tuple[tuple[str, int], ...] = ()
    path: str | None = None
    service_name: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)
    sentinel_options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def tls(self) -> bool:
        """True for ``rediss://`` and ``rediss+sentinel://``."""
        return self.scheme.startswith("rediss")

    @property
    def sentinel(self) -> bool:
        """True when the master is found through sentinels."""
        return self.scheme.endswith("+sentinel")


def _split_userinfo(netloc: str) -> tuple[str | None, str | None, str]:
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        return None, None, netloc
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if colon else None), hosts


def _parse_host(text: str, default_port: int, url: str) -> tuple[str, int]:
    match = _HOST_PORT.match(text)
    if match is None:
        raise RedisUrlError(f"bad host {text!r} in Redis URL {url}")
    host = match.group("v6") or unquote(match.group("host"))
    port_text = match.group("port")
    if port_text is None or port_text == "":
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise RedisUrlError(f"bad port {port_text!r} for host {host} in Redis URL {url}")
    return host, int(port_text)


def _parse_query(query: str, scheme: str, url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    accepted = dict(_OPTIONS)
    if scheme.startswith("rediss"):
        accepted.update(_TLS_OPTIONS)
    if scheme.endswith("+sentinel"):
        accepted.update(_SENTINEL_OPTIONS)
    options: dict[str, Any] = {}
    sentinel_options: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        parser = accepted.get(name)
        if parser is None:
            if name in _TLS_OPTIONS:
                raise RedisUrlError(f"{name} needs a rediss:// URL (TLS), not {scheme}://: {url}")
            if name in _SENTINEL_OPTIONS:
                raise RedisUrlError(f"{name} needs a redis+sentinel:// URL: {url}")
            known = ", ".join(sorted(accepted))
            raise RedisUrlError(f"unknown option {name!r} in Redis URL {url}; accepted: {known}")
        try:
            parsed = parser(value)
        except ValueError:
            raise RedisUrlError(f"bad value {value!r} for {name} in Redis URL {url}") from None
        (sentinel_options if name in _SENTINEL_OPTIONS else options)[name] = parsed
    return options, sentinel_options


def _parse_db(text: str, url: str) -> int:
    if not text.isdigit():
        raise RedisUrlError(f"bad database number {text!r} in Redis URL {url}")
    return int(text)


def redacted_redis_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for logs and error messages)."""
    return re.sub(r"(://[^/@]*?:)[^/@]*@", r"\1***@", url, count=1)


def parse_redis_url(url: str) -> RedisEndpoint:
    """Validate ``url`` without connecting.

    Raises:
        RedisUrlError: Unknown scheme, missing host or service name, bad port or database,
            unknown or misplaced option (e.g. ``ssl_ca_certs`` on ``redis://``).
    """
    shown = redacted_redis_url(url)
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _SCHEMES:
        raise RedisUrlError(
            f"Redis URL {shown} must start with one of " + ", ".join(f"{s}://" for s in _SCHEMES)
        )
    rest, _, _fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    options, sentinel_options = _parse_query(query, scheme, shown)
    netloc, slash, path = rest.partition("/")
    username, password, hosts_text = _split_userinfo(netloc)

    if scheme == "unix":
        socket_path = "/" + path if slash else ""
        if hosts_text or not path:
            raise RedisUrlError(f"a unix:// URL needs an absolute socket path: {shown}")
        return RedisEndpoint(
            scheme,
            path=unquote(socket_path),
            db=int(options.pop("db", 0)),
            username=username,
            password=password,
            options=options,
        )

    if not hosts_text:
        raise RedisUrlError(f"Redis URL {shown} names no host")
    segments = path.split("/") if path else []
    if scheme.endswith("+sentinel"):
        hosts = tuple(
            _parse_host(h, DEFAULT_SENTINEL_PORT, shown) for h in hosts_text.split(",") if h
        )
        if not hosts:
            raise RedisUrlError(f"Redis URL {shown} names no sentinel")
        if not segments or not segments[0]:
            raise RedisUrlError(
                f"Sentinel URL {shown} needs the master's service name: "
                f"{scheme}://host:port[,host:port...]/service_name[/db]"
            )
        if len(segments) > 2 or (len(segments) == 2 and not segments[1]):
            raise RedisUrlError(f"Sentinel URL {shown} path must be /service_name[/db]")
        service = unquote(segments[0])
        db = _parse_db(segments[1], shown) if len(segments) == 2 else 0
    else:
        if "," in hosts_text:
            raise RedisUrlError(
                f"Redis URL {shown} names several hosts; use redis+sentinel:// for Sentinel"
            )
        hosts = (_parse_host(hosts_text, DEFAULT_REDIS_PORT, shown),)
        service = None
        if len(segments) > 1:
            raise RedisUrlError(f"Redis URL {shown} path must be /db")
        db = _parse_db(segments[0], shown) if segments and segments[0] else 0
    if "db" in options:
        db = int(options.pop("db"))
    return RedisEndpoint(
        scheme,
        hosts=hosts,
        service_name=service,
        db=db,
        username=username,
        password=password,
        options=options,
        sentinel_options=sentinel_options,
    )


class _SentinelMasterRedis(Redis):
    """The master's client; closing it also closes the sentinel connections it asked."""

    _sentinel_manager: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            manager, self._sentinel_manager = self._sentinel_manager, None
            if manager is not None:
                await manager.aclose()


def redis_client(url: str, **kwargs: Any) -> Redis:
    """A ``redis.asyncio.Redis`` for ``url`` (see the module docstring for the URL forms).

    Args:
        url: The Redis URL.
        **kwargs: Client defaults (``decode_responses``, ``socket_connect_timeout``, ``retry``
            ...); options in the URL's query override them. With Sentinel, the ``socket_*``
            timeouts apply to the sentinel connections too.

    Raises:
        RedisUrlError: The URL is invalid (nothing is connected).
    """
    endpoint = parse_redis_url(url)
    settings: dict[str, Any] = {**kwargs, **endpoint.options}
    if endpoint.username is not None:
        settings["username"] = endpoint.username
    if endpoint.password is not None:
        settings["password"] = endpoint.password
    settings["db"] = endpoint.db
    if endpoint.path is not None:
        return Redis(unix_socket_path=endpoint.path, **settings)
    if not endpoint.sentinel:
        host, port = endpoint.hosts[0]
        return Redis(host=host, port=port, ssl=endpoint.tls, **settings)

    # The sentinels: same timeouts and TLS settings as the master, their own credentials.
    sentinel_kwargs: dict[str, Any] = {
        k: v for k, v in settings.items() if k.startswith(("socket_", "ssl_"))
    }
    sentinel_kwargs["ssl"] = endpoint.tls
    # A sentinel query without a read timeout would hang a reconnect behind one black-holed
    # sentinel instead of trying the next one.
    if sentinel_kwargs.get("socket_timeout") is None and "socket_connect_timeout" in settings:
        sentinel_kwargs["socket_timeout"] = settings["socket_connect_timeout"]
    if "sentinel_username" in endpoint.sentinel_options:
        sentinel_kwargs["username"] = endpoint.sentinel_options["sentinel_username"]
    if "sentinel_password" in endpoint.sentinel_options:
        sentinel_kwargs["password"] = endpoint.sentinel_options["sentinel_password"]
    manager = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        list(endpoint.hosts),
        min_other_sentinels=int(endpoint.sentinel_options.get("min_other_sentinels", 0)),
        sentinel_kwargs=sentinel_kwargs,
    )
    assert endpoint.service_name is not None  # parse_redis_url requires it
    client: _SentinelMasterRedis = manager.master_for(
        endpoint.service_name, redis_class=_SentinelMasterRedis, ssl=endpoint.tls, **settings
    )
    client._sentinel_manager = manager
    return client
