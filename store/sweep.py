"""Sweeps for every spool on this server: files without an import record are queued again.

A running node sweeps its own spool (store/recovery.py via store/node.py). The spools of
stopped and deleted nodes, and the C-GET spool of retrieves whose node was deleted, have
no process of their own: the worker sweeps them all every few minutes
(`imports.tasks.sweep_spools_task`) and `doseport store sweep [NODE_ID]` does it on demand.
Only this server's spools are looked at (each server's spool is its own disk), and the
files go to this server's import queue.

Double imports are avoided twice over: paths already waiting on the import queue are not
queued again (one read of the queue per sweep, skipped when the queue is very long), and
the swept-import task looks again, just before importing, for an import record and for the
file itself (a file imported meanwhile is gone or recorded).
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from store import recovery
from store.spool import Spool

logger = logging.getLogger(__name__)

# Younger files may still be on their way through the queue or a retrieve's own import.
MIN_AGE_S = 300.0
# After the first sweep of a worker's life (every file), periodic sweeps look at files of
# the last two days: a file that old has been looked at by a sweep already.
WINDOW_S = 2 * 24 * 3600.0
# The C-GET spool of retrieves whose store node was deleted (qr/getstore.py NO_NODE_SPOOL).
NO_NODE_SPOOL = "get"
TASK_BATCH = 32

_full_sweep_done = False


@dataclass(frozen=True)
class SpoolDir:
    """One spool folder on this server; `node_id` None for the no-node C-GET spool."""

    name: str
    node_id: int | None

    @property
    def spool(self) -> Spool:
        return Spool(Path(settings.SPOOL_DIR) / self.name)

    @property
    def label(self) -> str:
        return f"node {self.node_id}" if self.node_id is not None else "retrieves without a node"


def local_spools() -> list[SpoolDir]:
    """The spool folders on this server, of existing and deleted nodes alike."""
    root = Path(settings.SPOOL_DIR)
    try:
        names = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    except OSError:
        return []
    found = [SpoolDir(name, int(name)) for name in names if name.isdigit()]
    if NO_NODE_SPOOL in names:
        found.append(SpoolDir(NO_NODE_SPOOL, None))
    return found


def spool_of(node_id: int) -> SpoolDir:
    return SpoolDir(str(node_id), node_id)


def _unrecorded(spool: Spool, newer_than: float = 0.0,
                older_than: float | None = None) -> Iterator[list[Path]]:
    """Batches of spooled files without an import record (memory bounded per batch)."""
    candidates = spool.iter_spooled(newer_than=newer_than, older_than=older_than)
    while batch := list(itertools.islice(candidates, recovery.BATCH)):
        found = recovery.unrecorded(batch)
        if found:
            yield found


def pending(node_id: int) -> tuple[int, int]:
    """(count, bytes) of the node's received files on this server that have no import
    record yet: what deleting the node would leave behind un-imported."""
    count = size = 0
    for batch in _unrecorded(spool_of(node_id).spool):
        for path in batch:
            try:
                size += path.stat().st_size
            except OSError:
                continue  # imported (and removed) meanwhile
            count += 1
    return count, size


def _existing_node(node_id: int | None) -> int | None:
    """The node id an import record may point at (None for a deleted node)."""
    from nodes.models import StoreNode

    if node_id is None or not StoreNode.objects.filter(pk=node_id).exists():
        return None
    return node_id


def sweep_spool(spool_dir: SpoolDir, min_age_s: float = MIN_AGE_S, newer_than: float = 0.0,
                queued: set[str] | None = None) -> int:
    """Queue the spool's unrecorded files older than `min_age_s` on this server's import
    queue, leaving out `queued` (paths already waiting). Returns how many were queued."""
    from imports.models import Source
    from imports.tasks import import_swept_task

    spool = spool_dir.spool
    spool.clean_tmp()
    node_id = _existing_node(spool_dir.node_id)
    source = Source.STORE if spool_dir.node_id is not None else Source.QUERY
    total = 0
    older_than = time.time() - min_age_s
    for batch in _unrecorded(spool, newer_than=newer_than, older_than=older_than):
        paths = [str(p) for p in batch if queued is None or str(p) not in queued]
        for start in range(0, len(paths), TASK_BATCH):
            import_swept_task(paths[start:start + TASK_BATCH], str(source), node_id)
        total += len(paths)
    if total:
        logger.warning("%s: queued %d spooled objects without an import record",
                       spool_dir.label, total)
    return total


def sweep(node_id: int | None = None, min_age_s: float = MIN_AGE_S,
          newer_than: float = 0.0) -> dict[str, int]:
    """Sweep one node's spool on this server, or every spool here. Returns queued counts by
    spool folder name."""
    from doseport.queue import queued_import_paths

    spools = [spool_of(node_id)] if node_id is not None else local_spools()
    queued = queued_import_paths()
    if queued is None:
        # More tasks waiting than are worth reading: the files are most likely among them,
        # and queuing them all again would double a lagging worker's backlog. The next
        # sweep, with a shorter queue, looks again.
        logger.info("import queue too long to compare; sweep skipped this time")
        return {}
    return {s.name: sweep_spool(s, min_age_s, newer_than, queued) for s in spools}


def sweep_periodic() -> int:
    """The worker's periodic sweep: everything the first time, then the last WINDOW_S."""
    global _full_sweep_done
    newer_than = 0.0 if not _full_sweep_done else time.time() - WINDOW_S
    total = sum(sweep(newer_than=newer_than).values())
    _full_sweep_done = True
    return total
