"""Exports from the Studies page: CSV or XLSX, one row per event or one row per study.

- layout `event`, CSV: exactly `doseport export studies --format csv` (dose/export.py);
- layout `event`, XLSX: one sheet per modality, the columns of that modality;
- layout `study`: one row per study with its events side by side (E1 ..., E2 ...), the
  layout OpenREM users know; XLSX has one sheet per modality, CSV is one file when the
  filter names a modality and otherwise a zip with one CSV per modality.

XLSX is written by XlsxWriter in constant_memory mode: each row goes to disk as it is
written, so memory does not grow with the number of rows. docs/export.md has the columns.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import operator
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import xlsxwriter
from django.db.models import Count, Max, Q, Sum

from dose.export import CSV_COLUMNS, STUDY_COLUMNS, csv_rows, primed
from dose.export_rows import iter_export_dicts as iter_study_dicts
from dose.models import Study
from dose.queries import StudyFilter, filter_studies, summary_expressions
from dose.serialize import EVENT_COMMON, EVENT_CT, EVENT_MG, EVENT_NM, EVENT_PROJECTION

FORMATS = ("csv", "xlsx")
LAYOUTS = ("event", "study")
IDENTITY_COLUMNS = ("patient_name", "patient_id", "patient_birth_date")
MODALITIES = tuple(m for m, _ in Study.MODALITY_CHOICES)
XLSX_MAX_COLUMNS = 16384
PROGRESS_EVERY = 500  # rows between progress reports

# Event columns of each modality's event-layout sheet (XLSX).
EVENT_KEYS_BY_MODALITY: dict[str, tuple[str, ...]] = {
    Study.CT: EVENT_COMMON + EVENT_CT,
    Study.DX: EVENT_COMMON + EVENT_PROJECTION,
    Study.RF: EVENT_COMMON + EVENT_PROJECTION,
    Study.MG: EVENT_COMMON + EVENT_PROJECTION + EVENT_MG,
    # PET-CT reports carry CT events next to the administration.
    Study.NM: EVENT_COMMON + EVENT_NM + ("ct_acquisition_type", "ctdivol_mGy", "dlp_mGycm"),
}
_PROJECTION_TOTALS = (
    "number_of_events", "dap_total_Gym2", "dose_rp_total_Gy", "fluoro_dap_total_Gym2",
    "fluoro_dose_rp_total_Gy", "acquisition_dap_total_Gym2", "acquisition_dose_rp_total_Gy",
    "total_fluoro_time_s", "number_of_planes",
)
TOTALS_BY_MODALITY: dict[str, tuple[str, ...]] = {
    Study.CT: ("number_of_events", "dlp_total_mGycm"),
    Study.DX: ("number_of_events", "dap_total_Gym2", "dose_rp_total_Gy", "number_of_planes"),
    Study.RF: _PROJECTION_TOTALS,
    Study.MG: ("number_of_events", "dap_total_Gym2", "accumulated_agd_mGy",
               "accumulated_agd_by_side_mGy"),
    Study.NM: ("number_of_events",),
}
# The few values of each event shown side by side in the study layout.
STUDY_LAYOUT_EVENT_KEYS: dict[str, tuple[str, ...]] = {
    Study.CT: ("acquisition_protocol", "ct_acquisition_type", "ctdivol_mGy", "dlp_mGycm",
               "ctdiw_phantom_type", "scanning_length_mm", "pitch_factor",
               "nominal_total_collimation_width_mm", "exposure_time_s"),
    Study.DX: ("acquisition_protocol", "target_region", "dap_Gym2", "dose_rp_Gy", "kvp_kV",
               "exposure_uAs", "exposure_time_ms", "exposure_index", "deviation_index",
               "distance_source_to_detector_mm"),
    Study.RF: ("acquisition_protocol", "irradiation_event_type", "acquisition_plane",
               "dap_Gym2", "dose_rp_Gy", "kvp_kV", "exposure_time_ms", "number_of_pulses",
               "pulse_width_ms", "positioner_primary_angle_deg",
               "positioner_secondary_angle_deg"),
    Study.MG: ("acquisition_protocol", "laterality_code", "image_view", "agd_mGy",
               "compression_thickness_mm", "compression_force_N", "kvp_kV", "exposure_uAs",
               "anode_target_material", "hvl_mm"),
    Study.NM: ("radiopharmaceutical_agent", "radionuclide", "administered_activity_MBq",
               "radiopharmaceutical_start_datetime", "route_of_administration",
               "effective_dose_mSv", "ct_acquisition_type", "ctdivol_mGy", "dlp_mGycm"),
}

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ExportSpec:
    """What to export: the list's filter, the format and layout, identity columns or not."""

    flt: StudyFilter
    fmt: str
    layout: str
    identity: bool = False

    @property
    def zipped(self) -> bool:
        return self.fmt == "csv" and self.layout == "study" and not self.flt.modality

    @property
    def extension(self) -> str:
        return "zip" if self.zipped else self.fmt

    @property
    def content_type(self) -> str:
        if self.zipped:
            return "application/zip"
        if self.fmt == "xlsx":
            return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return "text/csv; charset=utf-8"

    def file_name(self, now: dt.datetime) -> str:
        modality = f"-{self.flt.modality.upper()}" if self.flt.modality else ""
        return f"doseport-studies{modality}-{self.layout}-{now:%Y%m%d-%H%M%S}.{self.extension}"


