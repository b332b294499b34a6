"""The method table (hub.methods) and its lookup: which methods are exposed, and as what."""

from __future__ import annotations

from collections.abc import AsyncIterator

from hubserver.hub.dispatcher import HubDispatcher
from hubserver.hub.hub import Hub
from hubserver.hub.methods import build_method_table


class NamingHub(Hub):
    async def join_organization_group(self, org: str) -> None: ...

    async def Legacy(self) -> int:  # noqa: N802 - .NET-style name kept as is
        return 1

    async def feed(self, n: int) -> AsyncIterator[int]:
        yield n

    async def upload(
        self, label: str, items: AsyncIterator[int], more: AsyncIterator[str]
    ) -> None: ...

    @staticmethod
    async def static_helper() -> None: ...

    def plain(self) -> None: ...

    async def _hidden(self) -> None: ...


def test_snake_case_methods_are_exposed_under_both_names_case_insensitively() -> None:
    dispatcher = HubDispatcher(NamingHub)
    method = dispatcher.lookup("JoinOrganizationGroup")
    assert method is not None and method.name == "join_organization_group"
    assert dispatcher.lookup("join_organization_group") is method
    assert dispatcher.lookup("JOINORGANIZATIONGROUP") is method
    assert dispatcher.lookup("legacy") is not None


def test_only_public_async_instance_methods_are_exposed() -> None:
    names = {m.name for m in build_method_table(NamingHub).values()}
    assert names == {"join_organization_group", "Legacy", "feed", "upload"}


def test_streaming_and_upload_parameters_are_recognised() -> None:
    table = build_method_table(NamingHub)
    assert table["feed"].is_streaming
    upload = table["upload"]
    assert not upload.is_streaming
    assert (upload.value_params, upload.stream_params) == (1, 2)
    assert [p.is_stream for p in upload.params] == [False, True, True]


def test_subclasses_inherit_hub_methods() -> None:
    class Child(NamingHub):
        async def extra(self) -> None: ...

    names = {m.name for m in build_method_table(Child).values()}
    assert {"extra", "feed"} <= names
