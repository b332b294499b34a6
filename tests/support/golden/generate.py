"""Regenerate the golden vector files from the literal table below.

    python -m tests.support.golden.generate

JSON wire texts are typed by hand; MessagePack bodies are packed by the msgpack library from
literal arrays (never by our codec), and the js_* entries reproduce what
tests/conformance/capture_vectors.mjs records from @microsoft/signalr 10.0.11 (the
integration test compares the two). Edit the table, run this, review the diff.
"""

# ruff: noqa: E501  (a data table: one vector per call)

import datetime
import json
import pathlib

import msgpack

G = pathlib.Path(__file__).parent


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def mp(arr: list) -> bytes:
    body = msgpack.packb(arr, use_bin_type=True, datetime=True)
    return varint(len(body)) + body


UTC = datetime.UTC
D2000 = datetime.datetime(2000, 1, 1, tzinfo=UTC)
LONG = "x" * 200
GUID = "00010203-0405-0607-0706-050403020100"

# name: (message, json wire or None, json direction, msgpack array or raw bytes or None, msgpack direction, note)
cases: dict[str, dict] = {}


def case(name, message, json_wire=None, json_dir="both", mp_wire=None, mp_dir="both", note=""):
    cases[name] = dict(
        message=message, json=json_wire, json_dir=json_dir, mp=mp_wire, mp_dir=mp_dir, note=note
    )


def inv(**kw) -> dict:
    return {"kind": "Invocation", **kw}


