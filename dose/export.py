"""`doseport export studies`: JSON (EXPORT_SCHEMA.md, doseport.studies/1) and CSV, streamed.

Studies are read in chunks with everything prefetched, and written one at a time, so the
memory use does not grow with the number of studies.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Iterator
from typing import Any, Protocol

from django.db.models import QuerySet

from dose.models import Study
from dose.queries import StudyFilter, filter_studies
from dose.serialize import (
    EVENT_KEYS,
    STUDY_NUMBERS,
    STUDY_TEXT,
    TOTALS_KEYS,
    studies_for_export,
    study_to_dict,
)

SCHEMA = "doseport.studies/1"
CHUNK_SIZE = 200
STUDY_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys(
        ("study_instance_uid", "modality_type", "study_date", "study_time")
        + STUDY_TEXT + STUDY_NUMBERS + ("source_sop_instance_uids",)
    )
)
CSV_COLUMNS: tuple[str, ...] = STUDY_COLUMNS + TOTALS_KEYS + ("event_number",) + EVENT_KEYS


class Sink(Protocol):
    def write(self, text: str, /) -> object: ...


def export_queryset(flt: StudyFilter) -> QuerySet[Study]:
    """Filtered studies in a stable order (study date and time, then import order)."""
    qs = filter_studies(flt).order_by("study_date", "study_time", "pk")
    return studies_for_export(qs)


def iter_study_dicts(flt: StudyFilter, chunk_size: int = CHUNK_SIZE) -> Iterator[dict[str, Any]]:
    for study in export_queryset(flt).iterator(chunk_size=chunk_size):
        yield study_to_dict(study)


def write_json(studies: Iterator[dict[str, Any]], out: Sink) -> int:
    """Write one JSON document, a study at a time; returns the number of studies."""
    count = 0
    out.write(f'{{"schema": {json.dumps(SCHEMA)}, "studies": [')
    for study in studies:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(study, ensure_ascii=False, allow_nan=False))
        count += 1
    out.write("\n]}\n" if count else "]}\n")
    return count


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


def csv_rows(study: dict[str, Any]) -> Iterator[list[Any]]:
    """One row per event, the study fields and totals repeated; a study without events
    still gets one row (with empty event columns) so that it is not lost."""
    fixed = [
        " ".join(study["source_sop_instance_uids"]) if key == "source_sop_instance_uids"
        else _cell(study.get(key))
        for key in STUDY_COLUMNS
    ]
    fixed += [_cell(study["totals"].get(key)) for key in TOTALS_KEYS]
    events = study["events"] or [None]
    for number, event in enumerate(events, start=1):
        if event is None:
            yield fixed + [""] * (1 + len(EVENT_KEYS))
        else:
            yield fixed + [number] + [_cell(event.get(key)) for key in EVENT_KEYS]


def write_csv(studies: Iterator[dict[str, Any]], out: Sink) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for study in studies:
        writer.writerows(csv_rows(study))
        count += 1
    return count


WRITERS = {"json": write_json, "csv": write_csv}


def primed(studies: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Run the first query before anything is written, so a database error leaves no output."""
    first = next(studies, None)
    return itertools.chain([] if first is None else [first], studies)


def export_studies(flt: StudyFilter, fmt: str, out: Sink) -> int:
    return WRITERS[fmt](primed(iter_study_dicts(flt)), out)
