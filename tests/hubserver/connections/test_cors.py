"""CORS policy (docs/spec/transports.md §2.7)."""

from __future__ import annotations

from hubserver.connections.context import HttpRequestInfo
from hubserver.connections.cors import CorsPolicy


def req(host: str = "api.example:8080", scheme: str = "http", **headers: str) -> HttpRequestInfo:
    return HttpRequestInfo("GET", "/hub", {}, {"host": host, **headers}, None, scheme)


def test_same_origin_is_always_allowed() -> None:
    policy = CorsPolicy(())
    assert policy.is_allowed("http://api.example:8080", req())
    assert policy.is_allowed("https://api.example", req("api.example:443", "https"))
    assert not policy.is_allowed("http://evil.example", req())
    assert not policy.is_allowed("https://api.example:8080", req())  # scheme differs


def test_listed_origins_and_wildcard() -> None:
    policy = CorsPolicy(("https://dash.example",))
    assert policy.is_allowed("https://DASH.example", req())
    assert policy.is_allowed("https://dash.example:443", req())
    assert not policy.is_allowed("https://other.example", req())
    assert CorsPolicy(("*",)).is_allowed("https://any.example", req())


def test_allowed_origin_is_echoed_with_credentials() -> None:
    assert CorsPolicy.response_headers("https://d.example") == [
        ("Access-Control-Allow-Origin", "https://d.example"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Vary", "Origin"),
    ]


def test_preflight_allows_signalr_headers_plus_requested_ones() -> None:
    headers = dict(
        CorsPolicy.preflight_headers(
            req(**{"access-control-request-headers": "X-Custom, authorization"})
        )
    )
    assert headers["Access-Control-Allow-Methods"] == "GET, POST, DELETE, OPTIONS"
    assert headers["Access-Control-Allow-Headers"] == (
        "authorization, content-type, x-requested-with, x-signalr-user-agent, "
        "x-organization-id, x-custom"
    )
