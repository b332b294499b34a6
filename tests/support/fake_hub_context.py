"""A recording stand-in for :class:`hubserver.HubContext` (what REST handlers publish through).

``sent`` holds ``(target, method, args)`` in order, where target is ``"group:<name>"``,
``"user:<id>"`` or ``"all"``. ``fail_with`` makes every send raise (backplane down).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Proxy:
    owner: FakeHubContext
    target: str

    async def send(self, method: str, *args: Any) -> None:
        if self.owner.fail_with is not None:
            raise self.owner.fail_with
        self.owner.sent.append((self.target, method, args))


@dataclass
class _Clients:
    owner: FakeHubContext

    def group(self, group: str) -> _Proxy:
        return _Proxy(self.owner, f"group:{group}")

    def groups(self, groups) -> _Proxy:
        return _Proxy(self.owner, "groups:" + ",".join(groups))

    def user(self, user_id: str) -> _Proxy:
        return _Proxy(self.owner, f"user:{user_id}")

    def all(self) -> _Proxy:
        return _Proxy(self.owner, "all")


@dataclass
class FakeHubContext:
    sent: list[tuple[str, str, tuple[Any, ...]]] = field(default_factory=list)
    fail_with: BaseException | None = None

    def __post_init__(self) -> None:
        self.clients = _Clients(self)

    def methods(self, target: str | None = None) -> list[str]:
        return [m for t, m, _ in self.sent if target is None or t == target]

    def payloads(self, method: str) -> list[Any]:
        return [args[0] for _, m, args in self.sent if m == method]
