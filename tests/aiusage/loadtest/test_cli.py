"""``aiusage loadtest`` argument handling (the run itself is the integration test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiusage.cli import build_parser, main
from aiusage.cli.loadtest import build_config
from aiusage.loadtest.coordinator import LoadTestError
from aiusage.loadtest.setup import mint_tokens, org_ids


def test_non_loopback_url_exits_with_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "loadtest",
            "--url",
            "http://192.168.1.5:8080/hubs/analytics",
            "--connections",
            "1",
            "--data-dir",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "only targets loopback" in capsys.readouterr().err


def test_tokens_are_minted_per_organization_from_the_data_dir(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["loadtest", "--connections", "4", "--orgs", "3", "--data-dir", str(tmp_path)]
    )
    cfg = build_config(args)
    assert cfg.orgs == org_ids(3) == ["loadtest-0000", "loadtest-0001", "loadtest-0002"]
    assert set(cfg.dashboard_tokens) == set(cfg.agent_tokens) == set(cfg.orgs)
    assert (tmp_path).exists()


def test_token_file_supplies_organizations_and_tokens(tmp_path: Path) -> None:
    dash, agent = mint_tokens(tmp_path, ["o1"], 600)
    f = tmp_path / "tokens.json"
    f.write_text(json.dumps({"orgs": {"o1": {"dashboard": dash["o1"], "agent": agent["o1"]}}}))
    args = build_parser().parse_args(["loadtest", "--connections", "2", "--token-file", str(f)])
    cfg = build_config(args)
    assert cfg.orgs == ["o1"] and cfg.dashboard_tokens == dash


def test_token_file_without_agent_tokens_is_refused_when_events_are_driven(tmp_path: Path) -> None:
    f = tmp_path / "tokens.json"
    f.write_text(json.dumps({"orgs": {"o1": {"dashboard": "x"}}}))
    args = build_parser().parse_args(["loadtest", "--connections", "2", "--token-file", str(f)])
    with pytest.raises(LoadTestError):
        build_config(args)
    args = build_parser().parse_args(
        ["loadtest", "--connections", "2", "--token-file", str(f), "--event-rate", "0"]
    )
    assert build_config(args).agent_tokens == {}


def test_without_the_loadtest_extra_the_command_says_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        missing = ("matplotlib", "picows")
        return None if name in missing else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    code = main(["loadtest", "--connections", "1", "--data-dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "pip install 'aiusage[loadtest]'" in err and "matplotlib, picows" in err


def test_the_cli_and_coordinator_load_without_the_websocket_library() -> None:
    """picows is optional: only a WebSocket connection imports it (checked in a clean
    interpreter, since this one has it loaded already)."""
    import subprocess
    import sys

    code = (
        "import sys; import aiusage.cli.loadtest, aiusage.loadtest.coordinator, "
        "aiusage.loadtest.client; assert 'picows' not in sys.modules, 'picows imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def test_the_product_does_not_depend_on_the_load_testers_plotting_library() -> None:
    import tomllib

    project = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())["project"]
    assert not any(dep.startswith("matplotlib") for dep in project["dependencies"])
    extras = project["optional-dependencies"]
    for name in ("matplotlib", "picows"):
        assert not any(dep.startswith(name) for dep in project["dependencies"])
        assert any(dep.startswith(name) for dep in extras["loadtest"])
        assert any(dep.startswith(name) for dep in extras["dev"])  # the tests run it
