"""``X-Forwarded-For/Proto/Host``, honoured only from trusted proxy addresses."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """Addresses (``"10.0.0.1"``), networks (``"10.0.0.0/8"``) or ``"*"`` trusted to forward.

    Args:
        entries: What ``HubServer(trusted_proxies=...)`` was given.
    """

    __slots__ = ("_any", "_networks")

    def __init__(self, entries: Iterable[str]) -> None:
        self._any = False
        self._networks: list[_Network] = []
        for entry in entries:
            if entry.strip() == "*":
                self._any = True
            else:
                self._networks.append(ipaddress.ip_network(entry.strip(), strict=False))

    def __bool__(self) -> bool:
        return self._any or bool(self._networks)

    def is_trusted(self, host: str) -> bool:
        """True when ``host`` is a trusted proxy address."""
        if self._any:
            return True
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self._networks)

    def resolve(
        self,
        client: tuple[str, int] | None,
        scheme: str,
        headers: Mapping[str, str],
    ) -> tuple[tuple[str, int] | None, str, str | None]:
        """Effective (client, scheme, host) of a request.

        Forwarded headers are ignored unless the peer is trusted. The client is the
        right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy (entries left
        of it could be forged by the client).
        """
        if client is None or not self.is_trusted(client[0]):
            return client, scheme, None
        forwarded_for = headers.get("x-forwarded-for")
        if forwarded_for:
            hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
            chosen = hops[0] if hops else None
            for hop in reversed(hops):
                if not self.is_trusted(hop):
                    chosen = hop
                    break
            if chosen is not None:
                client = (chosen, 0)
        proto = headers.get("x-forwarded-proto")
        if proto:
            proto = proto.split(",")[0].strip().lower()
            if proto in ("http", "https"):
                scheme = proto
        host = headers.get("x-forwarded-host")
        return client, scheme, host.split(",")[0].strip() if host else None
