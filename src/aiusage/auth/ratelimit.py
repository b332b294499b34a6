"""Login rate limiting (``POST /api/auth/login`` is rate-limited).

Failures are counted in a sliding window (5 minutes by default) three ways:

=====================  =======  ===========================================================
key                    limit    stops
=====================  =======  ===========================================================
(e-mail, client IP)    5        one address guessing one account's password
client IP              50       one address spraying many accounts
e-mail (any address)   20       many addresses (a botnet) guessing one account's password
=====================  =======  ===========================================================

Past a limit, attempts on that key answer 429 with ``Retry-After`` (the seconds until the
oldest failure leaves the window) without checking the password, even a right one: a limit
that a correct guess could pass would tell the guesser it was correct. The per-account limit
lets an attacker lock one account out of password login for the window; that is the price of
bounding distributed guessing (docs/security.md "Login"). A success clears the (e-mail, IP)
counter only. Memory is bounded: expired entries are pruned and, past ``max_entries``, the
oldest keys are dropped (fail-open for the oldest rather than unbounded growth under a
spoofed-address flood).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable


class _Window:
    __slots__ = ("attempts", "limit", "max_entries", "window")

    def __init__(self, limit: int, window: float, max_entries: int) -> None:
        self.limit = limit
        self.window = window
        self.max_entries = max_entries
        self.attempts: OrderedDict[object, deque[float]] = OrderedDict()

    def _trim(self, key: object, now: float) -> deque[float] | None:
        hits = self.attempts.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if not hits:
            del self.attempts[key]
            return None
        return hits

    def retry_after(self, key: object, now: float) -> float | None:
        hits = self._trim(key, now)
        if hits is None or len(hits) < self.limit:
            return None
        return max(hits[0] + self.window - now, 0.0)

    def record(self, key: object, now: float) -> None:
        hits = self._trim(key, now)
        if hits is None:
            hits = deque()
            self.attempts[key] = hits
        hits.append(now)
        self.attempts.move_to_end(key)
        while len(self.attempts) > self.max_entries:
            self.attempts.popitem(last=False)

    def clear(self, key: object) -> None:
        self.attempts.pop(key, None)


class LoginRateLimiter:
    """Counts failed logins.

    Args:
        max_failures: Failures allowed per (e-mail, IP) within ``window``.
        max_failures_per_ip: Failures allowed per IP (any e-mail) within ``window``.
        max_failures_per_account: Failures allowed per e-mail (any IP) within ``window``.
        window: Sliding window in seconds.
        clock: Monotonic time source (injected for tests).
        max_entries: Bound on tracked keys per counter.
    """

    def __init__(
        self,
        *,
        max_failures: int = 5,
        max_failures_per_ip: int = 50,
        max_failures_per_account: int = 20,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
    ) -> None:
        self._pair = _Window(max_failures, window, max_entries)
        self._ip = _Window(max_failures_per_ip, window, max_entries)
        self._account = _Window(max_failures_per_account, window, max_entries)
        self._clock = clock

    @staticmethod
    def _pair_key(email: str, ip: str) -> tuple[str, str]:
        return (email.strip().lower(), ip)

    @staticmethod
    def _account_key(email: str) -> str:
        return email.strip().lower()

    def retry_after(self, email: str, ip: str) -> float | None:
        """Seconds to wait before another attempt is allowed, or None if allowed now."""
        now = self._clock()
        waits = [
            w
            for w in (
                self._pair.retry_after(self._pair_key(email, ip), now),
                self._ip.retry_after(ip, now),
                self._account.retry_after(self._account_key(email), now),
            )
            if w is not None
        ]
        return max(waits) if waits else None

    def record_failure(self, email: str, ip: str) -> None:
        """Count one failed attempt."""
        now = self._clock()
        self._pair.record(self._pair_key(email, ip), now)
        self._ip.record(ip, now)
        self._account.record(self._account_key(email), now)

    def record_success(self, email: str, ip: str) -> None:
        """Forget the failures of this (e-mail, IP) pair."""
        self._pair.clear(self._pair_key(email, ip))
