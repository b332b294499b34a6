"""The default alert rules as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiusage.alerts.rules import (
    AGENT_SILENT,
    UNAPPROVED_TOOL,
    USAGE_SPIKE,
    AlertRules,
    agent_silent_alert,
    unapproved_tool_alerts,
    usage_spike_alert,
)
from aiusage.metrics.rollup import DetectionFacts

T = datetime(2026, 3, 10, 14, 25, tzinfo=UTC)


def det(user: str, tool: str, at: datetime = T) -> DetectionFacts:
    return DetectionFacts("acme", user, None, tool, 10.0, at)


def test_unapproved_tools_alert_once_per_user_tool_and_day_case_insensitively():
    alerts = unapproved_tool_alerts(
        [
            det("u1", "DeepSeek"),
            det("u1", "deepseek "),  # same tool, same day: one alert
            det("u2", "DeepSeek"),
            det("u1", "DeepSeek", T + timedelta(days=1)),
            det("u1", "chatgpt"),  # approved
        ],
        ["ChatGPT"],
    )
    assert [a.type for a in alerts] == [UNAPPROVED_TOOL] * 3
    assert len({a.dedupe_key for a in alerts}) == 3
    assert "DeepSeek" in alerts[0].message and "u1" in alerts[0].message
    assert alerts[0].severity == "warning" and alerts[0].user_id is None


def test_usage_spike_needs_both_the_factor_and_the_minimum_volume():
    rules = AlertRules(spike_factor=3.0, spike_min_volume=50)
    hour = T.replace(minute=0)
    assert usage_spike_alert("acme", hour, 49, [0] * 24, rules) is None  # below min volume
    assert usage_spike_alert("acme", hour, 50, [0] * 24, rules).type == USAGE_SPIKE
    busy = [40] * 24  # average 40 -> threshold 120
    assert usage_spike_alert("acme", hour, 119, busy, rules) is None
    alert = usage_spike_alert("acme", hour, 120, busy, rules)
    assert alert is not None and alert.dedupe_key == "spike:2026-03-10T14:00Z"


def test_agent_silent_fires_after_the_threshold_and_not_for_long_dead_agents():
    rules = AlertRules(silent_after=timedelta(minutes=30), silent_lookback=timedelta(hours=24))
    assert agent_silent_alert("acme", "dev", T - timedelta(minutes=29), T, rules) is None
    alert = agent_silent_alert("acme", "dev", T - timedelta(minutes=31), T, rules)
    assert alert is not None and alert.type == AGENT_SILENT and "31 minutes" in alert.message
    assert agent_silent_alert("acme", "dev", T - timedelta(days=2), T, rules) is None
    # Same silence episode -> same key; a new episode after the agent came back -> new key.
    later = agent_silent_alert(
        "acme", "dev", T - timedelta(minutes=31), T + timedelta(hours=1), rules
    )
    other = agent_silent_alert(
        "acme", "dev", T - timedelta(minutes=5), T + timedelta(hours=1), rules
    )
    assert later.dedupe_key == alert.dedupe_key != other.dedupe_key
