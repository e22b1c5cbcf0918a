"""Import one object file: read, classify, extract, store, then keep/delete/quarantine.

`import_file` is idempotent by SOP Instance UID and records an ImportRecord for every
call; imports/dispose.py then keeps, deletes or quarantines the file (never deleting a
failure, never touching a user's file unless asked).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from struct import error as StructError

from django.db import connection, transaction
from django.utils import timezone
from pydicom import Dataset, dcmread
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError

from alerts.service import after_import
from imports import classify as c
from imports.dispose import UserFiles, dispose
from imports.extractors import ExtractError, extract
from imports.models import ImportRecord, Outcome, Source
from imports.persist import IMAGE_KINDS, store_report
from imports.reading import read_file

log = logging.getLogger(__name__)

_CHUNK = 500
UNDEFINED = 0xFFFFFFFF


def imported_sop_uids(uids: Iterable[str]) -> set[str]:
    """Which of these SOP Instance UIDs have been imported (one query per 500 UIDs).

    Objects recorded as duplicates count too (a mammography for-processing copy of an
    imported exposure): their dose data is in the database, so there is nothing to fetch.
    """
    wanted = list(dict.fromkeys(u for u in uids if u))
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        found.update(
            ImportRecord.objects.filter(
                sop_instance_uid__in=chunk, outcome__in=(Outcome.IMPORTED, Outcome.DUPLICATE)
            ).values_list("sop_instance_uid", flat=True)
        )
    return found


class NotDicom(Exception):
    """The file is not DICOM at all (no preamble/meta and no dataset): not importable."""


def read_dataset(path: Path) -> Dataset:
    """Header and content tree; pixel data is never needed for dose values."""
    ds: Dataset
    try:
        ds = read_file(Path(path))
    except InvalidDicomError:
        ds = _read_without_preamble(path)
    except FileNotFoundError:
        raise ExtractError("file not found") from None
    except Exception as exc:  # pydicom raises many kinds on corrupt/truncated input
        raise ExtractError(f"cannot read DICOM file ({type(exc).__name__}: {exc})") from None
    if "SOPClassUID" not in ds and "SOPInstanceUID" not in ds:
        raise ExtractError("not a DICOM object: no SOP Class UID and no SOP Instance UID")
    _check_complete(ds)
    return ds


def _check_complete(ds: Dataset) -> None:
    """pydicom reads a file cut inside its last element without complaint: detect that."""
    tags = list(ds.keys())
    if not tags:
        raise ExtractError("cannot read DICOM file (empty dataset)")
    raw = ds._dict.get(tags[-1])
    if isinstance(raw, RawDataElement) and raw.value is not None and raw.length != UNDEFINED:
        if len(raw.value) < raw.length:
            raise ExtractError(
                f"cannot read DICOM file (truncated: {ds[tags[-1]].keyword or tags[-1]} has "
                f"{len(raw.value)} of {raw.length} bytes)"
            )


def _read_without_preamble(path: Path) -> Dataset:
    """Some stores write bare datasets (no preamble, no file meta): accept those only."""
    try:
        with path.open("rb") as fh:
            start = fh.read(2)
    except OSError as exc:
        raise ExtractError(f"cannot read file: {exc}") from None
    if start not in (b"\x02\x00", b"\x08\x00"):  # group 0002 or 0008, little endian
        raise NotDicom("not a DICOM file (no DICOM preamble)")
    try:
        ds = dcmread(path, stop_before_pixels=True, force=True)
        if "SOPClassUID" in ds and "SOPInstanceUID" in ds and str(ds.SOPInstanceUID).strip():
            return ds
    except Exception:  # noqa: S110 - anything unreadable is "not DICOM" here
        pass
    raise NotDicom("not a DICOM file (no DICOM preamble and no readable dataset)")


def import_file(
    path: Path, source: Source | str, store_node_id: int | None = None, keep: bool = False,
    user_files: UserFiles | None = None,
) -> ImportRecord:
    """Import one file and record it. `keep` is for spool files (store, query-retrieve):
    keep them whatever the delete settings say. Source.FILE is the user's file: it is left
    in place unless `user_files` says otherwise (imports/dispose.py)."""
    path = Path(path)
    clock = time.perf_counter()
    record = ImportRecord(
        source=Source(source), store_node_id=store_node_id, path=str(path),
        kept_path=str(path), started_at=timezone.now(),
    )
    record.received_at = received_at(path, record)
    try:
        ds = read_dataset(path)
        _fill_identity(record, ds)
        verdict = c.classify(ds)
        record.kind = verdict.kind or ""
        if not verdict.importable and c.classify_sop_class(record.sop_class_uid) == "importable":
            # A dedicated dose SR class we cannot type is broken, not "not a dose object".
            record.outcome = Outcome.FAILED
            record.error = f"dose report could not be read: {verdict.reason}"
        elif not verdict.importable:
            record.outcome = Outcome.NOT_IMPORTABLE
            record.error = verdict.reason
        elif verdict.kind == c.PATIENT_DOSE_REPORT:
            record.outcome = Outcome.NOT_IMPORTABLE
            record.error = patient_dose_report_note(ds)
        else:
            _import_dataset(record, ds, verdict.kind or "")
    except NotDicom as exc:
        record.outcome = Outcome.NOT_IMPORTABLE
        record.error = str(exc)
    except ExtractError as exc:
        record.outcome = Outcome.FAILED
        record.error = str(exc)
    except (StructError, OSError, EOFError) as exc:
        # pydicom decodes lazily: a cut or corrupt element fails here, after the header
        # read. That is a broken file, not a bug: one line, no traceback.
        log.warning("import of %s failed: unreadable element (%s: %s)",
                    record.sop_instance_uid or path.name, type(exc).__name__, exc)
        record.outcome = Outcome.FAILED
        record.error = f"cannot read DICOM file (truncated or corrupt: {exc})"
    except Exception as exc:
        log.exception("import of %s failed", record.sop_instance_uid or path.name)
        record.outcome = Outcome.FAILED
        record.error = f"unexpected error: {type(exc).__name__}: {exc}"
    saved_kept_path = record.kept_path
    dispose(record, path, keep, user_files)
    if record.pk is None:
        record.finished_at = timezone.now()
        record.duration_ms = (time.perf_counter() - clock) * 1000
        record.save()
    elif record.kept_path != saved_kept_path:
        record.save(update_fields=["kept_path"])
    if record.source != Source.FILE:
        _link_arrival(record)
    return record


def _link_arrival(record: ImportRecord) -> None:
    """A retrieve that asked for this object counts it now (qr.arrivals.link_import)."""
    from qr.arrivals import link_import

    try:
        link_import(record)
    except Exception:  # the import itself is done and recorded; the count can be redone
        log.exception("linking import %s to its retrieve failed", record.pk)


def patient_dose_report_note(ds: Dataset) -> str:
    """What a Patient Radiation Dose SR (88.73) without CT or projection content carries."""
    names = []
    for item in ds.get("ContentSequence") or []:
        name = item.get("ConceptNameCodeSequence")
        meaning = str(name[0].get("CodeMeaning", "")).strip() if name else ""
        if meaning and meaning not in names:
            names.append(meaning)
    carried = "; ".join(names[:8]) or "no content items"
    return (
        "no irradiation events: a Patient Radiation Dose report holds estimated patient "
        f"dose, not irradiation events (it carries: {carried})"
    )[:1000]


def received_at(path: Path, record: ImportRecord) -> dt.datetime | None:
    """When the object arrived: a spooled file (store node, retrieve) was named when its
    last byte was durable, so its modification time; a file import arrives when read."""
    if record.source == Source.FILE:
        return record.started_at
    try:
        return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)
    except OSError:
        return None


def _fill_identity(record: ImportRecord, ds: Dataset) -> None:
    record.sop_instance_uid = str(ds.get("SOPInstanceUID", "")).strip()[:64]
    record.sop_class_uid = str(ds.get("SOPClassUID", "")).strip()[:64]
    record.study_instance_uid = str(ds.get("StudyInstanceUID", "")).strip()[:64]


def _import_dataset(record: ImportRecord, ds: Dataset, kind: str) -> None:
    if not record.sop_instance_uid:
        raise ExtractError("no SOP Instance UID")
    if _already_imported(record.sop_instance_uid):
        record.outcome = Outcome.DUPLICATE
        record.error = "SOP Instance UID already imported"
        return
    report = extract(kind, ds)
    with transaction.atomic():
        _lock_study(report.study["study_instance_uid"])
        # Re-check inside the transaction: another worker may have just imported it.
        if _already_imported(record.sop_instance_uid):
            record.outcome = Outcome.DUPLICATE
            record.error = "SOP Instance UID already imported"
            return
        result = store_report(report, record.sop_instance_uid)
        if result.added or kind not in IMAGE_KINDS:
            record.outcome = Outcome.IMPORTED
            after_import(result.study.pk)  # alert rules, once committed (alerts/service.py)
        else:
            record.outcome = Outcome.DUPLICATE
            record.error = result.note
        record.finished_at = timezone.now()
        if record.started_at is not None:
            elapsed = record.finished_at - record.started_at
            record.duration_ms = elapsed.total_seconds() * 1000
        record.save()


def _lock_study(study_uid: str) -> None:
    """Serialise imports of one study across workers (merging reads, then writes).

    SQLite transactions are already serial (BEGIN IMMEDIATE); PostgreSQL gets a
    transaction-scoped advisory lock keyed by the Study Instance UID.
    """
    if connection.vendor != "postgresql":
        return
    key = int.from_bytes(hashlib.sha256(study_uid.encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _already_imported(uid: str) -> bool:
    # The UID alone selects the index: with `outcome` too SQLite chose the outcome index
    # and scanned every imported record (49 reports/s at 20,000 stored instead of 124).
    # Raw SQL: asked twice per import, where the ORM's query compilation cost more than
    # the lookup itself (7% of a sample-mix import).
    table = connection.ops.quote_name(ImportRecord._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT outcome FROM {table} WHERE sop_instance_uid = %s", [uid])
        return any(row[0] == Outcome.IMPORTED for row in cursor.fetchall())
