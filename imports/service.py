"""Import one object file. STUB until the import issue lands; the signature is the contract.

`import_file` is idempotent by SOP Instance UID, records an ImportRecord for every call,
applies the delete settings only after success and moves failures to quarantine.
"""

from __future__ import annotations

from pathlib import Path

from django.utils import timezone
from pydicom import dcmread

from imports.classify import classify
from imports.models import ImportRecord, Outcome, Source


def import_file(
    path: Path, source: Source | str, store_node_id: int | None = None, keep: bool = False
) -> ImportRecord:
    started = timezone.now()
    record = ImportRecord(
        source=Source(source), store_node_id=store_node_id, path=str(path), started_at=started
    )
    try:
        ds = dcmread(path, stop_before_pixels=True)
    except Exception as exc:
        record.outcome = Outcome.FAILED
        record.error = f"cannot read DICOM file: {exc}"
    else:
        record.sop_instance_uid = str(ds.get("SOPInstanceUID", ""))
        record.sop_class_uid = str(ds.get("SOPClassUID", ""))
        record.study_instance_uid = str(ds.get("StudyInstanceUID", ""))
        verdict = classify(ds)
        record.kind = verdict.kind or ""
        seen = ImportRecord.objects.filter(
            sop_instance_uid=record.sop_instance_uid, outcome=Outcome.IMPORTED
        ).exists()
        if not verdict.importable:
            record.outcome = Outcome.NOT_IMPORTABLE
            record.error = verdict.reason
        elif seen:
            record.outcome = Outcome.DUPLICATE
        else:
            record.outcome = Outcome.IMPORTED
    record.finished_at = timezone.now()
    record.kept_path = str(path)
    record.save()
    return record
