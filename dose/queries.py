"""Study filters and sorting shared by the Studies page and `doseport export studies`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, QuerySet

from dose import summary
from dose.models import IrradiationEvent, Study
from dose.summary import AGD_SIDES


@dataclass(frozen=True)
class StudyFilter:
    """Empty values mean "any"; dates are inclusive study dates."""

    modality: str = ""
    since: dt.date | None = None
    until: dt.date | None = None
    station: str = ""  # contains; in double quotes: exactly ('"CT1"' is not "CT12")
    accession: str = ""  # starts with (as typed, or in upper case)
    # Exact values, as the dose insight charts link them (insight/filters.py).
    manufacturer: str = ""
    model: str = ""
    protocol: str = ""  # an event's acquisition protocol
    description: str = ""
    # The Studies page's search fields (contains, any case).
    text: str = ""  # study description, an event's acquisition protocol or station name
    equipment: str = ""  # manufacturer or model name
    age_min: float | None = None  # patient age in years at the study, inclusive
    age_max: float | None = None
    # The headline dose of `modality` (DOSE_MEASURES), in schema units, inclusive.
    dose_min: float | None = None
    dose_max: float | None = None


def filter_studies(flt: StudyFilter, qs: QuerySet[Study] | None = None) -> QuerySet[Study]:
    qs = Study.objects.all() if qs is None else qs
    if flt.modality:
        qs = qs.filter(modality_type=flt.modality.upper())
    if flt.since:
        qs = qs.filter(study_date__gte=flt.since)
    if flt.until:
        qs = qs.filter(study_date__lte=flt.until)
    if len(flt.station) >= 2 and flt.station[0] == flt.station[-1] == '"':
        qs = qs.filter(station_name=flt.station[1:-1])
    elif flt.station:
        qs = qs.filter(station_name__icontains=flt.station)
    if flt.accession:
        qs = qs.filter(_accession(flt.accession))
    for column, value in (("manufacturer", flt.manufacturer),
                          ("manufacturer_model_name", flt.model),
                          ("study_description", flt.description)):
        if value:
            qs = qs.filter(**{column: value})
    if flt.protocol:
        qs = qs.filter(Exists(IrradiationEvent.objects.filter(
            study=OuterRef("pk"), acquisition_protocol=flt.protocol)))
    return _search(qs, flt)


PAST_ANY = chr(0x10FFFF)  # sorts after every character a prefix can be followed by


def _accession(value: str) -> Q:
    """Accession numbers that start with `value`, as typed or in upper case: a range on the
    accession index (SQLite's LIKE is case-insensitive and cannot use it; on PostgreSQL
    Django's varchar_pattern_ops index serves LIKE 'value%')."""
    q = Q()
    for prefix in dict.fromkeys((value, value.upper())):
        if connection.vendor == "postgresql":
            q |= Q(accession_number__startswith=prefix)
        else:
            q |= Q(accession_number__gte=prefix, accession_number__lt=prefix + PAST_ANY)
    return q


def _search(qs: QuerySet[Study], flt: StudyFilter) -> QuerySet[Study]:
    if flt.text:
        qs = qs.filter(Q(study_description__icontains=flt.text)
                       | Q(station_name__icontains=flt.text)
                       | Q(headline_protocols__icontains=flt.text))
    if flt.equipment:
        qs = qs.filter(Q(manufacturer__icontains=flt.equipment)
                       | Q(manufacturer_model_name__icontains=flt.equipment))
    if flt.age_min is not None:
        qs = qs.filter(patient_age_decimal_years__gte=flt.age_min)
    if flt.age_max is not None:
        qs = qs.filter(patient_age_decimal_years__lte=flt.age_max)
    if flt.modality and (flt.dose_min is not None or flt.dose_max is not None):
        qs = qs.filter(dose_range(flt.modality.upper(), flt.dose_min, flt.dose_max))
    return qs


# Modality -> (what the dose range filters on, its schema unit): the list's headline number.
DOSE_MEASURES: dict[str, tuple[str, str]] = {
    "CT": ("DLP", "mGy·cm"),
    "DX": ("DAP", "Gy·m²"),
    "RF": ("DAP", "Gy·m²"),
    "MG": ("AGD of a breast", "mGy"),
    "NM": ("administered activity", "MBq"),
}
# Modality -> the stored headline columns its dose range reads (any one in range matches).
DOSE_COLUMNS: dict[str, tuple[str, ...]] = {
    "CT": ("headline_dlp_mGycm",),
    "DX": ("headline_dap_Gym2",),
    "RF": ("headline_dap_Gym2",),
    "MG": ("headline_agd_left_mGy", "headline_agd_right_mGy", "headline_agd_both_mGy"),
    "NM": ("headline_activity_MBq",),
}


def _between(field: str, low: float | None, high: float | None) -> Q:
    q = Q()
    if low is not None:
        q &= Q(**{f"{field}__gte": low})
    if high is not None:
        q &= Q(**{f"{field}__lte": high})
    return q


def dose_range(modality: str, low: float | None, high: float | None) -> Q:
    """Studies of `modality` whose headline dose (headline()) lies in [low, high], schema
    units: a range on the stored headline (dose/summary.py), served by its index."""
    columns = DOSE_COLUMNS.get(modality)
    if not columns:
        return Q(pk__in=[])
    in_range = Q()
    for column in columns:
        in_range |= _between(column, low, high) & Q(**{f"{column}__isnull": False})
    return Q(modality_type=modality) & in_range


def summary_expressions() -> dict[str, Any]:
    """Annotation name -> the stored headline number of a study (dose/summary.py)."""
    return summary.stored()


def with_summary(qs: QuerySet[Study]) -> QuerySet[Study]:
    """The headline numbers of each study under the names headline() reads.

    The one definition of a study's headline totals is dose/summary.py (stored at import);
    the list, the study page, the insight and the alerts all read them from there, following
    the export's TOTALS rules (dose/serialize.py).
    """
    return qs.annotate(**summary_expressions())


def summarised_page(pks: list[int]) -> list[Study]:
    """The studies of one list page, in `pks` order, with their headline (one query)."""
    found = {s.pk: s for s in with_summary(Study.objects.filter(pk__in=pks))}
    return [found[pk] for pk in pks if pk in found]


@dataclass(frozen=True)
class Headline:
    """What a study amounts to, in schema units; None where the study has no such value."""

    events: int
    dlp_mGycm: float | None
    dap_Gym2: float | None
    dose_rp_Gy: float | None
    agd_mGy_by_side: dict[str, float]
    activity_MBq: float | None


def headline(study: Study) -> Headline:
    """The headline of a study read through with_summary()."""
    values = study.__dict__
    return Headline(
        events=int(values["n_events"]),
        dlp_mGycm=values["dlp_total"],
        dap_Gym2=values["dap_total"],
        dose_rp_Gy=values["dose_rp_total"],
        agd_mGy_by_side={
            side: values[f"agd_{side}"] for side in AGD_SIDES
            if values[f"agd_{side}"] is not None
        },
        activity_MBq=values["activity_total"],
    )


# Sort key -> ordering; every ordering ends with a unique column so pages are stable.
SORTS: dict[str, tuple[str, ...]] = {
    "date": ("study_date", "study_time", "pk"),
    "modality": ("modality_type", "study_date", "pk"),
    "accession": ("accession_number", "pk"),
    "description": ("study_description", "pk"),
    "station": ("station_name", "study_date", "pk"),
    "events": ("n_events", "pk"),
    "dlp": ("dlp_total", "pk"),
    "dap": ("dap_total", "pk"),
}
DEFAULT_SORT = "-date"


def sort_studies(qs: QuerySet[Study], sort: str) -> QuerySet[Study]:
    """`sort` is a key of SORTS, prefixed with "-" for descending; unknown keys use the default.

    A sort on a headline number annotates that number if `qs` does not have it yet.
    """
    key = sort.lstrip("-")
    if key not in SORTS:
        return sort_studies(qs, DEFAULT_SORT)
    descending = sort.startswith("-")
    needed = {
        name: expr for name, expr in summary_expressions().items()
        if name in SORTS[key] and name not in qs.query.annotations
    }
    if needed:
        qs = qs.annotate(**needed)
    order = []
    for name in SORTS[key]:
        expr = F(name)
        order.append(
            expr.desc(nulls_last=True) if descending else expr.asc(nulls_last=True)
        )
    return qs.order_by(*order)
