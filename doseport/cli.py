"""The `doseport` console script: Django's manage.py plus Doseport's own commands."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doseport.settings")
    from lib.env import ConfigError

    try:
        from django.core.management import execute_from_command_line

        execute_from_command_line(["doseport", *(sys.argv[1:] if argv is None else argv)])
    except ConfigError as exc:
        sys.stderr.write(f"doseport: configuration error: {exc}\n")
        sys.exit(2)
    except BrokenPipeError:
        # Output piped into e.g. `head` that stopped reading: no traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
