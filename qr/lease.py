"""Fail jobs left "running" by a worker that died: a job's heartbeat is its lease.

A running job records its worker (host:pid) and refreshes `heartbeat_at` on each request
and response (qr.models.Job.beat). The engine can be silent for as long as one DIMSE wait,
so a job is stale only when its heartbeat is older than STALE_AFTER and older than the
longest silence its remote's timeouts allow.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db.models import DateTimeField
from django.db.models.functions import Coalesce
from django.utils import timezone

from nodes.models import RemoteNode
from qr.models import HEARTBEAT_EVERY_S, Job, Move, Query, Status

logger = logging.getLogger(__name__)

STALE_AFTER = dt.timedelta(minutes=5)
STOPPED = "worker stopped while this job was running; start it again"


def longest_silence(remote: RemoteNode | None) -> dt.timedelta:
    """How long a healthy job may go without a heartbeat: STALE_AFTER or the remote's timeouts."""
    if remote is None:
        return STALE_AFTER
    waits = remote.connect_timeout + remote.acse_timeout + remote.dimse_timeout
    waits += remote.network_timeout
    return max(STALE_AFTER, dt.timedelta(seconds=waits + HEARTBEAT_EVERY_S))


def reap_stale(now: dt.datetime) -> list[Job]:
    """Mark stale running queries and moves failed; returns the jobs it failed."""
    reaped: list[Job] = []
    for model, remote_path in ((Query, "remote"), (Move, "query__remote")):
        candidates = (
            model._default_manager.filter(status=Status.RUNNING)
            .annotate(seen=Coalesce("heartbeat_at", "started_at", output_field=DateTimeField()))
            .filter(seen__lt=now - STALE_AFTER)
            .select_related(remote_path)
        )
        for job in candidates:
            remote = job.remote if isinstance(job, Query) else job.query.remote
            seen: dt.datetime = getattr(job, "seen")  # noqa: B009 (annotation, not a field)
            if seen < now - longest_silence(remote) and _fail(job, now):
                reaped.append(job)
    return reaped


def _fail(job: Job, now: dt.datetime) -> bool:
    """Fail `job` unless it finished or beat since we read it (then its worker is alive)."""
    seen = job.heartbeat_at or job.started_at
    error = (
        f"{STOPPED} (worker {job.worker or 'unknown'}, last heartbeat "
        f"{timezone.localtime(seen):%Y-%m-%d %H:%M:%S %Z})" if seen else STOPPED
    )
    updated = type(job)._default_manager.filter(
        pk=job.pk, status=Status.RUNNING, heartbeat_at=job.heartbeat_at
    ).update(status=Status.FAILED, finished_at=now, message=STOPPED, errors=[*job.errors, error])
    if updated:
        logger.warning("%s %s: %s", type(job).__name__.lower(), job.pk, error)
    return bool(updated)
