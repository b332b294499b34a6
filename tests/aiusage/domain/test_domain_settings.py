from pathlib import Path

import pytest

from aiusage.errors import ConfigurationError
from aiusage.settings import Settings


def test_defaults_put_sqlite_in_the_data_dir(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/aiusage.db"
    assert settings.base_url == "http://127.0.0.1:8080"


def test_environment_variables_are_read_and_flags_override_them() -> None:
    env = {
        "AIUSAGE_DATA_DIR": "/srv/aiusage",
        "AIUSAGE_DATABASE_URL": "postgresql+asyncpg://db/aiusage",
        "AIUSAGE_REDIS_URL": "redis://127.0.0.1:6379/0",
        "AIUSAGE_PORT": "9000",
        "AIUSAGE_CORS_ORIGINS": "https://a.test, https://b.test",
        "AIUSAGE_DEMO": "true",
    }
    settings = Settings.from_env(env)
    assert settings.data_dir == Path("/srv/aiusage")
    assert settings.resolved_database_url == "postgresql+asyncpg://db/aiusage"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.port == 9000 and settings.demo is True
    assert settings.cors_origins == ("https://a.test", "https://b.test")
    assert settings.replace(port=1234, redis_url=None).port == 1234
    assert settings.replace(port=1234, redis_url=None).redis_url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    "env",
    [
        {"AIUSAGE_PORT": "http"},
        {"AIUSAGE_PORT": "70000"},
        {"AIUSAGE_DATABASE_URL": "mysql://x/y"},
        {"AIUSAGE_WORKERS": "0"},
        {"AIUSAGE_REDIS_URL": "http://127.0.0.1:6379"},
        {"AIUSAGE_REDIS_URL": "redis+sentinel://127.0.0.1:26379"},
        {"AIUSAGE_REDIS_URL": "redis://127.0.0.1:port/0"},
    ],
)
def test_unusable_settings_are_refused_with_a_message(env) -> None:
    with pytest.raises(ConfigurationError):
        Settings.from_env(env)
