"""Large web exports: create the job, write the file in the worker, purge expired files."""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import QueryDict
from django.utils import timezone

from dose.export_job import ExportJob, exports_dir
from dose.forms import StudyFilterForm
from dose.web_export import ExportSpec, write_export

log = logging.getLogger(__name__)
FILTER_KEYS = ("modality", "date_from", "date_to", "station", "accession")
# A queued or running job that has not moved for this long lost its worker.
STALE_AFTER = dt.timedelta(hours=1)


def filter_query(params: QueryDict) -> str:
    """The Studies page's filters alone (no sort, page, format or layout) as a query string."""
    query = QueryDict(mutable=True)
    for key in FILTER_KEYS:
        value = params.get(key, "")
        if value:
            query[key] = value
    return query.urlencode()


def spec_of(job: ExportJob) -> ExportSpec:
    """The job's export, its filters parsed again exactly as the Studies page parses them."""
    form = StudyFilterForm(QueryDict(job.query))
    form.is_valid()
    return ExportSpec(form.study_filter(), job.fmt, job.layout, job.identity)


def create_job(spec: ExportSpec, query: str, user: Any, rows_total: int) -> ExportJob:
    now = timezone.now()
    return ExportJob.objects.create(
        user=user if getattr(user, "is_authenticated", False) else None,
        fmt=spec.fmt, layout=spec.layout, query=query, identity=spec.identity,
        rows_total=rows_total, download_name=spec.file_name(timezone.localtime(now)),
        created_at=now, updated_at=now,
    )


def _private_file(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def run_job(job_id: int) -> str:
    """The worker's part: write the file (0600) under a temporary name, then rename it."""
    claimed = ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.QUEUED).update(
        status=ExportJob.Status.RUNNING, started_at=timezone.now(), updated_at=timezone.now()
    )
    if not claimed:
        return "skipped"
    job = ExportJob.objects.get(pk=job_id)
    spec = spec_of(job)
    folder = exports_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}.{spec.extension}"
    part = folder / f"{name}.part"
    try:
        with os.fdopen(_private_file(part), "wb") as out:
            rows = write_export(spec, out, job.set_progress)
        os.replace(part, folder / name)
    except Exception as exc:
        part.unlink(missing_ok=True)
        log.exception("export %d failed", job.pk)
        _finish(job, ExportJob.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
        return "failed"
    job.file_name = name
    job.rows_done = rows
    job.size_bytes = (folder / name).stat().st_size
    _finish(job, ExportJob.Status.DONE)
    log.info("export %d: %d rows, %d bytes", job.pk, rows, job.size_bytes)
    return "done"


def _finish(job: ExportJob, status: str, error: str = "") -> None:
    now = timezone.now()
    job.status = status
    job.error = error
    job.finished_at = job.updated_at = now
    if status == ExportJob.Status.DONE:
        job.expires_at = now + dt.timedelta(hours=settings.EXPORT_KEEP_HOURS)
    job.save()


def purge(now: dt.datetime) -> int:
    """Expire done jobs past their time, fail jobs that lost their worker, and delete
    files no job owns (a crash's leftovers) once they are as old as a kept export."""
    expired = list(ExportJob.objects.filter(
        status=ExportJob.Status.DONE, expires_at__lte=now
    ))
    for job in expired:
        job.expire()
    ExportJob.objects.filter(
        status__in=(ExportJob.Status.QUEUED, ExportJob.Status.RUNNING),
        updated_at__lt=now - STALE_AFTER,
    ).update(
        status=ExportJob.Status.FAILED, finished_at=now,
        error="The worker stopped or never took this export; is `doseport worker` running?",
    )
    return len(expired) + _delete_orphans(now)


def _delete_orphans(now: dt.datetime) -> int:
    folder = exports_dir()
    if not folder.is_dir():
        return 0
    owned = set(ExportJob.objects.exclude(file_name="").values_list("file_name", flat=True))
    cutoff = (now - dt.timedelta(hours=settings.EXPORT_KEEP_HOURS)).timestamp()
    deleted = 0
    for path in folder.iterdir():
        if path.name not in owned and path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            deleted += 1
    return deleted
