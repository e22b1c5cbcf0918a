"""Projection image headers (CR/DX/MG) -> one irradiation event."""

from __future__ import annotations

import re
from typing import Any

from pydicom import Dataset

from imports.extractors import header
from lib.dates import combine, parse_date, parse_datetime, parse_time

MATERIALS = {
    "AL": "Aluminum or Aluminum compound", "ALUMINUM": "Aluminum or Aluminum compound",
    "ALUMINIUM": "Aluminum or Aluminum compound", "CU": "Copper or Copper compound",
    "COPPER": "Copper or Copper compound", "MO": "Molybdenum or Molybdenum compound",
    "MOLYBDENUM": "Molybdenum or Molybdenum compound", "RH": "Rhodium or Rhodium compound",
    "RHODIUM": "Rhodium or Rhodium compound", "AG": "Silver or Silver compound",
    "SILVER": "Silver or Silver compound", "W": "Tungsten or Tungsten compound",
    "TUNGSTEN": "Tungsten or Tungsten compound", "NB": "Niobium or Niobium compound",
    "NIOBIUM": "Niobium or Niobium compound", "SN": "Tin or Tin compound",
    "TIN": "Tin or Tin compound", "TA": "Tantalum or Tantalum compound",
    "PB": "Lead or Lead compound", "LEAD": "Lead or Lead compound",
    "ER": "Erbium or Erbium compound",
}
# View Position (0018,5101) words -> the code meanings (CID 4010, 4014) reports carry.
VIEWS = {
    "AP": "antero-posterior", "PA": "postero-anterior", "LL": "left lateral",
    "RL": "right lateral", "LAT": "lateral", "CC": "cranio-caudal",
    "MLO": "medio-lateral oblique", "ML": "medio-lateral", "LM": "latero-medial",
    "XCC": "cranio-caudal exaggerated laterally", "FB": "caudo-cranial (from below)",
    "SIO": "superolateral to inferomedial oblique", "LMO": "latero-medial oblique",
}
LATERALITY = {"L": "Left", "R": "Right", "B": "Both", "LEFT": "Left", "RIGHT": "Right"}
_SIEMENS_FILTER = re.compile(r"^([A-Z]+)_([\d.]+)_MM$")


def _split(value: str) -> list[str]:
    return [v.strip() for v in re.split(r"[\\,]", value) if v.strip()]


def _floats(values: list[str]) -> list[float | None]:
    out: list[float | None] = []
    for v in values:
        try:
            out.append(float(v))
        except ValueError:
            out.append(None)
    return out


def filters(ds: Dataset) -> list[dict[str, Any]]:
    materials = _split(header.text(ds, "FilterMaterial"))
    mins = _floats(_split(header.text(ds, "FilterThicknessMinimum")))
    maxs = _floats(_split(header.text(ds, "FilterThicknessMaximum")))
    ftype = header.text(ds, "FilterType")
    siemens = _SIEMENS_FILTER.match(ftype.upper())
    if not materials and siemens:
        thickness = float(siemens.group(2))
        materials, mins, maxs = [siemens.group(1)], [thickness], [thickness]
    rows = []
    for i, material in enumerate(materials):
        low = mins[i] if i < len(mins) else None
        high = maxs[i] if i < len(maxs) else None
        if low is not None and high is not None and low > high:
            low, high = high, low
        rows.append({
            "ordinal": i,
            "filter_type": ftype[:64],
            "material": MATERIALS.get(material.upper(), material)[:64],
            "thickness_min_mm": low,
            "thickness_max_mm": high,
        })
    return rows


def started(ds: Dataset) -> Any:
    value = parse_datetime(header.text(ds, "AcquisitionDateTime"))
    if value is not None:
        return value
    pairs = (("AcquisitionDate", "AcquisitionTime"), ("ContentDate", "ContentTime"))
    for date_kw, time_kw in pairs:
        date = parse_date(header.text(ds, date_kw))
        if date is not None:
            return combine(date, parse_time(header.text(ds, time_kw)))
    return None


def exposure_uas(ds: Dataset) -> float | None:
    value = header.number(ds, "ExposureInuAs")
    if value is not None:
        return value
    mas = _raw_number(ds, "Exposure")
    return mas * 1000 if mas is not None else None


def _raw_number(ds: Dataset, keyword: str) -> float | None:
    """IS fields that vendors fill with decimals ('161.3'): read the text, not int()."""
    elem = ds.get(keyword)
    if elem is None:
        return None
    raw = ds[keyword].value if keyword in ds else None
    try:
        return float(str(raw).strip()) if raw not in (None, "") else None
    except ValueError:
        return None


def entrance_dose_mgy(ds: Dataset) -> float | None:
    """Entrance Dose in mGy (0040,8302), else Entrance Dose in dGy (0040,0302)."""
    value = header.number(ds, "EntranceDoseInmGy")
    if value is not None:
        return value
    dgy = header.number(ds, "EntranceDose")
    return dgy * 100 if dgy is not None else None


def _view(ds: Dataset) -> str:
    word = header.text(ds, "ViewPosition")
    return VIEWS.get(word.upper(), word)


def event_fields(ds: Dataset) -> dict[str, Any]:
    dap = header.number(ds, "ImageAndFluoroscopyAreaDoseProduct")  # dGy.cm2
    view = ds.get("ViewCodeSequence")
    view_text = str(view[0].get("CodeMeaning", "")) if view else _view(ds)
    side = header.text(ds, "ImageLaterality") or header.text(ds, "Laterality")
    exposure_time = _raw_number(ds, "ExposureTime")
    if exposure_time is None:
        in_us = header.number(ds, "ExposureTimeInuS")
        exposure_time = in_us / 1000 if in_us is not None else None
    return {
        "ordinal": 0,
        "irradiation_event_uid": "",
        "date_time_started": started(ds),
        "acquisition_protocol": header.text(ds, "ProtocolName")
        or header.text(ds, "SeriesDescription"),
        "irradiation_event_type": "Stationary Acquisition",
        "target_region": header.text(ds, "BodyPartExamined")[:128],
        "dap_Gym2": dap / 1e5 if dap is not None else None,
        "kvp_kV": header.number(ds, "KVP"),
        "exposure_time_ms": exposure_time,
        "exposure_uAs": exposure_uas(ds),
        "average_tube_current_mA": header.number(ds, "XRayTubeCurrent"),
        "focal_spot_size_mm": header.number(ds, "FocalSpots"),
        "distance_source_to_detector_mm": header.number(ds, "DistanceSourceToDetector"),
        "positioner_primary_angle_deg": header.number(ds, "PositionerPrimaryAngle"),
        "positioner_secondary_angle_deg": header.number(ds, "PositionerSecondaryAngle"),
        "exposure_index": header.number(ds, "ExposureIndex"),
        "target_exposure_index": header.number(ds, "TargetExposureIndex"),
        "deviation_index": header.number(ds, "DeviationIndex"),
        "entrance_exposure_at_rp_mGy": entrance_dose_mgy(ds),
        "laterality": LATERALITY.get(side.upper(), "")[:32],
        "image_view": view_text[:64],
    }
