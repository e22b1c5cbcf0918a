"""CT dose screens: secondary captures whose header carries an Exposure Dose Sequence.

Philips 'Dose Info' screens keep each series' DLP (and the study's) in the Elscint private
block (00E1,xx21). GE dose screens, and any other vendor's, carry CTDIvol per series in the
sequence and DLP only in Comments on Radiation Dose (0040,0310), one line per series
('EVENT=3 DLP=950.10' on GE, 'Series #2 ... CTDIvol=23.3 DLP=899.8' on Philips) and a
'Total DLP=' line. Each sequence item is one CT irradiation event.
"""

from __future__ import annotations

import re
from typing import Any

from pydicom import Dataset

from imports.extractors import header
from imports.extractors.data import EventData, ReportData
from lib.dates import parse_datetime

ACQUISITION_TYPES = {
    "SPIRAL": "Spiral Acquisition", "CONSTANT_ANGLE": "Constant Angle Acquisition",
    "SEQUENCED": "Sequenced Acquisition", "AXIAL": "Sequenced Acquisition",
    "STATIONARY": "Stationary Acquisition", "FREE": "Free Acquisition",
}
_NUMBER = r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_GE_EVENT = re.compile(rf"EVENT\s*=\s*([0-9]+)\s*DLP\s*=\s*{_NUMBER}")
_SERIES = re.compile(rf"SERIES\s*#\s*([0-9]+).*?CTDIVOL\s*=\s*{_NUMBER}\s+DLP\s*=\s*{_NUMBER}")
_TOTAL = re.compile(rf"TOTAL\s*DLP\s*=\s*{_NUMBER}")


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


class Comments:
    """DLP (and CTDIvol) per series number and the total, from Comments on Radiation Dose."""

    def __init__(self, text: str) -> None:
        self.dlp: dict[int, float] = {}
        self.ctdivol: dict[int, float] = {}
        self.total: float | None = None
        for line in text.upper().splitlines():
            if m := _SERIES.search(line):
                self.ctdivol[int(m.group(1))] = float(m.group(2))
                self.dlp[int(m.group(1))] = float(m.group(3))
            elif m := _GE_EVENT.search(line):
                self.dlp[int(m.group(1))] = float(m.group(2))
            elif m := _TOTAL.search(line):
                self.total = float(m.group(1))


def extract(ds: Dataset, kind: str) -> ReportData:
    study = header.study_fields(ds)
    study["modality_type"] = "CT"
    comments = Comments(header.text(ds, "CommentsOnRadiationDose"))
    total = _private_dlp(ds)
    study["dlp_total_mGycm"] = total if total is not None else comments.total
    protocol = header.text(ds, "ProtocolName")
    events = [
        _event(item, i, comments, protocol)
        for i, item in enumerate(ds.get("ExposureDoseSequence") or [])
    ]
    study["total_number_of_irradiation_events"] = len(events)
    return ReportData(kind=kind, study=study, events=events)


def _phantom(item: Dataset) -> str:
    seq = item.get("CTDIPhantomTypeCodeSequence")
    return str(seq[0].get("CodeMeaning", "")).strip()[:64] if seq else ""


def _event(item: Dataset, ordinal: int, comments: Comments, protocol: str) -> EventData:
    current_ua = header.number(item, "XRayTubeCurrentInuA")
    exposure_ms = header.number(item, "ExposureTime")
    raw_type = header.text(item, "AcquisitionType").upper()
    series = header.number(item, "SeriesNumber")
    # GE items have no Series Number: the comment lines count the items from 1.
    number = int(series) if series is not None else ordinal + 1
    dlp = _private_dlp(item)
    if dlp is None:
        dlp = comments.dlp.get(number)
    ctdivol = header.number(item, "CTDIvol")
    if ctdivol is None:
        ctdivol = comments.ctdivol.get(number)
    fields: dict[str, Any] = {
        "ordinal": ordinal,
        "irradiation_event_uid": "",
        "date_time_started": parse_datetime(header.text(item, "AcquisitionDateTime")),
        "acquisition_protocol": header.text(item, "ProtocolName")
        or header.text(item, "SeriesDescription") or protocol,
        "target_region": header.text(item, "BodyPartExamined").title()[:128],
        "ct_acquisition_type": ACQUISITION_TYPES.get(raw_type, raw_type.title())[:64],
        "ctdivol_mGy": ctdivol,
        "dlp_mGycm": dlp,
        "ctdiw_phantom_type": _phantom(item),
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