@dataclass(frozen=True)
class ModalitySize:
    studies: int
    events: int
    most_events: int  # of one study
    empty: int  # studies without events


@dataclass(frozen=True)
class ExportSize:
    by_modality: dict[str, ModalitySize]

    @property
    def studies(self) -> int:
        return sum(m.studies for m in self.by_modality.values())

    @property
    def events(self) -> int:
        return sum(m.events for m in self.by_modality.values())

    def rows(self, layout: str) -> int:
        """Data rows the export will have (a study without events still has its row)."""
        if layout == "study":
            return self.studies
        return sum(m.events + m.empty for m in self.by_modality.values())


def export_size(flt: StudyFilter) -> ExportSize:
    """Studies, events and the longest study per modality: one grouped query."""
    n_events = summary_expressions()["n_events"]
    rows = (
        filter_studies(flt).order_by().annotate(n=n_events).values("modality_type")
        .annotate(n_studies=Count("pk"), n_sum=Sum("n"), n_max=Max("n"),
                  n_empty=Count("pk", filter=Q(n=0)))
    )
    return ExportSize({
        r["modality_type"]: ModalitySize(
            studies=r["n_studies"], events=int(r["n_sum"] or 0),
            most_events=int(r["n_max"] or 0), empty=r["n_empty"],
        )
        for r in rows
    })


# Keys whose values are structures (written as compact JSON text).
STRUCTURED_KEYS = frozenset({"xray_sources", "filters", "dose_check", "accumulated_agd_mGy",
                             "accumulated_agd_by_side_mGy"})


