"""The charts of each modality: what they show, in the units pages use (docs/display.md).

Each chart is built from one or two aggregate queries (insight.queries) into a ChartData,
which the page's script draws and tabulates (its text equivalent) and the CSV download
writes row for row: the three show the same numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from django.conf import settings

from alerts.models import PatternOn
from dose.models import Study
from insight import queries as q
from insight.filters import InsightFilter, study_list_url
from insight.levels import bar_levels
from insight.quantiles import GroupRow, Stat
from lib import format as fmt

NONE_LABEL = "(none)"
MAX_BUCKETS = 270  # weeks or months on the DLP-over-time line before gaps are left out
EMPTY = Stat(0, None, None)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Series:
    label: str
    unit: str
    values: list[float | None]  # medians (or counts when not `quantiles`)
    n: list[int]
    p75: list[float | None] = field(default_factory=list)
    axis: str = "y"
    text_kind: str = "number"  # number or duration: how the table writes a value
    quantiles: bool = True
    # The reference level of each bar (insight/levels.py), in `unit`; empty: none applies.
    levels: list[float | None] = field(default_factory=list)
    level_names: list[str] = field(default_factory=list)

    def text(self, value: float | None) -> str:
        if value is None:
            return ""
        return fmt.duration(value) if self.text_kind == "duration" else fmt.number(value)

    @property
    def above(self) -> list[bool]:
        """Bars whose median exceeds their reference level (empty without levels)."""
        if not self.levels:
            return []
        return [level is not None and value is not None and value > level
                for value, level in zip(self.values, self.levels, strict=True)]


@dataclass(frozen=True)
class ChartData:
    name: str
    title: str
    kind: str  # bar (horizontal), stacked (vertical, stacked), line or scatter
    x_label: str
    labels: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    points: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    y_label: str = ""
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for out, series in zip(data["series"], self.series, strict=True):
            out["text"] = [series.text(v) for v in series.values]
            out["p75_text"] = [series.text(v) for v in series.p75]
            out["level_text"] = [series.text(v) for v in series.levels]
            out["above"] = series.above
        data["points_text"] = {
            view: [[fmt.number(x), fmt.number(y)] for x, y in points]
            for view, points in self.points.items()
        }
        return data

    def csv_rows(self) -> list[list[object]]:
        """Header and rows: one per label (or per point), numbers in the chart's units."""
        if self.kind == "scatter":
            rows: list[list[object]] = [["view", self.x_label, self.y_label]]
            for view, points in self.points.items():
                rows += [[view, x, y] for x, y in points]
            return rows
        header: list[object] = [self.x_label]
        for s in self.series:
            unit = f" ({s.unit})" if s.unit else ""
            header += [f"{s.label}: median{unit}", f"{s.label}: 75th percentile{unit}",
                       f"{s.label}: n"] if s.quantiles else [s.label]
            if s.levels:
                header += [f"{s.label}: reference level{unit}", f"{s.label}: reference level name",
                           f"{s.label}: median above the level"]
        rows = [header]
        for i, label in enumerate(self.labels):
            row: list[object] = [label]
            for s in self.series:
                row += [s.values[i], s.p75[i], s.n[i]] if s.quantiles else [s.values[i]]
                if s.levels:
                    row += [s.levels[i], s.level_names[i], "yes" if s.above[i] else ""]
            rows.append(row)
        return rows


# --- units -----------------------------------------------------------------------------


def dap_scale() -> tuple[float, str]:
    unit = fmt.dap_unit(settings.DAP_UNIT)
    return unit.per_Gym2, unit.label


def _scaled(values: list[float | None], factor: float) -> list[float | None]:
    return [None if v is None else v * factor for v in values]


def _series(rows: list[GroupRow], i: int, label: str, unit: str, factor: float = 1.0,
            axis: str = "y", text_kind: str = "number") -> Series:
    stats = [r.stats[i] for r in rows]
    return Series(
        label=label, unit=unit, axis=axis, text_kind=text_kind,
        values=_scaled([s.median for s in stats], factor),
        p75=_scaled([s.p75 for s in stats], factor),
        n=[s.n for s in stats],
    )


def _with_levels(series: Series, rows: list[GroupRow], modality: str, quantity: str,
                 grouping: PatternOn, factor: float = 1.0) -> Series:
    """The series with the reference level of each bar, when any level applies."""
    found = bar_levels(modality, quantity, grouping, [str(r.keys[0] or "") for r in rows],
                       factor)
    if not any(found):
        return series
    return replace(series, levels=[lv.value if lv else None for lv in found],
                   level_names=[lv.name if lv else "" for lv in found])


