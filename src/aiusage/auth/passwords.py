"""Password hashing with argon2id (argon2-cffi), with a constant-time failure path.

``verify_password(None, pw)`` still runs one full argon2 verification against a dummy hash, so a
login for an e-mail that does not exist takes as long as one with a wrong password: response
time does not reveal which accounts exist (a constant-time failure path).
argon2 is CPU-bound (tens of ms): async callers run these functions in a worker thread.
"""

from __future__ import annotations

import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
"""argon2id with argon2-cffi's RFC 9106 "low memory" defaults (t=3, m=64 MiB, p=4)."""

_dummy_lock = threading.Lock()
_dummy_hash: str | None = None


def _dummy() -> str:
    # Created lazily with the same parameters as real hashes, so verifying against it costs
    # the same; cached because hashing it each time would double the cost of that path.
    global _dummy_hash
    with _dummy_lock:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash("aiusage-dummy-password-for-timing")
        return _dummy_hash


def hash_password(password: str) -> str:
    """An argon2id hash string (salt and parameters included) for ``password``."""
    if not password:
        raise ValueError("password must not be empty")
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``.

    Args:
        password_hash: The stored hash, or None when the user does not exist (a dummy hash is
            verified instead, and the answer is always False).
        password: What the user typed.
    """
    target = password_hash if password_hash is not None else _dummy()
    try:
        ok = _hasher.verify(target, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True
