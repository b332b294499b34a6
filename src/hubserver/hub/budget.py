"""The inbound budget of one connection: token buckets of messages and bytes per second.

A client over its budget is closed with an error instead of slowing everyone's dispatch
(``HubOptions.max_receive_*``). Sans-I/O: the connection passes its clock's time in.
"""

from __future__ import annotations

from hubserver.options import HubOptions

__all__ = ["InboundBudget"]


def _bytes_burst(rate: int | None, max_message: int | None) -> int:
    # One second's worth, but never less than one maximum-size message.
    return max(rate or 0, max_message or 0)


class InboundBudget:
    """Two token buckets, full at creation, refilled at the configured rates.

    Args:
        options: ``max_receive_messages_per_second``/``_burst``,
            ``max_receive_bytes_per_second`` and ``maximum_receive_message_size``.
        now: The connection's clock at creation.
    """

    __slots__ = ("_at", "_bytes", "_messages", "_options")

    def __init__(self, options: HubOptions, now: float) -> None:
        self._options = options
        self._at = now
        self._messages = float(options.max_receive_messages_burst)
        self._bytes = float(
            _bytes_burst(options.max_receive_bytes_per_second, options.maximum_receive_message_size)
        )

    @classmethod
    def for_options(cls, options: HubOptions, now: float) -> InboundBudget | None:
        """A budget, or None when both rates are unlimited (nothing to count)."""
        if (
            options.max_receive_messages_per_second is None
            and options.max_receive_bytes_per_second is None
        ):
            return None
        return cls(options, now)

    def charge(self, count: int, size: int, now: float) -> str:
        """Take ``count`` messages of ``size`` bytes; ``""`` within budget, else which limit
        was exceeded (``"more than 100 messages per second"``)."""
        options = self._options
        message_rate = options.max_receive_messages_per_second
        byte_rate = options.max_receive_bytes_per_second
        elapsed = now - self._at
        self._at = now
        if message_rate is not None:
            tokens = min(
                float(options.max_receive_messages_burst), self._messages + elapsed * message_rate
            )
            self._messages = tokens - count
            if self._messages < 0:
                return f"more than {message_rate:g} messages per second"
        if byte_rate is not None:
            burst = _bytes_burst(byte_rate, options.maximum_receive_message_size)
            tokens = min(float(burst), self._bytes + elapsed * byte_rate)
            self._bytes = tokens - size
            if self._bytes < 0:
                return f"more than {byte_rate} bytes per second"
        return ""
