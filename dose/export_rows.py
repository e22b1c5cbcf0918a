"""STUDY objects for large exports, read as plain rows (values_list), no model instances.

dose/serialize.study_to_dict() turns model instances into the STUDY object of
EXPORT_SCHEMA.md; building ~40 model instances per RF study and reading their attributes
one by one cost more than half of a 100,000-event export. Here each table is read with one
`values_list` query per chunk of studies and the same dicts are built from the tuples, with
the cleaning each column needs worked out once. tests/test_export_rows.py checks the result
equals study_to_dict() for every kind of study the importers make.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.db import models

from dose.models import (
    AccumulatedBreast,
    AccumulatedPlane,
    IrradiationEvent,
    RadiopharmaceuticalAdministration,
    Study,
    XrayFilter,
    XraySource,
)
from dose.queries import StudyFilter, filter_studies
from dose.serialize import (
    EVENT_KEYS,
    EVENT_NM,
    STUDY_NUMBERS,
    STUDY_TEXT,
    TOTALS_KEYS,
    iso_datetime,
)
from lib.laterality import laterality_code

CHUNK = 500  # studies per round of queries (RF: ~12,000 events)
IDENTITY = ("patient_name", "patient_id", "patient_birth_date")
_STUDY_TEXT = tuple(k for k in STUDY_TEXT if k not in ("study_instance_uid", "modality_type"))
STUDY_FIELDS = (
    "pk", "study_instance_uid", "modality_type", "study_date", "study_time", *_STUDY_TEXT,
    *STUDY_NUMBERS, *IDENTITY, "source_sop_instance_uids", "dlp_total_mGycm",
)
EVENT_FIELDS = tuple(k for k in EVENT_KEYS if k not in {"xray_sources", "filters", *EVENT_NM})
ADMIN_FIELDS = ("event_uid", *EVENT_NM)
PLANE_SUMS = (
    "dap_total_Gym2", "dose_rp_total_Gy", "fluoro_dap_total_Gym2", "fluoro_dose_rp_total_Gy",
    "acquisition_dap_total_Gym2", "acquisition_dose_rp_total_Gy", "total_fluoro_time_s",
)
Convert = Callable[[Any], Any]


def _blank_none(value: Any) -> Any:
    return value or None  # text columns only: "" -> None


def _iso(value: Any) -> Any:
    return None if value is None else value.isoformat()


def _converters(model: type[models.Model], names: Sequence[str]) -> list[tuple[int, Convert]]:
    """(index, conversion) for the columns serialize._clean() changes: text ("" -> None),
    datetimes (UTC ISO text), dates and times (ISO text). Numbers and JSON pass as read."""
    out: list[tuple[int, Convert]] = []
    for i, name in enumerate(names):
        field = model._meta.get_field(name)
        if isinstance(field, models.DateTimeField):
            out.append((i, iso_datetime))
        elif isinstance(field, models.DateField | models.TimeField):
            out.append((i, _iso))
        elif isinstance(field, models.CharField | models.TextField):
            out.append((i, _blank_none))
    return out


def _clean_row(row: Sequence[Any], conversions: list[tuple[int, Convert]]) -> list[Any]:
    values = list(row)
    for i, convert in conversions:
        values[i] = convert(values[i])
    return values


_EVENT_CONVERT = _converters(IrradiationEvent, EVENT_FIELDS)
_ADMIN_CONVERT = _converters(RadiopharmaceuticalAdministration, ADMIN_FIELDS)
_STUDY_CONVERT = _converters(Study, ("study_date", "study_time", *_STUDY_TEXT))


def _sum(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


class Related:
    """One chunk's related rows, grouped by study (or event) id, in export order."""

    def __init__(self, study_ids: list[int]) -> None:
        events = IrradiationEvent.objects.filter(study_id__in=study_ids).order_by("ordinal", "id")
        self.events: dict[int, list[dict[str, Any]]] = defaultdict(list)
        by_event: dict[int, dict[str, Any]] = {}
        for event_id, study_id, *row in events.values_list("id", "study_id", *EVENT_FIELDS):
            event = dict.fromkeys(EVENT_KEYS)
            event.update(zip(EVENT_FIELDS, _clean_row(row, _EVENT_CONVERT), strict=True))
            self.events[study_id].append(event)
            by_event[event_id] = event
        self._attach_sources_and_filters(study_ids, by_event)
        admins = RadiopharmaceuticalAdministration.objects.filter(study_id__in=study_ids)
        self.admins: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for study_id, *row in admins.order_by("ordinal", "id").values_list(
                "study_id", *ADMIN_FIELDS):
            uid, *nm = _clean_row(row, _ADMIN_CONVERT)
            adm = dict.fromkeys(EVENT_KEYS)
            adm.update(zip(EVENT_NM, nm, strict=True))
            adm["irradiation_event_uid"] = uid
            adm["date_time_started"] = adm["radiopharmaceutical_start_datetime"]
            self.admins[study_id].append(adm)
        planes = AccumulatedPlane.objects.filter(study_id__in=study_ids).order_by("id")
        self.planes: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for study_id, *sums in planes.values_list("study_id", *PLANE_SUMS):
            self.planes[study_id].append(tuple(sums))
        breasts = AccumulatedBreast.objects.filter(study_id__in=study_ids).order_by("id")
        self.breasts: dict[int, list[tuple[str, float | None]]] = defaultdict(list)
        for study_id, side, agd in breasts.values_list(
                "study_id", "laterality", "accumulated_agd_mGy"):
            self.breasts[study_id].append((side, agd))

    @staticmethod
    def _attach_sources_and_filters(study_ids: list[int],
                                    by_event: dict[int, dict[str, Any]]) -> None:
        """By study id, not event id: a chunk of long RF studies has more events than
        SQLite (32,766) or PostgreSQL (65,535) take as query parameters."""
        if not by_event:
            return
        sources = XraySource.objects.filter(event__study_id__in=study_ids).order_by(
            "ordinal", "id")
        for event_id, kvp, ma, max_ma, rotation in sources.values_list(
                "event_id", "kvp_kV", "tube_current_mA", "max_tube_current_mA",
                "exposure_time_per_rotation_s"):
            event = by_event[event_id]
            if event["xray_sources"] is None:
                event["xray_sources"] = []
            event["xray_sources"].append({
                "kvp_kV": kvp, "tube_current_mA": ma, "max_tube_current_mA": max_ma,
                "exposure_time_per_rotation_s": rotation,
            })
        filters = XrayFilter.objects.filter(event__study_id__in=study_ids).order_by(
            "ordinal", "id")
        for event_id, material, low, high in filters.values_list(
                "event_id", "material", "thickness_min_mm", "thickness_max_mm"):
            event = by_event[event_id]
            if event["filters"] is None:
                event["filters"] = []
            event["filters"].append({"material": material or None, "thickness_min_mm": low,
                                     "thickness_max_mm": high})


