import pytest

from lib.env import (
    ConfigError,
    check_secret,
    env_bool,
    env_int,
    env_list,
    home_dir,
    parse_bind,
    parse_database_url,
)


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


def test_it_reads_lists_dropping_blanks(monkeypatch):
    monkeypatch.setenv("X_LIST", " a.example, ,b.example,")
    assert env_list("X_LIST") == ["a.example", "b.example"]
    monkeypatch.delenv("X_LIST")
    assert env_list("X_LIST") == []


def test_secret_checks_name_the_source_and_the_fix():
    with pytest.raises(ConfigError, match=r"^MY_KEY is too weak \(3 characters.*do this"):
        check_secret("MY_KEY", "abc", "do this")
    key = "0123456789abcdefghij" * 3
    assert check_secret("MY_KEY", key, "") == key


def test_the_home_folder_is_read_the_same_way_everywhere(monkeypatch, tmp_path):
    monkeypatch.setenv("DOSEPORT_HOME", str(tmp_path / "x" / ".." / "home"))
    assert home_dir() == tmp_path / "home"
    assert not home_dir().exists()  # reading it creates nothing


def test_settings_and_the_command_start_agree_on_the_home_folder():
    from django.conf import settings

    assert settings.HOME == home_dir()
