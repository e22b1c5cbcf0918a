"""ExportJob: a large export written by the worker into DOSEPORT_HOME/exports.

The file is private (0600) and its download link works until `expires_at`; the periodic
purge (dose/tasks.py) then deletes the file and marks the job expired.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone


def exports_dir() -> Path:
    return Path(settings.HOME) / "exports"


class ExportJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"
        EXPIRED = "expired", "expired"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    fmt = models.CharField("format", max_length=4)
    layout = models.CharField(max_length=5)
    query = models.CharField(
        max_length=2000, blank=True, default="",
        help_text="the Studies page's filters as a query string (read again by the worker)",
    )
    identity = models.BooleanField(default=False, help_text="patient identity columns")
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    file_name = models.CharField(
        max_length=100, blank=True, default="", help_text="name in DOSEPORT_HOME/exports"
    )
    download_name = models.CharField(max_length=200, blank=True, default="")
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)

    # Declared because django-stubs only adds these to models of an app's models module.
    objects: ClassVar[models.Manager[ExportJob]] = models.Manager()
    user_id: int | None

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.status})"

    @property
    def done(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED, self.Status.EXPIRED)

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.rows_total:
            return 0
        return min(99, self.rows_done * 100 // self.rows_total)

    @property
    def path(self) -> Path | None:
        return exports_dir() / self.file_name if self.file_name else None

    def downloadable(self) -> bool:
        """Done, not yet expired, and the file still there."""
        path = self.path
        return (
            self.status == self.Status.DONE and self.expires_at is not None
            and self.expires_at > timezone.now() and path is not None and path.is_file()
        )

    def set_progress(self, rows_done: int) -> None:
        """One cheap UPDATE; the job page polls it."""
        self.rows_done = rows_done
        type(self).objects.filter(pk=self.pk).update(rows_done=rows_done, updated_at=timezone.now())

    def expire(self) -> None:
        """Delete the file; the download link answers 404 from now on."""
        path = self.path
        if path is not None:
            path.unlink(missing_ok=True)
        self.status = self.Status.EXPIRED
        self.file_name = ""
        self.save(update_fields=["status", "file_name"])
