"""Rolling restart with stateful dashboards: nothing lost, nothing twice
(docs/spec/stateful-reconnect.md §5.4, §5.5).

nginx + two ``aiusage serve`` processes (PostgreSQL, Redis), 200 official JS clients with
``withStatefulReconnect()`` and an agent posting 100 numbered sessions per second through nginx.
Each process in turn gets SIGTERM: it parks its stateful connections (socket dropped, no
Close), the clients reconnect with the same token through nginx to the other process, which
claims them over Redis; the process exits once all are handed over. Every dashboard keeps its
connection id and receives every acknowledged session exactly once.
"""

from __future__ import annotations

from tests.deploy.handover_kit import rolling_restart, summary
from tests.deploy.stack import SHUTDOWN_GRACE_S, Stack

# The same stack, markers and time bound as the rolling restart without stateful reconnect.
from tests.deploy.test_rolling_restart import pytestmark, stack  # noqa: F401

DASHBOARDS = 200
RATE = 100


def test_a_rolling_restart_hands_every_stateful_dashboard_over_exactly_once(
    stack: Stack,  # noqa: F811 - the fixture imported above
) -> None:
    run = rolling_restart(stack, DASHBOARDS, RATE)
    print(summary(run))
    assert set(run.agent_statuses) == {200}, run.agent_statuses
    assert len(run.acked) >= 5 * RATE, len(run.acked)  # over 5 s of traffic at the rate
    # Parked connections were handed over well before the grace period ended.
    assert all(took < SHUTDOWN_GRACE_S for took in run.exits_s), run.exits_s
    assert run.restarts == 0, [c["restarts"] for c in run.clients]
    assert run.same_ids == DASHBOARDS
    assert sum(run.lost) == 0, run.lost
    assert sum(run.duplicated) == 0, run.duplicated
