"""Query and Move jobs with every response row kept, excluded or not, with its reason."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class Status(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    COMPLETE = "complete", "complete"
    PARTIAL = "partial", "complete with failures"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


FINAL = {Status.COMPLETE, Status.PARTIAL, Status.FAILED, Status.CANCELLED}

# A running job writes its heartbeat at most this often (a cheap UPDATE, on responses).
HEARTBEAT_EVERY_S = 30.0


def worker_id() -> str:
    """Who runs a job: host and process id (the worker, or `doseport qr` in-process)."""
    return f"{socket.gethostname()}:{os.getpid()}"[:128]


class Job(models.Model):
    """What a Query and a Move share: status, timings, errors, cancel flag, progress text.

    `worker` and `heartbeat_at` let qr.lease fail a job whose worker died while running it.
    """

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    errors = models.JSONField(default=list, blank=True)
    message = models.CharField(max_length=500, blank=True, default="")
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(
        max_length=128, blank=True, default="", help_text="host:pid of the process running it"
    )
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="last sign of life while running (qr.lease reaps)"
    )

    # monotonic time of this process's last heartbeat write (not a field)
    last_beat: float = -HEARTBEAT_EVERY_S
    # True once this process's claim() took the job (not a field)
    claimed: bool = False

    class Meta:
        abstract = True

    @property
    def done(self) -> bool:
        return self.status in FINAL

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 2)

    def _stored(self, *fields: str) -> dict[str, Any]:
        return type(self)._default_manager.filter(pk=self.pk).values(*fields).first() or {}

    def add_error(self, text: str) -> None:
        """Append to the errors as stored (the reaper may have added one meanwhile)."""
        self.errors = [*(self._stored("errors").get("errors") or self.errors), text]
        type(self)._default_manager.filter(pk=self.pk).update(errors=self.errors)

    def set_message(self, text: str) -> None:
        self.message = text[:500]
        type(self)._default_manager.filter(pk=self.pk).update(message=self.message)
        self.beat()
        listener = getattr(self, "on_message", None)
        if listener is not None:
            listener(self.message)

    def claim(self) -> bool:
        """Take the job: one conditional UPDATE from queued to running (a cancel flag set
        meanwhile is honoured by the engine before its first request).

        Whoever's UPDATE changes the row runs the job; a second delivery of the same task,
        or a second worker, changes nothing and returns False (healthchecks' sendalerts
        claims checks the same way). The caller then leaves the job alone.
        """
        now = timezone.now()
        worker = worker_id()
        claimed = type(self)._default_manager.filter(
            pk=self.pk, status=Status.QUEUED
        ).update(status=Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker)
        if not claimed:
            self.refresh_from_db(fields=["status", "started_at", "finished_at", "message"])
            return False
        self.status = Status.RUNNING
        self.started_at = self.heartbeat_at = now
        self.worker = worker
        self.last_beat = time.monotonic()
        self.claimed = True
        return True

    def request_cancel(self) -> str:
        """Cancel as a state transition: a queued job becomes cancelled at once (no worker
        will claim it); a running one is flagged and its worker stops between requests
        (and sends C-CANCEL for the request in flight). Returns the status it leaves."""
        manager = type(self)._default_manager
        now = timezone.now()
        if manager.filter(pk=self.pk, status=Status.QUEUED).update(
            status=Status.CANCELLED, cancel_requested=True, finished_at=now,
            message="cancelled before it started",
        ):
            self.refresh_from_db()
            return Status.CANCELLED
        manager.filter(pk=self.pk, status=Status.RUNNING).update(cancel_requested=True)
        self.refresh_from_db()
        return self.status

    def beat(self) -> None:
        """Refresh the heartbeat if the last one is older than HEARTBEAT_EVERY_S; cheap to call."""
        now = time.monotonic()
        if now - self.last_beat < HEARTBEAT_EVERY_S:
            return
        self.last_beat = now
        self.heartbeat_at = timezone.now()
        type(self)._default_manager.filter(pk=self.pk, status=Status.RUNNING).update(
            heartbeat_at=self.heartbeat_at
        )

    def finish(self, status: str, message: str = "") -> None:
        """Record the outcome. A job the reaper failed while it was in fact still running
        (no heartbeat for longer than qr.lease allows) gets its real outcome, and its
        errors keep the reaper's entry plus a line saying it finished after all."""
        stored = self._stored("status", "finished_at")
        if self.status == Status.RUNNING and stored.get("status") == Status.FAILED:
            reaped_at = stored.get("finished_at")
            when = f" at {timezone.localtime(reaped_at):%Y-%m-%d %H:%M:%S %Z}" if reaped_at else ""
            self.add_error(
                f"this job had been marked failed{when} because its worker gave no sign of "
                f"life; it was still running and ended {status}"
            )
        self.status = status
        self.finished_at = timezone.now()
        if message:
            self.message = message[:500]
        self.save(update_fields=["status", "finished_at", "message"])

    def cancel_wanted(self) -> bool:
        return type(self)._default_manager.filter(pk=self.pk, cancel_requested=True).exists()


