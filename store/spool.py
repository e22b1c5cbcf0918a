"""The node's spool: received objects are durable here before we answer Success.

Layout: SPOOL_DIR/<node id>/in/<YYYYMMDD> (complete objects, <SOP Instance
UID>.<random>.dcm, one folder per UTC day so that a year of kept objects is not one huge
folder and the periodic recovery sweep only lists recent days) and SPOOL_DIR/<node id>/tmp
(files being written, named <pid>-<random>.part, where the file system cannot do better).
A file gets its name in `in/` only after all its bytes are written, and it is answered
Success only once bytes and name are on disk.

An object being written is, where the file system supports it (Linux `O_TMPFILE`: ext4,
xfs, btrfs, tmpfs), an unnamed file in its day folder. When its last byte is written,
`linkat()` gives it its final name in one step, then the file and the folder are fsynced,
and only then is Success answered. There is no temporary name to rename, to clean up after
a crash (the kernel frees an unnamed file), or to make durable. Naming before the fsync
lets one device trip carry the data, the inode and the folder entry (see
`SpoolPart.commit`); the price is that after a power failure (not a process crash: the
bytes are all written before the name is given) in/ can hold the last objects that were
being committed, torn, never acknowledged: the sender sends them again, and a torn copy
that cannot be read fails its import and is moved to quarantine. Elsewhere the object is
written as tmp/<pid>-<random>.part, fsynced, renamed into in/<day> and the folder fsynced.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^0-9A-Za-z.]")
STALE_TMP_S = 3600.0
DAY_S = 86400
O_TMPFILE: int = getattr(os, "O_TMPFILE", 0)
# What open(O_TMPFILE) and linkat() answer where the file system (or /proc) cannot do it.
NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT, errno.EXDEV,
              errno.EPERM, errno.ENOTDIR}


def node_spool_dir(node_id: int) -> Path:
    return Path(settings.SPOOL_DIR) / str(node_id)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _link_unnamed(fd: int, dir_fd: int, name: str) -> None:
    """Give the O_TMPFILE file `fd` the name `name` in the open folder `dir_fd`."""
    # dst_dir_fd makes Python call linkat(); following the /proc link needs no privilege.
    os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd, follow_symlinks=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Spool:
    root: Path
    durable: bool = True
    # None: not known yet (probed by ensure()); False: named temporary files in tmp/.
    unnamed: bool | None = None
    _ready: bool = field(default=False, repr=False)
    _day: Path | None = field(default=None, repr=False)
    _day_ends: float = field(default=0.0, repr=False)

    @classmethod
    def for_node(cls, node_id: int) -> Spool:
        return cls(node_spool_dir(node_id))

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def in_dir(self) -> Path:
        return self.root / "in"

    def ensure(self) -> Path:
        """Create the folders; returns today's folder in in/ (made durable once)."""
        now = time.time()
        if self._ready and self._day is not None and now < self._day_ends:
            return self._day  # every object asks: no path building until the day ends
        day = self.in_dir / time.strftime("%Y%m%d", time.gmtime(now))
        if not self._ready or day != self._day:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            if not day.is_dir():
                day.mkdir(parents=True, exist_ok=True)
                if self.durable:
                    _fsync_dir(self.in_dir)
            if self.unnamed is None:
                self.unnamed = self._can_link_unnamed(day)
            self._ready, self._day = True, day
            self._day_ends = (now // DAY_S + 1) * DAY_S  # the next UTC midnight
        return day

    @staticmethod
    def _can_link_unnamed(folder: Path) -> bool:
        """Can an O_TMPFILE file be created and linked into `folder`? (tried once)"""
        if not O_TMPFILE:
            return False
        probe = f".probe-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            fd = os.open(folder, os.O_WRONLY | O_TMPFILE, 0o640)
        except OSError as exc:
            if exc.errno in NO_TMPFILE:
                return False
            raise
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            _link_unnamed(fd, dir_fd, probe)
        except OSError as exc:
            if exc.errno in NO_TMPFILE:
                return False
            raise
        finally:
            os.close(fd)
            os.close(dir_fd)
        os.unlink(folder / probe)
        return True

    def final_name(self, sop_instance_uid: str) -> str:
        uid = _UNSAFE.sub("_", sop_instance_uid)[:64] or "no-uid"
        return f"{uid}.{secrets.token_hex(6)}.dcm"

    def open_part(self) -> SpoolPart:
        """Start an object in tmp/; the caller writes it and then commits or discards it.

        Raises OSError (spool missing, read-only, no inodes left)."""
        try:
            day = self.ensure()
        except OSError:
            self._ready = False
            raise
        if self.unnamed:
            try:
                fd = os.open(day, os.O_WRONLY | O_TMPFILE, 0o640)
            except OSError:
                self._ready = False
                raise
            return SpoolPart(self, day, None, fd)
        tmp = self.tmp_dir / f"{os.getpid()}-{secrets.token_hex(8)}.part"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except OSError:
            self._ready = False
            raise
        return SpoolPart(self, day, tmp, fd)

    def write(self, chunks: Iterable[bytes], sop_instance_uid: str) -> Path:
        """Write, fsync, rename into in/<day>, fsync that folder. Raises OSError; leaves
        nothing behind."""
        part = self.open_part()
        try:
            for chunk in chunks:
                part.write(chunk)
            return part.commit(sop_instance_uid)
        except BaseException:
            part.discard()
            raise

    def clean_tmp(self) -> int:
        """Remove partial files of dead writers (never acknowledged); returns how many."""
        removed = 0
        if not self.tmp_dir.is_dir():
            return 0
        now = time.time()
        for entry in os.scandir(self.tmp_dir):
            pid_text = entry.name.split("-", 1)[0]
            try:
                pid = int(pid_text)
                old = now - entry.stat().st_mtime > STALE_TMP_S
            except (ValueError, OSError):
                pid, old = 0, True
            if pid == os.getpid() and not old:
                continue
            if old or not _pid_alive(pid):
                try:
                    os.unlink(entry.path)
                    removed += 1
                except OSError:
                    pass
        return removed

    def spooled(self, newer_than: float = 0.0, older_than: float | None = None) -> list[Path]:
        """Files in in/, oldest first, with mtime in (newer_than, older_than).

        Day folders older than `newer_than` are not even listed.
        """
        if not self.in_dir.is_dir():
            return []
        first_day = time.strftime("%Y%m%d", time.gmtime(newer_than)) if newer_than else ""
        found: list[tuple[float, str]] = []
        for day in os.scandir(self.in_dir):
            if not day.is_dir() or day.name < first_day:
                continue
            for entry in os.scandir(day.path):
                if not entry.name.endswith(".dcm"):
                    continue
                try:
                    mtime = entry.stat().st_mtime
                except OSError:
                    continue
                if mtime <= newer_than or (older_than is not None and mtime >= older_than):
                    continue
                found.append((mtime, entry.path))
        found.sort()
        return [Path(p) for _, p in found]

    def iter_spooled(self, newer_than: float = 0.0,
                     older_than: float | None = None) -> Iterator[Path]:
        """Like `spooled()`, one day folder at a time (oldest day first) without holding
        the list: the periodic sweep walks a day's objects every minute, and a list of
        them all made the node's memory follow the number of objects received."""
        if not self.in_dir.is_dir():
            return
        first_day = time.strftime("%Y%m%d", time.gmtime(newer_than)) if newer_than else ""
        days = sorted(d.name for d in os.scandir(self.in_dir) if d.is_dir())
        for day in days:
            if day < first_day:
                continue
            try:
                entries = os.scandir(self.in_dir / day)
            except OSError:
                continue
            with entries:
                for entry in entries:
                    if not entry.name.endswith(".dcm"):
                        continue
                    try:
                        mtime = entry.stat().st_mtime
                    except OSError:
                        continue
                    if mtime > newer_than and (older_than is None or mtime < older_than):
                        yield Path(entry.path)

    def files(self) -> list[Path]:
        """Every complete object in the spool (tests and tools)."""
        return self.spooled()


class SpoolPart:
    """One object on its way into the spool: an unnamed file (or one in tmp/) until
    `commit()` names it in in/<day>.

    `write()` and `commit()` raise OSError; after any error (or `discard()`) nothing of
    the object is left on disk and the part accepts no more calls.
    """

    def __init__(self, spool: Spool, day: Path, tmp: Path | None, fd: int) -> None:
        """`tmp` is the temporary name, or None for an unnamed (O_TMPFILE) file."""
        self.spool = spool
        self.day = day
        self.tmp = tmp
        self.fd: int | None = fd

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.fd is None:
            raise OSError("spool part already closed")
        view = memoryview(data)
        try:
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
        except BaseException:
            self.discard(failed=True)
            raise
        finally:
            view.release()

    def commit(self, sop_instance_uid: str) -> Path:
        """Make the object durable under its final name in in/<day>; returns its path.

        Unnamed file: linkat(), fsync the file, fsync the folder. Named temporary file:
        fsync, rename, fsync the folder. Either way nothing is left on an error."""
        if self.fd is None:
            raise OSError("spool part already closed")
        name = self.spool.final_name(sop_instance_uid)
        final = self.day / name
        try:
            if self.tmp is None:
                # Name first, then one fsync of the file: its data, its inode and (ext4
                # without a journal: via the new entry; with a journal: in the same
                # commit) the folder's block in one trip to the device, where fsync
                # before linkat() needs a second trip for the folder. The folder's own
                # fsync stays, as POSIX asks; it finds the entry already written.
                folder = os.open(self.day, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    _link_unnamed(self.fd, folder, name)
                    if self.spool.durable:
                        os.fsync(self.fd)
                        os.fsync(folder)
                    os.close(self.fd)
                    self.fd = None
                finally:
                    os.close(folder)
            else:
                if self.spool.durable:
                    os.fsync(self.fd)
                os.close(self.fd)
                self.fd = None
                os.rename(self.tmp, final)
                if self.spool.durable:
                    _fsync_dir(self.day)
        except BaseException:
            self.discard(final, failed=True)
            raise
        return final

    def discard(self, final: Path | None = None, failed: bool = False) -> None:
        """Close and remove whatever was written (idempotent). `failed`: a write error,
        so the spool checks its folders again before the next object."""
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None
        for leftover in (self.tmp, final):
            if leftover is None:
                continue
            try:
                leftover.unlink()
            except OSError:
                pass
        if failed:
            self.spool._ready = False
