"""A server process imports what serving needs: not the migrations, the agent, the load tester."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[3] / "src"

# Run in a fresh interpreter: this test process has imported everything already.
PROBE = """
import json, sys
from aiusage.cli import main
try:
    main(["serve", "--help"])
except SystemExit:
    pass
import aiusage.cli.serve, aiusage.platform
heavy = ("alembic", "mako", "httpx", "rich", "click", "psutil", "aiusage.loadtest",
         "aiusage.demo", "aiusage.agent.simulator", "aiusage.store.migrate")
print(json.dumps([m for m in heavy if m in sys.modules]))
"""


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_imports_none_of_the_other_commands_dependencies() -> None:
    done = run_python(PROBE)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("command", ["migrate", "enroll-code"])
def test_another_command_still_finds_its_parser(command: str) -> None:
    code = (
        "from aiusage.cli import build_parser\n"
        f"build_parser({command!r}).parse_args([{command!r}, '--help'])\n"
    )
    done = run_python(code)
    assert done.returncode == 0 and f"usage: aiusage {command}" in done.stdout
