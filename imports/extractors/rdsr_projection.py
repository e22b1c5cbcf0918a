"""Projection X-Ray Radiation Dose SR (TID 10001): DX, RF/XA and MG reports.

The modality type is decided per report from DICOM evidence (`modality_type`; dual DX/RF
units produce one report per study, typed by what that study did; a cine-only
angiography report is RF).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pydicom import Dataset

from imports.classify import PROJECTION_RDSR
from imports.extractors.data import EventData, ReportData
from imports.extractors.rdsr_common import limit, read_report
from imports.extractors.sr import Node

ACCUMULATED = "113702"
EVENT = "113706"
FILTERS = "113771"
FILTER_MATERIAL = "113757"
LATERALITY = ("G-C171", "272741003")
FLUORO_WORDS = ("fluoro",)


class Index:
    """Every node below a container, by concept code (values of repeated items kept)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.by_code: dict[str, list[Node]] = defaultdict(list)
        for child in node.walk():
            self.by_code[child.code].append(child)

    def num(self, code: str, unit: str, per_pulse: bool = False) -> float | None:
        """The first item's value; `per_pulse` averages a multi-valued item's values."""
        for node in self.by_code.get(code, []):
            value = node.as_number(unit, mean=per_pulse)
            if value is not None:
                return value
        return None

    def text(self, code: str) -> str:
        nodes = self.by_code.get(code)
        return nodes[0].as_text() if nodes else ""


def extract(ds: Dataset) -> ReportData:
    root, study = read_report(ds)
    events = [_event(node, i) for i, node in enumerate(root.all(EVENT))]
    study["modality_type"] = modality_type(root, events)
    report = ReportData(kind=PROJECTION_RDSR, study=study, events=events)
    for node in root.all(ACCUMULATED):
        _accumulated(node, report)
    return report


CINE_MIN_PULSES = 3  # dual-energy radiography makes 2 exposures; a cine run makes more


def modality_type(root: Node, events: list[EventData]) -> str:
    """MG, RF (fluoroscopy and interventional) or DX, by DICOM evidence (docs/import.md).

    In order: a mammography procedure; any fluoroscopy or rotational event; a
    fluoroscopy-guided device; a cassette-based (CR) device; a second plane (biplane
    systems are angiography systems); a cine run, i.e. a stationary acquisition of several
    pulses with a dose at the interventional reference point. Otherwise DX."""
    procedure = root.txt("121058").lower()
    if "mammo" in procedure:
        return "MG"
    for event in events:
        kind = str(event.fields.get("irradiation_event_type", "")).lower()
        if "fluoro" in kind or "rotational" in kind:
            return "RF"
    device = root.txt("122142", "113876").lower()
    if "fluoroscopy" in device:
        return "RF"
    if "cassette" in device:
        return "DX"
    if any(_is_plane_b(event) or _is_cine(event) for event in events):
        return "RF"
    return "DX"


def _is_plane_b(event: EventData) -> bool:
    return "plane b" in str(event.fields.get("acquisition_plane", "")).lower()


def _is_cine(event: EventData) -> bool:
    pulses = event.fields.get("number_of_pulses")
    return (
        pulses is not None and pulses >= CINE_MIN_PULSES
        and event.fields.get("dose_rp_Gy") is not None
    )


def _event(node: Node, ordinal: int) -> EventData:
    idx = Index(node)
    exposure_time = idx.num("113824", "ms", per_pulse=True)
    if exposure_time is None:
        exposure_time = idx.num("113735", "ms", per_pulse=True)
    current = idx.num("113767", "mA", per_pulse=True)
    if current is None:
        current = idx.num("113734", "mA", per_pulse=True)
    fields: dict[str, Any] = {
        "ordinal": ordinal,
        "irradiation_event_uid": limit(idx.text("113769"), 128),
        "date_time_started": node.datetime("111526"),
        "acquisition_protocol": idx.text("125203"),
        "irradiation_event_type": limit(idx.text("113721"), 128),
        "target_region": limit(idx.text("123014"), 128),
        "comment": node.txt("121106"),
        "acquisition_plane": limit(idx.text("113764"), 32),
        "dap_Gym2": idx.num("122130", "Gy.m2"),
        "dose_rp_Gy": idx.num("113738", "Gy"),
        "entrance_exposure_at_rp_mGy": idx.num("111636", "mGy"),
        "kvp_kV": idx.num("113733", "kV", per_pulse=True),
        "exposure_time_ms": exposure_time,
        "exposure_uAs": idx.num("113736", "uA.s", per_pulse=True),
        "average_tube_current_mA": current,
        "number_of_pulses": idx.num("113768", "1"),
        "pulse_width_ms": idx.num("113793", "ms", per_pulse=True),
        "focal_spot_size_mm": idx.num("113766", "mm"),
        "distance_source_to_detector_mm": idx.num("113750", "mm"),
        "collimated_field_area_m2": idx.num("113790", "m2"),
        "positioner_primary_angle_deg": idx.num("112011", "deg"),
        "positioner_secondary_angle_deg": idx.num("112012", "deg"),
        "exposure_index": idx.num("113845", "1"),
        "target_exposure_index": idx.num("113846", "1"),
        "deviation_index": idx.num("113847", "1"),
        "agd_mGy": idx.num("111631", "mGy"),
        "compression_thickness_mm": idx.num("111633", "mm"),
        "compression_force_N": idx.num("111647", "N"),
        "laterality": limit(idx.text(LATERALITY[0]) or idx.text(LATERALITY[1]), 32),
        "image_view": limit(idx.text("111031"), 64),
        "anode_target_material": limit(idx.text("111632"), 64),
        "hvl_mm": idx.num("111634", "mm"),
    }
    filters = [
        {
            "ordinal": i,
            "filter_type": limit(f.txt("113772"), 64),
            "material": limit(f.txt(FILTER_MATERIAL), 64),
            "thickness_min_mm": f.num("113758", "mm"),
            "thickness_max_mm": f.num("113773", "mm"),
        }
        for i, f in enumerate(idx.by_code.get(FILTERS, []))
        if f.vt == "CONTAINER"
    ]
    return EventData(fields=fields, filters=filters)


def _accumulated(node: Node, report: ReportData) -> None:
    idx = Index(node)
    plane = limit(idx.text("113764"), 32)
    if report.modality_type == "MG":
        for agd in idx.by_code.get("111637", []):
            side = agd.txt(*LATERALITY) or "unknown"
            report.breasts.append(
                {"laterality": limit(side, 32), "accumulated_agd_mGy": agd.as_number("mGy")}
            )
        report.planes.append({"plane": plane})
        return
    frames = idx.num("113731", "1")
    report.planes.append({
        "plane": plane,
        "dap_total_Gym2": idx.num("113722", "Gy.m2"),
        "dose_rp_total_Gy": idx.num("113725", "Gy"),
        "fluoro_dap_total_Gym2": idx.num("113726", "Gy.m2"),
        "fluoro_dose_rp_total_Gy": idx.num("113728", "Gy"),
        "acquisition_dap_total_Gym2": idx.num("113727", "Gy.m2"),
        "acquisition_dose_rp_total_Gy": idx.num("113729", "Gy"),
        "total_fluoro_time_s": idx.num("113730", "s"),
        "total_acquisition_time_s": idx.num("113855", "s"),
        "total_number_of_radiographic_frames": int(frames) if frames is not None else None,
        "reference_point_definition": limit(idx.text("113780"), 256),
    })