def _totals(modality: str, dlp_total: float | None, events: list[dict[str, Any]],
            planes: list[tuple[Any, ...]], breasts: list[tuple[str, float | None]]
            ) -> dict[str, Any]:
    """serialize.totals_to_dict() on rows."""
    out: dict[str, Any] = dict.fromkeys(TOTALS_KEYS)
    out["number_of_events"] = len(events)
    if modality == Study.CT:
        out["dlp_total_mGycm"] = (
            dlp_total if dlp_total is not None else _sum([e["dlp_mGycm"] for e in events])
        )
    if planes:
        for i, key in enumerate(PLANE_SUMS):
            out[key] = _sum([p[i] for p in planes])
        out["number_of_planes"] = len(planes)
    elif modality in (Study.DX, Study.RF, Study.MG):
        out["dap_total_Gym2"] = _sum([e["dap_Gym2"] for e in events])
        out["dose_rp_total_Gy"] = _sum([e["dose_rp_Gy"] for e in events])
        biplane = any("plane b" in str(e.get("acquisition_plane") or "").lower() for e in events)
        out["number_of_planes"] = 2 if biplane else 1
    if modality == Study.MG:
        out["accumulated_agd_mGy"] = _agd_by_laterality(events, breasts)
        out["accumulated_agd_by_side_mGy"] = _agd_by_side(events, breasts)
    return out


def _agd_by_side(events: list[dict[str, Any]], breasts: list[tuple[str, float | None]]
                 ) -> dict[str, float] | None:
    by_side: dict[str, float] = {}
    if breasts:
        for side, agd in breasts:
            code = laterality_code(side)
            if code and agd is not None:
                by_side[code] = by_side.get(code, 0.0) + agd
        return by_side or None
    for e in events:
        if e["agd_mGy"] is not None and e.get("laterality_code"):
            code = e["laterality_code"]
            by_side[code] = by_side.get(code, 0.0) + e["agd_mGy"]
    return by_side or None


def _agd_by_laterality(events: list[dict[str, Any]], breasts: list[tuple[str, float | None]]
                       ) -> dict[str, float] | None:
    if breasts:
        return {side: agd for side, agd in breasts if agd is not None} or None
    by_side: dict[str, float] = {}
    for e in events:
        if e["agd_mGy"] is not None and e["laterality"]:
            by_side[e["laterality"]] = by_side.get(e["laterality"], 0.0) + e["agd_mGy"]
    return by_side or None


def _study_dict(row: Sequence[Any], related: Related) -> dict[str, Any]:
    pk, uid, modality, *rest = row
    n_text = 2 + len(_STUDY_TEXT)
    cleaned = _clean_row(rest[:n_text], _STUDY_CONVERT)
    numbers = rest[n_text:n_text + len(STUDY_NUMBERS)]
    ident = [v or None for v in rest[n_text + len(STUDY_NUMBERS):-2]]
    sops, dlp_total = rest[-2:]
    out: dict[str, Any] = {"study_instance_uid": uid, "modality_type": modality,
                           "study_date": cleaned[0], "study_time": cleaned[1]}
    out.update(zip(_STUDY_TEXT, cleaned[2:], strict=True))
    out["study_instance_uid"] = uid or None
    out["modality_type"] = modality or None
    out.update(zip(STUDY_NUMBERS, numbers, strict=True))
    for key, value in zip(IDENTITY, ident, strict=True):
        if value is not None:
            out[key] = value
    out["source_sop_instance_uids"] = list(sops or [])
    events = related.events.get(pk, []) + related.admins.get(pk, [])
    out["events"] = events
    out["totals"] = _totals(modality, dlp_total, events, related.planes.get(pk, []),
                            related.breasts.get(pk, []))
    return out


def iter_export_dicts(flt: StudyFilter, chunk: int = CHUNK) -> Iterator[dict[str, Any]]:
    """The STUDY objects of the export, in its order (study date and time, then import)."""
    rows = filter_studies(flt).order_by("study_date", "study_time", "pk").values_list(
        *STUDY_FIELDS)
    it = rows.iterator(chunk_size=chunk)
    while batch := list(itertools.islice(it, chunk)):
        related = Related([r[0] for r in batch])
        for row in batch:
            yield _study_dict(row, related)
