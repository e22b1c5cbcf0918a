"""Connections between pages: a study's dose objects and import records, the studies an
import made, and the other studies of the same visit."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet
from pydicom.uid import UID

from dose.models import Study
from imports.models import ImportRecord
from qr.models import QueryImage


def sop_class_name(uid: str) -> str:
    """pydicom's name for a SOP Class UID ("X-Ray Radiation Dose SR Storage"), else the UID."""
    return UID(uid).name if uid else ""


@dataclass(frozen=True)
class DoseObject:
    """One object that contributed to a study, with one of the imports that saw it."""

    sop_instance_uid: str
    record: ImportRecord | None
    sop_class_name: str
    query_id: int | None


def dose_objects(study: Study) -> list[DoseObject]:
    """Every source object of `study` with each import record of it, oldest first; an object
    whose records were deleted still has a row (record None). Two queries."""
    uids = list(dict.fromkeys(study.source_sop_instance_uids or []))
    records = list(
        ImportRecord.objects.filter(sop_instance_uid__in=uids)
        .select_related("store_node").order_by("created_at", "pk")
    )
    queries = dict(
        QueryImage.objects.filter(arrival__in=records)
        .values_list("arrival_id", "series__study__query_id")
    )
    by_uid: dict[str, list[ImportRecord]] = {}
    for record in records:
        by_uid.setdefault(record.sop_instance_uid, []).append(record)
    rows: list[DoseObject] = []
    for uid in uids:
        found: list[ImportRecord | None] = [*by_uid.get(uid, [])]
        for rec in found or [None]:
            rows.append(DoseObject(
                sop_instance_uid=uid, record=rec,
                sop_class_name=sop_class_name(rec.sop_class_uid) if rec else "",
                query_id=queries.get(rec.pk) if rec else None,
            ))
    return rows


def studies_of_record(record: ImportRecord) -> list[Study]:
    """The studies an imported object is part of: those it contributed to, else (a duplicate,
    a failure) every study with its Study Instance UID."""
    if not record.study_instance_uid:
        return []
    studies = list(
        Study.objects.filter(study_instance_uid=record.study_instance_uid)
        .order_by("modality_type", "pk")
    )
    made = [s for s in studies if record.sop_instance_uid in (s.source_sop_instance_uids or [])]
    return made or studies


def related_studies(study: Study) -> QuerySet[Study]:
    """Other studies of the same visit: the same Study Instance UID (the CT and NM halves of
    a PET/CT) or the same accession number."""
    same = Q(study_instance_uid=study.study_instance_uid)
    if study.accession_number:
        same |= Q(accession_number=study.accession_number)
    return Study.objects.filter(same).exclude(pk=study.pk).order_by(
        "study_date", "study_time", "modality_type", "pk"
    )
