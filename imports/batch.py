"""File and folder imports for `doseport import`: walk, import, count; watch a drop folder.

The files are the user's (imports/dispose.py): nothing here moves or deletes one unless
`UserFiles` asks. Walking a folder never leaves it: symbolic links met inside are skipped
with a reason (a link to a file in the folder would import that file twice; a link out of
it reads what the user did not hand over), and so is anything that is not a regular file
(a FIFO would block the import forever).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from imports import classify
from imports.dispose import UserFiles
from imports.extractors import extract
from imports.models import ImportRecord, Outcome, Source
from imports.service import import_file, read_dataset

# Names a writer uses while a file is incomplete (Orthanc/Conquest scripts, rsync, curl).
IN_PROGRESS_SUFFIXES = (".tmp", ".part", ".partial", ".filepart", ".crdownload")
LINK_OUTSIDE = "symbolic link out of the folder (not followed)"
LINK_INSIDE = "symbolic link within the folder (its target is imported under its own name)"
LINK_FOLDER = "symbolic link to a folder (not followed)"
NOT_REGULAR = "not a regular file"
SHOWN_SKIPS = 20

Skip = Callable[[Path, str], None]


def iter_files(paths: Iterable[Path], skipped: Skip | None = None) -> Iterator[Path]:
    """Files named, and every regular file below folders named (sorted, hidden skipped).

    A PATH given by name is taken as it is, even a symbolic link: the user named it.
    """
    for path in paths:
        if path.is_dir():
            yield from _walk(path, skipped or (lambda p, r: None))
        else:
            yield path


def _walk(top: Path, skipped: Skip) -> Iterator[Path]:
    root = top.resolve()
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            skipped(folder, f"cannot list folder ({exc.strerror})")
            continue
        subfolders: list[Path] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_symlink():
                skipped(path, _link_reason(path, root))
            elif entry.is_dir(follow_symlinks=False):
                subfolders.append(path)
            elif entry.is_file(follow_symlinks=False):
                yield path
            else:
                skipped(path, NOT_REGULAR)
        stack.extend(reversed(subfolders))  # depth first, in name order


def _link_reason(path: Path, root: Path) -> str:
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling or a loop: nothing to follow in the folder
        return LINK_OUTSIDE
    if target.is_dir():
        return LINK_FOLDER
    return LINK_INSIDE if target.is_relative_to(root) else LINK_OUTSIDE


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[ImportRecord] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_paths: list[tuple[Path, str]] = field(default_factory=list)

    def add(self, record: ImportRecord) -> None:
        self.counts[record.outcome] += 1
        if record.outcome == Outcome.FAILED:
            self.failures.append(record)

    def skip(self, path: Path, reason: str) -> None:
        self.skipped[reason] += 1
        if len(self.skipped_paths) < SHOWN_SKIPS:
            self.skipped_paths.append((path, reason))

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
        rows = [
            ("imported", c[Outcome.IMPORTED]), ("duplicates", c[Outcome.DUPLICATE]),
            ("not importable", c[Outcome.NOT_IMPORTABLE]), ("failed", c[Outcome.FAILED]),
            ("total", self.total),
        ]
        if self.skipped:
            rows.append(("skipped", sum(self.skipped.values())))
        return rows


Progress = Callable[[int, int, Tally], None]


def import_paths(
    files: list[Path], tally: Tally, user_files: UserFiles | None = None,
    progress: Progress | None = None, stop: Callable[[], bool] = lambda: False,
) -> Tally:
    for done, path in enumerate(files, start=1):
        if stop():
            break
        tally.add(import_file(path, Source.FILE, user_files=user_files))
        if progress is not None:
            progress(done, len(files), tally)
    return tally


@dataclass
class Watcher:
    """Imports files that appear in a folder once they are complete.

    A file is complete when its size and modification time did not change between two
    polls at least `settle` seconds apart, or when it is already older than `settle` at
    first sight (a file renamed into the folder). In-progress names are ignored.

    A writer may pause for longer than `settle`: a file that is then unreadable (cut
    short, no DICOM header yet) and was written less than `patience` seconds ago is not
    imported and not recorded; it is read again after another `settle` seconds or when it
    changes. Only a file that stayed unreadable and unchanged for `patience` seconds is
    imported and so recorded as failed.
    """

    folder: Path
    user_files: UserFiles = field(default_factory=UserFiles)
    settle: float = 1.0
    patience: float = 30.0
    pending: dict[Path, tuple[int, int, float]] = field(default_factory=dict)
    done: dict[Path, tuple[int, int]] = field(default_factory=dict)
    reported: set[Path] = field(default_factory=set)

    def complete_files(self, now: float | None = None, skipped: Skip | None = None) -> list[Path]:
        now = time.time() if now is None else now
        ready: list[Path] = []
        present: set[Path] = set()
        for path in iter_files([self.folder], skipped):
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

    def poll_once(
        self, tally: Tally, progress: Progress | None = None, now: float | None = None
    ) -> int:
        """One pass: import every complete file; returns how many were taken up."""
        now = time.time() if now is None else now

        def skipped(path: Path, reason: str) -> None:
            if path not in self.reported:  # say it once, not at every poll
                self.reported.add(path)
                tally.skip(path, reason)

        ready = [p for p in self.complete_files(now, skipped) if not self._still_writing(p, now)]
        for path in ready:
            tally.add(import_file(path, Source.FILE, user_files=self.user_files))
            if progress is not None:
                progress(tally.total, tally.total, tally)
        return len(ready)

    def _still_writing(self, path: Path, now: float) -> bool:
        """Unreadable and written recently: look again later instead of failing it."""
        try:
            stat = path.stat()
        except OSError:
            self.done.pop(path, None)  # gone again: nothing to import or record
            return True
        if now - stat.st_mtime >= max(self.patience, 3 * self.settle) or _readable(path):
            return False
        self.done.pop(path, None)
        self.pending[path] = (stat.st_size, stat.st_mtime_ns, now)
        return True


def _readable(path: Path) -> bool:
    """Would the import read this file? (Header, and the dose content for a dose object:
    a file cut inside its content tree reads without complaint up to the extractor.)"""
    try:
        ds = read_dataset(path)
        verdict = classify.classify(ds)
        if verdict.importable:
            extract(verdict.kind or "", ds)
    except Exception:  # whatever the reason, the import itself will say it once it is due
        return False
    return True
