"""The `doseport` console script: Django's manage.py plus Doseport's own commands."""

from __future__ import annotations

import logging
import os
import re
import sys
from importlib import metadata
from pathlib import Path

HELP = {"help", "--help", "-h", "--version", "version"}
OVERVIEW = {"help", "--help", "-h"}
NOT_READY = 2
SHORT_HELP = 100  # a command's help up to this long is shown whole, else its first sentence
# Commands that create the data folder and the database.
SETS_UP = {"run", "migrate"}
# Django's developer commands that work without Doseport's tables.
NO_TABLES = {
    "check", "collectstatic", "compilemessages", "diffsettings", "findstatic", "makemessages",
    "makemigrations", "optimizemigration", "sendtestemail", "shell", "squashmigrations",
    "startapp", "startproject", "test",
}
# `doseport --help`: Doseport's commands by task; commands of Doseport's apps missing here
# are listed under "More", Django's developer commands only by `doseport help --all`.
GROUPS = [
    ("Run", ["run", "web", "worker", "stores", "store"]),
    ("DICOM nodes", ["nodes", "echo", "probe"]),
    ("Dose data", ["import", "export", "qr"]),
    ("Users and records", ["users", "tokens", "audit"]),
    ("Set-up", ["migrate", "check", "shell"]),
]
OWN_LINES = {
    "migrate": "Create or update the database tables (`doseport run` does it too).",
    "check": "Check the configuration; add --deploy for the production checks.",
    "shell": "A Python shell with Doseport's models loaded.",
}
MISSING_TABLE = re.compile(r"no such (table|column)|(relation|column) .* does not exist")

logger = logging.getLogger(__name__)


class NotReady(Exception):
    """The database is missing, empty or unreachable; the message is the line to print."""


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


def database_label() -> str:
    """The database as users configured it (no password)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if str(db["ENGINE"]).endswith("sqlite3"):
        return f"the database at {db['NAME']}"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"the database postgresql://{db['USER']}@{db['HOST']}{port}/{db['NAME']}"


def not_set_up(detail: str = "") -> NotReady:
    from lib.env import DEFAULT_HOME_SOURCE, home_source

    source = home_source()
    if source == DEFAULT_HOME_SOURCE:
        return NotReady(
            f"{database_label()} is not set up{detail} ({source}); set DOSEPORT_HOME to your "
            "data folder, or run `doseport migrate` (or `make run`) to start a new one"
        )
    return NotReady(f"{database_label()} is not set up{detail}; run `doseport migrate` "
                    "(or `make run`)")


def check_database_exists() -> None:
    """Before anything is created: a missing SQLite file stops the command (no empty ./var)."""
    from django.conf import settings

    from lib.env import DEFAULT_HOME_SOURCE, home_source

    source = home_source()
    if source == DEFAULT_HOME_SOURCE and not Path(settings.HOME).exists():
        raise NotReady(
            f"no data folder at {settings.HOME} ({source}); set DOSEPORT_HOME to your data "
            "folder, or run `doseport migrate` (or `make run`) here to start a new one"
        )
    db = settings.DATABASES["default"]
    if str(db["ENGINE"]).endswith("sqlite3") and not Path(str(db["NAME"])).exists():
        raise not_set_up()


def check_database_tables() -> None:
    """One cheap query: an empty or unreachable database stops the command in one line."""
    from django.db import DatabaseError, connection

    try:
        tables = connection.introspection.table_names()
    except DatabaseError as exc:
        raise NotReady(f"cannot open {database_label()}: {first_line(exc)}") from None
    finally:
        connection.close()
    if "django_migrations" not in tables:
        raise not_set_up()


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def command_summaries() -> dict[str, str]:
    """Every command of Doseport's own apps (and the Set-up ones): name -> one line."""
    import django
    from django.conf import settings
    from django.core.management import get_commands, load_command_class

    django.setup()
    base = Path(settings.BASE_DIR).resolve()
    wanted = {name for _, names in GROUPS for name in names}
    lines: dict[str, str] = {}
    for name, app in sorted(get_commands().items()):
        if name in OWN_LINES:
            lines[name] = OWN_LINES[name]
            continue
        top = Path(sys.modules[app.split(".")[0]].__file__ or "").resolve().parent
        if name not in wanted and top.parent != base:
            continue
        text = str(load_command_class(app, name).help).strip()
        if len(text) > SHORT_HELP:  # its first sentence, up to a semicolon
            text = re.split(r"(?<=\.)\s|; ", text, maxsplit=1)[0]
        lines[name] = text
    return lines


def overview() -> str:
    from lib.env import home_dir, home_source

    lines = command_summaries()
    home = home_dir()
    out = ["Usage: doseport COMMAND [options]    (doseport COMMAND --help: its options)"]
    grouped: set[str] = set()
    for title, names in [*GROUPS, ("More", sorted(lines))]:
        rows = [name for name in names if name in lines and name not in grouped]
        if not rows:
            continue
        out.extend(["", f"{title}:"])
        for name in rows:
            out.append(f"  {name:9} {lines[name]}")
            grouped.add(name)
    out.extend([
        "",
        f"Data folder: {home}{'' if home.exists() else ' (does not exist yet)'} "
        f"({home_source()})",
        "Every command, Django's developer commands too: doseport help --all",
    ])
    return "\n".join(out)


def run(args: list[str]) -> None:
    from django.core.management import execute_from_command_line
    from django.db import OperationalError, ProgrammingError

    if not args or (len(args) == 1 and args[0] in OVERVIEW):
        sys.stdout.write(overview() + "\n")
        return
    if args in (["--version"], ["version"]):
        import django

        version = metadata.version("doseport")
        sys.stdout.write(f"doseport {version} (Django {django.get_version()})\n")
        return
    if args[0] == "help" and args[1:] == ["--all"]:
        args = ["help"]
    needs_tables = not wants_help(args) and args[0] not in SETS_UP | NO_TABLES
    if needs_tables:
        check_database_exists()
    if not wants_help(args):
        prepare()
    if needs_tables:
        check_database_tables()
    try:
        execute_from_command_line(["doseport", *args])
    except (OperationalError, ProgrammingError) as exc:
        if MISSING_TABLE.search(str(exc)):
            raise not_set_up(f" for this version ({first_line(exc)})") from None
        if isinstance(exc, ProgrammingError):
            raise
        raise NotReady(f"{database_label()}: {first_line(exc)}") from None


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doseport.settings")
    from lib.env import ConfigError

    try:
        run(args)
    except ConfigError as exc:
        sys.stderr.write(f"doseport: configuration error: {exc}\n")
        sys.exit(2)
    except NotReady as exc:
        sys.stderr.write(f"doseport: {exc}\n")
        sys.exit(NOT_READY)
    except BrokenPipeError:
        # Output piped into e.g. `head` that stopped reading: no traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
