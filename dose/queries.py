"""Study filters and sorting shared by the Studies page and `doseport export studies`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import (
    Count,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from dose.models import (
    AccumulatedBreast,
    AccumulatedPlane,
    IrradiationEvent,
    RadiopharmaceuticalAdministration,
    Study,
)


@dataclass(frozen=True)
class StudyFilter:
    """Empty values mean "any"; dates are inclusive study dates."""

    modality: str = ""
    since: dt.date | None = None
    until: dt.date | None = None
    station: str = ""
    accession: str = ""


def filter_studies(flt: StudyFilter, qs: QuerySet[Study] | None = None) -> QuerySet[Study]:
    qs = Study.objects.all() if qs is None else qs
    if flt.modality:
        qs = qs.filter(modality_type=flt.modality.upper())
    if flt.since:
        qs = qs.filter(study_date__gte=flt.since)
    if flt.until:
        qs = qs.filter(study_date__lte=flt.until)
    if flt.station:
        qs = qs.filter(station_name__icontains=flt.station)
    if flt.accession:
        qs = qs.filter(accession_number__icontains=flt.accession)
    return qs


def _count(model: type[IrradiationEvent | RadiopharmaceuticalAdministration]) -> Subquery:
    rows = (
        model.objects.filter(study=OuterRef("pk")).order_by().values("study")
        .annotate(n=Count("pk")).values("n")
    )
    return Subquery(rows, output_field=IntegerField())


def _sum(model: type[AccumulatedPlane | AccumulatedBreast | IrradiationEvent
                     | RadiopharmaceuticalAdministration], field: str) -> Subquery:
    rows = (
        model.objects.filter(study=OuterRef("pk")).order_by().values("study")
        .annotate(total=Sum(field)).values("total")
    )
    return Subquery(rows, output_field=FloatField())


def with_summary(qs: QuerySet[Study]) -> QuerySet[Study]:
    """Per-study numbers for the list, as subqueries (no join fan-out, one query per page)."""
    return qs.annotate(
        n_events=Coalesce(_count(IrradiationEvent), Value(0))
        + Coalesce(_count(RadiopharmaceuticalAdministration), Value(0)),
        dlp_total=Coalesce(F("dlp_total_mGycm"), _sum(IrradiationEvent, "dlp_mGycm")),
        dap_total=Coalesce(
            _sum(AccumulatedPlane, "dap_total_Gym2"), _sum(IrradiationEvent, "dap_Gym2")
        ),
        agd_total=_sum(AccumulatedBreast, "accumulated_agd_mGy"),
        activity_total=_sum(RadiopharmaceuticalAdministration, "administered_activity_MBq"),
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
    """`sort` is a key of SORTS, prefixed with "-" for descending; unknown keys use the default."""
    key = sort.lstrip("-")
    if key not in SORTS:
        return sort_studies(qs, DEFAULT_SORT)
    descending = sort.startswith("-")
    order = []
    for name in SORTS[key]:
        expr = F(name)
        order.append(
            expr.desc(nulls_last=True) if descending else expr.asc(nulls_last=True)
        )
    return qs.order_by(*order)
