"""The aiusage exception tree.

::

    AiUsageError
    ├── ConfigurationError   settings that cannot work (bad URL, unwritable data dir)
    ├── ValidationError      input that breaks a documented rule (HTTP 422 / CLI exit 2)
    ├── NotFound             a referenced organization, user, session... does not exist (404)
    ├── Conflict             a unique value is taken (409)
    ├── Unauthorized         credentials no longer valid, e.g. a revoked agent (401)
    ├── Forbidden            the caller may not do this (403)
    └── StoreError           the database failed or is unreachable (503)

REST handlers translate these into JSON errors ``{"error": {"code": ..., "message": ...}}``
(see ``aiusage.api.app``); messages must never contain secrets.
"""

from __future__ import annotations


class AiUsageError(Exception):
    """Base class of every error raised by the aiusage platform.

    Attributes:
        code: Short machine-readable code used in JSON error bodies.
        status: HTTP status a REST handler answers with.
    """

    code = "error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(AiUsageError):
    """The settings cannot work (bad database URL, unwritable data dir...)."""

    code = "configuration_error"
    status = 500


class ValidationError(AiUsageError):
    """Input breaks a documented rule."""

    code = "validation_error"
    status = 422


class NotFound(AiUsageError):
    """A referenced entity does not exist (or belongs to another tenant)."""

    code = "not_found"
    status = 404


class Conflict(AiUsageError):
    """A unique value (id, email) is already taken."""

    code = "conflict"
    status = 409


class Unauthorized(AiUsageError):
    """The caller's credentials are not (or no longer) valid, e.g. a revoked device."""

    code = "unauthorized"
    status = 401


class Forbidden(AiUsageError):
    """The caller is authenticated but may not do this."""

    code = "forbidden"
    status = 403


class StoreError(AiUsageError):
    """The database failed or is unreachable."""

    code = "store_unavailable"
    status = 503
