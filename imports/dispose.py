"""What becomes of a file after its import: kept, deleted, moved or quarantined.

Spool files (store node, query-retrieve) are Doseport's own: the site's delete settings
apply after a successful import and a failure is moved into quarantine. A file given to
`doseport import` is the user's: it stays where it is unless the user asked otherwise
(`UserFiles`), and a failure is only copied into quarantine, where the Imports page can
retry it.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from imports import classify as c
from imports.models import ImportRecord, Outcome, Source
from nodes.models import DeleteSettings

log = logging.getLogger(__name__)

DELETE_FLAG = {
    c.CT_RDSR: "del_rdsr", c.PROJECTION_RDSR: "del_rdsr", c.NM_RDSR: "del_rdsr",
    c.RF_SIEMENS_SUMMARY: "del_rdsr", c.DX_IMAGE: "del_dx_im", c.MG_IMAGE: "del_mg_im",
    c.CT_PHILIPS_SCREEN: "del_ct_phil", c.CT_DOSE_SCREEN: "del_ct_phil", c.NM_IMAGE: "del_nm_im",
    c.PATIENT_DOSE_REPORT: "del_rdsr",
}
PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700


@dataclass(frozen=True)
class UserFiles:
    """What `doseport import` may do to the user's files; the default touches none."""

    delete_imported: bool = False  # imported and duplicate files (--delete-imported)
    move_failed: Path | None = None  # failed files go here (--move-failed DIR)


def dispose(
    record: ImportRecord, path: Path, keep: bool = False, user_files: UserFiles | None = None
) -> None:
    """Set `record.kept_path` to where the object's bytes are after disposal ("" = gone)."""
    if Source(record.source) == Source.FILE:
        _dispose_user_file(record, path, user_files or UserFiles())
    else:
        _dispose_spool_file(record, path, keep)


def _dispose_user_file(record: ImportRecord, path: Path, choice: UserFiles) -> None:
    if record.outcome == Outcome.FAILED:
        kept = quarantine(path, keep=True)
        if choice.move_failed is not None and path.exists() and not _quarantined(path):
            moved = move_into(path, choice.move_failed)
            if moved is None:
                log.warning("cannot move failed %s into %s", path.name, choice.move_failed)
            elif kept == path:  # no quarantine copy: the moved file is the one kept
                kept = moved
        record.kept_path = str(kept)
    elif record.outcome in (Outcome.IMPORTED, Outcome.DUPLICATE) and choice.delete_imported:
        _delete(record, path)


def _dispose_spool_file(record: ImportRecord, path: Path, keep: bool) -> None:
    """Quarantine failures; apply the delete settings to everything else unless kept."""
    if record.outcome == Outcome.FAILED:
        record.kept_path = str(quarantine(path, keep))
        return
    if keep or not path.exists():
        return
    delete = DeleteSettings.get()
    if record.outcome == Outcome.NOT_IMPORTABLE and record.kind != c.PATIENT_DOSE_REPORT:
        wanted = delete.del_no_match  # a dose report without events is still a dose report
    else:
        wanted = bool(getattr(delete, DELETE_FLAG.get(record.kind, ""), False))
    if wanted:
        _delete(record, path)


def _delete(record: ImportRecord, path: Path) -> None:
    try:
        path.unlink()
        record.kept_path = ""
    except OSError as exc:
        log.warning("cannot delete %s after import: %s", path.name, exc)


def quarantine(path: Path, keep: bool = False) -> Path:
    """Move (or, when the source must stay, copy) a failed file into the quarantine folder.

    Returns where the bytes are kept; the path itself when they could not be quarantined.
    """
    if not path.exists() or _quarantined(path):
        return path  # a retry of a quarantined file that failed again stays where it is
    folder = Path(settings.QUARANTINE_DIR) / timezone.now().strftime("%Y%m%d")
    if not keep:
        moved = move_into(path, folder)
        if moved is not None:
            return moved
        log.info("cannot move %s to quarantine; copying", path.name)
    try:
        return _copy_private(path, folder)
    except OSError as exc:
        log.warning("cannot copy %s to quarantine: %s", path.name, exc)
        return path


def _quarantined(path: Path) -> bool:
    return path.resolve().is_relative_to(Path(settings.QUARANTINE_DIR).resolve())


def move_into(path: Path, folder: Path) -> Path | None:
    """Move a file into `folder` under a free name (0600); None when it cannot be moved."""
    try:
        folder.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
        target = _free_name(folder, path)
        shutil.move(str(path), target)
        target.chmod(PRIVATE_FILE)
        return target
    except OSError as exc:
        log.info("cannot move %s into %s: %s", path.name, folder, exc)
        return None


def _copy_private(path: Path, folder: Path) -> Path:
    """Copy into a new file created 0600 (never readable by others, not even briefly)."""
    folder.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    while True:
        target = _free_name(folder, path)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
            break
        except FileExistsError:
            continue  # another process took this name between the check and the open
    try:
        with os.fdopen(fd, "wb") as out, path.open("rb") as src:
            os.fchmod(out.fileno(), PRIVATE_FILE)  # exact mode whatever the umask
            shutil.copyfileobj(src, out)
        stat = path.stat()
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    except OSError:
        target.unlink(missing_ok=True)
        raise
    return target


def _free_name(folder: Path, path: Path) -> Path:
    target = folder / path.name
    n = 1
    while target.exists() or target.is_symlink():
        target = folder / f"{path.stem}.{n}{path.suffix}"
        n += 1
    return target
