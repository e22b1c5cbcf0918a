"""Huey jobs: query, move, the scheduler tick and the reaper. Bodies live in qr.jobs/lease.

Arrivals need no periodic pass: each import links itself (qr.arrivals.link_import)."""

from __future__ import annotations

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from qr import jobs, lease


@db_task()
def query_task(query_id: int) -> str:
    return jobs.execute_query(query_id)


@db_task()
def move_task(move_id: int) -> str:
    return jobs.execute_move(move_id)


@db_task()
def probe_task(node_id: int) -> bool | None:
    """Probe a remote node (qr.probe); None when the node is gone."""
    from qr.probe import probe_by_id

    return probe_by_id(node_id)


@db_periodic_task(crontab(minute="*"))
def scheduled_queries_task() -> int:
    queries = jobs.due_schedules(timezone.now())
    for query in queries:
        query_task(query.pk)
    return len(queries)


@db_periodic_task(crontab(minute="*"))
def reap_stale_jobs_task() -> int:
    """Fail queries and moves whose worker died mid-job (no heartbeat, see qr.lease)."""
    return len(lease.reap_stale(timezone.now()))
