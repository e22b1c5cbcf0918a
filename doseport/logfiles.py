"""The log file, DOSEPORT_HOME/logs/doseport.log, shared by every doseport process.

RotatingFileHandler assumes one writer. Here several processes (web, worker, stores and
one per store node) append to one file, so before each record the handler checks that its
file is still the one at the path (another process may have rotated it) and rotates under
an exclusive lock (fcntl, where it exists), only when the file at the path is still its own
and still too big.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from io import TextIOWrapper
from logging import LogRecord
from logging.handlers import RotatingFileHandler
from pathlib import Path

from lib import private

try:
    import fcntl
except ImportError:  # Windows: rotation without the cross-process lock
    fcntl = None  # type: ignore[assignment]


class SharedRotatingFileHandler(RotatingFileHandler):
    def __init__(self, filename: str, maxBytes: int = 0, backupCount: int = 0,  # noqa: N803
                 encoding: str | None = "utf-8") -> None:
        # delay: the folder and file are made on the first record, not when LOGGING is read.
        super().__init__(filename, maxBytes=maxBytes, backupCount=backupCount,
                         encoding=encoding, delay=True)

    def _open(self) -> TextIOWrapper:
        Path(self.baseFilename).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        stream = os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)
        assert isinstance(stream, TextIOWrapper)
        return stream

    def _moved(self) -> bool:
        """True when the path no longer names the file this handler writes to."""
        if self.stream is None:
            return False
        try:
            on_disk = os.stat(self.baseFilename)
        except FileNotFoundError:
            return True
        mine = os.fstat(self.stream.fileno())
        return (on_disk.st_dev, on_disk.st_ino) != (mine.st_dev, mine.st_ino)

    def _reopen(self) -> None:
        if self.stream is not None:
            self.stream.close()
        self.stream = self._open()

    def emit(self, record: LogRecord) -> None:
        if private.prepared is None:
            return  # Django loaded for `--help` or type checking: write nothing
        try:
            if self._moved():
                self._reopen()
        except OSError:
            self.handleError(record)
            return
        super().emit(record)

    def shouldRollover(self, record: LogRecord) -> int:  # noqa: N802 (logging's name)
        if self.maxBytes <= 0:
            return False
        if self.stream is None:
            self.stream = self._open()
        return os.fstat(self.stream.fileno()).st_size >= self.maxBytes

    def doRollover(self) -> None:  # noqa: N802 (logging's name)
        with self._lock_file():
            if self._moved():
                self._reopen()  # another process has just rotated it
                return
            super().doRollover()
            if self.stream is None:
                self.stream = self._open()

    @contextlib.contextmanager
    def _lock_file(self) -> Iterator[None]:
        if fcntl is None:
            yield
            return
        fd = os.open(self.baseFilename + ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
