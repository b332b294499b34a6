"""Alerts end to end: rules fire on ingestion / sweep, stored once, pushed, listed, acked."""

from __future__ import annotations

from datetime import timedelta

from tests.aiusage.api.p2b_support import iso, post_events

from aiusage.alerts.rules import AlertRules


def detection(p, n: int, tool: str, user: str = "alice", minutes_ago: float = 1) -> dict:
    at = p.clock.now - timedelta(minutes=minutes_ago)
    return {
        "eventId": f"d-{tool}-{user}-{n}",
        "type": "AIDetected",
        "occurredAt": iso(at),
        "userId": user,
        "tool": tool,
        "duration": 5,
    }


async def test_unapproved_tool_detection_raises_one_alert_pushed_to_the_org(platform):
    p = platform
    await post_events(p, "acme", [detection(p, 1, "DeepSeek"), detection(p, 2, "ChatGPT")])
    await post_events(p, "acme", [detection(p, 3, "DeepSeek")])  # same user/tool/day: deduped
    pushes = p.hub.of("Alert")
    assert [s.group for s in pushes] == ["org:acme"]
    payload = pushes[0].args[0]
    assert payload["type"] == "UnapprovedTool" and payload["severity"] == "warning"
    assert "DeepSeek" in payload["message"]
    listed = (await p.client.get("/api/alerts", headers=p.auth("a", "acme"))).json()
    assert [a["id"] for a in listed["items"]] == [payload["id"]]
    # Another tenant sees nothing.
    assert (await p.client.get("/api/alerts", headers=p.auth("g", "globex"))).json()["items"] == []


async def test_alerts_are_acknowledged_once_and_filtered(platform):
    p = platform
    await post_events(p, "acme", [detection(p, 1, "DeepSeek"), detection(p, 2, "Perplexity")])
    items = (await p.client.get("/api/alerts", headers=p.auth("a", "acme"))).json()["items"]
    assert len(items) == 2
    first = items[0]["id"]
    r = await p.client.post(f"/api/alerts/{first}/acknowledge", headers=p.auth("a", "acme"))
    assert r.status_code == 200 and r.json()["acknowledged"] and r.json()["acknowledgedBy"] == "a"
    p.clock.advance(minutes=5)
    again = await p.client.post(f"/api/alerts/{first}/acknowledge", headers=p.auth("b", "acme"))
    assert again.json()["acknowledgedBy"] == "a"  # the first acknowledgement is kept
    open_ = (
        await p.client.get("/api/alerts?acknowledged=false", headers=p.auth("a", "acme"))
    ).json()
    assert [a["id"] for a in open_["items"]] == [items[1]["id"]]
    acked = (
        await p.client.get("/api/alerts?acknowledged=true", headers=p.auth("a", "acme"))
    ).json()
    assert [a["id"] for a in acked["items"]] == [first]
    foreign = await p.client.post(f"/api/alerts/{first}/acknowledge", headers=p.auth("g", "globex"))
    assert foreign.status_code == 404
    page = (await p.client.get("/api/alerts?limit=1", headers=p.auth("a", "acme"))).json()
    assert len(page["items"]) == 1 and page["nextCursor"] == page["items"][0]["id"]
    rest = (
        await p.client.get(
            f"/api/alerts?limit=1&before={page['nextCursor']}", headers=p.auth("a", "acme")
        )
    ).json()
    assert rest["items"][0]["id"] < page["nextCursor"]


async def test_usage_spike_is_detected_against_the_trailing_average(platform):
    p = platform
    p.alerts.rules = AlertRules(spike_factor=3.0, spike_min_volume=5)
    # Baseline: 3 detections in each of the 24 previous hours (average 3/h -> threshold 9).
    baseline = [
        detection(p, h * 10 + k, "ChatGPT", minutes_ago=60 * h - 10)
        for h in range(1, 25)
        for k in range(3)
    ]
    await post_events(p, "acme", baseline)
    p.mono.now += 60
    await post_events(
        p, "acme", [detection(p, 1000 + k, "ChatGPT", minutes_ago=5) for k in range(8)]
    )
    assert p.hub.of("Alert") == []
    p.mono.now += 60
    await post_events(p, "acme", [detection(p, 2000, "ChatGPT", minutes_ago=1)])
    spikes = [s.args[0] for s in p.hub.of("Alert") if s.args[0]["type"] == "UsageSpike"]
    assert len(spikes) == 1 and "9 detections" in spikes[0]["message"]
    p.mono.now += 60
    await post_events(p, "acme", [detection(p, 3000, "ChatGPT", minutes_ago=1)])
    assert len([s for s in p.hub.of("Alert") if s.args[0]["type"] == "UsageSpike"]) == 1


async def test_silent_agent_alert_fires_once_per_silence(platform):
    p = platform
    await post_events(p, "acme", [detection(p, 1, "ChatGPT")], agent="laptop-1")
    assert await p.alerts.check_silent_agents() == []
    p.clock.advance(minutes=31)
    raised = await p.alerts.check_silent_agents()
    assert [a["type"] for a in raised] == ["AgentSilent"] and "laptop-1" in raised[0]["message"]
    p.clock.advance(minutes=10)
    assert await p.alerts.check_silent_agents() == []  # same episode
    assert [s.group for s in p.hub.of("Alert")] == ["org:acme"]


async def test_user_targeted_alerts_are_visible_only_to_that_user(platform):
    from aiusage.alerts.rules import NewAlert

    p = platform
    await p.alerts.raise_alerts(
        [NewAlert("acme", "ExportFailed", "warning", "x", "k1", user_id="bob")]
    )
    assert [s.group for s in p.hub.of("Alert")] == ["user:acme:bob"]
    bob = (await p.client.get("/api/alerts", headers=p.auth("bob", "acme"))).json()["items"]
    eve = (await p.client.get("/api/alerts", headers=p.auth("eve", "acme"))).json()["items"]
    assert len(bob) == 1 and eve == []