def _label(value: object) -> str:
    return (fmt.dicom_text(value) or NONE_LABEL) if value else NONE_LABEL


# --- bar charts by group ---------------------------------------------------------------


def _bars(name: str, title: str, x_label: str, rows: list[GroupRow],
          series: list[Series], link: Callable[[str], str] | None) -> ChartData:
    """Bars per group; `link` gives each group's studies (None: the list has no such filter)."""
    raw = [str(r.keys[0] or "") for r in rows]
    return ChartData(
        name=name, title=title, kind="bar", x_label=x_label,
        labels=[_label(v) for v in raw], links=[link(v) if v and link else "" for v in raw],
        series=series,
        note=f"The {q.BARS} largest groups." if len(rows) >= q.BARS else "",
    )


def ct_protocol(flt: InsightFilter, interval: str) -> ChartData:
    rows = q.event_values_per(flt, "acquisition_protocol", ["ctdivol_mGy", "dlp_mGycm"])
    return _bars(
        "protocol", "CTDIvol and DLP per acquisition, by acquisition protocol",
        "acquisition protocol", rows,
        [_with_levels(_series(rows, 0, "CTDIvol", "mGy"), rows, Study.CT, "ctdivol",
                      PatternOn.PROTOCOL),
         _series(rows, 1, "DLP", "mGy·cm", axis="y1")],
        lambda v: study_list_url(flt.with_(protocol=v)),
    )


def ct_description(flt: InsightFilter, interval: str) -> ChartData:
    rows = q.study_values_per(flt, "study_description", ["dlp_total"])
    per_event = {r.keys[0]: r for r in q.event_values_per(
        flt, "study__study_description", ["ctdivol_mGy"])}
    ctdi = [per_event.get(r.keys[0]) for r in rows]
    empty = GroupRow(keys=(), rows=0, stats=(EMPTY,))
    return _bars(
        "description", "DLP per study and CTDIvol per acquisition, by study description",
        "study description", rows,
        [_with_levels(_series(rows, 0, "DLP per study", "mGy·cm", axis="y1"), rows, Study.CT,
                      "dlp", PatternOn.DESCRIPTION),
         _with_levels(_series([r or empty for r in ctdi], 0, "CTDIvol per acquisition", "mGy"),
                      rows, Study.CT, "ctdivol", PatternOn.DESCRIPTION)],
        lambda v: study_list_url(flt, description=v),
    )


def _period_of(start: dt.date, interval: str) -> tuple[str, dt.date]:
    if interval == "week":
        return f"week of {fmt.date_text(start)}", start + dt.timedelta(days=6)
    following = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return start.strftime("%b %Y"), following - dt.timedelta(days=1)


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])  # SQLite returns text


def _fill_gaps(rows: list[GroupRow], interval: str) -> list[GroupRow]:
    """Every week or month from the first to the last (empty ones with n = 0), so the line
    shows gaps where there were no studies; left sparse beyond MAX_BUCKETS."""
    found = {_as_date(r.keys[0]): r for r in rows}
    if not found:
        return []
    day, last = min(found), max(found)
    filled: list[GroupRow] = []
    while day <= last and len(filled) <= MAX_BUCKETS:
        filled.append(found.get(day, GroupRow(keys=(day,), rows=0, stats=(EMPTY,))))
        day = _period_of(day, interval)[1] + dt.timedelta(days=1)
    return filled if day > last else rows


def ct_dlp_time(flt: InsightFilter, interval: str) -> ChartData:
    found = q.over_time(flt, "dlp_total", interval)
    rows = _fill_gaps(found, interval)
    labels, links = [], []
    for r in rows:
        start = _as_date(r.keys[0])
        label, end = _period_of(start, interval)
        labels.append(label)
        links.append("" if not r.rows else study_list_url(
            flt.with_(since=max(start, flt.since or start), until=min(end, flt.until or end)),
            sort="-dlp"))
    return ChartData(
        name="dlp-time", title=f"DLP per study, median per {interval}", kind="line",
        x_label=interval, labels=labels, links=links,
        series=[_series(rows, 0, "DLP per study", "mGy·cm")],
        note="" if rows is not found else f"Only the {interval}s with studies are shown.",
    )


