"""Crash recovery: spooled objects that never got an ImportRecord are enqueued again."""

from __future__ import annotations

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


def sweep(
    node_id: int,
    spool: Spool,
    enqueue: Callable[[Path, int], None],
    newer_than: float = 0.0,
    min_age_s: float = MIN_AGE_S,
) -> list[Path]:
    """Enqueue every spooled file older than `min_age_s` that has no ImportRecord."""
    spool.clean_tmp()
    candidates = spool.spooled(newer_than=newer_than, older_than=time.time() - min_age_s)
    orphans = unrecorded(candidates)
    for path in orphans:
        enqueue(path, node_id)
    if orphans:
        logger.warning(
            "node %s: re-enqueued %d spooled objects without an import record",
            node_id, len(orphans),
        )
    return orphans
