"""The public surface of hubserver is pinned (cf. httpx tests/test_exported_members.py)."""

from __future__ import annotations

import hubserver


def test_all_is_sorted_and_unique() -> None:
    assert hubserver.__all__ == sorted(set(hubserver.__all__))


def test_all_matches_the_public_names_of_the_package() -> None:
    public = {
        name
        for name, value in vars(hubserver).items()
        if not name.startswith("_") and not getattr(value, "__name__", "").startswith("hubserver.")
    }
    # Submodules (hubserver.app, hubserver.hub, ...) appear as attributes once imported; the
    # Redis backplane classes are resolved lazily (module __getattr__) until first used.
    assert set(hubserver.__all__) == public | set(hubserver._LAZY_EXPORTS)


def test_every_exported_name_resolves() -> None:
    for name in hubserver.__all__:
        assert getattr(hubserver, name) is not None


def test_exported_classes_are_documented() -> None:
    undocumented = [
        name
        for name in hubserver.__all__
        if isinstance(getattr(hubserver, name), type) and not getattr(hubserver, name).__doc__
    ]
    assert undocumented == []


def test_removed_dead_code_stays_removed() -> None:
    # Never raised / never called aliases: a public name must have a use.
    import dataclasses

    assert not hasattr(hubserver, "HubInvocationError")
    assert "extra" not in {f.name for f in dataclasses.fields(hubserver.ConnectionOptions)}
    assert "__call__" not in vars(hubserver.HubConnectionHandler)
    assert not hasattr(hubserver.HubConnection, "shutdown")
