"""Study filters and sorting shared by the Studies page and `doseport export studies`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Trim, Upper

from dose.models import (
    AccumulatedBreast,
    AccumulatedPlane,
    IrradiationEvent,
    RadiopharmaceuticalAdministration,
    Study,
)
from lib.laterality import _SIDES


@dataclass(frozen=True)
class StudyFilter:
    """Empty values mean "any"; dates are inclusive study dates."""

    modality: str = ""
    since: dt.date | None = None
    until: dt.date | None = None
    station: str = ""  # contains; in double quotes: exactly ('"CT1"' is not "CT12")
    accession: str = ""
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
        qs = qs.filter(accession_number__icontains=flt.accession)
    for column, value in (("manufacturer", flt.manufacturer),
                          ("manufacturer_model_name", flt.model),
                          ("study_description", flt.description)):
        if value:
            qs = qs.filter(**{column: value})
    if flt.protocol:
        qs = qs.filter(Exists(IrradiationEvent.objects.filter(
            study=OuterRef("pk"), acquisition_protocol=flt.protocol)))
    return _search(qs, flt)


# Up to this many studies that a protocol search or a dose range finds are listed as ids
# (one pass over the events for the list's count and page both); more stay an IN subquery
# (SQLite allows 32,766 parameters).
MATCHING_IDS_MAX = 2_000


def _with_protocol(text: str) -> Q:
    """Studies with an event whose acquisition protocol contains `text`: one pass over the
    events, not a correlated search per study."""
    events = (IrradiationEvent.objects.filter(acquisition_protocol__icontains=text)
              .order_by().values_list("study_id", flat=True).distinct())
    ids = list(events[:MATCHING_IDS_MAX + 1])
    if len(ids) <= MATCHING_IDS_MAX:
        return Q(pk__in=ids)
    return Q(pk__in=events)


def _search(qs: QuerySet[Study], flt: StudyFilter) -> QuerySet[Study]:
    if flt.text:
        qs = qs.filter(Q(study_description__icontains=flt.text)
                       | Q(station_name__icontains=flt.text) | _with_protocol(flt.text))
    if flt.equipment:
        qs = qs.filter(Q(manufacturer__icontains=flt.equipment)
                       | Q(manufacturer_model_name__icontains=flt.equipment))
    if flt.age_min is not None:
        qs = qs.filter(patient_age_decimal_years__gte=flt.age_min)
    if flt.age_max is not None:
        qs = qs.filter(patient_age_decimal_years__lte=flt.age_max)
    if flt.modality and (flt.dose_min is not None or flt.dose_max is not None):
        modality = flt.modality.upper()
        in_range = dose_range(modality, flt.dose_min, flt.dose_max)
        # Found once (the dose tables are read once), not again for the count and the page.
        ids = list(Study.objects.filter(in_range, modality_type=modality).order_by()
                   .values_list("pk", flat=True)[:MATCHING_IDS_MAX + 1])
        qs = qs.filter(pk__in=ids) if len(ids) <= MATCHING_IDS_MAX else qs.filter(in_range)
    return qs


# Modality -> (what the dose range filters on, its schema unit): the list's headline number.
DOSE_MEASURES: dict[str, tuple[str, str]] = {
    "CT": ("DLP", "mGy·cm"),
    "DX": ("DAP", "Gy·m²"),
    "RF": ("DAP", "Gy·m²"),
    "MG": ("AGD of a breast", "mGy"),
    "NM": ("administered activity", "MBq"),
}


def _between(field: str, low: float | None, high: float | None) -> Q:
    q = Q()
    if low is not None:
        q &= Q(**{f"{field}__gte": low})
    if high is not None:
        q &= Q(**{f"{field}__lte": high})
    return q


def _studies_summing(model: type[Any], field: str, low: float | None, high: float | None,
                     *conditions: Any, group: tuple[str, ...] = (),
                     **where: Any) -> QuerySet[Any]:
    """The study ids whose rows of `model` (per `group`) sum `field` into the range: one
    grouped pass over the matching rows, as an IN subquery."""
    return (
        model.objects.filter(*conditions, **where).order_by().values("study_id", *group)
        .annotate(total=Sum(field)).filter(_between("total", low, high)).values("study_id")
    )


def dose_range(modality: str, low: float | None, high: float | None) -> Q:
    """Studies whose headline dose (headline()) lies in [low, high], schema units.

    The same rules as summary_expressions(), written as set lookups (IN a grouped subquery)
    so that a range over 100,000 studies reads each dose table once instead of summing per
    study. CT reads its events only for the studies without a report total (an index on
    modality and DLP total finds them)."""
    if modality == Study.CT:
        events = _studies_summing(IrradiationEvent, "dlp_mGycm", low, high,
                                  study__modality_type=modality,
                                  study__dlp_total_mGycm__isnull=True)
        return _between("dlp_total_mGycm", low, high) | Q(
            dlp_total_mGycm__isnull=True, pk__in=events)
    if modality in (Study.DX, Study.RF):
        planes = _studies_summing(AccumulatedPlane, "dap_total_Gym2", low, high)
        events = _studies_summing(IrradiationEvent, "dap_Gym2", low, high,
                                  dap_Gym2__isnull=False)
        # "Has no planes" per study, not per event (a correlated lookup per event row).
        with_planes = AccumulatedPlane.objects.order_by().values("study_id")
        return Q(pk__in=planes) | (~Q(pk__in=with_planes) & Q(pk__in=events))
    if modality == Study.MG:
        # A side's reported breasts summed, as _agd() does (several words name one side).
        side = Case(*(When(word__in=_breast_words(code), then=Value(code))
                      for code in AGD_SIDES), default=Value(""))
        reported = (
            AccumulatedBreast.objects.annotate(word=Upper(Trim("laterality"))).annotate(side=side)
            .exclude(side="").order_by().values("study_id", "side")
            .annotate(total=Sum("accumulated_agd_mGy")).filter(_between("total", low, high))
            .values("study_id")
        )
        events = _studies_summing(IrradiationEvent, "agd_mGy", low, high,
                                  group=("laterality_code",), laterality_code__in=AGD_SIDES,
                                  agd_mGy__isnull=False)
        with_breasts = AccumulatedBreast.objects.order_by().values("study_id")
        return Q(pk__in=reported) | (~Q(pk__in=with_breasts) & Q(pk__in=events))
    if modality == Study.NM:
        return Q(pk__in=_studies_summing(
            RadiopharmaceuticalAdministration, "administered_activity_MBq", low, high))
    return Q(pk__in=[])


def _count(model: type[IrradiationEvent | RadiopharmaceuticalAdministration]) -> Subquery:
    rows = (
        model.objects.filter(study=OuterRef("pk")).order_by().values("study")
        .annotate(n=Count("pk")).values("n")
    )
    return Subquery(rows, output_field=IntegerField())


def _sum(model: type[AccumulatedPlane | AccumulatedBreast | IrradiationEvent
                     | RadiopharmaceuticalAdministration], field: str,
         **where: object) -> Subquery:
    rows = (
        model.objects.filter(study=OuterRef("pk"), **where).order_by().values("study")
        .annotate(total=Sum(field)).values("total")
    )
    return Subquery(rows, output_field=FloatField())


def _has(model: type[AccumulatedPlane | AccumulatedBreast]) -> Exists:
    return Exists(model.objects.filter(study=OuterRef("pk")))


def _breast_words(code: str) -> list[str]:
    """The upper-case words a breast's laterality may have for one side (lib.laterality)."""
    return [word for word, side in _SIDES.items() if side == code]


