"""LifetimeManagerSpec against the single-process InMemoryLifetimeManager."""

from hubserver.lifetime.memory import InMemoryLifetimeManager
from tests.hubserver.lifetime.spec import LifetimeManagerSpec


class TestInMemoryLifetimeManager(LifetimeManagerSpec):
    async def create_backplane(self):
        return None

    async def create_manager(self, backplane, *, write_only=False, ack_timeout=30.0):
        return InMemoryLifetimeManager()


def test_a_single_process_manager_reports_no_backplane_counters() -> None:
    # stats() is part of the interface; /metrics then shows only the manager's kind.
    assert InMemoryLifetimeManager().stats() == {}
