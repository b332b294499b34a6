"""Golden bytes of the Redis backplane codec (docs/spec/backplane.md §6.2, RedisProtocol.cs).

Expected bytes are written out by hand from the MessagePack spec, not produced by the codec.
"""

import re

import pytest

from hubserver.errors import BackplaneError
from hubserver.lifetime import redis_wire as wire

JSON_HELLO = b'{"type":1,"target":"A","arguments":[]}\x1e'  # 39 bytes
assert len(JSON_HELLO) == 39


# --- invocation envelope -------------------------------------------------------------------

INVOCATION_GOLDEN = {
    "two_items_no_exclusions": (
        dict(payloads={"json": JSON_HELLO}),
        b"\x92\x90\x81\xa4json\xc4\x27" + JSON_HELLO,
    ),
    "excluded_ids": (
        dict(payloads={"json": JSON_HELLO}, excluded_ids=["c1", "c2"]),
        b"\x92\x92\xa2c1\xa2c2\x81\xa4json\xc4\x27" + JSON_HELLO,
    ),
    "two_protocols_in_insertion_order": (
        dict(payloads={"json": b"j", "messagepack": b"\x01m"}),
        b"\x92\x90\x82\xa4json\xc4\x01j\xabmessagepack\xc4\x02\x01m",
    ),
    "origin_as_third_item": (
        dict(payloads={"json": b"j"}, origin="web01_ab"),
        b"\x93\x90\x81\xa4json\xc4\x01j\xa8web01_ab",
    ),
    "client_result_four_items": (
        dict(payloads={"json": b"j"}, invocation_id="7", return_channel="P:internal:return:s"),
        b"\x94\x90\x81\xa4json\xc4\x01j\xa17\xb3P:internal:return:s",
    ),
}


@pytest.mark.parametrize("name", sorted(INVOCATION_GOLDEN))
def test_invocation_envelopes_match_the_golden_bytes(name) -> None:
    kwargs, expected = INVOCATION_GOLDEN[name]
    payloads = kwargs.pop("payloads")
    excluded = kwargs.pop("excluded_ids", ())
    assert wire.write_invocation(payloads, excluded, **kwargs) == expected
    decoded = wire.read_invocation(expected)
    assert decoded.payloads == payloads
    assert decoded.excluded_ids == tuple(excluded)
    assert decoded.invocation_id == kwargs.get("invocation_id")
    assert decoded.return_channel == kwargs.get("return_channel")
    assert decoded.origin == kwargs.get("origin")


def test_a_dotnet_envelope_has_no_origin_and_is_delivered() -> None:
    # What RedisProtocol.WriteInvocation emits: [ [], {"json": bin} ]
    decoded = wire.read_invocation(b"\x92\x90\x81\xa4json\xc4\x01j")
    assert decoded.origin is None and decoded.payloads == {"json": b"j"}


def test_a_five_item_envelope_carries_result_fields_and_origin() -> None:
    data = wire.write_invocation(
        {"json": b"j"}, (), invocation_id="i", return_channel="r", origin="me"
    )
    assert data[0] == 0x95
    decoded = wire.read_invocation(data)
    assert (decoded.invocation_id, decoded.return_channel, decoded.origin) == ("i", "r", "me")


def test_the_invocation_reader_ignores_extra_items() -> None:
    data = b"\x96\x90\x81\xa4json\xc4\x01j\xa1i\xa1r\xa2me\xc0"
    decoded = wire.read_invocation(data)
    assert decoded.payloads == {"json": b"j"} and decoded.invocation_id == "i"


def test_invocation_id_requires_a_return_channel() -> None:
    with pytest.raises(ValueError):
        wire.write_invocation({"json": b"j"}, (), invocation_id="i")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x91\x90", "Insufficient items in Invocation array."),
        (b"\x80", "not an array"),
        (b"\xc1", "Invalid Invocation payload"),
        (b"\x92\x90\x81\xa4json\x05", "protocol bytes must be bin"),
        (b"\x92\x81\xa1a\xa1b\x80", "bad excluded ids"),
    ],
)
def test_malformed_invocations_raise_backplane_errors(data, message) -> None:
    with pytest.raises(BackplaneError, match=re.escape(message)):
        wire.read_invocation(data)


