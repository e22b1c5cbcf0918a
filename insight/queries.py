"""Dose insight data: the dashboard's figures and every chart's rows, aggregated in SQL.

Study-level values (DLP, DAP, dose at the reference point per study) are the study list's
headline totals (dose.queries.summary_expressions), so a figure and the list it links to
agree. Percentiles come from insight.quantiles (window functions, both databases).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import (
    Case,
    Count,
    F,
    FloatField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    When,
)
from django.db.models.functions import (
    ExtractHour,
    ExtractIsoWeekDay,
    TruncMonth,
    TruncWeek,
)
from django.utils import timezone

from dose.models import (
    AccumulatedPlane,
    IrradiationEvent,
    RadiopharmaceuticalAdministration,
    Study,
)
from dose.queries import summary_expressions
from imports.models import ImportRecord, Outcome
from insight.filters import InsightFilter
from insight.quantiles import GroupRow, Stat, grouped_stats
from nodes.models import RemoteNode, StoreNode

LOCALIZER = "Constant Angle Acquisition"
BARS = 40  # groups on one bar chart (largest first); the CSV has the same rows
POINTS = 2000  # points on the mammography scatter (newest first)


def fluoro_time_total() -> Subquery:
    """A study's total fluoroscopy time: the sum over its accumulated planes (TOTALS)."""
    rows = (
        AccumulatedPlane.objects.filter(study=OuterRef("pk")).order_by().values("study")
        .annotate(total=Sum("total_fluoro_time_s")).values("total")
    )
    return Subquery(rows, output_field=FloatField())


def _only(modalities: tuple[str, ...], expr: Any) -> Case:
    """`expr` for studies of these modalities, NULL for the others (no subquery run)."""
    return Case(When(modality_type__in=modalities, then=expr), default=None,
                output_field=FloatField())


def study_value(name: str) -> Any:
    """A study-level headline value by name (schema units)."""
    summary = summary_expressions()
    if name == "fluoro_time":
        return fluoro_time_total()
    return summary[name]


def studies(flt: InsightFilter) -> QuerySet[Study]:
    return Study.objects.filter(flt.studies())


def events(flt: InsightFilter) -> QuerySet[IrradiationEvent]:
    return IrradiationEvent.objects.filter(flt.events())


def administrations(flt: InsightFilter) -> QuerySet[RadiopharmaceuticalAdministration]:
    return RadiopharmaceuticalAdministration.objects.filter(flt.administrations())


# --- dashboard -------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One headline figure of the dashboard: a dose quantity of one modality."""

    modality: str
    label: str
    kind: str  # how the template formats it: number, dap, dose_rp, duration
    unit: str
    n: int
    median: float | None
    p75: float | None
    sort: str = ""  # the study list's sort for this quantity, if it has one


# (modality, label, kind, unit, source, value, sort); source: study, event or administration.
HEADLINES: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    (Study.CT, "DLP per study", "number", "mGy·cm", "study", "dlp_total", "-dlp"),
    (Study.CT, "CTDIvol per acquisition (no localizers)", "number", "mGy", "event",
     "ctdivol_mGy", ""),
    (Study.DX, "DAP per study", "dap", "", "study", "dap_total", "-dap"),
    (Study.RF, "DAP per study", "dap", "", "study", "dap_total", "-dap"),
    (Study.RF, "Fluoroscopy time per study", "duration", "", "study", "fluoro_time", ""),
    (Study.RF, "Dose at the reference point per study", "dose_rp", "mGy", "study",
     "dose_rp_total", ""),
    (Study.MG, "AGD per view", "number", "mGy", "event", "agd_mGy", ""),
    (Study.NM, "Administered activity", "number", "MBq", "administration",
     "administered_activity_MBq", ""),
)


def headline_figures(flt: InsightFilter) -> list[Figure]:
    """Median and 75th percentile of each modality's headline doses: three queries."""
    # One column per study value, computed only for the modalities that show it.
    wanted: dict[str, tuple[str, ...]] = {}
    for modality, _, _, _, source, value, _ in HEADLINES:
        if source == "study":
            wanted[value] = (*wanted.get(value, ()), modality)
    exprs = [_only(modalities, study_value(v)) for v, modalities in wanted.items()]
    found: dict[tuple[str, str], Stat] = {}
    for row in grouped_stats(studies(flt), ["modality_type"], exprs):
        for value, stat in zip(wanted, row.stats, strict=True):
            found[row.keys[0], value] = stat
    event_rows = events(flt).filter(study__modality_type__in=(Study.CT, Study.MG))
    # A localizer's CTDIvol (a constant angle acquisition, DICOM CID 10013) is not a scan's.
    ctdivol = Case(When(ct_acquisition_type=LOCALIZER, then=None), default=F("ctdivol_mGy"),
                   output_field=FloatField())
    for row in grouped_stats(event_rows, ["study__modality_type"], [ctdivol, "agd_mGy"]):
        found[row.keys[0], "ctdivol_mGy"], found[row.keys[0], "agd_mGy"] = row.stats
    for row in grouped_stats(administrations(flt), ["study__modality_type"],
                             ["administered_activity_MBq"]):
        found[row.keys[0], "administered_activity_MBq"] = row.stats[0]
    figures = []
    for modality, label, kind, unit, _, value, sort in HEADLINES:
        got = found.get((modality, value))
        if got is not None and got.n:
            figures.append(Figure(modality, label, kind, unit, got.n, got.median, got.p75, sort))
    return figures


def studies_per_modality(flt: InsightFilter) -> list[tuple[str, int]]:
    rows = (studies(flt).order_by().values("modality_type").annotate(n=Count("pk"))
            .order_by("modality_type"))
    return [(r["modality_type"], r["n"]) for r in rows]


