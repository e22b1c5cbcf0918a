"""Huey jobs of the dose app: large web exports and the purge of expired export files."""

from __future__ import annotations

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from dose import export_jobs
from dose.export_job import ExportJob


@db_task()
def export_task(job_id: int) -> str:
    return export_jobs.run_job(job_id)


@db_periodic_task(crontab(minute="*/10"))
def purge_exports_task() -> int:
    """Expired export files are deleted within ten minutes of their expiry."""
    return export_jobs.purge(timezone.now())


def queue_export(job: ExportJob) -> None:
    export_task(job.pk)
