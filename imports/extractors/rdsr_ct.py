"""CT Radiation Dose SR (TID 10011), also GE's Enhanced SR copy of it."""

from __future__ import annotations

from typing import Any

from pydicom import Dataset

from imports.classify import CT_RDSR
from imports.extractors.data import EventData, ReportData
from imports.extractors.rdsr_common import dose_check, limit, read_report
from imports.extractors.sr import Node

CT_ACCUMULATED = "113811"
CT_ACQUISITION = "113819"
CT_ACQUISITION_PARAMETERS = "113822"
CT_DOSE = "113829"
CT_SOURCE_PARAMETERS = "113831"


def extract(ds: Dataset) -> ReportData:
    root, study = read_report(ds, modality_type="CT")
    accumulated = root.first(CT_ACCUMULATED)
    if accumulated is not None:
        study["dlp_total_mGycm"] = accumulated.num("113813", "mGy.cm")
        total = accumulated.num("113812", "1")
        study["total_number_of_irradiation_events"] = int(total) if total is not None else None
    events = [_event(node, i) for i, node in enumerate(root.all(CT_ACQUISITION))]
    return ReportData(kind=CT_RDSR, study=study, events=events)


def _event(node: Node, ordinal: int) -> EventData:
    fields: dict[str, Any] = {
        "ordinal": ordinal,
        "irradiation_event_uid": limit(node.txt("113769"), 128),
        "date_time_started": node.datetime("111526"),
        "acquisition_protocol": node.txt("125203"),
        "irradiation_event_type": limit(node.txt("113721"), 128),
        "target_region": limit(node.txt("123014"), 128),
        "ct_acquisition_type": limit(node.txt("113820"), 64),
        "comment": node.txt("121106"),
    }
    sources: list[dict[str, Any]] = []
    params = node.first(CT_ACQUISITION_PARAMETERS)
    if params is not None:
        fields["exposure_time_s"] = params.num("113824", "s")
        fields["scanning_length_mm"] = params.num("113825", "mm")
        fields["nominal_single_collimation_width_mm"] = params.num("113826", "mm")
        fields["nominal_total_collimation_width_mm"] = params.num("113827", "mm")
        fields["pitch_factor"] = params.num("113828", "1")
        count = params.num("113823", "1")
        fields["number_of_xray_sources"] = int(count) if count is not None else None
        for i, src in enumerate(params.all(CT_SOURCE_PARAMETERS)):
            sources.append({
                "ordinal": i,
                "identification": limit(src.txt("113832"), 32),
                "kvp_kV": src.num("113733", "kV"),
                "max_tube_current_mA": src.num("113833", "mA"),
                "tube_current_mA": src.num("113734", "mA"),
                "exposure_time_per_rotation_s": src.num("113834", "s"),
            })
    dose = node.first(CT_DOSE)
    if dose is not None:
        fields["ctdivol_mGy"] = dose.num("113830", "mGy")
        fields["dlp_mGycm"] = dose.num("113838", "mGy.cm")
        fields["ctdiw_phantom_type"] = limit(dose.txt("113835"), 128)
        fields["dose_check"] = dose_check(dose)
    return EventData(fields=fields, sources=sources)