def studies_per_station(flt: InsightFilter, limit: int = 20) -> list[tuple[str, str, int]]:
    """(station, modality, studies), busiest first."""
    rows = (
        studies(flt).order_by().values("station_name", "modality_type")
        .annotate(n=Count("pk")).order_by("-n", "station_name", "modality_type")[:limit]
    )
    return [(r["station_name"], r["modality_type"], r["n"]) for r in rows]


@dataclass(frozen=True)
class Activity:
    received_today: int
    imported_today: int
    failed_24h: int
    failed_period: int


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def activity(since: dt.date | None, until: dt.date | None,
             now: dt.datetime | None = None) -> Activity:
    """Objects received today (site time zone), failed imports in 24 h and in the period."""
    now = now or timezone.now()
    today = _start_of(timezone.localdate(now))
    records = ImportRecord.objects.order_by()
    failed = records.filter(outcome=Outcome.FAILED)
    period = failed
    if until:
        period = period.filter(created_at__lt=_start_of(until + dt.timedelta(days=1)))
    if since:
        period = period.filter(created_at__gte=_start_of(since))
    return Activity(
        received_today=records.filter(created_at__gte=today).count(),
        imported_today=records.filter(outcome=Outcome.IMPORTED, created_at__gte=today).count(),
        failed_24h=failed.filter(created_at__gte=now - dt.timedelta(hours=24)).count(),
        failed_period=period.count(),
    )


@dataclass(frozen=True)
class NodeHealth:
    stores: int
    stores_controlled: int
    stores_running: int
    remotes: int
    remotes_alive: int
    remotes_down: int
    last_echo: dt.datetime | None


def node_health() -> NodeHealth:
    """Store nodes' runtime state (store.models) and remote nodes' last echo."""
    stores = list(StoreNode.objects.select_related("runtime"))
    running = 0
    for node in stores:
        runtime = getattr(node, "runtime", None) if node.controlled else None
        running += bool(runtime is not None and runtime.is_running)
    remotes = list(RemoteNode.objects.all())
    checked = [r.echo_checked_at for r in remotes if r.echo_checked_at is not None]
    return NodeHealth(
        stores=len(stores),
        stores_controlled=sum(1 for s in stores if s.controlled),
        stores_running=running,
        remotes=len(remotes),
        remotes_alive=sum(1 for r in remotes if r.echo_alive),
        remotes_down=sum(1 for r in remotes if r.echo_alive is False),
        last_echo=max(checked) if checked else None,
    )


# --- charts ----------------------------------------------------------------------------


def per_group(qs: QuerySet[Any], group: str, values: list[Any]) -> list[GroupRow]:
    """The largest BARS groups of `qs` by `group`, each value's n, median and p75."""
    return grouped_stats(qs, [group], values, limit=BARS)


def study_values_per(flt: InsightFilter, group: str, names: list[str]) -> list[GroupRow]:
    return per_group(studies(flt), group, [study_value(n) for n in names])


def event_values_per(flt: InsightFilter, group: str, fields: list[str]) -> list[GroupRow]:
    return per_group(events(flt), group, fields)


def administration_values_per(flt: InsightFilter, group: str,
                              fields: list[str]) -> list[GroupRow]:
    return per_group(administrations(flt), group, fields)


def over_time(flt: InsightFilter, name: str, interval: str) -> list[GroupRow]:
    """A study value's median per week (Monday) or month of the study date."""
    trunc = TruncWeek if interval == "week" else TruncMonth
    qs = studies(flt).filter(study_date__isnull=False)
    return grouped_stats(qs, [trunc("study_date")], [study_value(name)], by_label=True)


def workload(flt: InsightFilter) -> list[tuple[int, int, int]]:
    """(ISO weekday 1-7, hour 0-23, studies) for studies with a date and a time."""
    rows = (
        studies(flt).filter(study_date__isnull=False, study_time__isnull=False).order_by()
        .values(day=ExtractIsoWeekDay("study_date"), hour=ExtractHour("study_time"))
        .annotate(n=Count("pk")).order_by("day", "hour")
    )
    return [(int(r["day"]), int(r["hour"]), int(r["n"])) for r in rows]


def mg_points(flt: InsightFilter, limit: int = POINTS) -> list[tuple[str, float, float]]:
    """(view, compressed thickness mm, AGD mGy) of the newest mammography exposures."""
    rows = (
        events(flt).filter(agd_mGy__isnull=False, compression_thickness_mm__isnull=False)
        .order_by(F("study__study_date").desc(nulls_last=True), "-study_id", "ordinal")
        .values_list("image_view", "compression_thickness_mm", "agd_mGy")[:limit]
    )
    return [(view, float(t or 0), float(a or 0)) for view, t, a in rows]


def choices(flt: InsightFilter, keep: dict[str, str] | None = None) -> dict[str, list[str]]:
    """The stations, manufacturers, models and protocols of the modality's studies in the
    period, plus the values in `keep` (what is chosen stays valid when the period changes)."""
    period = InsightFilter(modality=flt.modality, since=flt.since, until=flt.until)
    base = Study.objects.filter(period.study_q()).order_by()
    out = {
        field: sorted(v for v in base.values_list(column, flat=True).distinct() if v)
        for field, column in (("station", "station_name"), ("manufacturer", "manufacturer"),
                              ("model", "manufacturer_model_name"))
    }
    if flt.modality == Study.NM:
        protocols = list(base.values_list("study_description", flat=True).distinct())
    else:
        protocols = list(
            IrradiationEvent.objects.filter(period.study_q("study__")).order_by()
            .values_list("acquisition_protocol", flat=True).distinct())
    out["protocol"] = sorted(v for v in protocols if v)
    for name, value in (keep or {}).items():
        if value and value not in out[name]:
            out[name] = sorted([*out[name], value])
    return out
