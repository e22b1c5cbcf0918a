"""Crash recovery: spooled objects that never got an ImportRecord are enqueued again."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from pathlib import Path

from imports.models import ImportRecord
from store.spool import Spool

logger = logging.getLogger(__name__)

# A younger file may still be on its way through the queue: leave it to the worker.
MIN_AGE_S = 60.0
BATCH = 500


def unrecorded(paths: list[Path]) -> list[Path]:
    """The paths no ImportRecord mentions (as the file read or the file kept)."""
    left: list[Path] = []
    for start in range(0, len(paths), BATCH):
        batch = [str(p) for p in paths[start:start + BATCH]]
        seen = set(ImportRecord.objects.filter(path__in=batch).values_list("path", flat=True))
        seen |= set(
            ImportRecord.objects.filter(kept_path__in=batch).values_list("kept_path", flat=True)
        )
        left.extend(Path(p) for p in batch if p not in seen)
    return left


def sweep_at_start(node_id: int, spool: Spool, enqueue: Callable[[Path, int], None]) -> int:
    """A node's sweep when it starts: every unrecorded file not waiting on the import
    queue, whatever its age (no file is on its way from this new process yet). When the
    queue is too long to read, only files older than MIN_AGE_S. Returns how many."""
    from doseport.queue import queued_import_paths

    try:
        queued = queued_import_paths()
    except Exception:  # the queue may be briefly unavailable: fall back on the age rule
        logger.warning("node %s: could not read the import queue; sweeping old files only",
                       node_id)
        queued = None
    if queued is None:
        return len(sweep(node_id, spool, enqueue))
    return len(sweep(node_id, spool, enqueue, min_age_s=0.0, skip=queued))


def sweep(
    node_id: int,
    spool: Spool,
    enqueue: Callable[[Path, int], None],
    newer_than: float = 0.0,
    min_age_s: float = MIN_AGE_S,
    skip: set[str] | None = None,
) -> list[Path]:
    """Enqueue every spooled file older than `min_age_s` that has no ImportRecord.

    Files are looked at BATCH at a time, so the sweep's memory does not grow with the
    number of objects in the spool (store.spool.Spool.iter_spooled)."""
    spool.clean_tmp()
    candidates = spool.iter_spooled(newer_than=newer_than, older_than=time.time() - min_age_s)
    orphans: list[Path] = []
    while batch := list(itertools.islice(candidates, BATCH)):
        found = unrecorded(batch)
        if skip:
            found = [path for path in found if str(path) not in skip]
        for path in found:
            enqueue(path, node_id)
        orphans += found
    if orphans:
        logger.warning(
            "node %s: re-enqueued %d spooled objects without an import record",
            node_id, len(orphans),
        )
    return orphans
