"""Philips CT 'Dose Info' secondary capture: events from the Exposure Dose Sequence.

DLP is in the Elscint private block (00E1,xx21), per exposure and for the whole study.
"""

from __future__ import annotations

from typing import Any

from pydicom import Dataset

from imports.classify import CT_PHILIPS_SCREEN
from imports.extractors import header
from imports.extractors.data import EventData, ReportData
from lib.dates import parse_datetime

ACQUISITION_TYPES = {
    "SPIRAL": "Spiral Acquisition", "CONSTANT_ANGLE": "Constant Angle Acquisition",
    "SEQUENCED": "Sequenced Acquisition", "AXIAL": "Sequenced Acquisition",
    "STATIONARY": "Stationary Acquisition", "FREE": "Free Acquisition",
}


def _private_dlp(ds: Dataset) -> float | None:
    try:
        block = ds.private_block(0x00E1, "ELSCINT1")
        value = block[0x21].value
    except (KeyError, ValueError):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def extract(ds: Dataset) -> ReportData:
    study = header.study_fields(ds)
    study["modality_type"] = "CT"
    study["dlp_total_mGycm"] = _private_dlp(ds)
    events = [_event(item, i) for i, item in enumerate(ds.get("ExposureDoseSequence") or [])]
    study["total_number_of_irradiation_events"] = len(events)
    return ReportData(kind=CT_PHILIPS_SCREEN, study=study, events=events)


def _event(item: Dataset, ordinal: int) -> EventData:
    current_ua = header.number(item, "XRayTubeCurrentInuA")
    exposure_ms = header.number(item, "ExposureTime")
    raw_type = header.text(item, "AcquisitionType").upper()
    fields: dict[str, Any] = {
        "ordinal": ordinal,
        "irradiation_event_uid": "",
        "date_time_started": parse_datetime(header.text(item, "AcquisitionDateTime")),
        "acquisition_protocol": header.text(item, "SeriesDescription"),
        "ct_acquisition_type": ACQUISITION_TYPES.get(raw_type, raw_type.title())[:64],
        "ctdivol_mGy": header.number(item, "CTDIvol"),
        "dlp_mGycm": _private_dlp(item),
        "scanning_length_mm": header.number(item, "ScanLength"),
        "nominal_single_collimation_width_mm": header.number(item, "SingleCollimationWidth"),
        "nominal_total_collimation_width_mm": header.number(item, "TotalCollimationWidth"),
        "pitch_factor": header.number(item, "SpiralPitchFactor"),
        "exposure_time_s": exposure_ms / 1000 if exposure_ms is not None else None,
        "number_of_xray_sources": 1,
    }
    source = {
        "ordinal": 0,
        "kvp_kV": header.number(item, "KVP"),
        "tube_current_mA": current_ua / 1000 if current_ua is not None else None,
    }
    return EventData(fields=fields, sources=[source])
