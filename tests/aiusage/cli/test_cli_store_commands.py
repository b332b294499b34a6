import asyncio

import pytest

from aiusage.auth.passwords import verify_password
from aiusage.cli import main
from aiusage.store.database import Database
from aiusage.store.repositories import OrganizationRepository, UserRepository
from aiusage.store.revisions import head_revision


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def lookup(data_dir, fn):
    async def go():
        db = Database(f"sqlite+aiosqlite:///{data_dir}/aiusage.db")
        try:
            async with db.read() as conn:
                return await fn(conn)
        finally:
            await db.dispose()

    return asyncio.run(go())


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for name in ("AIUSAGE_DATABASE_URL", "AIUSAGE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_migrate_creates_the_store_in_the_data_dir(tmp_path, capsys) -> None:
    code, out, _ = run(capsys, "migrate", "--data-dir", str(tmp_path))
    assert code == 0
    assert out.strip() == f"database at revision {head_revision()} (sqlite)"
    assert (tmp_path / "aiusage.db").exists()


def test_org_create_and_set_subscription_act_on_the_same_store(tmp_path, capsys) -> None:
    d = str(tmp_path)
    code, out, _ = run(
        capsys,
        "org",
        "create",
        "--id",
        "acme",
        "--name",
        "Acme Corp",
        "--subscription",
        "trialing",
        "--data-dir",
        d,
    )
    assert code == 0 and "created organization acme (Acme Corp), subscription trialing" in out
    code, _, err = run(capsys, "org", "create", "--id", "acme", "--name", "Again", "--data-dir", d)
    assert code == 1 and "already exists" in err
    assert run(capsys, "org", "set-subscription", "acme", "canceled", "--data-dir", d)[0] == 0
    code, _, err = run(capsys, "org", "set-subscription", "ghost", "active", "--data-dir", d)
    assert code == 1 and "does not exist" in err
    org = lookup(tmp_path, lambda c: OrganizationRepository().get(c, "acme"))
    assert org.subscription_status == "canceled"
    code, out, _ = run(capsys, "org", "list", "--data-dir", d)
    assert out.strip() == "acme\tcanceled\tAcme Corp"


def test_unknown_subscription_status_is_an_argument_error(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["org", "set-subscription", "acme", "free", "--data-dir", str(tmp_path)])
    assert exc.value.code == 2


def test_user_create_hashes_the_password_and_refuses_unknown_orgs(tmp_path, capsys) -> None:
    d = str(tmp_path)
    run(capsys, "org", "create", "--id", "acme", "--name", "Acme", "--data-dir", d)
    code, out, _ = run(
        capsys,
        "user",
        "create",
        "--email",
        "Boss@Acme.test",
        "--org",
        "acme",
        "--role",
        "Admin",
        "--password",
        "s3cret-pass",
        "--data-dir",
        d,
    )
    assert code == 0 and "<boss@acme.test> in acme as Admin" in out
    user = lookup(tmp_path, lambda c: UserRepository().get_by_email(c, "boss@acme.test"))
    assert user.password_hash != "s3cret-pass"
    assert verify_password(user.password_hash, "s3cret-pass")
    code, _, err = run(
        capsys,
        "user",
        "create",
        "--email",
        "x@y.test",
        "--org",
        "ghost",
        "--role",
        "Manager",
        "--data-dir",
        d,
    )
    assert code == 1 and "organization 'ghost' does not exist" in err
    code, _, err = run(
        capsys,
        "user",
        "create",
        "--email",
        "boss@acme.test",
        "--org",
        "acme",
        "--role",
        "Manager",
        "--data-dir",
        d,
    )
    assert code == 1 and "exists" in err


def test_user_create_with_a_bad_redis_url_fails_before_creating_the_user(tmp_path, capsys) -> None:
    d = str(tmp_path)
    run(capsys, "org", "create", "--id", "acme", "--name", "Acme", "--data-dir", d)
    code, _, err = run(
        capsys,
        "user",
        "create",
        "--email",
        "late@acme.test",
        "--org",
        "acme",
        "--role",
        "Employee",
        "--redis-url",
        "redis+sentinel://:hunter2@127.0.0.1:26379",
        "--data-dir",
        d,
    )
    assert code == 2 and "service" in err and "hunter2" not in err
    assert lookup(tmp_path, lambda c: UserRepository().get_by_email(c, "late@acme.test")) is None


def test_enroll_code_create_prints_a_code_that_redeems_once(tmp_path, capsys) -> None:
    d = str(tmp_path)
    run(capsys, "org", "create", "--id", "acme", "--name", "Acme", "--data-dir", d)
    code, out, _ = run(
        capsys, "enroll-code", "create", "--org", "acme", "--ttl", "600", "--data-dir", d
    )
    assert code == 0
    enroll_code = out.strip()
    assert len(enroll_code.replace("-", "")) == 24

    async def redeem():
        from aiusage.store.repositories import AgentRepository

        db = Database(f"sqlite+aiosqlite:///{tmp_path}/aiusage.db")
        try:
            async with db.write() as conn:
                return await AgentRepository().redeem_enrollment_code(conn, enroll_code)
        finally:
            await db.dispose()

    assert asyncio.run(redeem()).org_id == "acme"
    code, _, err = run(capsys, "enroll-code", "create", "--org", "ghost", "--data-dir", d)
    assert code == 1


@pytest.mark.postgres
@pytest.mark.integration
def test_commands_act_on_postgresql_with_database_url(tmp_path, capsys, monkeypatch) -> None:
    import uuid

    from support.database import POSTGRES_URL, drop_schema

    schema = f"t_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("AIUSAGE_DATABASE_SCHEMA", schema)
    try:
        common = ["--data-dir", str(tmp_path), "--database-url", POSTGRES_URL]
        assert (
            run(capsys, "migrate", *common)[1].strip()
            == f"database at revision {head_revision()} (postgresql)"
        )
        assert run(capsys, "org", "create", "--id", "pg", "--name", "On PG", *common)[0] == 0
        assert (
            run(
                capsys,
                "user",
                "create",
                "--email",
                "a@pg.test",
                "--org",
                "pg",
                "--role",
                "Admin",
                *common,
            )[0]
            == 0
        )
        code, out, _ = run(capsys, "org", "list", *common)
        assert out.strip() == "pg\tactive\tOn PG"
        assert not (tmp_path / "aiusage.db").exists()
    finally:
        asyncio.run(drop_schema(schema))
