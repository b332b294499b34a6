import os
import shutil
import subprocess
import sys
import time

from aiusage.agent.observer import Observer
from aiusage.agent.signatures import load_signatures


def test_observer_reports_tool_names_from_processes_and_title():
    procs = [("bash", ["bash"]), ("ollama", ["ollama", "serve"]), ("node", ["node", "x.js"])]
    obs = Observer(load_signatures(), processes=lambda: procs, title=lambda: "Claude - Chromium")
    assert obs.observe() == frozenset({"Ollama", "Claude"})


def test_observer_without_title_source_uses_processes_only():
    obs = Observer(load_signatures(), processes=lambda: [("cursor", [])], title=None)
    assert obs.observe() == frozenset({"Cursor"})


def test_a_real_process_named_like_an_ai_tool_is_detected(tmp_path):
    # A copy of `sleep` named "ollama": the live process table, no fakes.
    exe = tmp_path / "ollama"
    shutil.copy(shutil.which("sleep"), exe)
    proc = subprocess.Popen([str(exe), "30"])
    try:
        obs = Observer(load_signatures(), title=None)
        deadline = time.monotonic() + 5
        seen = obs.observe()
        while "Ollama" not in seen and time.monotonic() < deadline:
            time.sleep(0.05)
            seen = obs.observe()
        assert "Ollama" in seen
    finally:
        proc.kill()
        proc.wait()
    assert "Ollama" not in Observer(load_signatures(), title=None).observe()


def test_observer_ignores_its_own_interpreter():
    obs = Observer(
        load_signatures(), processes=lambda: [(os.path.basename(sys.executable), [])], title=None
    )
    assert obs.observe() == frozenset()