case(
    "invocation_non_blocking",
    inv(target="Target", arguments=[1, "two"]),
    '{"type":1,"target":"Target","arguments":[1,"two"]}',
    "both",
    [1, {}, None, "Target", [1, "two"], []],
    "both",
    "server->client push: no invocationId",
)
case(
    "invocation_blocking",
    inv(target="Echo", arguments=["hi"], invocationId="0"),
    '{"type":1,"invocationId":"0","target":"Echo","arguments":["hi"]}',
    "both",
    [1, {}, "0", "Echo", ["hi"], []],
)
case(
    "invocation_with_stream_ids",
    inv(target="Upload", arguments=[], invocationId="1", streamIds=["2"]),
    '{"type":1,"invocationId":"1","target":"Upload","arguments":[],"streamIds":["2"]}',
    "both",
    [1, {}, "1", "Upload", [], ["2"]],
)
case(
    "invocation_with_headers",
    inv(target="T", arguments=[], invocationId="1", headers={"a": "b"}),
    '{"type":1,"headers":{"a":"b"},"invocationId":"1","target":"T","arguments":[]}',
    "both",
    [1, {"a": "b"}, "1", "T", [], []],
)
case(
    "invocation_unicode_arguments",
    inv(target="Send", arguments=["h\u00e9llo \u2713 \U0001f600", {"k\u00e9y": [None, True, 1.5]}]),
    '{"type":1,"target":"Send","arguments":["h\u00e9llo \u2713 \U0001f600",{"k\u00e9y":[null,true,1.5]}]}',
    "both",
    [1, {}, None, "Send", ["h\u00e9llo \u2713 \U0001f600", {"k\u00e9y": [None, True, 1.5]}], []],
    "both",
    "non-ASCII stays raw UTF-8 (ensure_ascii=False)",
)
case(
    "invocation_long_payload",
    inv(target="Echo", arguments=[LONG], invocationId="7"),
    '{"type":1,"invocationId":"7","target":"Echo","arguments":["' + LONG + '"]}',
    "both",
    [1, {}, "7", "Echo", [LONG], []],
    "both",
    "msgpack body >= 128 bytes: 2-byte varint prefix",
)
case(
    "invocation_complex_values",
    inv(
        target="Complex",
        arguments=[
            {"$bytes": "AQID"},
            {"$datetime": "2000-01-01T00:00:00+00:00"},
            {"$uuid": GUID},
            [1, 2, 3],
            "hello world",
        ],
    ),
    '{"type":1,"target":"Complex","arguments":["AQID","2000-01-01T00:00:00Z","'
    + GUID
    + '",[1,2,3],"hello world"]}',
    "write",
    [1, {}, None, "Complex", [b"\x01\x02\x03", D2000, GUID, [1, 2, 3], "hello world"], []],
    "write",
    "as .NET SendComplexObject: JSON base64 + ISO 'Z' date; msgpack bin + timestamp ext -1 + Guid as string",
)
# msgpack complex values round-trip when the UUID is given as text
case(
    "invocation_binary_values",
    inv(
        target="Complex",
        arguments=[{"$bytes": "AQID"}, {"$datetime": "2000-01-01T00:00:00+00:00"}, GUID],
    ),
    None,
    "both",
    [1, {}, None, "Complex", [b"\x01\x02\x03", D2000, GUID], []],
    "both",
    "bin and timestamp ext -1 both ways",
)
# --- what clients send ---------------------------------------------------------------------
# js_*: captured from @microsoft/signalr 10.0.11 (tests/conformance/capture_vectors.mjs), in the
# order that script sends them; JSON property order is the client's (target, arguments,
# invocationId, streamIds, type).
case(
    "js_invocation",
    inv(target="Echo", arguments=["hi"], invocationId="0"),
    '{"target":"Echo","arguments":["hi"],"invocationId":"0","type":1}',
    "parse",
    [1, {}, "0", "Echo", ["hi"]],
    "parse",
    "@microsoft/signalr invoke(); msgpack: 5 elements",
)
case(
    "js_send",
    inv(target="Send", arguments=["x", 1]),
    '{"target":"Send","arguments":["x",1],"type":1}',
    "parse",
    [1, {}, None, "Send", ["x", 1]],
    "parse",
    "@microsoft/signalr send(): no invocationId",
)
case(
    "js_stream_invocation",
    {"kind": "StreamInvocation", "invocationId": "1", "target": "Stream", "arguments": [3]},
    '{"target":"Stream","arguments":[3],"invocationId":"1","type":4}',
    "parse",
    [4, {}, "1", "Stream", [3]],
    "parse",
)
case(
    "js_cancel",
    {"kind": "CancelInvocation", "invocationId": "1"},
    '{"invocationId":"1","type":5}',
    "parse",
    [5, {}, "1"],
    "parse",
)
case(
    "js_invocation_with_stream_ids",
    inv(target="StreamingConcat", arguments=[], invocationId="3", streamIds=["2"]),
    '{"target":"StreamingConcat","arguments":[],"invocationId":"3","streamIds":["2"],"type":1}',
    "parse",
    [1, {}, "3", "StreamingConcat", [], ["2"]],
    "parse",
    "stream ids come from the invocation-id counter, first",
)
case(
    "js_stream_item",
    {"kind": "StreamItem", "invocationId": "2", "item": "a"},
    '{"invocationId":"2","item":"a","type":2}',
    "parse",
    [2, {}, "2", "a"],
    "parse",
)
case(
    "js_upload_complete",
    {"kind": "Completion", "invocationId": "2"},
    '{"invocationId":"2","type":3}',
    "parse",
    [3, {}, "2", 2],
    "parse",
    "end of an upload stream",
)
case(
    "js_send_with_stream_ids",
    inv(target="UploadNoResult", arguments=[], streamIds=["4"]),
    '{"target":"UploadNoResult","arguments":[],"streamIds":["4"],"type":1}',
    "parse",
    [1, {}, None, "UploadNoResult", [], ["4"]],
    "parse",
)
case(
    "js_upload_error",
    {"kind": "Completion", "invocationId": "4", "error": "Something bad"},
    '{"error":"Something bad","invocationId":"4","type":3}',
    "parse",
    [3, {}, "4", 1, "Something bad"],
    "parse",
    "subject.error(new Error(...)) ends an upload with an error",
)
case(
    "js_client_result",
    {"kind": "Completion", "invocationId": "abc", "result": 42, "hasResult": True},
    '{"invocationId":"abc","result":42,"type":3}',
    "parse",
    [3, {}, "abc", 3, 42],
    "parse",
)
case(
    "js_client_no_result",
    {"kind": "Completion", "invocationId": "def", "error": "Client didn't provide a result."},
    '{"error":"Client didn\'t provide a result.","invocationId":"def","type":3}',
    "parse",
    [3, {}, "def", 1, "Client didn't provide a result."],
    "parse",
    "handler returned undefined",
)
case(
    "js_close",
    {"kind": "Close"},
    '{"type":7}',
    "parse",
    [7, None],
    "parse",
    "JS stop(): msgpack [7, nil]",
)
case(
    "alphabetical_property_order",
    inv(target="Echo", arguments=["hi"], invocationId="0"),
    '{"arguments":["hi"],"invocationId":"0","target":"Echo","type":1}',
    "parse",
    None,
    "parse",
    "properties in any order",
)
case(
    "signalrcore_invocation",
    inv(target="SendMessage", arguments=["u", "m"], invocationId="5d6a"),
    '{"type": 1, "headers": {}, "target": "SendMessage", "arguments": ["u", "m"], "invocationId": "5d6a"}',
    "parse",
    None,
    "parse",
    "signalrcore: spaces, empty headers",
)
case(
    "signalrcore_completion_result",
    {"kind": "Completion", "invocationId": "5", "result": 42, "hasResult": True},
    '{"type": 3, "invocationId": "5", "error": null, "result": 42, "headers": {}}',
    "parse",
    None,
    "parse",
    "null error counts as absent",
)
case(
    "signalrcore_completion_error",
    {"kind": "Completion", "invocationId": "5", "error": "boom"},
    '{"type": 3, "invocationId": "5", "error": "boom", "result": null}',
    "parse",
    None,
    "parse",
    "null result next to an error counts as absent",
)
case(
    "pysignalr_invocation_with_http_headers",
    inv(target="Echo", arguments=["x"], invocationId="9f1c", headers={"User-Agent": "pysignalr"}),
    '{"type":1,"target":"Echo","arguments":["x"],"invocationId":"9f1c","headers":{"User-Agent":"pysignalr"}}',
    "parse",
    None,
    "parse",
    "pysignalr copies its HTTP headers into every invocation",
)
case(
    "invocation_null_invocation_id",
    inv(target="T", arguments=[]),
    '{"type":1,"invocationId":null,"target":"T","arguments":[]}',
    "parse",
    None,
    "parse",
)
case(
    "invocation_empty_stream_ids",
    inv(target="T", arguments=[], invocationId="1"),
    '{"type":1,"invocationId":"1","target":"T","arguments":[],"streamIds":[]}',
    "parse",
    [1, {}, "1", "T", [], []],
    "parse",
    "empty streamIds == none",
)
case(
    "unknown_properties_ignored",
    {"kind": "Ping"},
    '{"type":6,"foo":[1,{"a":2}],"bar":null}',
    "parse",
    [6, "extra", {"x": 1}],
    "parse",
    "msgpack: extra trailing items tolerated",
)
case(
    "stream_item_extra_items",
    {"kind": "StreamItem", "invocationId": "1", "item": "a"},
    None,
    "parse",
    [2, {}, "1", "a", "extra"],
    "parse",
)
# --- server -> client (and symmetric) --------------------------------------------------------
case(
    "stream_invocation",
    {"kind": "StreamInvocation", "invocationId": "2", "target": "Stream", "arguments": [3]},
    '{"type":4,"invocationId":"2","target":"Stream","arguments":[3]}',
    "both",
    [4, {}, "2", "Stream", [3], []],
)
case(
    "stream_item",
    {"kind": "StreamItem", "invocationId": "1", "item": "a"},
    '{"type":2,"invocationId":"1","item":"a"}',
    "both",
    [2, {}, "1", "a"],
)
case(
    "stream_item_null",
    {"kind": "StreamItem", "invocationId": "1", "item": None},
    '{"type":2,"invocationId":"1","item":null}',
    "both",
    [2, {}, "1", None],
)
case(
    "completion_with_result",
    {"kind": "Completion", "invocationId": "0", "result": "hi", "hasResult": True},
    '{"type":3,"invocationId":"0","result":"hi"}',
    "both",
    [3, {}, "0", 3, "hi"],
)
case(
    "completion_with_null_result",
    {"kind": "Completion", "invocationId": "0", "result": None, "hasResult": True},
    '{"type":3,"invocationId":"0","result":null}',
    "both",
    [3, {}, "0", 3, None],
    "both",
    "void hub method answered to invoke()",
)
case(
    "completion_empty",
    {"kind": "Completion", "invocationId": "0"},
    '{"type":3,"invocationId":"0"}',
    "both",
    [3, {}, "0", 2],
    "both",
    "end of stream: no result",
)
case(
    "completion_with_error",
    {
        "kind": "Completion",
        "invocationId": "0",
        "error": "Failed to invoke 'X' due to an error on the server. HubException: Method does not exist.",
    },
    '{"type":3,"invocationId":"0","error":"Failed to invoke \'X\' due to an error on the server. HubException: Method does not exist."}',
    "both",
    [
        3,
        {},
        "0",
        1,
        "Failed to invoke 'X' due to an error on the server. HubException: Method does not exist.",
    ],
)
case(
    "cancel_invocation",
    {"kind": "CancelInvocation", "invocationId": "2"},
    '{"type":5,"invocationId":"2"}',
    "both",
    [5, {}, "2"],
)
case("ping", {"kind": "Ping"}, '{"type":6}', "both", b"\x02\x91\x06")
case("close", {"kind": "Close"}, '{"type":7}', "both", [7, None, False])
case(
    "close_allow_reconnect",
    {"kind": "Close", "allowReconnect": True},
    '{"type":7,"allowReconnect":true}',
    "both",
    [7, None, True],
)
case(
    "close_with_error",
    {"kind": "Close", "error": "boom"},
    '{"type":7,"error":"boom"}',
    "both",
    [7, "boom", False],
)
case(
    "close_with_error_allow_reconnect",
    {"kind": "Close", "error": "Connection closed with an error.", "allowReconnect": True},
    '{"type":7,"error":"Connection closed with an error.","allowReconnect":true}',
    "both",
    [7, "Connection closed with an error.", True],
)
case("ack", {"kind": "Ack", "sequenceId": 1}, '{"type":8,"sequenceId":1}', "both", [8, 1])
case("sequence", {"kind": "Sequence", "sequenceId": 3}, '{"type":9,"sequenceId":3}', "both", [9, 3])
case(
    "sequence_large_id",
    {"kind": "Sequence", "sequenceId": 2**40},
    '{"type":9,"sequenceId":1099511627776}',
    "both",
    [9, 2**40],
)


def main() -> None:
    for folder, pattern in (("json", "*.json"), ("messagepack", "*.msgpack.hex")):
        (G / folder).mkdir(exist_ok=True)
        for stale in (G / folder).glob(pattern):
            stale.unlink()
    manifest = {}
    for name, c in cases.items():
        entry = {"message": c["message"]}
        if c["note"]:
            entry["note"] = c["note"]
        if c["json"] is not None:
            (G / "json" / f"{name}.json").write_bytes(c["json"].encode() + b"\x1e")
            entry["json"] = c["json_dir"]
        if c["mp"] is not None:
            raw = c["mp"] if isinstance(c["mp"], bytes) else mp(c["mp"])
            (G / "messagepack" / f"{name}.msgpack.hex").write_text(raw.hex(" ") + "\n")
            entry["messagepack"] = c["mp_dir"]
        manifest[name] = entry
    (G / "vectors.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    print(len(manifest))


if __name__ == "__main__":
    main()
