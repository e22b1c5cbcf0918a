"""The data folder is private: folders 0700, files 0600.

Every doseport command calls `prepare_home()` first (doseport/cli.py), after setting the
umask to 077, so that everything it writes is private too. Importing the settings writes
nothing; the folder, the secret key and the identity key are created here.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

SECRET_KEY_FILE = "secret_key"
IDENTITY_KEY_FILE = "identity_key"
PRIVATE_UMASK = 0o077
# Group and other bits: any of them makes a path readable (or worse) by other users.
SHARED_BITS = 0o077
SUMMARY_NAMES = 5
# Set by prepare_home(): the log file is written only by processes that prepared the
# folder, so that loading Django for `--help` or type checking writes no log line.
prepared: Path | None = None


@dataclass
class Tightened:
    """What `tighten()` changed: (path, old mode, new mode), and paths it could not change."""

    changed: list[tuple[Path, int, int]] = field(default_factory=list)
    failed: list[Path] = field(default_factory=list)

    def summary(self, root: Path) -> str:
        """One log line; empty when nothing was changed or refused."""
        parts = []
        if self.changed:
            names = ", ".join(
                f"{_relative(path, root)} {old:04o}->{new:04o}"
                for path, old, new in self.changed[:SUMMARY_NAMES]
            )
            more = len(self.changed) - SUMMARY_NAMES
            parts.append(
                f"removed group/other access from {len(self.changed)} paths "
                f"({names}{f' and {more} more' if more > 0 else ''})"
            )
        if self.failed:
            parts.append(
                f"could not change {len(self.failed)} paths owned by another user "
                f"(first: {_relative(self.failed[0], root)})"
            )
        return f"data folder {root}: " + "; ".join(parts) if parts else ""


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root)) or "."
    except ValueError:
        return str(path)


def _tighten_one(path: Path, result: Tightened) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return  # removed meanwhile (a spool file imported by a running worker)
    if stat.S_ISLNK(info.st_mode) or not info.st_mode & SHARED_BITS:
        return  # a link's target may be anyone's; chmod would follow it
    old = stat.S_IMODE(info.st_mode)
    new = old & ~SHARED_BITS
    try:
        path.chmod(new)
    except FileNotFoundError:
        return
    except PermissionError:
        result.failed.append(path)
        return
    result.changed.append((path, old, new))


def tighten(root: Path, extra: Iterable[Path] = ()) -> Tightened:
    """Remove group and other permission bits under `root` (and from `extra` files)."""
    result = Tightened()
    if os.name == "nt":  # mode bits mean little there; the folder's ACL decides
        return result
    _tighten_one(root, result)
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            _tighten_one(Path(folder) / name, result)
    for path in extra:
        _tighten_one(path, result)
    return result


def create_secret_file(path: Path) -> bool:
    """Write a new random key to `path` (mode 0600) unless it exists; True when written.

    Written to a temporary file and linked into place, so that two processes starting at
    once never see a half-written key: the second link fails and that process keeps the
    first one's key.
    """
    if path.exists():
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_urlsafe(50) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def sqlite_files(database: Path) -> list[Path]:
    return [database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))]


def prepare_home(home: Path, database: Path | None = None) -> Tightened:
    """Create or tighten the data folder and create the keys that are missing.

    `database` is the SQLite file when it lives outside `home` (DOSEPORT_SQLITE).
    """
    global prepared
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    outside = [] if database is None or database.is_relative_to(home) else sqlite_files(database)
    result = tighten(home, outside)
    create_secret_file(home / SECRET_KEY_FILE)
    create_secret_file(home / IDENTITY_KEY_FILE)
    prepared = home
    return result
