from __future__ import annotations

from pathlib import Path

from huey.contrib.djhuey import db_task

from imports.service import import_file


@db_task(retries=2, retry_delay=5)
def import_file_task(path: str, source: str, store_node_id: int | None = None) -> int:
    """Import a received or dropped file in the worker; returns the ImportRecord id."""
    return import_file(Path(path), source, store_node_id).pk
