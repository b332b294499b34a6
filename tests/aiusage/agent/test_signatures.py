import pytest

from aiusage.agent.signatures import load_signatures


def by_name():
    return {s.name: s for s in load_signatures()}


def test_shipped_list_covers_the_tools_of_the_issue():
    names = set(by_name())
    for tool in [
        "ChatGPT",
        "Claude",
        "GitHub Copilot",
        "Cursor",
        "Windsurf",
        "Gemini",
        "Ollama",
        "LM Studio",
    ]:
        assert tool in names


def test_process_names_match_case_insensitively_and_without_exe():
    sigs = by_name()
    assert sigs["Ollama"].matches_process("ollama", [])
    assert sigs["Cursor"].matches_process("Cursor.exe", [])
    assert not sigs["Cursor"].matches_process("cursorless", [])


def test_command_line_matches_language_servers_run_by_node():
    sig = by_name()["GitHub Copilot"]
    assert sig.matches_process("node", ["node", "/x/copilot-language-server/dist/main.js"])
    assert not sig.matches_process("node", ["node", "server.js"])


def test_browser_tab_titles_match_web_apps():
    sigs = by_name()
    assert sigs["ChatGPT"].matches_title("ChatGPT - Google Chrome")
    assert sigs["Claude"].matches_title("Claude - Mozilla Firefox")
    assert not sigs["Claude"].matches_title("Claudette's recipes - Firefox")


def test_configuration_extends_and_replaces_signatures():
    sigs = {
        s.name: s
        for s in load_signatures(
            [
                {"name": "HouseBot", "process": ["housebot"]},
                {"name": "Ollama", "process": ["my-ollama"]},
            ]
        )
    }
    assert sigs["HouseBot"].matches_process("housebot", [])
    assert sigs["Ollama"].matches_process("my-ollama", [])
    assert not sigs["Ollama"].matches_process("ollama", [])


def test_bad_extra_signature_is_a_clear_error():
    with pytest.raises(ValueError, match="without a name"):
        load_signatures([{"process": ["x"]}])
    with pytest.raises(ValueError, match="bad title pattern"):
        load_signatures([{"name": "X", "title": ["("]}])
