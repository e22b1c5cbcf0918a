"""Strict readers for environment variables.

A bad value stops start-up with a message naming the variable, never a silent default:
`USE_TZ = os.environ.get(...)` style bugs (the string "False" is true) cannot happen here.
"""

from __future__ import annotations

import os
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


def load_or_create_secret(path: Path) -> str:
    """Read the site's secret key, creating it (mode 0600) on first run."""
    if path.exists():
        key = path.read_text(encoding="ascii").strip()
        if len(key) >= 32:
            return key
        raise ConfigError(f"{path} holds a secret key shorter than 32 characters; delete it")
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return key
