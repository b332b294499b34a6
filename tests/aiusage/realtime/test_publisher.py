import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiusage.domain.events import AIDetected, SessionEnded, SessionStarted  # noqa: E402
from aiusage.realtime.publisher import EventPublisher, event_payload  # noqa: E402
from support.fake_hub_context import FakeHubContext  # noqa: E402

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


async def test_session_events_go_to_the_organization_group_in_camel_case() -> None:
    hub = FakeHubContext()
    pub = EventPublisher(hub)
    await pub.agent_events(
        "acme",
        [
            SessionStarted("e1", T0, "u1", "s1", T0, "ChatGPT", "dev"),
            SessionEnded("e2", T0, "u1", "s1", T0 + timedelta(minutes=5), 300.0, 120.5),
            AIDetected("e3", T0, "u2", "Claude", 42.0, None),
        ],
    )
    assert [(t, m) for t, m, _ in hub.sent] == [
        ("group:org:acme", "SessionStarted"),
        ("group:org:acme", "SessionEnded"),
        ("group:org:acme", "AIDetected"),
    ]
    started, ended, detected = (args[0] for _, _, args in hub.sent)
    assert started["sessionId"] == "s1" and started["userId"] == "u1"
    assert started["startTime"] == "2026-05-01T09:00:00Z"
    assert (
        ended["sessionId"] == "s1" and ended["duration"] == 300.0 and ended["aiUsageTime"] == 120.5
    )
    assert (detected["tool"], detected["duration"], detected["userId"]) == ("Claude", 42.0, "u2")
    assert {p["organizationId"] for p in (started, ended, detected)} == {"acme"}


async def test_the_convenience_methods_produce_the_same_payloads_as_events() -> None:
    hub = FakeHubContext()
    pub = EventPublisher(hub)
    await pub.session_started("o", "s1", "u1", T0, tool="X")
    await pub.session_ended("o", "s1", 10.0, 5.0, user_id="u1", end_time=T0)
    await pub.ai_detected("o", "X", 3.0, "u1", detected_at=T0)
    assert (
        hub.payloads("SessionStarted")[0]
        == event_payload("o", SessionStarted("", T0, "u1", "s1", T0, "X", None))[1]
    )
    assert hub.payloads("SessionEnded")[0]["aiUsageTime"] == 5.0
    assert hub.payloads("AIDetected")[0]["detectedAt"] == "2026-05-01T09:00:00Z"


async def test_user_joined_dashboard_alert_and_export_reach_their_targets() -> None:
    hub = FakeHubContext()
    pub = EventPublisher(hub)
    await pub.user_joined("acme", "u9", "u9@acme.test", T0)
    await pub.dashboard_update("acme", {"metrics": {"activeSessions": 1}, "trends": {}})
    await pub.alert("acme", {"type": "unapprovedTool", "message": "m", "severity": "warning"})
    await pub.alert("acme", {"type": "t", "message": "m", "severity": "info"}, user_id="u1")
    await pub.export_completed("acme", "u1", "job-1", "http://x/dl?sig=1")
    assert [(t, m) for t, m, _ in hub.sent] == [
        ("group:org:acme", "UserJoined"),
        ("group:org:acme", "DashboardUpdate"),
        ("group:org:acme", "Alert"),
        ("group:user:acme:u1", "Alert"),
        ("group:user:acme:u1", "ExportCompleted"),
    ]
    assert hub.payloads("UserJoined")[0] == {
        "userId": "u9",
        "email": "u9@acme.test",
        "timestamp": "2026-05-01T09:00:00Z",
        "organizationId": "acme",
    }
    assert hub.payloads("DashboardUpdate")[0]["metrics"] == {"activeSessions": 1}
    assert hub.payloads("ExportCompleted")[0] == {
        "jobId": "job-1",
        "downloadUrl": "http://x/dl?sig=1",
        "organizationId": "acme",
    }
