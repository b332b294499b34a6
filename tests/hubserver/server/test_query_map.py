from urllib.parse import parse_qsl

import pytest

from hubserver.server.exchange import _query_map


def _reference(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        out.setdefault(key, value)
    return out


@pytest.mark.parametrize(
    "text",
    [
        "",
        "id=abc&organizationId=org-1",
        "negotiateVersion=1&organizationId=org-1",
        "a=1&a=2",  # the first value wins
        "a&b=&=c&&d==e",
        "access_token=x.y.z&id=q",
        "a=%20b&c=d+e",  # unquoted by parse_qsl
        "a=b;c=d",  # ';' is not a separator
        "é=ü",
    ],
)
def test_the_query_map_holds_what_parse_qsl_gives(text):
    assert _query_map(text.encode("latin-1")) == _reference(text)
