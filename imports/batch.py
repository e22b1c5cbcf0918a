"""File and folder imports for `doseport import`: walk, import, count; watch a drop folder."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from imports.models import ImportRecord, Outcome, Source
from imports.service import import_file

# Names a writer uses while a file is incomplete (Orthanc/Conquest scripts, rsync, curl).
IN_PROGRESS_SUFFIXES = (".tmp", ".part", ".partial", ".filepart", ".crdownload")


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files named, and every file below folders named (sorted, hidden files skipped)."""
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        yield Path(root) / name
        else:
            yield path


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[ImportRecord] = field(default_factory=list)

    def add(self, record: ImportRecord) -> None:
        self.counts[record.outcome] += 1
        if record.outcome == Outcome.FAILED:
            self.failures.append(record)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def failed(self) -> int:
        return self.counts[Outcome.FAILED]

    def line(self) -> str:
        c = self.counts
        return (
            f"imported {c[Outcome.IMPORTED]}, duplicates {c[Outcome.DUPLICATE]}, "
            f"not importable {c[Outcome.NOT_IMPORTABLE]}, failed {c[Outcome.FAILED]}"
        )

    def rows(self) -> list[tuple[str, int]]:
        c = self.counts
        return [
            ("imported", c[Outcome.IMPORTED]), ("duplicates", c[Outcome.DUPLICATE]),
            ("not importable", c[Outcome.NOT_IMPORTABLE]), ("failed", c[Outcome.FAILED]),
            ("total", self.total),
        ]


Progress = Callable[[int, int, Tally], None]


def import_paths(
    files: list[Path], keep: bool, tally: Tally, progress: Progress | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> Tally:
    for done, path in enumerate(files, start=1):
        if stop():
            break
        tally.add(import_file(path, Source.FILE, keep=keep))
        if progress is not None:
            progress(done, len(files), tally)
    return tally


@dataclass
class Watcher:
    """Imports files that appear in a folder once they are complete.

    A file is complete when its size and modification time did not change between two
    polls at least `settle` seconds apart, or when it is already older than `settle` at
    first sight (a file renamed into the folder). In-progress names are ignored.
    """

    folder: Path
    keep: bool
    settle: float = 1.0
    pending: dict[Path, tuple[int, int, float]] = field(default_factory=dict)
    done: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def complete_files(self, now: float | None = None) -> list[Path]:
        now = time.time() if now is None else now
        ready: list[Path] = []
        present: set[Path] = set()
        for path in iter_files([self.folder]):
            if path.name.lower().endswith(IN_PROGRESS_SUFFIXES):
                continue
            try:
                stat = path.stat()
            except OSError:
                continue  # vanished between listing and stat
            present.add(path)
            signature = (stat.st_size, stat.st_mtime_ns)
            if self.done.get(path) == signature:
                continue
            seen = self.pending.get(path)
            old_enough = now - stat.st_mtime >= self.settle
            if (seen and seen[:2] == signature and now - seen[2] >= self.settle) or (
                seen is None and old_enough
            ):
                ready.append(path)
                self.pending.pop(path, None)
                self.done[path] = signature
            elif seen is None or seen[:2] != signature:
                self.pending[path] = (*signature, now)
        self.done = {p: s for p, s in self.done.items() if p in present}
        self.pending = {p: s for p, s in self.pending.items() if p in present}
        return ready

    def poll_once(self, tally: Tally, progress: Progress | None = None) -> int:
        """One pass: import every complete file; returns how many were imported."""
        ready = self.complete_files()
        for path in ready:
            tally.add(import_file(path, Source.FILE, keep=self.keep))
            if progress is not None:
                progress(tally.total, tally.total, tally)
        return len(ready)
