"""System checks for the privacy of the data folder (run by `doseport check` and before
most commands). The start of every command tightens the folder (lib/private.py); these
report what is still open, for instance a folder owned by another user."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Warning, register

from lib.private import IDENTITY_KEY_FILE, SECRET_KEY_FILE, SHARED_BITS, sqlite_files


def _shared_mode(path: Path) -> int | None:
    """The mode of `path` when group or others have any access to it, else None."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return mode if mode & SHARED_BITS else None


def _private_files() -> list[Path]:
    home = Path(settings.HOME)
    files = [home / SECRET_KEY_FILE, home / IDENTITY_KEY_FILE]
    db = settings.DATABASES["default"]
    if str(db["ENGINE"]).endswith("sqlite3"):
        files += sqlite_files(Path(str(db["NAME"])))
    return files


@register()
def check_private_data(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if os.name == "nt":
        return []
    return private_data_messages(Path(settings.HOME), _private_files())


def private_data_messages(home: Path, files: list[Path]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    mode = _shared_mode(home)
    if mode is not None:
        messages.append(Warning(
            f"The data folder {home} is open to other users (mode {mode:04o}).",
            hint=f"chmod 700 {home} (each doseport command tightens it at start when it "
                 "owns it); it holds the database, keys and received patient data.",
            id="doseport.W001",
        ))
    for path in files:
        mode = _shared_mode(path)
        if mode is not None:
            messages.append(Warning(
                f"{path} is readable by other users (mode {mode:04o}).",
                hint=f"chmod 600 {path}; it holds sessions, keys or patient data.",
                id="doseport.W002",
            ))
    return messages


@register()
def check_tls_key(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """DOSEPORT_TLS_KEY readable by others (lib/tls.py)."""
    from lib import tls

    return [Warning(text, id="doseport.W003") for text in tls.key_warnings(tls.configured())]
