"""Study -> the STUDY object of EXPORT_SCHEMA.md (absent values are None, never "")."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Prefetch, QuerySet

from dose.models import (
    AccumulatedBreast,
    AccumulatedPlane,
    IrradiationEvent,
    RadiopharmaceuticalAdministration,
    Study,
    XrayFilter,
    XraySource,
)
from lib.laterality import laterality_code

STUDY_TEXT = (
    "study_instance_uid", "modality_type", "accession_number", "study_description",
    "manufacturer", "manufacturer_model_name", "station_name", "institution_name",
    "device_serial_number", "software_versions", "patient_sex", "patient_age",
)
STUDY_NUMBERS = ("patient_age_decimal_years", "patient_size_m", "patient_weight_kg")

EVENT_COMMON = (
    "irradiation_event_uid", "date_time_started", "acquisition_protocol",
    "irradiation_event_type", "target_region", "comment",
)
EVENT_CT = (
    "ct_acquisition_type", "ctdivol_mGy", "dlp_mGycm", "ctdiw_phantom_type",
    "scanning_length_mm", "nominal_single_collimation_width_mm",
    "nominal_total_collimation_width_mm", "pitch_factor", "exposure_time_s",
    "number_of_xray_sources", "xray_sources", "dose_check",
)
EVENT_PROJECTION = (
    "acquisition_plane", "dap_Gym2", "dose_rp_Gy", "kvp_kV", "exposure_time_ms", "exposure_uAs",
    "average_tube_current_mA", "number_of_pulses", "pulse_width_ms", "focal_spot_size_mm",
    "distance_source_to_detector_mm", "collimated_field_area_m2",
    "positioner_primary_angle_deg", "positioner_secondary_angle_deg", "filters",
    "exposure_index", "target_exposure_index", "deviation_index",
    "entrance_exposure_at_rp_mGy",
)
EVENT_MG = (
    "agd_mGy", "compression_thickness_mm", "compression_force_N", "laterality",
    "laterality_code", "image_view", "anode_target_material", "hvl_mm",
)
EVENT_NM = (
    "radiopharmaceutical_agent", "radionuclide", "radionuclide_half_life_s",
    "administered_activity_MBq", "radiopharmaceutical_start_datetime",
    "radiopharmaceutical_stop_datetime", "route_of_administration", "effective_dose_mSv",
)
EVENT_KEYS = EVENT_COMMON + EVENT_CT + EVENT_PROJECTION + EVENT_MG + EVENT_NM
TOTALS_KEYS = (
    "number_of_events", "dlp_total_mGycm", "dap_total_Gym2", "dose_rp_total_Gy",
    "fluoro_dap_total_Gym2", "fluoro_dose_rp_total_Gy", "acquisition_dap_total_Gym2",
    "acquisition_dose_rp_total_Gy", "total_fluoro_time_s", "accumulated_agd_mGy",
    "accumulated_agd_by_side_mGy", "number_of_planes",
)
_EVENT_SKIP = {"xray_sources", "filters"} | set(EVENT_NM)


def studies_for_export(qs: QuerySet[Study] | None = None) -> QuerySet[Study]:
    """Studies with everything study_to_dict reads prefetched (a fixed number of queries)."""
    qs = Study.objects.all() if qs is None else qs
    return qs.prefetch_related(
        Prefetch(
            "events",
            queryset=IrradiationEvent.objects.order_by("ordinal", "id").prefetch_related(
                Prefetch("sources", queryset=XraySource.objects.order_by("ordinal", "id")),
                Prefetch("filters", queryset=XrayFilter.objects.order_by("ordinal", "id")),
            ),
        ),
        Prefetch("planes", queryset=AccumulatedPlane.objects.order_by("id")),
        Prefetch("breasts", queryset=AccumulatedBreast.objects.order_by("id")),
        Prefetch(
            "administrations",
            queryset=RadiopharmaceuticalAdministration.objects.order_by("ordinal", "id"),
        ),
    )


def iso_datetime(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat()


def _clean(value: Any) -> Any:
    if value == "":
        return None
    if isinstance(value, dt.datetime):
        return iso_datetime(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return value


def event_to_dict(event: IrradiationEvent) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(EVENT_KEYS)
    for key in EVENT_KEYS:
        if key not in _EVENT_SKIP:
            out[key] = _clean(getattr(event, key))
    sources = [
        {
            "kvp_kV": s.kvp_kV,
            "tube_current_mA": s.tube_current_mA,
            "max_tube_current_mA": s.max_tube_current_mA,
            "exposure_time_per_rotation_s": s.exposure_time_per_rotation_s,
        }
        for s in event.sources.all()
    ]
    filters = [
        {
            "material": _clean(f.material),
            "thickness_min_mm": f.thickness_min_mm,
            "thickness_max_mm": f.thickness_max_mm,
        }
        for f in event.filters.all()
    ]
    out["xray_sources"] = sources or None
    out["filters"] = filters or None
    return out


def administration_to_dict(adm: RadiopharmaceuticalAdministration) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(EVENT_KEYS)
    out["irradiation_event_uid"] = _clean(adm.event_uid)
    out["date_time_started"] = iso_datetime(adm.radiopharmaceutical_start_datetime)
    for key in EVENT_NM:
        out[key] = _clean(getattr(adm, key))
    return out


def _sum(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def totals_to_dict(study: Study, events: list[dict[str, Any]]) -> dict[str, Any]:
    planes = list(study.planes.all())
    out: dict[str, Any] = dict.fromkeys(TOTALS_KEYS)
    out["number_of_events"] = len(events)
    if study.modality_type == Study.CT:
        out["dlp_total_mGycm"] = (
            study.dlp_total_mGycm
            if study.dlp_total_mGycm is not None
            else _sum([e["dlp_mGycm"] for e in events])
        )
    if planes:
        for key in (
            "dap_total_Gym2", "dose_rp_total_Gy", "fluoro_dap_total_Gym2",
            "fluoro_dose_rp_total_Gy", "acquisition_dap_total_Gym2",
            "acquisition_dose_rp_total_Gy", "total_fluoro_time_s",
        ):
            out[key] = _sum([getattr(p, key) for p in planes])
        out["number_of_planes"] = len(planes)
    elif study.modality_type in (Study.DX, Study.RF, Study.MG):
        out["dap_total_Gym2"] = _sum([e["dap_Gym2"] for e in events])
        out["dose_rp_total_Gy"] = _sum([e["dose_rp_Gy"] for e in events])
        # Image headers (and reports without accumulated data): a second plane only shows
        # as events on plane B.
        biplane = any("plane b" in str(e.get("acquisition_plane") or "").lower() for e in events)
        out["number_of_planes"] = 2 if biplane else 1
    if study.modality_type == Study.MG:
        out["accumulated_agd_mGy"] = _agd_by_laterality(study, events)
        out["accumulated_agd_by_side_mGy"] = _agd_by_side(study, events)
    return out


def _agd_by_side(study: Study, events: list[dict[str, Any]]) -> dict[str, float] | None:
    """The accumulated AGD keyed L/R/B: a report's totals if it has them, else the events'."""
    by_side: dict[str, float] = {}
    breasts = list(study.breasts.all())
    if breasts:
        for b in breasts:
            code = laterality_code(b.laterality)
            if code and b.accumulated_agd_mGy is not None:
                by_side[code] = by_side.get(code, 0.0) + b.accumulated_agd_mGy
        return by_side or None
    for e in events:
        if e["agd_mGy"] is not None and e.get("laterality_code"):
            code = e["laterality_code"]
            by_side[code] = by_side.get(code, 0.0) + e["agd_mGy"]
    return by_side or None


def _agd_by_laterality(study: Study, events: list[dict[str, Any]]) -> dict[str, float] | None:
    breasts = list(study.breasts.all())
    if breasts:
        return {
            b.laterality: b.accumulated_agd_mGy
            for b in breasts if b.accumulated_agd_mGy is not None
        } or None
    by_side: dict[str, float] = {}
    for e in events:
        if e["agd_mGy"] is not None and e["laterality"]:
            by_side[e["laterality"]] = by_side.get(e["laterality"], 0.0) + e["agd_mGy"]
    return by_side or None


def study_to_dict(study: Study) -> dict[str, Any]:
    """The EXPORT_SCHEMA STUDY object. Use studies_for_export() to avoid N+1 queries."""
    out: dict[str, Any] = {"study_instance_uid": study.study_instance_uid}
    out["modality_type"] = study.modality_type
    out["study_date"] = _clean(study.study_date)
    out["study_time"] = _clean(study.study_time)
    for key in STUDY_TEXT:
        out[key] = _clean(getattr(study, key))
    for key in STUDY_NUMBERS:
        out[key] = getattr(study, key)
    for key in ("patient_name", "patient_id", "patient_birth_date"):
        value = _clean(getattr(study, key))
        if value is not None:
            out[key] = value
    out["source_sop_instance_uids"] = list(study.source_sop_instance_uids or [])
    events = [event_to_dict(e) for e in study.events.all()]
    events += [administration_to_dict(a) for a in study.administrations.all()]
    out["events"] = events
    out["totals"] = totals_to_dict(study, events)
    return out
