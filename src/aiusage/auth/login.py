"""Password login for the dashboard (``POST /api/auth/login``).

The store is reached through :class:`UserLookup`, a one-method port that the platform's
repository implements; this module knows nothing about SQL.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from aiusage.auth.errors import InvalidCredentials, RateLimited
from aiusage.auth.issuer import BuiltinIssuer
from aiusage.auth.passwords import verify_password
from aiusage.auth.ratelimit import LoginRateLimiter

_log = logging.getLogger("aiusage.auth.login")

MAX_EMAIL_LENGTH = 320
MAX_PASSWORD_LENGTH = 1024


class UserLookup(Protocol):
    """Finds a user by e-mail for login."""

    async def get_user_by_email(self, email: str) -> tuple[str, str, str, str | None, bool] | None:
        """``(user_id, org_id, role, password_hash, active)`` for ``email``, or None.

        ``email`` is already stripped and lower-cased. ``password_hash`` is None for users who
        cannot log in with a password.
        """
        ...


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A successful login."""

    token: str
    expires_at: int
    user_id: str
    email: str
    org_id: str
    role: str


def normalise_email(email: str) -> str:
    """Lookup form of an e-mail address (trimmed, lower-case)."""
    return email.strip().lower()


class LoginService:
    """Checks credentials and mints a token with the built-in issuer.

    Args:
        users: The user store.
        issuer: Signs the token.
        limiter: Failure counter (per e-mail+IP, per IP and per e-mail).
        token_ttl: Lifetime of dashboard tokens in seconds.
    """

    def __init__(
        self,
        users: UserLookup,
        issuer: BuiltinIssuer,
        limiter: LoginRateLimiter | None = None,
        *,
        token_ttl: int = 3600,
    ) -> None:
        self._users = users
        self._issuer = issuer
        self._limiter = limiter if limiter is not None else LoginRateLimiter()
        self._ttl = token_ttl

    async def login(self, email: str, password: str, client_ip: str) -> LoginResult:
        """Authenticate and issue a token.

        Raises:
            RateLimited: Too many recent failures for this e-mail+IP, this IP, or this
                e-mail from any address.
            InvalidCredentials: Unknown e-mail, wrong password or inactive user (same error,
                same cost: the password check always runs).
        """
        key_email = normalise_email(email)
        wait = self._limiter.retry_after(key_email, client_ip)
        if wait is not None:
            raise RateLimited(wait)
        record = None
        if 0 < len(key_email) <= MAX_EMAIL_LENGTH:
            record = await self._users.get_user_by_email(key_email)
        usable = record is not None and len(password) <= MAX_PASSWORD_LENGTH
        password_hash = record[3] if record is not None and usable else None
        # Always one argon2 verification, also when the user is unknown or inactive, so the
        # response time does not tell which e-mails have accounts (an over-long password is
        # checked against the dummy hash, never truncated).
        candidate = password if len(password) <= MAX_PASSWORD_LENGTH else ""
        ok = await asyncio.to_thread(verify_password, password_hash, candidate)
        if record is None or not ok or not record[4]:
            self._limiter.record_failure(key_email, client_ip)
            _log.info("login failed from %s", client_ip)
            raise InvalidCredentials()
        self._limiter.record_success(key_email, client_ip)
        user_id, org_id, role, _, _ = record
        token, exp = self._issuer.issue_with_expiry(user_id, org_id, role, self._ttl)
        return LoginResult(token, exp, user_id, key_email, org_id, role)
