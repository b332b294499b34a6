"""LifetimeManagerSpec against the single-process InMemoryLifetimeManager."""

from hubserver.lifetime.memory import InMemoryLifetimeManager
from tests.hubserver.lifetime.spec import LifetimeManagerSpec


class TestInMemoryLifetimeManager(LifetimeManagerSpec):
    async def create_backplane(self):
        return None

    async def create_manager(self, backplane, *, write_only=False, ack_timeout=30.0):
        return InMemoryLifetimeManager()
