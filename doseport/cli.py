"""The `doseport` console script: Django's manage.py plus Doseport's own commands."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

HELP = {"help", "--help", "-h", "--version", "version"}

logger = logging.getLogger(__name__)


def wants_help(args: list[str]) -> bool:
    """Help and version output only: nothing is created or changed for it."""
    return not args or bool(HELP.intersection(args))


def prepare() -> None:
    """Start of every command: private umask, data folder, keys; then Django.

    Django's own setup runs again inside execute_from_command_line (it only reloads the
    logging configuration); running it here first lets the tightening be logged.
    """
    from lib import private
    from lib.env import env_path, home_dir

    os.umask(private.PRIVATE_UMASK)
    home = home_dir()
    sqlite = os.environ.get("DOSEPORT_SQLITE")
    database = None if os.environ.get("DATABASE_URL") or not sqlite else env_path(
        "DOSEPORT_SQLITE", sqlite)
    try:
        tightened = private.prepare_home(home, database)
    except OSError as exc:
        raise SystemExit(f"doseport: cannot prepare the data folder {home}: {exc}") from None
    import django

    django.setup()
    line = tightened.summary(Path(home))
    if line:
        logger.warning("%s", line)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doseport.settings")
    from lib.env import ConfigError

    try:
        from django.core.management import execute_from_command_line

        if not wants_help(args):
            prepare()
        execute_from_command_line(["doseport", *args])
    except ConfigError as exc:
        sys.stderr.write(f"doseport: configuration error: {exc}\n")
        sys.exit(2)
    except BrokenPipeError:
        # Output piped into e.g. `head` that stopped reading: no traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
