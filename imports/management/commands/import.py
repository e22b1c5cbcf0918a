"""`doseport import PATH... [--watch DIR] [--delete-imported] [--move-failed DIR]`.

Imports files in-process (no worker). The files are the user's: without
--delete-imported / --move-failed every file stays where it is (docs/import.md).
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from imports.batch import SHOWN_SKIPS, Tally, Watcher, import_paths, iter_files
from imports.dispose import UserFiles
from imports.reading import configure_pydicom

BAR_WIDTH = 30
REDRAW_S = 0.1  # a terminal redraw per file costs more than the import on a slow link


class Command(BaseCommand):
    help = (
        "Import dose objects from files and folders (recursive). Files stay where they are "
        "unless --delete-imported or --move-failed is given. Prints a progress bar to "
        "stderr and a summary table; exits 1 if any file failed."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("paths", nargs="*", type=Path, help="files or folders to import")
        parser.add_argument(
            "--watch", type=Path, metavar="DIR",
            help="after PATHs, keep importing complete files written into DIR until "
            "interrupted (default: off)",
        )
        parser.add_argument(
            "--delete-imported", action="store_true",
            help="delete each file once it is imported or found to be a duplicate "
            "(default: leave every file in place)",
        )
        parser.add_argument(
            "--move-failed", type=Path, metavar="DIR",
            help="move files that failed to import into DIR; quarantine keeps a copy "
            "(default: leave them in place)",
        )
        parser.add_argument(
            "--keep", action="store_true",
            help="accepted for older scripts; files are kept anyway unless "
            "--delete-imported is given (default: off)",
        )
        parser.add_argument(
            "--interval", type=float, default=1.0,
            help="--watch: seconds between folder scans, also the settle time (default 1.0)",
        )
        parser.add_argument(
            "--watch-seconds", type=float, default=0.0,
            help="--watch: stop after this many seconds; 0 = until SIGINT/SIGTERM (default 0)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        paths: list[Path] = options["paths"]
        watch: Path | None = options["watch"]
        user_files = check_options(paths, watch, options)
        configure_pydicom()  # the same reading settings as the worker
        self.stopping = False
        self._install_signals()
        tally = Tally()
        files = list(iter_files(paths, tally.skip))
        import_paths(files, tally, user_files, self._progress, lambda: self.stopping)
        if watch is not None and not self.stopping:
            self._watch(watch, user_files, options, tally)
        self._finish_progress()
        self._summary(tally)
        if tally.failed:
            raise CommandError(f"{tally.failed} of {tally.total} files failed to import")

    def _install_signals(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            self.stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

    def _watch(
        self, folder: Path, user_files: UserFiles, options: dict[str, Any], tally: Tally
    ) -> None:
        interval = max(0.05, options["interval"])
        watcher = Watcher(folder, user_files, settle=interval)
        deadline = time.monotonic() + options["watch_seconds"] if options["watch_seconds"] \
            else None
        self.stderr.write(f"watching {folder} (Ctrl-C to stop)")
        while not self.stopping:
            close_old_connections()  # a long-running loop: drop broken/expired connections
            watcher.poll_once(tally, self._progress)
            if deadline is not None and time.monotonic() >= deadline:
                break
            # Sleep in short steps so a signal stops the loop promptly.
            wake = time.monotonic() + interval
            while not self.stopping and time.monotonic() < wake:
                time.sleep(min(0.1, interval))

    def _progress(self, done: int, total: int, tally: Tally) -> None:
        if sys.stderr.isatty():
            now = time.monotonic()
            if done != total and now - getattr(self, "_drawn_at", 0.0) < REDRAW_S:
                return
            self._drawn_at = now
            self.stderr.write("\r" + progress_line(done, total, tally), ending="")
            self._open_line = True
        elif done == total or done % 100 == 0:
            self.stderr.write(progress_line(done, total, tally))

    def _finish_progress(self) -> None:
        if getattr(self, "_open_line", False):
            self.stderr.write("")

    def _summary(self, tally: Tally) -> None:
        width = max(len(name) for name, _ in tally.rows())
        self.stdout.write(f"{'outcome'.ljust(width)}  files")
        for name, count in tally.rows():
            self.stdout.write(f"{name.ljust(width)}  {count:5d}")
        for path, reason in tally.skipped_paths:
            self.stderr.write(f"skipped: {path}: {reason}")
        if sum(tally.skipped.values()) > SHOWN_SKIPS:
            by_reason = "; ".join(f"{reason}: {n}" for reason, n in tally.skipped.items())
            self.stderr.write(f"skipped in all: {by_reason}")
        for record in tally.failures[:20]:
            self.stderr.write(f"failed: {record.path}: {record.error}")


def check_options(paths: list[Path], watch: Path | None, options: dict[str, Any]) -> UserFiles:
    """The user's choices for their files, or a CommandError naming what is wrong."""
    if not paths and watch is None:
        raise CommandError("give at least one PATH or --watch DIR")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise CommandError(f"no such file or folder: {', '.join(missing)}")
    if watch is not None and not watch.is_dir():
        raise CommandError(f"--watch: {watch} is not a folder")
    if options["keep"] and options["delete_imported"]:
        raise CommandError("--keep and --delete-imported contradict each other; give one")
    move_failed: Path | None = options["move_failed"]
    if move_failed is not None:
        if move_failed.exists() and not move_failed.is_dir():
            raise CommandError(f"--move-failed: {move_failed} is not a folder")
        target = move_failed.resolve()
        for folder in [p for p in paths if p.is_dir()] + ([watch] if watch else []):
            if target.is_relative_to(folder.resolve()):
                # Moved files would be found again (and again, in watch mode).
                raise CommandError(
                    f"--move-failed: {move_failed} is inside {folder}, which is imported; "
                    "choose a folder outside it"
                )
    return UserFiles(delete_imported=options["delete_imported"], move_failed=move_failed)


def progress_line(done: int, total: int, tally: Tally) -> str:
    filled = int(BAR_WIDTH * done / total) if total else BAR_WIDTH
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    return f"[{bar}] {done}/{total}  {tally.line()}"
