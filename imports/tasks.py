from __future__ import annotations

import logging
from pathlib import Path

from huey.contrib.djhuey import db_task

from imports.service import import_file

log = logging.getLogger(__name__)


@db_task(retries=2, retry_delay=5)
def import_file_task(path: str, source: str, store_node_id: int | None = None) -> int:
    """Import a received or dropped file in the worker; returns the ImportRecord id."""
    return import_file(Path(path), source, store_node_id).pk


@db_task()
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
