"""The error texts the hub layer sends to clients, each beside the spec clause that fixes it.

Clients show these strings to users and some tests match them, so they are copied from
ASP.NET Core (DefaultHubDispatcher, HubConnectionHandler, ErrorMessageHelper) byte for byte.
They live at the protocol level so that every layer above (hub, lifetime) can use them.
The handshake's own texts stay with the handshake (:mod:`hubserver.protocol.handshake`).
"""

from __future__ import annotations

from hubserver.errors import HubError, ProtocolError

__all__ = [
    "BINDING_FAILED",
    "CLOSE_ERROR",
    "CONNECTION_DISCONNECTED",
    "STREAM_FAILED",
    "argument_count",
    "budget_exceeded",
    "client_result_timeout",
    "connection_not_found",
    "detail",
    "id_in_use",
    "invocation_failed",
    "invoke_failed",
    "message_too_large",
    "method_not_found",
    "not_a_stream",
    "stream_count_mismatch",
    "streaming_mismatch",
]

CLOSE_ERROR = "Connection closed with an error."
"""Close message error text; :func:`detail` follows (docs/spec/hub-protocol.md §3.7)."""

CONNECTION_DISCONNECTED = "Connection disconnected."
"""Raised in pending client-result calls and upload streams when the connection ends
(docs/spec/hub-protocol.md §3.4, client results and upload streams)."""

BINDING_FAILED = (
    "Error binding arguments. Make sure that the types of the provided values match the "
    "types of the hub method being invoked."
)
"""An argument or upload-stream item of the wrong type (docs/spec/hub-protocol.md §3.5)."""

STREAM_FAILED = "An error occurred on the server while streaming results."
"""A stream failed after it started; :func:`detail` follows (docs/spec/hub-protocol.md §3.5)."""


def detail(exc: BaseException, detailed: bool) -> str:
    """`` <Type>: <message>`` as ErrorMessageHelper appends it, or ``""`` when hidden.

    A :class:`HubError`'s text is always shown (it plays .NET's ``HubException``); any other
    exception only with detailed errors, and a :class:`ProtocolError` under the name .NET's
    parsers give it, ``InvalidDataException`` (docs/spec/hub-protocol.md §3.5, §3.7).
    """
    if isinstance(exc, HubError):
        return f" HubException: {exc}"
    if not detailed:
        return ""
    if isinstance(exc, ProtocolError):
        return f" InvalidDataException: {exc}"
    return f" {type(exc).__name__}: {exc}"


def id_in_use(invocation_id: str) -> str:
    """An invocation id still used by a running call (docs/spec/hub-protocol.md §3.4)."""
    return f"Invocation ID '{invocation_id}' is already in use."


def method_not_found(target: str) -> str:
    """No hub method of that name (docs/spec/hub-protocol.md §3.5)."""
    return (
        f"Failed to invoke '{target}' due to an error on the server. "
        "HubException: Method does not exist."
    )


def invoke_failed(target: str) -> str:
    """Wrong number or types of arguments; detail follows (docs/spec/hub-protocol.md §3.5)."""
    return f"Failed to invoke '{target}' due to an error on the server."


def argument_count(given: int, expected: int) -> str:
    """Detail of a call with too many or too few arguments (docs/spec/hub-protocol.md §3.5)."""
    return f"Invocation provides {given} argument(s) but target expects {expected}."


def invocation_failed(target: str) -> str:
    """The method raised; :func:`detail` follows (docs/spec/hub-protocol.md §3.5)."""
    return f"An unexpected error occurred invoking '{target}' on the server."


def streaming_mismatch(target: str, method_streams: bool) -> str:
    """A streaming method called with an Invocation, or a plain one with a StreamInvocation
    (docs/spec/hub-protocol.md §3.5)."""
    if method_streams:
        return (
            f"The client attempted to invoke the streaming '{target}' method with a "
            "non-streaming invocation."
        )
    return (
        f"The client attempted to invoke the non-streaming '{target}' method with a "
        "streaming invocation."
    )


def stream_count_mismatch(target: str, sent: int, expected: int) -> str:
    """The client sent another number of upload streams than the method takes
    (docs/spec/hub-protocol.md §3.5)."""
    return (
        f"An unexpected error occurred invoking '{target}' on the server. "
        f"HubException: Client sent {sent} stream(s), Hub method expects {expected}."
    )


def not_a_stream(target: str) -> str:
    """A streaming method returned something that is not an async iterator
    (DefaultHubDispatcher's text; docs/spec/hub-protocol.md §3.4, server-to-client stream)."""
    return (
        f"The value returned by the streaming method '{target}' is not a "
        "ChannelReader<> or IAsyncEnumerable<>."
    )


def message_too_large(limit: int) -> str:
    """An incoming record over the size limit (docs/spec/hub-protocol.md §3.8)."""
    return (
        f"The maximum message size of {limit}B was exceeded. "
        "The message size can be configured in AddHubOptions."
    )


def client_result_timeout(target: str, timeout: float) -> str:
    """A client did not answer a client-result call in time (docs/spec/hub-protocol.md §3.4)."""
    return f"Timed out after {timeout:g}s waiting for the client's result of '{target}'."


def budget_exceeded(exceeded: str) -> str:
    """Close text for a client over its inbound message budget: a deliberate flood is told why
    (an error Close without reconnect, docs/spec/hub-protocol.md §3.7)."""
    return f"{CLOSE_ERROR} Inbound message budget exceeded: {exceeded}."


def connection_not_found(connection_id: str) -> str:
    """A client-result call to a connection no server holds (docs/spec/hub-protocol.md §3.4)."""
    return f"Connection '{connection_id}' does not exist."
