"""Strict readers for environment variables.

A bad value stops start-up with a message naming the variable, never a silent default:
`USE_TZ = os.environ.get(...)` style bugs (the string "False" is true) cannot happen here.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit


class ConfigError(Exception):
    """A configuration value is invalid; the message names the variable and the fix."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean: use 1/0, true/false, yes/no or on/off")


def env_int(name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}={value} is above the maximum {maximum}")
    return value


_STORE_AE_TITLE = re.compile(r"[A-Za-z0-9]{1,16}")


def env_store_ae_title(name: str, default: str) -> str:
    """An AE title for a Doseport store node: the rule of nodes/validators.py."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip()
    if not _STORE_AE_TITLE.fullmatch(value):
        raise ConfigError(
            f"{name}={raw!r} is not a store AE title: use 1-16 letters A-Z or digits 0-9, "
            f"e.g. {default}"
        )
    return value


def env_path(name: str, default: str) -> Path:
    raw = os.environ.get(name) or default
    return Path(raw).expanduser().resolve()


@dataclass(frozen=True)
class Bind:
    host: str
    port: int


def parse_bind(name: str, default: str) -> Bind:
    raw = os.environ.get(name) or default
    host, sep, port_text = raw.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{name}={raw!r} must be HOST:PORT, for example 127.0.0.1:8000")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: port {port_text!r} is not a number") from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"{name}={raw!r}: port must be 1-65535")
    return Bind(host.strip("[]"), port)


def parse_database_url(name: str, raw: str) -> dict[str, object]:
    """Turn postgres://user:pass@host:port/dbname into a Django DATABASES entry."""
    parts = urlsplit(raw)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ConfigError(
            f"{name}: scheme {parts.scheme!r} is not supported; use postgresql://USER@HOST:PORT/DB"
        )
    db_name = unquote(parts.path.lstrip("/"))
    if not db_name:
        raise ConfigError(f"{name}: the database name is missing (postgresql://USER@HOST/DB)")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{name}: the port is not a number") from None
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": db_name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(port or ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


def env_list(name: str, default: str = "") -> list[str]:
    """A comma-separated list; blanks dropped."""
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEFAULT_HOME = "./var"
# `make run` writes the data folder of an install into this file beside the venv's Python
# (.venv/doseport-home), so `.venv/bin/doseport` run from any folder finds the same data.
REMEMBERED_HOME_FILE = "doseport-home"
DEFAULT_HOME_SOURCE = "DOSEPORT_HOME is not set: ./var of the current folder"


def remembered_home_file() -> Path:
    return Path(sys.prefix) / REMEMBERED_HOME_FILE


def remembered_home() -> Path | None:
    """The data folder recorded for this install, None when nothing is recorded."""
    record = remembered_home_file()
    try:
        text = record.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the remembered data folder in {record}: {exc}") from None
    if not text:
        return None
    path = Path(text).expanduser()
    if not path.is_absolute() or "\n" in text:
        raise ConfigError(
            f"{record} must hold the absolute path of the data folder, not {text!r}: "
            "fix or delete the file, or set DOSEPORT_HOME"
        )
    return path


def default_home() -> str:
    """DOSEPORT_HOME's default: the remembered data folder, else ./var of the current folder."""
    remembered = remembered_home()
    return str(remembered) if remembered is not None else DEFAULT_HOME


def home_source() -> str:
    """Where DOSEPORT_HOME comes from, for messages."""
    if os.environ.get("DOSEPORT_HOME"):
        return "DOSEPORT_HOME"
    if remembered_home() is not None:
        return f"remembered in {remembered_home_file()}"
    return DEFAULT_HOME_SOURCE


def home_dir() -> Path:
    """DOSEPORT_HOME as settings.HOME reads it, for the command start (doseport/cli.py)."""
    return env_path("DOSEPORT_HOME", default_home())


# Django's deployment check (security.W009) asks for 50 characters and 5 different ones;
# a generated key has 67.
SECRET_MIN_LENGTH = 50
SECRET_MIN_UNIQUE = 5
SECRET_FIX = "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"


def check_secret(source: str, key: str, fix: str) -> str:
    """Return `key` when it is long and varied enough, else stop naming `source` and `fix`."""
    if len(key) < SECRET_MIN_LENGTH or len(set(key)) < SECRET_MIN_UNIQUE:
        raise ConfigError(
            f"{source} is too weak ({len(key)} characters, {len(set(key))} different); "
            f"it needs at least {SECRET_MIN_LENGTH} random characters: {fix}"
        )
    return key


def env_secret(name: str, key_file: Path) -> str:
    """The key from environment variable `name`, else from `key_file` ("" when missing).

    The file is created at the start of each doseport command (lib.private), never here, so
    importing the settings (`--help`, type checking) writes nothing; Django refuses an empty
    SECRET_KEY only when something uses it.
    """
    raw = os.environ.get(name, "").strip()
    if raw:
        return check_secret(
            name, raw,
            f"set {name} to the output of {SECRET_FIX}, or unset it to use the key generated "
            f"in {key_file}",
        )
    return read_secret(key_file)


def read_secret(path: Path) -> str:
    """The key stored in `path`, "" when the file does not exist yet."""
    try:
        key = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return ""
    return check_secret(str(path), key, "delete it; the next doseport command makes a new one")


def allowed_hosts(bind_host: str, extra: list[str]) -> list[str]:
    """The bind address (unless it is a wildcard), the loopback names, then `extra`."""
    hosts = ["localhost", "127.0.0.1", "[::1]"]
    if bind_host not in ("", "0.0.0.0", "::"):
        hosts.insert(0, f"[{bind_host}]" if ":" in bind_host else bind_host)
    return list(dict.fromkeys([*hosts, *extra]))


def https_origins(hosts: list[str]) -> list[str]:
    """CSRF trusted origins for ALLOWED_HOSTS entries when served over HTTPS."""
    origins = []
    for host in hosts:
        if host == "*":
            continue
        origins.append("https://*" + host if host.startswith(".") else "https://" + host)
    return origins
