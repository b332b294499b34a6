"""The operator files in deploy/ are complete and consistent (fast checks, no servers)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import fields

import pytest

from aiusage.settings import Settings
from tests.deploy.nginx_kit import (
    DEPLOY,
    NGINX_DIR,
    REPO,
    TEMPLATE,
    TEMPLATE_VARS,
    make_certificate,
    nginx_available,
    nginx_command,
    render,
    write_nginx_prefix,
)

ENV_FILE = DEPLOY / "aiusage.env"
NOT_SERVER_SETTINGS = {"AIUSAGE_AGENT_HOME"}  # the desktop agent's, documented as such


def variables_read_by_the_code() -> set[str]:
    found: set[str] = set()
    for path in (REPO / "src" / "aiusage").rglob("*.py"):
        found.update(re.findall(r"[\"'](AIUSAGE_[A-Z_]+)[\"']", path.read_text()))
    return found


def test_the_environment_file_documents_every_variable_the_code_reads():
    text = ENV_FILE.read_text()
    read = variables_read_by_the_code()
    assert {"AIUSAGE_DATABASE_URL", "AIUSAGE_MAX_CONNECTIONS", "AIUSAGE_LOG_FORMAT"} <= read
    missing = sorted(
        v for v in read if not re.search(rf"\b{v}=", text) and v not in NOT_SERVER_SETTINGS
    )
    assert missing == []
    for name in NOT_SERVER_SETTINGS & read:
        assert name in text


def test_every_commented_default_in_the_environment_file_is_the_real_default():
    defaults = Settings.from_env({})
    checked = 0
    for name, value in re.findall(r"^#(AIUSAGE_[A-Z_]+)=(.*)$", ENV_FILE.read_text(), re.M):
        if name in ("AIUSAGE_LOG_LEVEL", "AIUSAGE_EVENT_LOOP"):
            continue  # read by the CLI, not by Settings
        parsed = Settings.from_env({name: value})
        diff = [
            f.name for f in fields(Settings) if getattr(parsed, f.name) != getattr(defaults, f.name)
        ]
        assert diff == [], f"{name}={value} is not the default (changes {diff})"
        checked += 1
    assert checked >= 15


def test_the_nginx_template_has_only_the_documented_variables():
    names = set(re.findall(r"\$\{([A-Z_]+)\}", TEMPLATE.read_text()))
    assert names == set(TEMPLATE_VARS)
    # The included locations file is used as is: no template variables in it.
    assert "${" not in (NGINX_DIR / "aiusage-locations.conf").read_text()
    render_script = (DEPLOY / "render-nginx").read_text()
    for name in TEMPLATE_VARS:
        assert "${" + name + "}" in render_script


def test_the_nginx_configuration_keeps_what_signalr_needs():
    conf = TEMPLATE.read_text() + (NGINX_DIR / "aiusage-locations.conf").read_text()
    hub = conf[conf.index("location /hubs/") :]
    hub = hub[: hub.index("}")]
    assert "proxy_set_header Upgrade $http_upgrade;" in hub
    assert "proxy_buffering off;" in hub
    timeout = int(re.search(r"proxy_read_timeout (\d+)s;", hub).group(1))
    # Longer than the 90 s long poll, the client's 100 s request timeout and the 15 s ping.
    assert timeout > 100
    assert "hash $aiusage_affinity consistent;" in conf
    assert "X-Forwarded-For" in conf and "X-Forwarded-Proto" in conf


def test_the_systemd_units_stop_gracefully_within_their_timeout():
    grace = Settings().shutdown_grace_s
    for unit in ("aiusage@.service", "aiusage-worker.service"):
        text = (DEPLOY / "systemd" / unit).read_text()
        assert "KillSignal=SIGTERM" in text
        assert re.search(r"^Restart=on-failure$", text, re.M)
        assert re.search(r"^LimitNOFILE=\d+$", text, re.M)
        assert "EnvironmentFile=/etc/aiusage/aiusage.env" in text
        assert "NoNewPrivileges=true" in text and "ProtectSystem=strict" in text
        stop = int(re.search(r"^TimeoutStopSec=(\d+)$", text, re.M).group(1))
        assert stop > grace + 5
    serve = (DEPLOY / "systemd" / "aiusage@.service").read_text()
    assert "serve --host 127.0.0.1 --port %i" in serve


@pytest.mark.skipif(shutil.which("envsubst") is None, reason="needs envsubst (gettext-base)")
def test_the_operators_render_script_and_the_test_renderer_agree(tmp_path):
    values = {name: f"/x/{name.lower()}" for name in TEMPLATE_VARS}
    out = subprocess.run(
        [str(DEPLOY / "render-nginx")],
        env={**values, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    assert out == render(values)
    missing = subprocess.run(
        [str(DEPLOY / "render-nginx")],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert missing.returncode == 2 and "is not set" in missing.stderr


@pytest.mark.skipif(not nginx_available(), reason="nginx not installed (scripts/install --dev)")
def test_nginx_accepts_the_rendered_configuration(tmp_path):
    cert, key = make_certificate(tmp_path)
    conf = write_nginx_prefix(
        tmp_path,
        http_port=18080,
        https_port=18443,
        upstream_ports=[18081, 18082],
        cert=cert,
        key=key,
    )
    result = subprocess.run(
        nginx_command(tmp_path, conf, "-t"), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
