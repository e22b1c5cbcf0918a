"""Import tasks. They run on the import queue of the server that holds the files
(doseport/queue.py): spool paths exist only on the server that received the objects."""

from __future__ import annotations

import logging
from pathlib import Path

from huey import crontab

from doseport.queue import server_task
from imports.service import import_file

log = logging.getLogger(__name__)


@server_task(retries=2, retry_delay=5)
def import_file_task(path: str, source: str, store_node_id: int | None = None) -> int:
    """Import a received or dropped file in the worker; returns the ImportRecord id."""
    return import_file(Path(path), source, store_node_id).pk


@server_task(retries=2, retry_delay=5)
def retry_import_task(record_id: int) -> int | None:
    """Import a failed record's quarantined file again (the Imports page's Retry).

    The task claims the retry with one conditional UPDATE (queued -> started): a second
    delivery of the same task finds nothing to claim and does nothing. If the import
    raises (the database unavailable, say) the claim goes back to queued for Huey's
    retry. Returns the new ImportRecord id, or None when there was nothing to do."""
    from imports.models import ImportRecord, RetryState

    claimed = ImportRecord.objects.filter(
        pk=record_id, retry_state=RetryState.QUEUED
    ).update(retry_state=RetryState.STARTED)
    if claimed != 1:
        log.info("retry of import record %s: already taken, nothing to do", record_id)
        return None
    record = ImportRecord.objects.get(pk=record_id)
    try:
        return import_file(Path(record.kept_path), record.source, record.store_node_id).pk
    except Exception:
        ImportRecord.objects.filter(pk=record_id, retry_state=RetryState.STARTED).update(
            retry_state=RetryState.QUEUED)
        raise


@server_task()
def import_files_task(paths: list[str], source: str, store_node_id: int | None = None) -> int:
    """Import a batch of received files (a store node's dispatcher sends them this way).

    A file whose import raises (the database unavailable, say) is queued again on its
    own, with `import_file_task`'s retries. Returns how many were imported here."""
    done = 0
    for path in paths:
        try:
            import_file(Path(path), source, store_node_id)
            done += 1
        except Exception:
            log.exception("import of %s failed; queued again on its own", Path(path).name)
            import_file_task(path, source, store_node_id)
    return done


@server_task()
def import_swept_task(paths: list[str], source: str, store_node_id: int | None = None) -> int:
    """Import files a sweep found without an import record (store/sweep.py). Each is looked
    at again first: one imported since the sweep (by a task queued before it, or a
    retrieve's own import) has a record, or is gone. Returns how many were imported here."""
    from store.recovery import unrecorded

    left = [p for p in unrecorded([Path(p) for p in paths]) if p.is_file()]
    for path in left:
        import_file(path, source, store_node_id)
    return len(left)


@server_task(periodic=crontab(minute="*/5"))
def sweep_spools_task() -> int:
    """Every spool on this server, of running, stopped and deleted nodes alike: queue the
    files that have no import record (store/sweep.py). Returns how many were queued."""
    from lib import malloc
    from store import sweep

    try:
        return sweep.sweep_periodic()
    finally:
        malloc.trim()  # give back what reading the queue and the spool took


@server_task(periodic=crontab(minute="23"))
def purge_quarantine_task() -> int:
    """Hourly, on each server: delete its quarantined objects older than
    DOSEPORT_QUARANTINE_DAYS (imports/quarantine.py). Returns how many were deleted."""
    from django.utils import timezone

    from imports import quarantine

    return quarantine.purge(timezone.now()).count
