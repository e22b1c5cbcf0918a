"""The Imports list: filters, failures-first paging and per-page facts, in few queries.

The list stays index-friendly at any size: failures first is two ordered, sliced queries
(failed; everything else), never an ORDER BY on an expression over the whole table, and
the outcome of the latest retry and the study link are looked up for the page's rows only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from django.db.models import Q, QuerySet
from django.utils import timezone

from dose.models import Study
from imports.models import ImportRecord, Outcome

NEWEST_FIRST = ("-created_at", "-pk")
DEEP_OFFSET = 1000  # from here a page's ids are found first, then its rows
# Part of a UID or path is searched in this many newest records (a scan); a whole UID or
# path is found among all of them (an index).
TEXT_WINDOW = 20_000  # about a day of a busy hospital group
TEXT_IDS_MAX = 2_000  # up to this many records a text search finds are listed as ids


@dataclass(frozen=True)
class ImportFilter:
    outcome: str = ""
    kind: str = ""
    node_id: int | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    text: str = ""


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def filter_records(flt: ImportFilter) -> QuerySet[ImportRecord]:
    """Dates are compared as a range on created_at, so its index serves them."""
    qs = ImportRecord.objects.all()
    if flt.outcome:
        qs = qs.filter(outcome=flt.outcome)
    if flt.kind:
        qs = qs.filter(kind=flt.kind)
    if flt.node_id is not None:
        qs = qs.filter(store_node_id=flt.node_id)
    if flt.since:
        qs = qs.filter(created_at__gte=_start_of(flt.since))
    if flt.until:
        qs = qs.filter(created_at__lt=_start_of(flt.until + dt.timedelta(days=1)))
    if flt.text:
        matches = text_matches(flt.text)
        # Found once, as ids: given the subquery, PostgreSQL walked the newest-first index
        # over every record and probed each (0.8 s at 1,000,000 records for one UID).
        ids = list(matches[:TEXT_IDS_MAX + 1])
        qs = qs.filter(pk__in=ids if len(ids) <= TEXT_IDS_MAX else matches)
    return qs


def text_matches(text: str) -> QuerySet[ImportRecord, int]:
    """Ids of the records with `text` as a whole SOP/Study Instance UID or path (any record,
    through their indexes) or as part of one of those or of the quarantine path (the newest
    TEXT_WINDOW records: a contains-search is a scan, and 1,000,000 rows take seconds).

    An IN subquery without ORDER BY, so that the database joins the index lookups (SQLite's
    multi-index OR, PostgreSQL's bitmap OR) instead of filtering the list's ordered scan."""
    whole = Q(sop_instance_uid=text) | Q(study_instance_uid=text) | Q(path=text)
    part = (Q(sop_instance_uid__contains=text) | Q(study_instance_uid__contains=text)
            | Q(path__contains=text) | Q(kept_path__contains=text))
    floor = list(ImportRecord.objects.order_by("-pk").values_list("pk", flat=True)
                 [TEXT_WINDOW - 1:TEXT_WINDOW])
    if floor:
        part &= Q(pk__gte=floor[0])
    return ImportRecord.objects.filter(whole | part).order_by().values_list("pk", flat=True)


class FailuresFirst:
    """Failed records, then the others, each newest first; for Django's Paginator.

    count() is two COUNT queries (all, failed: SQLite counts a whole table without reading
    its rows, a COUNT(... FILTER ...) reads every index entry); a slice reads one or two
    ordered LIMIT/OFFSET queries (two each on deep pages).
    """

    def __init__(self, records: QuerySet[ImportRecord]) -> None:
        self.records = records
        self._counts: tuple[int, int] | None = None

    def _totals(self) -> tuple[int, int]:
        if self._counts is None:
            total = self.records.count()
            failed = self.records.filter(outcome=Outcome.FAILED).count() if total else 0
            self._counts = (total, failed)
        return self._counts

    def count(self) -> int:
        return self._totals()[0]

    def __len__(self) -> int:
        return self.count()

    def __iter__(self) -> Iterator[ImportRecord]:
        return iter(self[0:self.count()])

    @overload
    def __getitem__(self, index: int) -> ImportRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[ImportRecord]: ...

    def __getitem__(self, index: int | slice) -> ImportRecord | list[ImportRecord]:
        if isinstance(index, int):
            return self[index:index + 1][0]
        start, stop = index.start or 0, index.stop
        total, failed = self._totals()
        stop = total if stop is None else min(stop, total)
        rows: list[ImportRecord] = []
        if start < failed and start < stop:
            rows += _slice(self.records.filter(outcome=Outcome.FAILED), start, min(stop, failed))
        if stop > failed:
            others = self.records.exclude(outcome=Outcome.FAILED)
            rows += _slice(others, max(start - failed, 0), stop - failed)
        return rows


def _slice(records: QuerySet[ImportRecord], start: int, stop: int) -> list[ImportRecord]:
    ordered = records.order_by(*NEWEST_FIRST)
    if start < DEEP_OFFSET:
        return list(ordered.select_related("store_node")[start:stop])
    # A deep page: skip the offset in an index (imports_newest_idx, imports_outcome_idx)
    # rather than sorting whole rows, then read the page's rows only.
    ids = list(ordered.values_list("pk", flat=True)[start:stop])
    page = ImportRecord.objects.filter(pk__in=ids).select_related("store_node")
    return list(page.order_by(*NEWEST_FIRST))


@dataclass(frozen=True)
class ImportRow:
    """A record of the page with what the list shows beside it."""

    record: ImportRecord
    retry_outcome: str = ""
    retry_label: str = ""
    study_id: int | None = None


def latest_retries(records: Sequence[ImportRecord]) -> dict[int, str]:
    """record pk -> outcome of the latest later import of its kept file; one query.

    Same rule as views.later_attempts(): path == kept_path, created_at >= the record's.
    """
    kept = {r.kept_path for r in records if r.kept_path}
    if not kept:
        return {}
    by_path: dict[str, list[tuple[int, dt.datetime, str]]] = {}
    attempts = ImportRecord.objects.filter(path__in=kept).order_by(*NEWEST_FIRST)
    for pk, path, created_at, outcome in attempts.values_list(
        "pk", "path", "created_at", "outcome"
    ):
        by_path.setdefault(path, []).append((pk, created_at, outcome))
    latest: dict[int, str] = {}
    for record in records:
        for pk, created_at, outcome in by_path.get(record.kept_path, []):
            if pk != record.pk and created_at >= record.created_at:
                latest[record.pk] = outcome
                break
    return latest


def study_ids(records: Sequence[ImportRecord]) -> dict[str, int]:
    """study_instance_uid -> the (first) Study with it; one query."""
    uids = {r.study_instance_uid for r in records if r.study_instance_uid}
    if not uids:
        return {}
    found: dict[str, int] = {}
    pairs = Study.objects.filter(study_instance_uid__in=uids).order_by("pk")
    for uid, pk in pairs.values_list("study_instance_uid", "pk"):
        found.setdefault(uid, pk)
    return found


def page_rows(records: Sequence[ImportRecord]) -> list[ImportRow]:
    retries = latest_retries(records)
    studies = study_ids(records)
    labels = dict(Outcome.choices)
    return [
        ImportRow(
            record=r,
            retry_outcome=retries.get(r.pk, ""),
            retry_label=labels.get(retries.get(r.pk, ""), ""),
            study_id=studies.get(r.study_instance_uid),
        )
        for r in records
    ]