def _agd(code: str) -> Case:
    """Accumulated AGD of one side: a report's breast totals if it has any, else the events'."""
    breasts = (
        AccumulatedBreast.objects.filter(study=OuterRef("pk"))
        .annotate(side=Upper(Trim("laterality"))).filter(side__in=_breast_words(code))
        .order_by().values("study").annotate(total=Sum("accumulated_agd_mGy")).values("total")
    )
    return Case(
        When(_has(AccumulatedBreast), then=Subquery(breasts, output_field=FloatField())),
        default=_sum(IrradiationEvent, "agd_mGy", laterality_code=code),
        output_field=FloatField(),
    )


def _planes_or_events(plane_field: str, event_field: str) -> Case:
    """A projection total: the report's accumulated planes if it has any, else the events'."""
    return Case(
        When(_has(AccumulatedPlane), then=_sum(AccumulatedPlane, plane_field)),
        When(
            modality_type__in=(Study.DX, Study.RF, Study.MG),
            then=_sum(IrradiationEvent, event_field),
        ),
        default=None,
        output_field=FloatField(),
    )


AGD_SIDES = ("L", "R", "B")


def summary_expressions() -> dict[str, Any]:
    """Annotation name -> expression for every headline number of a study."""
    return {
        "n_events": Coalesce(_count(IrradiationEvent), Value(0))
        + Coalesce(_count(RadiopharmaceuticalAdministration), Value(0)),
        "dlp_total": Case(
            When(modality_type=Study.CT, then=Coalesce(
                F("dlp_total_mGycm"), _sum(IrradiationEvent, "dlp_mGycm")
            )),
            default=None, output_field=FloatField(),
        ),
        "dap_total": _planes_or_events("dap_total_Gym2", "dap_Gym2"),
        "dose_rp_total": _planes_or_events("dose_rp_total_Gy", "dose_rp_Gy"),
        "agd_L": _agd("L"), "agd_R": _agd("R"), "agd_B": _agd("B"),
        "activity_total": _sum(
            RadiopharmaceuticalAdministration, "administered_activity_MBq"
        ),
    }


def with_summary(qs: QuerySet[Study]) -> QuerySet[Study]:
    """The headline numbers of each study, as subqueries (no join fan-out, one query per page).

    The one definition of a study's headline totals: the list and the study page both read
    them through headline(); they follow the export's TOTALS rules (dose/serialize.py).
    """
    return qs.annotate(**summary_expressions())


def summarised_page(pks: list[int]) -> list[Study]:
    """The studies of one list page, in `pks` order, with their headline (one query).

    The list sorts and pages on the bare rows first so the subqueries run for the page's
    rows only, not for every row the sort has to read."""
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
