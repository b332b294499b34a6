"""Wiring of the limits one tenant or client cannot use against the others: organizations as
the engine's tenants, their share of AIUSAGE_MAX_CONNECTIONS, the body timeout and the
per-connection inbound budget (settings -> engine options)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiusage.errors import ConfigurationError
from aiusage.observability.limits import ORG_LIMIT_TEXT, org_tenant, tenant_connection_cap
from aiusage.platform import Platform
from aiusage.settings import Settings
from hubserver import Principal


def test_organizations_are_the_tenants_and_operators_belong_to_none() -> None:
    assert org_tenant(Principal("ann", claims={"org": "acme", "role": "Admin"})) == "acme"
    assert org_tenant(Principal("root", claims={"org": "acme", "role": "SuperAdmin"})) is None
    assert org_tenant(Principal("x", claims={"org": "acme", "role": ["SuperAdmin"]})) is None
    assert org_tenant(Principal("nobody", claims={})) is None


@pytest.mark.parametrize(
    ("max_connections", "max_org", "share", "cap"),
    [
        (None, None, 0.5, None),
        (60, None, 0.5, 30),
        (60, 10, 0.5, 10),
        (60, 45, 0.5, 30),
        (60, None, 1.0, None),
        (60, 45, 1.0, 45),
        (1, None, 0.5, 1),
        (None, 7, 0.5, 7),
    ],
)
def test_the_tenant_cap_is_the_smaller_of_the_org_limit_and_the_share(
    max_connections: int | None, max_org: int | None, share: float, cap: int | None
) -> None:
    assert tenant_connection_cap(max_connections, max_org, share) == cap


def test_settings_read_the_new_limits_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "AIUSAGE_MAX_ORG_SHARE": "0.25",
            "AIUSAGE_HTTP_BODY_TIMEOUT": "12.5",
            "AIUSAGE_HUB_MAX_MESSAGES_PER_S": "50",
            "AIUSAGE_HUB_MAX_MESSAGES_BURST": "80",
            "AIUSAGE_HUB_MAX_BYTES_PER_S": "0",
        }
    )
    assert settings.max_org_share == 0.25
    assert settings.http_body_timeout_s == 12.5
    assert settings.hub_max_messages_per_s == 50.0
    assert settings.hub_max_messages_burst == 80
    assert settings.hub_max_bytes_per_s == 0
    defaults = Settings()
    assert (defaults.max_org_share, defaults.http_body_timeout_s) == (0.5, 30.0)
    assert (defaults.hub_max_messages_per_s, defaults.hub_max_messages_burst) == (100.0, 200)
    assert defaults.hub_max_bytes_per_s == 1024 * 1024


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("AIUSAGE_MAX_ORG_SHARE", "0", "max_org_share must be in (0, 1]"),
        ("AIUSAGE_MAX_ORG_SHARE", "1.5", "max_org_share must be in (0, 1]"),
        ("AIUSAGE_HTTP_BODY_TIMEOUT", "-1", "http_body_timeout_s must not be negative"),
        ("AIUSAGE_HUB_MAX_MESSAGES_PER_S", "-5", "hub_max_messages_per_s must not be negative"),
        ("AIUSAGE_HUB_MAX_BYTES_PER_S", "-5", "hub_max_bytes_per_s must not be negative"),
        ("AIUSAGE_HUB_MAX_MESSAGES_BURST", "0", "hub_max_messages_burst must be at least 1"),
        ("AIUSAGE_HUB_MAX_MESSAGES_BURST", "lots", "is not a number"),
    ],
)
def test_unusable_values_are_refused_with_a_clear_message(name: str, value: str, text: str) -> None:
    with pytest.raises(ConfigurationError, match=text.replace("(", r"\(").replace("]", r"\]")):
        Settings.from_env({name: value})


async def test_the_platform_passes_the_limits_to_the_engine(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        port=0,
        max_connections=60,
        max_org_share=0.25,
        http_body_timeout_s=7.0,
        hub_max_messages_per_s=0,
        hub_max_messages_burst=20,
        hub_max_bytes_per_s=4096,
        web_dir=tmp_path / "no-dashboard",
    )
    platform = await Platform.create(settings)
    try:
        options = platform.hub.endpoint.options
        assert options.tenant_of is org_tenant
        assert options.max_tenant_connections == 15
        assert options.tenant_limit_text == ORG_LIMIT_TEXT
        hub_options = platform.hub.handler.options
        assert hub_options.max_receive_messages_per_second is None  # 0 = unlimited
        assert hub_options.max_receive_messages_burst == 20
        assert hub_options.max_receive_bytes_per_second == 4096
        assert platform.server.body_timeout == 7.0
    finally:
        await platform.stop()
