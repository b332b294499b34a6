import subprocess
import sys

import jwt
import pytest

from aiusage.auth.issuer import BuiltinIssuer
from aiusage.auth.tokens import TokenVerifier
from aiusage.cli import main


async def test_token_issue_prints_a_token_the_data_dir_issuer_accepts(tmp_path, capsys):
    rc = main(
        [
            "token",
            "issue",
            "--sub",
            "u1",
            "--org",
            "acme",
            "--role",
            "Admin",
            "--ttl",
            "120",
            "--data-dir",
            str(tmp_path),
        ]
    )
    assert rc == 0
    token = capsys.readouterr().out.strip()
    p = await TokenVerifier(BuiltinIssuer.load_or_create(tmp_path).token_config()).verify(token)
    assert (p.sub, p.org, p.roles) == ("u1", "acme", {"Admin"})
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120


def test_repeated_roles_become_a_list(tmp_path, capsys):
    main(
        [
            "token",
            "issue",
            "--sub",
            "u",
            "--org",
            "o",
            "--role",
            "Admin",
            "--role",
            "Manager",
            "--data-dir",
            str(tmp_path),
        ]
    )
    claims = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert claims["role"] == ["Admin", "Manager"]


def test_unknown_roles_are_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as info:
        main(
            [
                "token",
                "issue",
                "--sub",
                "u",
                "--org",
                "o",
                "--role",
                "Root",
                "--data-dir",
                str(tmp_path),
            ]
        )
    assert info.value.code == 2


def test_out_of_range_ttl_is_refused(tmp_path, capsys):
    rc = main(
        [
            "token",
            "issue",
            "--sub",
            "u",
            "--org",
            "o",
            "--role",
            "Agent",
            "--ttl",
            "0",
            "--data-dir",
            str(tmp_path),
        ]
    )
    assert rc == 2 and "--ttl" in capsys.readouterr().err


def test_the_console_entry_point_works(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "aiusage.cli",
            "token",
            "issue",
            "--sub",
            "u",
            "--org",
            "o",
            "--role",
            "Manager",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.count(".") == 2 and out.stderr == ""
