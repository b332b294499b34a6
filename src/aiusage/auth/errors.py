"""The authentication/authorization exception tree.

::

    AuthError
    ├── InvalidToken        the bearer token cannot be trusted (reason is for logs only)
    ├── Forbidden           authenticated, but the policy refuses (role, organization, subscription)
    ├── KeySourceError      a key source (JWKS URL, key file) is unreachable or malformed
    ├── InvalidCredentials  login: unknown e-mail, wrong password or inactive user (one text)
    └── RateLimited         login: too many failures; carries ``retry_after`` seconds

Clients never see an :class:`InvalidToken` reason: HTTP answers carry the fixed text
``Unauthorized`` (docs/spec/negotiate.md §1.5: a bare 401 is what the JS client expects), so a
probe cannot learn *why* a forged token failed. :class:`Forbidden` messages are written for
clients ("Organization mismatch", "Subscription inactive: canceled") and never contain secrets.
"""

from __future__ import annotations

UNAUTHORIZED = "Unauthorized"
"""The only text a client gets for a missing or invalid token."""


class AuthError(Exception):
    """Base class of the errors raised by :mod:`aiusage.auth`."""


class InvalidToken(AuthError):
    """The token was refused.

    Args:
        reason: Why, in words fit for a log line (never the token itself).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Forbidden(AuthError):
    """The principal is authenticated but not allowed.

    Args:
        message: Client-facing text.
    """

    def __init__(self, message: str = "Forbidden") -> None:
        super().__init__(message)
        self.message = message


class KeySourceError(AuthError):
    """Verification keys could not be loaded (network error, bad JWKS, unreadable file)."""


class InvalidCredentials(AuthError):
    """A login failed. Deliberately one error for every cause (no account enumeration)."""

    def __init__(self) -> None:
        super().__init__("Invalid email or password")


class RateLimited(AuthError):
    """Too many failed logins; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Too many login attempts; retry after {retry_after:.0f} s")
        self.retry_after = retry_after
