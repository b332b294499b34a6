"""Protocol registry (docs/spec/handshake.md §3.2: protocol names)."""

from __future__ import annotations

from hubserver.protocol.json_protocol import JsonHubProtocol
from hubserver.protocol.messagepack_protocol import MessagePackHubProtocol
from hubserver.protocol.registry import ALL_PROTOCOLS, get_protocol


def test_all_protocols_holds_one_shared_instance_per_name():
    assert set(ALL_PROTOCOLS) == {"json", "messagepack"}
    assert isinstance(ALL_PROTOCOLS["json"], JsonHubProtocol)
    assert isinstance(ALL_PROTOCOLS["messagepack"], MessagePackHubProtocol)
    for name, protocol in ALL_PROTOCOLS.items():
        assert protocol.name == name


def test_get_protocol_is_case_insensitive_and_none_for_unknown_names():
    assert get_protocol("json") is ALL_PROTOCOLS["json"]
    assert get_protocol("MessagePack") is ALL_PROTOCOLS["messagepack"]
    assert get_protocol("xml") is None
