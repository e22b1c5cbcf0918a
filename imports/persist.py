"""Write extracted dose data into the dose model, merging with what a study already holds.

Merging rules (issue 3):
- a report whose events are a superset of a stored study's events (cumulative CT/projection
  report) replaces that study's events; a subset adds nothing; other events are appended
  (a report continuing the study);
- images add one event each; a mammography exposure seen before (for-processing and
  for-presentation copies share the acquisition date-time) adds nothing;
- a projection or CT dose report replaces events read from image headers or a CT dose
  screen of the same study, and images or screens of a study that has a dose report add
  nothing (no double counting);
- NM: the radiopharmaceutical report's administration wins over image-derived data in
  either order; a later image only adds its SOP Instance UID.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import connection

from dose import summary
from dose.models import (
    AccumulatedBreast,
    AccumulatedPlane,
    IrradiationEvent,
    RadiopharmaceuticalAdministration,
    Study,
    XrayFilter,
    XraySource,
)
from imports.classify import CT_SCREEN_KINDS, DX_IMAGE, MG_IMAGE, NM_IMAGE, NM_RDSR
from imports.extractors.data import EventData, ReportData
from lib.bulk import insert_rows

# Objects whose dose values are copied from a header: a dose report of the same study wins
# over them in either order (CT dose screens too, so a screen and an RDSR never add up).
IMAGE_KINDS = (DX_IMAGE, MG_IMAGE, *CT_SCREEN_KINDS)
PLANE_SUMS = (
    "dap_total_Gym2", "dose_rp_total_Gy", "fluoro_dap_total_Gym2", "fluoro_dose_rp_total_Gy",
    "acquisition_dap_total_Gym2", "acquisition_dose_rp_total_Gy", "total_fluoro_time_s",
    "total_acquisition_time_s", "total_number_of_radiographic_frames",
)


@dataclass
class StoreResult:
    study: Study
    added: bool  # False: the object held nothing new (same exposure / subset report)
    note: str = ""


def store_report(report: ReportData, sop_uid: str) -> StoreResult:
    """Store one object's dose data; the study's stored headline (dose/summary.py) is
    worked out again once, after its rows are written, when the object added anything."""
    with summary.deferred():
        result = _store(report, sop_uid)
    if result.added:
        summary.refresh([result.study.pk])
    return result


def _store(report: ReportData, sop_uid: str) -> StoreResult:
    _fill_event_keys(report, sop_uid)
    study = _find_study(report)
    if study is None:
        study = _create_study(report, sop_uid)
        return StoreResult(study, True)
    if report.kind in (NM_IMAGE, NM_RDSR):
        return _merge_nm(study, report, sop_uid)
    return _merge_events(study, report, sop_uid)


def _fill_event_keys(report: ReportData, sop_uid: str) -> None:
    for i, event in enumerate(report.events):
        if not event.key():
            event.fields["irradiation_event_uid"] = f"{sop_uid}.{i}"[:128]


def _find_study(report: ReportData) -> Study | None:
    # Filter on the UID alone and pick the modality here: given modality_type too, SQLite
    # (no ANALYZE statistics) chose that index and scanned every study of the modality,
    # so each import cost O(stored studies). A UID has one or two studies (PET/CT).
    # A raw query: once per import, where the ORM's query compilation cost more than the
    # lookup (the model instance is still built the ORM's way).
    table = connection.ops.quote_name(Study._meta.db_table)
    studies = Study.objects.raw(
        f"SELECT * FROM {table} WHERE study_instance_uid = %s ORDER BY id",
        [report.study["study_instance_uid"]],
    )
    return next((s for s in studies if s.modality_type == report.modality_type), None)


@cache
def _study_field_names() -> frozenset[str]:
    return frozenset(f.name for f in Study._meta.get_fields())


def _study_fields(report: ReportData) -> dict[str, Any]:
    names = _study_field_names()
    return {k: v for k, v in report.study.items() if k in names}


def _create_study(report: ReportData, sop_uid: str) -> Study:
    study = Study.objects.create(
        **_study_fields(report), source_sop_instance_uids=[sop_uid],
        from_report=report.kind not in IMAGE_KINDS,
    )
    _add_events(study, report.events, start=0)
    _add_planes(study, report.planes)
    _add_breasts(study, report.breasts)
    _add_administrations(study, report.administrations)
    return study


def _add_events(study: Study, events: list[EventData], start: int) -> None:
    if not events:
        return
    rows = [
        {**event.fields, "study_id": study.pk, "ordinal": start + i}
        for i, event in enumerate(events)
    ]
    ids = insert_rows(IrradiationEvent, rows)  # lib/bulk.py: bulk_create without its overhead
    sources = [
        {**src, "event_id": pk} for pk, ev in zip(ids, events, strict=True) for src in ev.sources
    ]
    filters = [
        {**flt, "event_id": pk} for pk, ev in zip(ids, events, strict=True) for flt in ev.filters
    ]
    insert_rows(XraySource, sources)
    insert_rows(XrayFilter, filters)


def _add_planes(study: Study, planes: list[dict[str, Any]]) -> None:
    if not planes:
        return
    existing = {p.plane: p for p in study.planes.all()} if study.pk else {}
    new = []
    for plane in planes:
        row = existing.get(plane.get("plane", ""))
        if row is None:
            new.append(AccumulatedPlane(study=study, **plane))
            continue
        for key in PLANE_SUMS:
            value = plane.get(key)
            if value is not None:
                setattr(row, key, (getattr(row, key) or 0) + value)
        row.save()
    AccumulatedPlane.objects.bulk_create(new)


def _add_breasts(study: Study, breasts: list[dict[str, Any]]) -> None:
    if not breasts:
        return
    existing = {b.laterality: b for b in study.breasts.all()}
    new = []
    for breast in breasts:
        row = existing.get(breast["laterality"])
        if row is None:
            new.append(AccumulatedBreast(study=study, **breast))
        elif breast.get("accumulated_agd_mGy") is not None:
            row.accumulated_agd_mGy = (row.accumulated_agd_mGy or 0) + breast[
                "accumulated_agd_mGy"
            ]
            row.save(update_fields=["accumulated_agd_mGy"])
    AccumulatedBreast.objects.bulk_create(new)


def _add_administrations(study: Study, administrations: list[dict[str, Any]]) -> None:
    RadiopharmaceuticalAdministration.objects.bulk_create(
        [RadiopharmaceuticalAdministration(study=study, **a) for a in administrations]
    )


def _add_source(study: Study, sop_uid: str, extra: list[str] | None = None) -> None:
    uids = list(study.source_sop_instance_uids or [])
    for uid in [*(extra or []), sop_uid]:
        if uid not in uids:
            uids.append(uid)
    study.source_sop_instance_uids = uids


MG_EXPOSURE_FIELDS = (
    "date_time_started", "laterality", "image_view", "agd_mGy", "kvp_kV", "exposure_uAs",
)


def _mg_exposure_key(event: EventData) -> tuple[object, ...]:
    """For-processing and for-presentation copies of one exposure share all of these."""
    return tuple(event.fields.get(name) for name in MG_EXPOSURE_FIELDS)


def _merge_events(study: Study, report: ReportData, sop_uid: str) -> StoreResult:
    stored = list(study.events.all())
    stored_keys = {e.irradiation_event_uid for e in stored}
    new_keys = {e.key() for e in report.events}
    if report.kind == MG_IMAGE:
        seen = {tuple(getattr(e, name) for name in MG_EXPOSURE_FIELDS) for e in stored}
        if report.events and all(_mg_exposure_key(e) in seen for e in report.events):
            _add_source(study, sop_uid)
            study.save(update_fields=["source_sop_instance_uids", "updated_at"])
            return StoreResult(study, False, "same mammography exposure as an imported image")
    image = report.kind in IMAGE_KINDS
    if image and study.from_report:
        _add_source(study, sop_uid)
        study.save(update_fields=["source_sop_instance_uids", "updated_at"])
        return StoreResult(study, False, "the study's dose report already holds this exposure")
    if not image and not study.from_report:
        return _replace_study(study, report, sop_uid)  # a dose report beats image headers
    if new_keys <= stored_keys:
        _add_source(study, sop_uid)
        study.save(update_fields=["source_sop_instance_uids", "updated_at"])
        return StoreResult(study, False, "report holds no events beyond those already stored")
    if stored_keys and stored_keys <= new_keys and not image:
        return _replace_study(study, report, sop_uid)
    fresh = [e for e in report.events if e.key() not in stored_keys]
    _add_events(study, fresh, start=len(stored))
    _add_planes(study, report.planes)
    _add_breasts(study, report.breasts)
    if study.dlp_total_mGycm is not None or report.study.get("dlp_total_mGycm") is not None:
        # Totals of a continued study: disjoint reports add; otherwise sum the events.
        if len(fresh) == len(report.events) and report.study.get("dlp_total_mGycm") is not None:
            study.dlp_total_mGycm = (study.dlp_total_mGycm or 0) + report.study["dlp_total_mGycm"]
        else:
            study.dlp_total_mGycm = None
    study.total_number_of_irradiation_events = None
    _add_source(study, sop_uid)
    study.save()
    return StoreResult(study, True)


def _replace_study(study: Study, report: ReportData, sop_uid: str) -> StoreResult:
    """A cumulative report: rebuild the study from it, keeping every source UID."""
    previous = list(study.source_sop_instance_uids or [])
    study.delete()
    fresh = _create_study(report, sop_uid)
    _add_source(fresh, sop_uid, extra=previous)
    fresh.save(update_fields=["source_sop_instance_uids"])
    return StoreResult(fresh, True, "cumulative report replaced the stored events")


def _fill_blanks(study: Study, report: ReportData) -> None:
    """Study fields the stored objects left empty, taken from the new object."""
    for key, value in _study_fields(report).items():
        if value not in (None, "") and getattr(study, key) in (None, ""):
            setattr(study, key, value)


def _merge_nm(study: Study, report: ReportData, sop_uid: str) -> StoreResult:
    stored = list(study.administrations.all())
    from_report = any(a.from_report for a in stored)
    _add_source(study, sop_uid)
    if report.kind == NM_RDSR and not from_report:
        # The dose report is the better source: it replaces image-derived values.
        study.administrations.all().delete()
        _add_administrations(study, report.administrations)
        _fill_blanks(study, report)
        study.save()
        return StoreResult(study, True)
    if report.kind == NM_RDSR:
        known = {a.event_uid for a in stored}
        fresh = [a for a in report.administrations if a.get("event_uid") not in known]
        _add_administrations(study, fresh)
        study.save(update_fields=["source_sop_instance_uids", "updated_at"])
        return StoreResult(study, bool(fresh))
    if not stored:
        _add_administrations(study, report.administrations)
    study.save(update_fields=["source_sop_instance_uids", "updated_at"])
    return StoreResult(study, not stored, "" if not stored else "administration already stored")
