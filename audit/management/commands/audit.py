"""`doseport audit --since DATE [--until DATE] [--action A] [--user U] [--format text|json]`."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.utils import timezone

from audit.models import AuditEntry
from audit.service import select


def parse_since(value: str | None) -> dt.date | dt.datetime | None:
    """A day (YYYY-MM-DD) or a moment (ISO 8601, e.g. the `when` of the last entry seen)."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"--since {value!r} is not a date; use YYYY-MM-DD or an ISO 8601 time"
        ) from None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def parse_until(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--until {value!r} is not a date; use YYYY-MM-DD") from None


def as_text(entry: AuditEntry) -> str:
    detail = json.dumps(entry.detail, sort_keys=True) if entry.detail else ""
    local = timezone.localtime(entry.created_at).isoformat(timespec="seconds")
    fields = [local, entry.username or "-", entry.address or "-", entry.source, entry.action,
              entry.target, detail]
    return "\t".join(fields).rstrip("\t")


def write_entries(entries: Iterable[AuditEntry], fmt: str, write: Callable[[str], Any]) -> None:
    if fmt == "json":
        write(json.dumps([entry.as_dict() for entry in entries], indent=2))
        return
    for entry in entries:
        write(as_text(entry))


class Command(BaseCommand):
    help = ("Print audit entries, oldest first: who changed nodes, settings and users, "
            "and who started queries, retrieves and imports.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", metavar="DATE",
            help="from this day (YYYY-MM-DD) or moment (ISO 8601); default: all entries",
        )
        parser.add_argument("--until", metavar="DATE",
                            help="up to and including this day (YYYY-MM-DD); default: no limit")
        parser.add_argument(
            "--action", default="",
            help="only this action (node.add) or group (node); default: all actions",
        )
        parser.add_argument("--user", default="", help="only this user name; default: all users")
        parser.add_argument("--format", choices=["text", "json"], default="text",
                            help="text (tab-separated, one line each) or json; default text")

    def handle(self, *args: Any, **options: Any) -> None:
        since = parse_since(options["since"])
        until = parse_until(options["until"])
        entries = select(action=options["action"], username=options["user"],
                         since=since, until=until).order_by("created_at", "pk")
        try:
            write_entries(entries.iterator(), options["format"], self.stdout.write)
        except DatabaseError as exc:
            raise CommandError(f"database error: {exc} (has `doseport migrate` run?)") from exc