def dap_protocol(flt: InsightFilter, interval: str) -> ChartData:
    factor, unit = dap_scale()
    rows = q.event_values_per(flt, "acquisition_protocol", ["dap_Gym2"])
    return _bars(
        "protocol", "DAP per exposure or run, by acquisition protocol", "acquisition protocol",
        rows, [_series(rows, 0, "DAP per event", unit, factor)],
        lambda v: study_list_url(flt.with_(protocol=v)),
    )


def dap_station(flt: InsightFilter, interval: str) -> ChartData:
    factor, unit = dap_scale()
    rows = q.study_values_per(flt, "station_name", ["dap_total"])
    return _bars(
        "station", "DAP per study, by station", "station", rows,
        [_series(rows, 0, "DAP per study", unit, factor)],
        lambda v: study_list_url(flt, station=v, sort="-dap"),
    )


def rf_fluoro(flt: InsightFilter, interval: str) -> ChartData:
    rows = q.study_values_per(flt, "study_description", ["fluoro_time", "dose_rp_total"])
    return _bars(
        "fluoro", "Fluoroscopy time and dose at the reference point per study, "
        "by study description", "study description", rows,
        [_series(rows, 0, "fluoroscopy time", "s", text_kind="duration"),
         _with_levels(_series(rows, 1, "dose at the reference point", "mGy", 1000.0, axis="y1"),
                      rows, Study.RF, "dose_rp", PatternOn.DESCRIPTION, 1000.0)],
        lambda v: study_list_url(flt, description=v),
    )


def mg_scatter(flt: InsightFilter, interval: str) -> ChartData:
    points: dict[str, list[tuple[float, float]]] = {}
    for view, thickness, agd in q.mg_points(flt):
        points.setdefault(_label(view), []).append((thickness, agd))
    total = sum(len(p) for p in points.values())
    return ChartData(
        name="agd-thickness", title="AGD against compressed breast thickness, per view",
        kind="scatter", x_label="compressed thickness (mm)", y_label="AGD (mGy)",
        points=dict(sorted(points.items())),
        note=f"The newest {q.POINTS} exposures." if total >= q.POINTS else "",
    )


def mg_view(flt: InsightFilter, interval: str) -> ChartData:
    rows = q.event_values_per(flt, "image_view", ["agd_mGy", "compression_thickness_mm"])
    return _bars(
        "view", "AGD and compressed thickness per exposure, by view", "view", rows,
        [_series(rows, 0, "AGD", "mGy"),
         _series(rows, 1, "compressed thickness", "mm", axis="y1")],
        None,
    )


def nm_agent(flt: InsightFilter, interval: str) -> ChartData:
    rows = q.administration_values_per(
        flt, "radiopharmaceutical_agent", ["administered_activity_MBq"])
    return _bars(
        "agent", "Administered activity, by radiopharmaceutical", "radiopharmaceutical", rows,
        [_with_levels(_series(rows, 0, "administered activity", "MBq"), rows, Study.NM,
                      "activity", PatternOn.PROTOCOL)],
        None,
    )


def workload(flt: InsightFilter, interval: str) -> ChartData:
    counts = {(d, h): n for d, h, n in q.workload(flt)}
    series = []
    for day, name in enumerate(WEEKDAYS, start=1):
        values = [counts.get((day, hour), 0) for hour in range(24)]
        series.append(Series(label=name, unit="studies", values=[float(v) for v in values],
                             n=values, quantiles=False))
    return ChartData(
        name="workload", title="Studies by hour of the day, per weekday", kind="stacked",
        x_label="hour", y_label="studies", labels=[f"{h:02d}:00" for h in range(24)],
        series=series, note="Study times as the modality recorded them.",
    )


Builder = Callable[[InsightFilter, str], ChartData]
CHARTS: dict[str, dict[str, Builder]] = {
    Study.CT: {"protocol": ct_protocol, "description": ct_description,
               "dlp-time": ct_dlp_time, "workload": workload},
    Study.DX: {"protocol": dap_protocol, "station": dap_station, "workload": workload},
    Study.RF: {"protocol": dap_protocol, "station": dap_station, "fluoro": rf_fluoro,
               "workload": workload},
    Study.MG: {"agd-thickness": mg_scatter, "view": mg_view, "workload": workload},
    Study.NM: {"agent": nm_agent, "workload": workload},
}
MODALITY_NAMES = {
    Study.CT: "CT", Study.DX: "Radiography (DX)", Study.RF: "Fluoroscopy (RF)",
    Study.MG: "Mammography", Study.NM: "Nuclear medicine",
}
