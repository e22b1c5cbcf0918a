"""Quarantine retention: failed objects are kept DOSEPORT_QUARANTINE_DAYS, then deleted.

imports/dispose.py moves (or copies) a file that failed to import into
QUARANTINE_DIR/YYYYMMDD/, the UTC day it was quarantined; that day is the object's age
(a file's own time can be far older: `doseport import` keeps the user's). A periodic task
of each server (imports/tasks.py) deletes the day folders older than the limit and clears
`kept_path` of their import records, so the Imports page no longer offers a retry.
Each server has its own data folder, so each purges and counts its own quarantine.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache

from imports.models import ImportRecord

log = logging.getLogger(__name__)

DAY_FOLDER = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
SUMMARY_CACHE_KEY = "doseport.quarantine.summary"
SUMMARY_CACHE_S = 60


@dataclass(frozen=True)
class Summary:
    """What the quarantine holds: objects, bytes, the oldest quarantine day."""

    count: int = 0
    size: int = 0
    oldest: date | None = None
    days: int = 30  # DOSEPORT_QUARANTINE_DAYS, for the page

    @property
    def purge_on(self) -> date | None:
        """The day the oldest objects go (the day after they pass the limit)."""
        if self.oldest is None:
            return None
        return self.oldest + timedelta(days=self.days + 1)


@dataclass(frozen=True)
class Purged:
    count: int = 0
    size: int = 0
    folders: int = 0


def _root(root: Path | None) -> Path:
    return Path(settings.QUARANTINE_DIR) if root is None else root


def day_folders(root: Path | None = None) -> list[tuple[date, Path]]:
    """The dated folders of the quarantine, oldest first (anything else is left alone)."""
    found: list[tuple[date, Path]] = []
    try:
        entries = list(os.scandir(_root(root)))
    except FileNotFoundError:
        return []
    for entry in entries:
        match = DAY_FOLDER.match(entry.name)
        if not match or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            day = date(*(int(part) for part in match.groups()))
        except ValueError:
            continue
        found.append((day, Path(entry.path)))
    return sorted(found)


def _files(folder: Path) -> list[os.DirEntry[str]]:
    try:
        return [e for e in os.scandir(folder) if not e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _size(entry: os.DirEntry[str]) -> int:
    try:
        return entry.stat(follow_symlinks=False).st_size
    except OSError:
        return 0


def summary(root: Path | None = None) -> Summary:
    count = size = 0
    oldest: date | None = None
    for day, folder in day_folders(root):
        files = _files(folder)
        if files and oldest is None:
            oldest = day
        count += len(files)
        size += sum(_size(e) for e in files)
    return Summary(count, size, oldest, settings.QUARANTINE_DAYS)


def cached_summary() -> Summary:
    """`summary()` at most a minute old: the page that shows it polls."""
    found = cache.get(SUMMARY_CACHE_KEY)
    if isinstance(found, Summary):
        return found
    found = summary()
    cache.set(SUMMARY_CACHE_KEY, found, SUMMARY_CACHE_S)
    return found


def purge(now: datetime, days: int | None = None, root: Path | None = None) -> Purged:
    """Delete the day folders quarantined more than `days` (DOSEPORT_QUARANTINE_DAYS) ago."""
    days = settings.QUARANTINE_DAYS if days is None else days
    cutoff = (now - timedelta(days=days)).date()
    count = size = folders = 0
    for day, folder in day_folders(root):
        if day >= cutoff:
            break
        for entry in _files(folder):
            entry_size = _size(entry)
            try:
                os.unlink(entry.path)
            except OSError as exc:
                log.warning("quarantine: cannot delete %s: %s", entry.name, exc.strerror)
                continue
            count += 1
            size += entry_size
        ImportRecord.objects.filter(kept_path__startswith=f"{folder}{os.sep}").update(
            kept_path=""
        )
        try:
            folder.rmdir()
            folders += 1
        except OSError as exc:  # something we could not delete is still in it
            log.warning("quarantine: cannot remove %s: %s", folder, exc.strerror)
    if count or folders:
        cache.delete(SUMMARY_CACHE_KEY)
        log.info("quarantine: deleted %d objects (%d bytes) quarantined before %s "
                 "(DOSEPORT_QUARANTINE_DAYS=%d)", count, size, cutoff.isoformat(), days)
    return Purged(count, size, folders)
