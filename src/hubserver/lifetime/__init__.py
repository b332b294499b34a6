"""Lifetime managers: how hub code reaches connections, in this process or across servers.

``base`` (the interface), ``index`` and ``delivery`` (shared by every manager), ``memory`` (one
process), ``pubsub`` over a ``bus`` (scale-out, with ``remote``, ``canary`` and
``resume_exchange`` on ``resume``), and the buses: ``redis_bus`` (with ``redis_wire``, the
ASP.NET Core wire format; ``redis`` is the public entry point) and ``loopback_bus``
(in-process, for tests and embedding).
"""
