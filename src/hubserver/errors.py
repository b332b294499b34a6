"""The hubserver exception tree.

::

    HubServerError
    ├── ProtocolError            bytes that do not follow the hub protocol (closes the connection)
    │   ├── HandshakeError       bad or unsupported handshake request
    │   └── MessageTooLargeError incoming message over ``maximum_receive_message_size``
    ├── HubError                 raised by hub code; its message IS shown to the client
    ├── TransportError           the transport failed or was closed
    ├── AuthenticationFailed     authentication hook refused a request (carries HTTP status)
    └── BackplaneError           the backplane (e.g. Redis) is unreachable or misbehaves

A client only ever sees an exception's own text for :class:`HubError` (as ASP.NET Core's
``HubException``) or when ``detailed_errors`` is enabled; everything else is reported with
the fixed texts of docs/spec/hub-protocol.md §3.5 (ASP.NET Core's ErrorMessageHelper).
"""

from __future__ import annotations


class HubServerError(Exception):
    """Base class of every error raised by hubserver."""


class ProtocolError(HubServerError):
    """Incoming data violates the SignalR hub protocol."""


class HandshakeError(ProtocolError):
    """The handshake request is malformed or asks for something unsupported."""


class MessageTooLargeError(ProtocolError):
    """An incoming message exceeds the configured maximum size."""


class HubError(HubServerError):
    """An error raised by hub code whose message is sent to the client verbatim.

    The equivalent of ASP.NET Core's ``HubException``.
    """


class TransportError(HubServerError):
    """The transport failed or was closed."""


class AuthenticationFailed(HubServerError):
    """The authentication hook refused a request.

    Args:
        status: HTTP status to answer (401 unauthenticated, 403 forbidden).
        message: Text for the response body; must not contain secrets.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BackplaneError(HubServerError):
    """The backplane is unreachable or returned something unexpected."""
