"""Retrieve accounting: arrivals linked by SOP Instance UID as their import finishes, and a
tally in which every selected instance is in exactly one bucket.

`link_import(record)` is called by imports.service.import_file for every finished import:
an instance a running (or recently finished) retrieve asked for gets its arrival at once,
not by a periodic pass. `link_arrivals(move)` recounts from the database (the CLI's wait
and the tests use it).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from imports.models import ImportRecord, Outcome
from qr.models import Move, QueryImage, QuerySeries

logger = logging.getLogger(__name__)

# An object may arrive (and be imported) this long after its retrieve started.
LINK_WINDOW = dt.timedelta(hours=24)
# Import outcomes that mean "the dose data is in the registry".
IMPORTED = (Outcome.IMPORTED, Outcome.DUPLICATE)
# Series move statuses besides complete / warning / failed ("" = not reached yet).
NOT_ATTEMPTED = "not attempted"
CANCELLED = "cancelled"


@dataclass(frozen=True)
class Tally:
    """Every selected instance in one bucket: the buckets add up to `selected`."""

    selected: int
    imported: int  # arrived and imported (or already in the registry)
    arrived: int  # arrived, import failed or not a dose object
    sent: int  # the remote reported it sent; not arrived (yet)
    failed: int  # requested, not sent (remote failure, lost connection)
    not_attempted: int  # never requested: the retrieve stopped first
    series_not_attempted: int = 0

    @property
    def total(self) -> int:
        return self.imported + self.arrived + self.sent + self.failed + self.not_attempted

    def line(self) -> str:
        text = (
            f"{self.selected} selected: {self.imported} imported, {self.arrived} arrived not "
            f"imported, {self.sent} sent not yet arrived, {self.failed} failed, "
            f"{self.not_attempted} not attempted"
        )
        if self.series_not_attempted:
            text += f" ({self.series_not_attempted} series)"
        return text


def _wanted(move: Move) -> QuerySet[QueryImage]:
    return QueryImage.objects.filter(
        series__study__query_id=move.query_id, series__study__excluded=False,
        series__excluded=False, excluded=False,
    )


def tally(move: Move) -> Tally:
    """The move's buckets from its series rows and the linked arrivals (two queries)."""
    per_series: dict[int, Counter[str]] = {}
    rows = _wanted(move).values_list("series_id", "arrival__outcome")
    for series_id, outcome in rows:
        bucket = "none" if outcome is None else "ok" if outcome in IMPORTED else "other"
        per_series.setdefault(series_id, Counter())[bucket] += 1
    series = QuerySeries.objects.filter(pk__in=per_series).values_list("pk", "move_status", "sent")
    imported = arrived = sent = failed = not_attempted = series_skipped = 0
    for pk, status, reported in series:
        counts = per_series[pk]
        imported += counts["ok"]
        arrived += counts["other"]
        missing = counts["none"]
        if status in ("", NOT_ATTEMPTED):
            not_attempted += missing
            series_skipped += 1
            continue
        waiting = max(0, min(missing, reported - counts["ok"] - counts["other"]))
        sent += waiting
        if status == CANCELLED:  # the rest was never sent: the user stopped it
            not_attempted += missing - waiting
        else:
            failed += missing - waiting
    selected = sum(sum(c.values()) for c in per_series.values())
    return Tally(selected, imported, arrived, sent, failed, not_attempted, series_skipped)


def link_arrivals(move: Move, stopped: bool = False) -> int:
    """Link the move's wanted instances imported since it started; store the counts."""
    images = _wanted(move)
    waiting = {i.sop_instance_uid: i for i in images.filter(arrival__isnull=True)}
    uids = list(waiting)
    since = move.started_at or move.created_at
    for start in range(0, len(uids), 500):
        records = ImportRecord.objects.filter(
            sop_instance_uid__in=uids[start:start + 500], created_at__gte=since
        ).order_by("created_at")
        for record in records:
            image = waiting.get(record.sop_instance_uid)
            if image is not None:
                image.arrival = record
        QueryImage.objects.bulk_update(
            [waiting[u] for u in uids[start:start + 500] if waiting[u].arrival_id], ["arrival"]
        )
    return store_counts(move, stopped)


def store_counts(move: Move, stopped: bool = False) -> int:
    """Write arrived/imported (and, when the move has stopped, what it never attempted)."""
    with transaction.atomic():
        # Lock the row first: an import linking meanwhile (link_import) then either counts
        # after this write or is already in what tally() reads, never both or neither.
        list(Move.objects.select_for_update().filter(pk=move.pk).values_list("pk"))
        counts = tally(move)
        move.arrived = counts.imported + counts.arrived
        move.imported = counts.imported
        fields = {"arrived": move.arrived, "imported": move.imported}
        if stopped:
            move.not_attempted = counts.not_attempted
            move.series_not_attempted = counts.series_not_attempted
            fields.update(not_attempted=move.not_attempted,
                          series_not_attempted=move.series_not_attempted)
        Move.objects.filter(pk=move.pk).update(**fields)
    return move.arrived


def link_import(record: ImportRecord) -> int:
    """Called when an import finishes: link it to the retrieves that asked for its UID and
    count it on the latest such retrieve. Cheap when nothing asked (one indexed lookup)."""
    uid = record.sop_instance_uid
    if not uid or record.pk is None or not _asked_for(uid):
        return 0
    now = timezone.now()
    images = list(
        QueryImage.objects.filter(
            sop_instance_uid=uid, arrival__isnull=True, excluded=False,
            series__excluded=False, series__study__excluded=False,
            series__study__query__moves__started_at__gte=now - LINK_WINDOW,
        ).values_list("pk", "series__study__query_id").distinct()
    )
    linked = 0
    ok = record.outcome in IMPORTED
    for pk, query_id in images:
        move = Move.objects.filter(
            query_id=query_id, started_at__isnull=False, started_at__lte=now
        ).order_by("-started_at").values_list("pk", flat=True).first()
        with transaction.atomic():
            if not QueryImage.objects.filter(pk=pk, arrival__isnull=True).update(arrival=record):
                continue  # another import of the same UID linked it first
            linked += 1
            if move is not None:
                Move.objects.filter(pk=move).update(
                    arrived=F("arrived") + 1, imported=F("imported") + (1 if ok else 0)
                )
    return linked


def _asked_for(uid: str) -> bool:
    """Does any query row wait for this UID? Asked on every import and nearly always no:
    raw SQL on the UID index (the ORM's query compilation cost more than the look-up)."""
    table = QueryImage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {table} WHERE sop_instance_uid = %s AND arrival_id IS NULL "  # noqa: S608
            "AND excluded = %s LIMIT 1", [uid, False],
        )
        return cursor.fetchone() is not None