class ScheduledQuery(models.Model):
    """A saved query the worker runs every `every_minutes`, over the last `last_hours`."""

    name = models.CharField(max_length=64, unique=True)
    remote = models.ForeignKey("nodes.RemoteNode", on_delete=models.CASCADE)
    store = models.ForeignKey("nodes.StoreNode", on_delete=models.CASCADE)
    params = models.JSONField(default=dict, help_text="query options without dates")
    every_minutes = models.PositiveIntegerField(default=60)
    last_hours = models.PositiveIntegerField(default=2)
    move = models.BooleanField(default=True, help_text="retrieve what the query selects")
    enabled = models.BooleanField(default=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def is_due(self, now: Any) -> bool:
        if not self.enabled:
            return False
        if self.last_run_at is None:
            return True
        return (now - self.last_run_at).total_seconds() >= self.every_minutes * 60 - 1


class Query(Job):
    remote = models.ForeignKey("nodes.RemoteNode", null=True, on_delete=models.SET_NULL)
    store = models.ForeignKey("nodes.StoreNode", null=True, blank=True, on_delete=models.SET_NULL)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    scheduled = models.ForeignKey(
        ScheduledQuery, null=True, blank=True, on_delete=models.SET_NULL
    )
    params = models.JSONField(default=dict)
    remote_name = models.CharField(max_length=64, blank=True, default="")
    find_count = models.PositiveIntegerField(default=0, help_text="C-FIND requests sent")
    notes = models.JSONField(
        default=list, blank=True, help_text="cross-checks and re-queries, remote behaviour"
    )
    auto_move = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "queries"

    def __str__(self) -> str:
        return f"query {self.pk} ({self.status})"

    def add_note(self, text: str) -> None:
        self.notes = [*self.notes, text]
        Query.objects.filter(pk=self.pk).update(notes=self.notes)

    def kept_studies(self) -> models.QuerySet[QueryStudy]:
        return self.studies.filter(excluded=False)

    def summary(self) -> dict[str, Any]:
        """Studies to retrieve per modality and excluded counts per reason."""
        per_modality: dict[str, int] = {}
        for study in self.kept_studies():
            for code in study.matched.split(","):
                if code:
                    per_modality[code] = per_modality.get(code, 0) + 1
        excluded: dict[str, int] = {}
        for row in self.studies.filter(excluded=True).values("reason").annotate(
            n=models.Count("id")
        ):
            excluded[row["reason"]] = row["n"]
        series = QuerySeries.objects.filter(study__query=self, excluded=False)
        return {
            "studies": self.studies.count(),
            "to_retrieve": self.kept_studies().count(),
            "series_to_retrieve": series.count(),
            "per_modality": dict(sorted(per_modality.items())),
            "excluded": dict(sorted(excluded.items())),
        }

    def latest_move(self) -> Move | None:
        return self.moves.order_by("-created_at").first()


class QueryStudy(models.Model):
    query = models.ForeignKey(Query, related_name="studies", on_delete=models.CASCADE)
    study_instance_uid = models.CharField(max_length=64)
    study_date = models.CharField(max_length=8, blank=True, default="")
    study_time = models.CharField(max_length=16, blank=True, default="")
    accession_number = models.CharField(max_length=64, blank=True, default="")
    study_description = models.CharField(max_length=256, blank=True, default="")
    station_name = models.CharField(max_length=64, blank=True, default="")
    modalities_in_study = models.CharField(max_length=128, blank=True, default="")
    modalities_rebuilt = models.BooleanField(default=False)
    number_of_series = models.IntegerField(null=True, blank=True)
    matched = models.CharField(
        max_length=64, blank=True, default="", help_text="requested modality groups it matched"
    )
    excluded = models.BooleanField(default=False)
    reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["study_date", "study_time", "id"]

    def __str__(self) -> str:
        return self.study_instance_uid

    @property
    def modalities(self) -> set[str]:
        return {m for m in self.modalities_in_study.split("\\") if m}


class QuerySeries(models.Model):
    SERIES = "series"
    IMAGE = "image"
    study = models.ForeignKey(QueryStudy, related_name="series", on_delete=models.CASCADE)
    series_instance_uid = models.CharField(max_length=64)
    modality = models.CharField(max_length=16, blank=True, default="")
    series_number = models.IntegerField(null=True, blank=True)
    series_description = models.CharField(max_length=256, blank=True, default="")
    station_name = models.CharField(max_length=64, blank=True, default="")
    series_time = models.CharField(max_length=16, blank=True, default="")
    number_of_instances = models.IntegerField(null=True, blank=True)
    images_queried = models.BooleanField(default=False)
    move_level = models.CharField(max_length=6, default=SERIES)
    excluded = models.BooleanField(default=False)
    reason = models.CharField(max_length=200, blank=True, default="")
    # complete / warning / failed / not attempted ("" before the retrieve reaches it)
    move_status = models.CharField(max_length=16, blank=True, default="")
    move_error = models.CharField(max_length=500, blank=True, default="")
    sent = models.PositiveIntegerField(
        default=0, help_text="objects the remote reported sent for this series (last retrieve)"
    )

    class Meta:
        ordering = ["series_number", "id"]
        verbose_name_plural = "query series"

    def __str__(self) -> str:
        return self.series_instance_uid


class QueryImage(models.Model):
    series = models.ForeignKey(QuerySeries, related_name="images", on_delete=models.CASCADE)
    sop_instance_uid = models.CharField(max_length=64, db_index=True)
    sop_class_uid = models.CharField(max_length=64, blank=True, default="")
    instance_number = models.IntegerField(null=True, blank=True)
    excluded = models.BooleanField(default=False)
    reason = models.CharField(max_length=200, blank=True, default="")
    arrival = models.ForeignKey(
        "imports.ImportRecord", null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["instance_number", "id"]

    def __str__(self) -> str:
        return self.sop_instance_uid


class Move(Job):
    """One retrieve of a query's kept rows to a store node (C-MOVE) or to us (C-GET)."""

    query = models.ForeignKey(Query, related_name="moves", on_delete=models.CASCADE)
    store = models.ForeignKey("nodes.StoreNode", null=True, blank=True, on_delete=models.SET_NULL)
    method = models.CharField(max_length=4, default="move")
    destination_aet = models.CharField(max_length=16, blank=True, default="")
    requests = models.PositiveIntegerField(default=0)
    remaining = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    warning = models.PositiveIntegerField(default=0)
    series_failed = models.PositiveIntegerField(default=0)
    expected = models.PositiveIntegerField(default=0, help_text="known instances requested")
    arrived = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(
        default=0, help_text="arrivals whose import succeeded (or found them already imported)"
    )
    not_attempted = models.PositiveIntegerField(
        default=0, help_text="selected instances never requested (the retrieve stopped first)"
    )
    series_not_attempted = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"move {self.pk} of query {self.query_id} ({self.status})"

    def accounting(self) -> Any:
        """qr.arrivals.Tally: every selected instance in one bucket (two queries)."""
        from qr.arrivals import tally

        return tally(self)
