"""The default alert rules, as pure functions over already-fetched facts (no I/O).

* **Unapproved AI tool** (``UnapprovedTool``, warning): a detection whose tool is not on the
  organization's approved list (case-insensitive, :func:`aiusage.metrics.windows.is_approved`).
  One alert per organization, user, tool and UTC day of detection.
* **Usage spike** (``UsageSpike``, warning): AI detections in the current UTC hour reach
  ``max(min_volume, factor x the hourly average of the 24 hours before it)``. One alert per
  organization and hour.
* **Agent silent** (``AgentSilent``, warning): an agent (not revoked) last seen more than
  ``silent_after`` ago, and less than ``lookback`` ago (older silences were reported earlier or
  belong to decommissioned devices). One alert per agent and silence episode (keyed by its
  last-seen time, so the agent alerting again after it came back is a new episode).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from aiusage.metrics.rollup import DetectionFacts
from aiusage.metrics.windows import is_approved, tool_key

UNAPPROVED_TOOL: Final = "UnapprovedTool"
USAGE_SPIKE: Final = "UsageSpike"
AGENT_SILENT: Final = "AgentSilent"
ALERT_TYPES: Final = (UNAPPROVED_TOOL, USAGE_SPIKE, AGENT_SILENT)
SEVERITIES: Final = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class AlertRules:
    """Rule parameters.

    Attributes:
        spike_factor: How many times the trailing hourly average counts as a spike.
        spike_min_volume: Detections the current hour needs at least (no spike on tiny orgs).
        spike_baseline_hours: Hours of the trailing average.
        silent_after: Silence that makes an agent alert-worthy (default: 30 minutes).
        silent_lookback: Silences older than this are not reported any more.
    """

    spike_factor: float = 3.0
    spike_min_volume: int = 50
    spike_baseline_hours: int = 24
    silent_after: timedelta = timedelta(minutes=30)
    silent_lookback: timedelta = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert a rule wants raised (stored once per ``dedupe_key``)."""

    org_id: str
    type: str
    severity: str
    message: str
    dedupe_key: str
    user_id: str | None = None
    """Target user (pushed to ``user:{id}``); None pushes to ``org:{org_id}``."""
    data: dict[str, object] = field(default_factory=dict, compare=False)


def unapproved_tool_alerts(
    detections: Iterable[DetectionFacts], approved: Sequence[str]
) -> list[NewAlert]:
    """Alerts for detections of tools not on ``approved`` (one per user, tool and day)."""
    seen: dict[str, NewAlert] = {}
    for d in detections:
        if is_approved(d.tool, approved):
            continue
        day = d.detected_at.astimezone(UTC).date().isoformat()
        key = f"unapproved:{tool_key(d.tool)}:{d.user_id}:{day}"
        if key not in seen:
            seen[key] = NewAlert(
                org_id=d.org_id,
                type=UNAPPROVED_TOOL,
                severity="warning",
                message=f"Unapproved AI tool '{d.tool}' detected for user {d.user_id}",
                dedupe_key=key,
                data={"tool": d.tool, "userId": d.user_id, "day": day},
            )
    return list(seen.values())


def usage_spike_alert(
    org_id: str,
    current_hour: datetime,
    current_count: int,
    baseline_counts: Sequence[int],
    rules: AlertRules,
) -> NewAlert | None:
    """A spike alert when ``current_count`` reaches the threshold, else None.

    Args:
        baseline_counts: Detections of each of the ``rules.spike_baseline_hours`` hours before
            ``current_hour`` (missing hours count as zero).
    """
    hours = max(1, rules.spike_baseline_hours)
    average = sum(baseline_counts) / hours
    threshold = max(float(rules.spike_min_volume), rules.spike_factor * average)
    if current_count < threshold:
        return None
    hour = current_hour.astimezone(UTC).strftime("%Y-%m-%dT%H:00Z")
    return NewAlert(
        org_id=org_id,
        type=USAGE_SPIKE,
        severity="warning",
        message=(
            f"AI usage spike: {current_count} detections in the hour from {hour}, "
            f"{average:.1f}/h on average over the previous {hours} h"
        ),
        dedupe_key=f"spike:{hour}",
        data={"hour": hour, "count": current_count, "average": average},
    )


def agent_silent_alert(
    org_id: str, agent_id: str, last_seen: datetime, now: datetime, rules: AlertRules
) -> NewAlert | None:
    """An alert when ``agent_id`` has been silent for ``rules.silent_after`` (within lookback)."""
    silence = now - last_seen
    if silence < rules.silent_after or silence > rules.silent_lookback:
        return None
    minutes = int(silence.total_seconds() // 60)
    stamp = last_seen.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return NewAlert(
        org_id=org_id,
        type=AGENT_SILENT,
        severity="warning",
        message=f"Agent {agent_id} has been silent for {minutes} minutes (last seen {stamp})",
        dedupe_key=f"silent:{agent_id}:{int(last_seen.timestamp())}",
        data={"agentId": agent_id, "lastSeen": stamp},
    )


__all__ = [
    "AGENT_SILENT",
    "ALERT_TYPES",
    "SEVERITIES",
    "UNAPPROVED_TOOL",
    "USAGE_SPIKE",
    "AlertRules",
    "NewAlert",
    "agent_silent_alert",
    "unapproved_tool_alerts",
    "usage_spike_alert",
]
