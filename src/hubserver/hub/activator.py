"""Hub activators: who creates (and releases) the hub instance of each call.

The counterpart of ASP.NET Core's ``IHubActivator<THub>`` (docs/spec/hub-protocol.md §3.9). The
dispatcher asks the activator for a fresh hub before every invocation, ``on_connected`` and
``on_disconnected``, sets its ``context``/``clients``/``groups``, and hands it back to
``release`` once the call is over (for a streaming method: once the stream ended). An
application supplies an activator to give its hubs their services through ``__init__``
instead of through class attributes or globals.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from hubserver.hub.hub import Hub

__all__ = ["DefaultHubActivator", "HubActivator"]

H = TypeVar("H", bound=Hub)


class HubActivator(Protocol[H]):
    """Creates and releases hub instances.

    ``create`` may raise: for an invocation the client then gets the text of a failing method,
    for ``on_connected`` the connection is closed with an error. ``release`` is called exactly
    once per created hub; its errors are logged and otherwise ignored.
    """

    def create(self, hub_cls: type[H]) -> H:
        """A new instance of ``hub_cls`` (the class the hub was mapped with)."""
        ...

    def release(self, hub: H) -> None:
        """The call that used ``hub`` is over."""
        ...


class DefaultHubActivator:
    """``hub_cls()``; nothing to release (what the engine does without an activator)."""

    def create(self, hub_cls: type[H]) -> H:
        """Call the hub class without arguments."""
        return hub_cls()

    def release(self, hub: Hub) -> None:
        """Nothing to do: the instance is simply dropped."""
