"""`doseport export studies`: the dose data as JSON (EXPORT_SCHEMA.md) or CSV."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.db import DatabaseError

from dose.export import WRITERS, export_studies
from dose.models import Study
from dose.queries import StudyFilter


def parse_date(option: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None


class Command(BaseCommand):
    help = "Export dose data. `export studies` writes every matching study (JSON or CSV)."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # A bad argument gives one line on stderr ("doseport export: error: ..."), no usage.
        parser.print_usage = lambda file=None: None  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("what", choices=["studies"], help="what to export: studies")
        parser.add_argument(
            "--format", choices=sorted(WRITERS), default="json",
            help="json (schema doseport.studies/1) or csv (one row per event); default json",
        )
        parser.add_argument(
            "--modality", choices=[m for m, _ in Study.MODALITY_CHOICES], type=str.upper,
            help="only studies of this modality type; default all",
        )
        parser.add_argument(
            "--since", metavar="DATE", help="first study date YYYY-MM-DD; default no limit"
        )
        parser.add_argument(
            "--until", metavar="DATE", help="last study date YYYY-MM-DD; default no limit"
        )
        parser.add_argument(
            "--station", default="", metavar="TEXT",
            help="station name contains this text; default any",
        )
        parser.add_argument(
            "--output", type=Path, metavar="FILE",
            help="write to this file (replaced only when complete); default standard output",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        flt = StudyFilter(
            modality=options["modality"] or "",
            since=parse_date("--since", options["since"]),
            until=parse_date("--until", options["until"]),
            station=options["station"],
        )
        if flt.since and flt.until and flt.since > flt.until:
            raise CommandError("--since is after --until")
        output: Path | None = options["output"]
        try:
            if output is None:
                export_studies(flt, options["format"], RawOutput(self.stdout))
            else:
                write_file(output, flt, options["format"])
        except DatabaseError as exc:
            raise CommandError(f"database error: {exc}") from exc


class RawOutput:
    """Django's OutputWrapper adds a newline to every write; the export streams pieces."""

    def __init__(self, wrapper: OutputWrapper) -> None:
        self.wrapper = wrapper

    def write(self, text: str, /) -> int:
        self.wrapper.write(text, ending="")
        return len(text)


def write_file(output: Path, flt: StudyFilter, fmt: str) -> int:
    """Write next to the target and rename, so a reader never sees half an export."""
    parent = output.resolve().parent
    if not parent.is_dir():
        raise CommandError(f"--output folder {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            count = export_studies(flt, fmt, out)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count