def _text(value: Any) -> Any:
    """A cell value: None stays None (an empty cell), structures become compact JSON."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


def _study_cells(study: dict[str, Any], identity: bool) -> list[Any]:
    cells = [
        " ".join(study["source_sop_instance_uids"]) if key == "source_sop_instance_uids"
        else study.get(key)
        for key in STUDY_COLUMNS
    ]
    if identity:
        cells += [study.get(key) for key in IDENTITY_COLUMNS]
    return cells


@dataclass(frozen=True)
class Sheet:
    """One table: its header and how a study becomes rows."""

    name: str
    header: list[str]
    rows: Callable[[dict[str, Any]], Iterator[list[Any]]]


def _picker(keys: tuple[str, ...]) -> Callable[[dict[str, Any]], list[Any]]:
    """The values of `keys` from a dict as cells: one itemgetter call, then JSON text only
    where a structure may be (xray_sources, filters, dose_check, AGD by side)."""
    get = operator.itemgetter(*keys)
    structured = [i for i, key in enumerate(keys) if key in STRUCTURED_KEYS]

    def pick(values: dict[str, Any]) -> list[Any]:
        cells = list(get(values)) if len(keys) > 1 else [get(values)]
        for i in structured:
            cells[i] = _text(cells[i])
        return cells

    return pick


def event_sheet(modality: str, identity: bool) -> Sheet:
    totals = TOTALS_BY_MODALITY[modality]
    keys = EVENT_KEYS_BY_MODALITY[modality]
    header = [*STUDY_COLUMNS, *(IDENTITY_COLUMNS if identity else ()), *totals,
              "event_number", *keys]
    pick_totals, pick_event = _picker(totals), _picker(keys)

    def rows(study: dict[str, Any]) -> Iterator[list[Any]]:
        fixed = _study_cells(study, identity) + pick_totals(study["totals"])
        events = study["events"]
        if not events:
            yield fixed
        for number, event in enumerate(events, start=1):
            yield [*fixed, number, *pick_event(event)]

    return Sheet(modality, header, rows)


def study_sheet(modality: str, identity: bool, most_events: int) -> Sheet:
    """One row per study; events side by side, as many groups as the longest study has
    (capped so that the sheet fits XLSX's 16,384 columns)."""
    totals = TOTALS_BY_MODALITY[modality]
    keys = STUDY_LAYOUT_EVENT_KEYS[modality]
    fixed_header = [*STUDY_COLUMNS, *(IDENTITY_COLUMNS if identity else ()), *totals]
    groups = min(most_events, (XLSX_MAX_COLUMNS - len(fixed_header)) // len(keys))
    header = fixed_header + [f"E{i} {key}" for i in range(1, groups + 1) for key in keys]

    pick_totals, pick_event = _picker(totals), _picker(keys)

    def rows(study: dict[str, Any]) -> Iterator[list[Any]]:
        row = _study_cells(study, identity) + pick_totals(study["totals"])
        for event in study["events"][:groups]:
            row += pick_event(event)
        yield row + [None] * (len(header) - len(row))  # every CSV row as wide as the header

    return Sheet(modality, header, rows)


def _sheets(spec: ExportSpec, size: ExportSize) -> list[tuple[Sheet, StudyFilter]]:
    """Each modality present, in a fixed order, with the filter narrowed to it."""
    present = [m for m in MODALITIES if m in size.by_modality]
    out = []
    for modality in present:
        if spec.layout == "study":
            sheet = study_sheet(modality, spec.identity, size.by_modality[modality].most_events)
        else:
            sheet = event_sheet(modality, spec.identity)
        out.append((sheet, dataclasses.replace(spec.flt, modality=modality)))
    return out


def _sheets_or_header(spec: ExportSpec, size: ExportSize) -> list[tuple[Sheet, StudyFilter]]:
    """As _sheets; when nothing matched, one sheet with just the header (not a broken file)."""
    found = _sheets(spec, size)
    if found:
        return found
    modality = spec.flt.modality.upper() or Study.CT
    empty = ExportSize({modality: ModalitySize(0, 0, 0, 0)})
    return _sheets(dataclasses.replace(spec, flt=dataclasses.replace(spec.flt, modality=modality)),
                   empty)


class Counter:
    """Counts written rows and reports every PROGRESS_EVERY of them."""

    def __init__(self, progress: Progress | None) -> None:
        self.done = 0
        self.progress = progress

    def add(self, n: int = 1) -> None:
        before = self.done
        self.done += n
        if self.progress and self.done // PROGRESS_EVERY != before // PROGRESS_EVERY:
            self.progress(self.done)


def _csv_cell(value: Any) -> Any:
    return "" if value is None else value


def write_csv_sheet(sheet: Sheet, flt: StudyFilter, out: IO[str], counter: Counter) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(sheet.header)
    for study in primed(iter_study_dicts(flt)):
        rows = list(sheet.rows(study))  # csv writes None as an empty field
        writer.writerows(rows)
        counter.add(len(rows))


def write_event_csv(spec: ExportSpec, out: IO[str], counter: Counter) -> None:
    """`doseport export --format csv`, identity columns appended for those who may see them."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS + (IDENTITY_COLUMNS if spec.identity else ()))
    for study in primed(iter_study_dicts(spec.flt)):
        extra = [_csv_cell(study.get(k)) for k in IDENTITY_COLUMNS] if spec.identity else []
        rows = [row + extra for row in csv_rows(study)]
        writer.writerows(rows)
        counter.add(len(rows))


def _text_stream(out: IO[bytes]) -> io.TextIOWrapper:
    return io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)


def write_csv_export(spec: ExportSpec, out: IO[bytes], counter: Counter) -> None:
    if spec.layout == "event":
        text = _text_stream(out)
        write_event_csv(spec, text, counter)
        text.flush()
        text.detach()
        return
    size = export_size(spec.flt)
    if not spec.zipped:
        text = _text_stream(out)
        for sheet, flt in _sheets_or_header(spec, size):
            write_csv_sheet(sheet, flt, text, counter)
        text.flush()
        text.detach()
        return
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for sheet, flt in _sheets(spec, size):
            with archive.open(f"doseport-studies-{sheet.name}.csv", "w") as member:
                text = _text_stream(member)
                write_csv_sheet(sheet, flt, text, counter)
                text.flush()
                text.detach()


RowWriter = Callable[[int, list[Any]], None]


def xlsx_row_writer(ws: Any) -> RowWriter:
    """Writes a row of pre-converted cells: numbers as numbers, text as text (never a
    formula or a link: the workbook's options), None and "" as nothing (XlsxWriter's write()
    makes both a blank cell, and a blank cell without a format is not written; until
    52cf907 "" was an empty text cell, which openpyxl and Excel read as empty too).
    Dispatches on the exact class first (str and float are nearly all cells) through bound
    methods.

    XlsxWriter's public write_* methods only wrap its undecorated `_write_*` twins with
    A1-notation parsing (a tenth of the export's time at 100,000 events); the cells here
    are always (row, col) numbers, so the undecorated ones are used where they exist."""
    write_string = getattr(ws, "_write_string", ws.write_string)
    write_number = getattr(ws, "_write_number", ws.write_number)
    write_boolean = getattr(ws, "_write_boolean", ws.write_boolean)

    def write(index: int, row: list[Any]) -> None:
        for col, value in enumerate(row):
            if value is None:
                continue
            cls = value.__class__
            if cls is str:
                if value:  # "" writes no cell, as XlsxWriter's own write() does (a blank)
                    write_string(index, col, value)
            elif cls is float or cls is int:
                write_number(index, col, value)
            elif cls is bool:
                write_boolean(index, col, value)
            elif isinstance(value, int | float):
                write_number(index, col, value)
            else:
                write_string(index, col, str(value))

    return write


def write_xlsx_export(spec: ExportSpec, out: IO[bytes], counter: Counter) -> None:
    size = export_size(spec.flt)
    workbook = xlsxwriter.Workbook(out, {
        "constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
        "strings_to_numbers": False,
    })
    try:
        bold = workbook.add_format({"bold": True})
        for sheet, flt in _sheets_or_header(spec, size):
            ws = workbook.add_worksheet(sheet.name)
            ws.write_row(0, 0, sheet.header, bold)
            ws.freeze_panes(1, 0)
            write, rows_of, index = xlsx_row_writer(ws), sheet.rows, 1
            for study in primed(iter_study_dicts(flt)):
                first = index
                for row in rows_of(study):
                    write(index, row)
                    index += 1
                counter.add(index - first)
    finally:
        workbook.close()


def write_export(spec: ExportSpec, out: IO[bytes], progress: Progress | None = None) -> int:
    """Write the export to a binary file; returns the number of data rows written."""
    counter = Counter(progress)
    if spec.fmt == "xlsx":
        write_xlsx_export(spec, out, counter)
    else:
        write_csv_export(spec, out, counter)
    return counter.done