# --- group command, ack, completion -------------------------------------------------------


def test_group_commands_match_the_golden_bytes() -> None:
    data = wire.write_group_command(1, "srv", wire.GroupAction.ADD, "g", "c")
    assert data == b"\x95\x01\xa3srv\x01\xa1g\xa1c"
    assert wire.write_group_command(300, "s", wire.GroupAction.REMOVE, "", "c") == (
        b"\x95\xcd\x01\x2c\xa1s\x02\xa0\xa1c"
    )
    assert wire.read_group_command(data) == wire.GroupCommand(
        1, "srv", wire.GroupAction.ADD, "g", "c"
    )


def test_group_command_reader_accepts_any_int_width_and_extra_items() -> None:
    # id as int32 (0xd2), action as uint8 (0xcc), plus a trailing nil.
    data = b"\x96\xd2\x00\x00\x00\x07\xa1s\xcc\x02\xa1g\xa1c\xc0"
    assert wire.read_group_command(data) == wire.GroupCommand(
        7, "s", wire.GroupAction.REMOVE, "g", "c"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x94\x01\xa1s\x01\xa1g", "Insufficient items in GroupCommand array."),
        (b"\x95\x01\xa1s\x03\xa1g\xa1c", "unknown action 3"),
        (b"\x95\xa11\xa1s\x01\xa1g\xa1c", "expected an integer"),
    ],
)
def test_malformed_group_commands_raise(data, message) -> None:
    with pytest.raises(BackplaneError, match=re.escape(message)):
        wire.read_group_command(data)


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"\x91\x05", 5),
        (b"\x91\xcc\xff", 255),
        (b"\x91\xcd\x01\x00", 256),
        (b"\x91\xce\x00\x00\x00\x05", 5),
        (b"\x91\xd2\x7f\xff\xff\xff", 2**31 - 1),
        (b"\x92\x05\xa5extra", 5),
    ],
)
def test_acks_are_read_at_any_int_width(data, value) -> None:
    assert wire.read_ack(data) == value


def test_acks_match_the_golden_bytes() -> None:
    assert wire.write_ack(5) == b"\x91\x05"
    assert wire.write_ack(70000) == b"\x91\xce\x00\x01\x11\x70"
    with pytest.raises(BackplaneError, match="Insufficient items in Ack array."):
        wire.read_ack(b"\x90")


def test_completions_match_the_golden_bytes() -> None:
    payload = b'{"type":3,"invocationId":"1","result":2}\x1e'
    data = wire.write_completion("json", payload)
    assert data == b"\x92\xa4json\xc4" + bytes([len(payload)]) + payload
    assert wire.read_completion(data) == wire.RedisCompletion("json", payload)
    assert wire.read_completion(b"\x93\xa4json\xc4\x01x\xc0").payload == b"x"
    with pytest.raises(BackplaneError, match="must be bin"):
        wire.read_completion(b"\x92\xa4json\x01")


def test_canary_round_trips() -> None:
    assert wire.read_canary(wire.write_canary(123456)) == 123456


# --- channel names ------------------------------------------------------------------------


def test_channel_names_are_prefix_plus_hub_full_name_like_dotnet() -> None:
    c = wire.RedisChannels("AIUsagePlatform" + "AIUsage.Hubs.AnalyticsHub")
    p = "AIUsagePlatformAIUsage.Hubs.AnalyticsHub"
    assert c.all == f"{p}:all"
    assert c.group("org:42") == f"{p}:group:org:42"
    assert c.connection("abc") == f"{p}:connection:abc"
    assert c.user("u@x") == f"{p}:user:u@x"
    assert c.group_management == f"{p}:internal:groups"
    assert c.ack("web01_0a") == f"{p}:internal:ack:web01_0a"
    assert c.return_results("web01_0a") == f"{p}:internal:return:web01_0a"
    assert c.canary("web01_0a") == f"{p}:internal:canary:web01_0a"


def test_server_names_are_hostname_underscore_32_hex() -> None:
    name = wire.make_server_name("web01")
    assert re.fullmatch(r"web01_[0-9a-f]{32}", name)
    assert wire.make_server_name("web01") != name
    assert re.fullmatch(r".+_[0-9a-f]{32}", wire.make_server_name())
