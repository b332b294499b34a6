from aiusage.auth.http import bearer_token, redact_query_string


def test_the_authorization_header_wins():
    assert bearer_token({"authorization": "Bearer abc"}, {"access_token": "q"}) == "abc"


def test_the_scheme_is_case_insensitive_and_whitespace_is_ignored():
    assert bearer_token({"authorization": "  bearer   abc "}, {}) == "abc"


def test_the_query_parameter_is_used_without_a_bearer_header():
    assert bearer_token({"authorization": "Basic dXNlcjpwdw=="}, {"access_token": "q"}) == "q"
    assert bearer_token({}, {"access_token": "q"}) == "q"


def test_nothing_means_none():
    assert bearer_token({}, {}) is None
    assert bearer_token({"authorization": "Bearer "}, {"access_token": ""}) is None


def test_tokens_are_redacted_from_query_strings():
    assert redact_query_string("id=1&access_token=eyJ.x.y&b=2") == "id=1&access_token=***&b=2"
    assert redact_query_string("ACCESS_TOKEN=abc") == "ACCESS_TOKEN=***"
