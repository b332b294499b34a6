"""Test kit for identity and tenant isolation: a fake store, and a hub world that connects
clients through the *real* authentication hook, the real AnalyticsHub, the real hub engine
(HubConnectionHandler, InMemoryLifetimeManager) and real protocol bytes (HubTestClient)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiusage.auth.issuer import BuiltinIssuer
from aiusage.auth.tokens import TokenVerifier
from aiusage.realtime.hub import AnalyticsHub, AnalyticsHubActivator, make_authenticate
from hubserver.connections.context import HttpRequestInfo
from hubserver.errors import AuthenticationFailed
from hubserver.hub.handler import HubConnectionHandler
from hubserver.lifetime.memory import InMemoryLifetimeManager
from hubserver.protocol.messages import CloseMessage, InvocationMessage
from tests.support.hub_client import FakeClock, HubTestClient, settle


class Directory:
    """Fake store implementing AccessChecker: subscriptions and memberships."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, str] = {}
        self.members: dict[tuple[str, str], str] = {}
        self.calls = 0
        self.fail = False

    def org(self, org_id: str, status: str = "active") -> None:
        self.subscriptions[org_id] = status

    def member(self, org_id: str, user_id: str, role: str | None) -> None:
        if role is None:
            self.members.pop((org_id, user_id), None)
        else:
            self.members[(org_id, user_id)] = role

    async def subscription_status(self, org_id: str) -> str | None:
        self.calls += 1
        if self.fail:
            raise ConnectionError("database down")
        return self.subscriptions.get(org_id)

    async def user_role(self, org_id: str, user_id: str) -> str | None:
        self.calls += 1
        if self.fail:
            raise ConnectionError("database down")
        return self.members.get((org_id, user_id))

    async def subscription_statuses(self, org_ids) -> dict[str, str | None]:
        self.calls += 1
        if self.fail:
            raise ConnectionError("database down")
        return {org: self.subscriptions.get(org) for org in org_ids}

    async def user_roles(self, members) -> dict[tuple[str, str], str | None]:
        self.calls += 1
        if self.fail:
            raise ConnectionError("database down")
        return {pair: self.members.get(pair) for pair in members}


class Snapshots:
    """Fake DashboardService."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def snapshot(self, org_id: str) -> dict[str, Any]:
        self.asked.append(org_id)
        return {"metrics": {"organizationId": org_id}, "trends": {}}


@dataclass
class HubWorld:
    """One AnalyticsHub with its hook; time is manual (wall clock for token expiry)."""

    issuer: BuiltinIssuer
    directory: Directory = field(default_factory=Directory)
    snapshots: Snapshots = field(default_factory=Snapshots)
    wall: FakeClock = field(default_factory=lambda: FakeClock(start=1_800_000_000.0))
    mono: FakeClock = field(default_factory=FakeClock)

    def __post_init__(self) -> None:
        self.issuer._clock = self.wall  # tokens are minted on the same fake time
        self.verifier = TokenVerifier(self.issuer.token_config(), clock=self.wall)
        self.authenticate = make_authenticate(self.verifier, self.directory, cache_ttl=0)
        self.lifetime = InMemoryLifetimeManager()
        self.handler = HubConnectionHandler(
            AnalyticsHub,
            self.lifetime,
            clock=self.mono,
            wall_clock=self.wall,
            auto_tick=False,
            activator=AnalyticsHubActivator(self.snapshots, self.directory),
        )
        self.clients: list[HubTestClient] = []

    def token(self, sub: str, org: str, role: str | list[str], ttl: int = 3600) -> str:
        return self.issuer.issue(sub, org, role, ttl)

    @staticmethod
    def request(
        token: str | None = None,
        *,
        org_header: str | None = None,
        org_query: str | None = None,
        via_query: bool = False,
    ) -> HttpRequestInfo:
        headers: dict[str, str] = {}
        query: dict[str, str] = {}
        if token is not None:
            if via_query:
                query["access_token"] = token
            else:
                headers["authorization"] = f"Bearer {token}"
        if org_header is not None:
            headers["x-organization-id"] = org_header
        if org_query is not None:
            query["organizationId"] = org_query
        return HttpRequestInfo("GET", "/hubs/analytics", query, headers)

    async def connect(self, token: str | None, protocol: str = "json", **req: Any) -> HubTestClient:
        """Authenticate like the endpoint does, then run the hub handshake."""
        request = self.request(token, **req)
        principal = await self.authenticate(request)
        client = HubTestClient(self.handler, protocol, principal=principal, request=request)
        await client.connect()
        self.clients.append(client)
        return client

    async def refusal(self, token: str | None, **req: Any) -> tuple[int, str]:
        """(status, message) of a refused connection attempt; fails if it was accepted."""
        try:
            await self.authenticate(self.request(token, **req))
        except AuthenticationFailed as exc:
            return exc.status, exc.message
        raise AssertionError("connection was accepted")


def invocations(client: HubTestClient, target: str | None = None) -> list[InvocationMessage]:
    return [m for m in client.invocations() if target is None or m.target == target]


def close_message(client: HubTestClient) -> CloseMessage | None:
    client.read()
    closes = [m for m in client.received if isinstance(m, CloseMessage)]
    return closes[-1] if closes else None


__all__ = ["Directory", "HubWorld", "Snapshots", "close_message", "invocations", "settle"]
