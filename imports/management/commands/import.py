"""`doseport import PATH... [--watch DIR] [--keep]`: import files in-process (no worker)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from imports.batch import Tally, Watcher, import_paths, iter_files
from imports.reading import configure_pydicom

BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Import dose objects from files and folders (recursive). Prints a progress bar to "
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
            "--keep", action="store_true",
            help="keep every file whatever the delete settings say (default: apply them)",
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
        if not paths and watch is None:
            raise CommandError("give at least one PATH or --watch DIR")
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise CommandError(f"no such file or folder: {', '.join(missing)}")
        if watch is not None and not watch.is_dir():
            raise CommandError(f"--watch: {watch} is not a folder")
        configure_pydicom()  # the same reading settings as the worker
        self.stopping = False
        self._install_signals()
        tally = Tally()
        files = list(iter_files(paths))
        import_paths(files, options["keep"], tally, self._progress, lambda: self.stopping)
        if watch is not None and not self.stopping:
            self._watch(watch, options, tally)
        self._finish_progress()
        self._summary(tally)
        if tally.failed:
            raise CommandError(f"{tally.failed} of {tally.total} files failed to import")

    def _install_signals(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            self.stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

    def _watch(self, folder: Path, options: dict[str, Any], tally: Tally) -> None:
        interval = max(0.05, options["interval"])
        watcher = Watcher(folder, keep=options["keep"], settle=interval)
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
        filled = int(BAR_WIDTH * done / total) if total else BAR_WIDTH
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        line = f"[{bar}] {done}/{total}  {tally.line()}"
        if sys.stderr.isatty():
            self.stderr.write("\r" + line, ending="")
            self._open_line = True
        elif done == total or done % 100 == 0:
            self.stderr.write(line)

    def _finish_progress(self) -> None:
        if getattr(self, "_open_line", False):
            self.stderr.write("")

    def _summary(self, tally: Tally) -> None:
        width = max(len(name) for name, _ in tally.rows())
        self.stdout.write(f"{'outcome'.ljust(width)}  files")
        for name, count in tally.rows():
            self.stdout.write(f"{name.ljust(width)}  {count:5d}")
        for record in tally.failures[:20]:
            self.stderr.write(f"failed: {record.path}: {record.error}")
