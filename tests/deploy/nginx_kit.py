"""Rendering deploy/nginx for tests, exactly as deploy/render-nginx does for operators."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
NGINX_DIR = DEPLOY / "nginx"
TEMPLATE = NGINX_DIR / "aiusage.conf.template"
TEMPLATE_VARS = (
    "AIUSAGE_HTTP_LISTEN",
    "AIUSAGE_HTTPS_LISTEN",
    "AIUSAGE_TLS_CERT",
    "AIUSAGE_TLS_KEY",
    "AIUSAGE_NGINX_INCLUDE",
)
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_available() -> bool:
    return os.access(NGINX, os.X_OK)


def render(values: Mapping[str, str]) -> str:
    """The template with the documented ${AIUSAGE_*} variables substituted (envsubst
    restricted to TEMPLATE_VARS: nginx's own $variables stay)."""
    text = TEMPLATE.read_text()
    for name in TEMPLATE_VARS:
        text = text.replace("${" + name + "}", values[name])
    leftover = re.findall(r"\$\{[A-Z_]+\}", text)
    assert not leftover, f"unrendered template variables: {leftover}"
    return text


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (openssl CLI)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def write_nginx_prefix(
    prefix: Path,
    *,
    http_port: int,
    https_port: int,
    upstream_ports: list[int],
    cert: Path,
    key: Path,
) -> Path:
    """A self-contained nginx prefix: the operators' rendered aiusage.conf, the repository's
    aiusage-locations.conf (symlinked, not copied) and test upstreams; returns nginx.conf."""
    include = prefix / "aiusage"
    include.mkdir(parents=True, exist_ok=True)
    (include / "aiusage-locations.conf").symlink_to(NGINX_DIR / "aiusage-locations.conf")
    (include / "aiusage-upstreams.conf").write_text(
        "".join(
            f"server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;\n" for port in upstream_ports
        )
    )
    rendered = render(
        {
            "AIUSAGE_HTTP_LISTEN": f"127.0.0.1:{http_port}",
            "AIUSAGE_HTTPS_LISTEN": f"127.0.0.1:{https_port}",
            "AIUSAGE_TLS_CERT": str(cert),
            "AIUSAGE_TLS_KEY": str(key),
            "AIUSAGE_NGINX_INCLUDE": str(include),
        }
    )
    (prefix / "aiusage.conf").write_text(rendered)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"):
        (prefix / sub).mkdir(exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    # Test harness only (the distribution's nginx.conf plays this role in production).
    conf.write_text(
        f"{user}worker_processes 1;\n"
        f"pid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/logs/error.log info;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"  access_log {prefix}/logs/access.log;\n"
        f"  client_body_temp_path {prefix}/body;\n"
        f"  proxy_temp_path {prefix}/proxy;\n"
        f"  fastcgi_temp_path {prefix}/fastcgi;\n"
        f"  uwsgi_temp_path {prefix}/uwsgi;\n"
        f"  scgi_temp_path {prefix}/scgi;\n"
        f"  include {prefix}/aiusage.conf;\n"
        "}\n"
    )
    return conf


def nginx_command(prefix: Path, conf: Path, *extra: str) -> list[str]:
    return [
        NGINX,
        "-p",
        str(prefix),
        "-c",
        str(conf),
        "-e",
        str(prefix / "logs/error.log"),
        "-g",
        "daemon off;",
        *extra,
    ]
