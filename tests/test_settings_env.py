import pytest

from lib.env import ConfigError, env_bool, env_int, parse_bind, parse_database_url


def test_it_parses_booleans_strictly(monkeypatch):
    monkeypatch.setenv("X_FLAG", "False")
    assert env_bool("X_FLAG", True) is False
    monkeypatch.setenv("X_FLAG", "yes")
    assert env_bool("X_FLAG", False) is True
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ConfigError, match="X_FLAG"):
        env_bool("X_FLAG", False)


def test_it_rejects_bad_numbers_naming_the_variable(monkeypatch):
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ConfigError, match="X_NUM"):
        env_int("X_NUM", 1)
    monkeypatch.setenv("X_NUM", "3")
    with pytest.raises(ConfigError, match="minimum"):
        env_int("X_NUM", 1, minimum=5)


def test_it_parses_bind(monkeypatch):
    monkeypatch.setenv("X_BIND", "0.0.0.0:9000")
    bind = parse_bind("X_BIND", "127.0.0.1:8000")
    assert (bind.host, bind.port) == ("0.0.0.0", 9000)
    monkeypatch.setenv("X_BIND", "nonsense")
    with pytest.raises(ConfigError, match="X_BIND"):
        parse_bind("X_BIND", "127.0.0.1:8000")


def test_it_parses_database_urls():
    db = parse_database_url("DATABASE_URL", "postgresql://me:s%40cret@db.local:5433/dose")
    assert db["NAME"] == "dose" and db["PASSWORD"] == "s@cret" and db["PORT"] == "5433"
    with pytest.raises(ConfigError, match="scheme"):
        parse_database_url("DATABASE_URL", "mysql://x/y")
    with pytest.raises(ConfigError, match="database name"):
        parse_database_url("DATABASE_URL", "postgresql://x@h/")
