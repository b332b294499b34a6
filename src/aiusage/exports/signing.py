"""Signed, expiring export download URLs.

A URL carries ``exp`` (Unix seconds) and ``sig`` = base64url(HMAC-SHA256(secret,
``"{job_id}\\n{user_id}\\n{exp}"``)). The secret is 32 random bytes in the data dir
(``export-signing.key``, mode 0600, created atomically so several processes agree on it), so
URLs minted by an ``aiusage worker`` verify on every ``aiusage serve`` sharing the data dir.
The signature binds the job's owner: the download handler also requires the caller's token to
name that same user, so a leaked URL alone downloads nothing.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Final

KEY_FILE_NAME: Final = "export-signing.key"
_KEY_BYTES: Final = 32


class SignatureInvalid(Exception):
    """The signature does not match (tampered or for another job/user)."""


class SignatureExpired(Exception):
    """The signature is genuine but its expiry has passed."""


class UrlSigner:
    """HMAC signer of download links.

    Args:
        secret: The HMAC key (at least 16 bytes).
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("export signing secret too short")
        self._secret = secret

    @classmethod
    def load_or_create(cls, data_dir: str | os.PathLike[str]) -> UrlSigner:
        """The signer whose key lives in ``data_dir`` (created on first use)."""
        path = Path(data_dir) / KEY_FILE_NAME
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(secrets.token_bytes(_KEY_BYTES))
                    fh.flush()
                    os.fsync(fh.fileno())
                # link() fails if another process won the race: keep theirs.
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        return cls(path.read_bytes())

    def sign(self, job_id: str, user_id: str, exp: int) -> str:
        """The signature of a link to ``job_id`` for ``user_id`` valid until ``exp``."""
        message = f"{job_id}\n{user_id}\n{exp}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def verify(self, job_id: str, user_id: str, exp: int, sig: str, now: float) -> None:
        """Check a link.

        Raises:
            SignatureInvalid: ``sig`` is not this signer's for these values.
            SignatureExpired: Genuine, but ``now`` is past ``exp``.
        """
        if not hmac.compare_digest(self.sign(job_id, user_id, exp), sig):
            raise SignatureInvalid("bad signature")
        if now > exp:
            raise SignatureExpired("link expired")


__all__ = ["KEY_FILE_NAME", "SignatureExpired", "SignatureInvalid", "UrlSigner"]
