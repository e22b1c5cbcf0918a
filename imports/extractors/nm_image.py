"""NM and PET image headers: the radiopharmaceutical administration.

PET images give Radionuclide Total Dose in Bq; NM images in MBq (DICOM PS3.3 C.8.4.10 and
C.8.9.2 differ).
"""

from __future__ import annotations

from typing import Any

from pydicom import Dataset

from imports.classify import NM_IMAGE, PET_IMAGE_STORAGE
from imports.extractors import header
from imports.extractors.data import ReportData
from lib.dates import combine, parse_date, parse_datetime, parse_time


def _code_meaning(item: Dataset, keyword: str) -> str:
    seq = item.get(keyword)
    if not seq:
        return ""
    return str(seq[0].get("CodeMeaning", "")).strip()


def extract(ds: Dataset) -> ReportData:
    study = header.study_fields(ds)
    study["modality_type"] = "NM"
    seq = ds.get("RadiopharmaceuticalInformationSequence") or []
    is_pet = str(ds.get("SOPClassUID", "")) == PET_IMAGE_STORAGE
    administrations = [_administration(ds, item, i, is_pet) for i, item in enumerate(seq)]
    return ReportData(kind=NM_IMAGE, study=study, administrations=administrations)


def _administration(ds: Dataset, item: Dataset, ordinal: int, is_pet: bool) -> dict[str, Any]:
    activity = header.number(item, "RadionuclideTotalDose")
    if activity is not None:
        activity = activity / 1e6 if is_pet else activity
    start = parse_datetime(header.text(item, "RadiopharmaceuticalStartDateTime"))
    if start is None:
        start_time = parse_time(header.text(item, "RadiopharmaceuticalStartTime"))
        if start_time is not None:
            start = combine(study_date(ds), start_time)
    stop = parse_datetime(header.text(item, "RadiopharmaceuticalStopDateTime"))
    agent = _code_meaning(item, "RadiopharmaceuticalCodeSequence") or header.text(
        item, "Radiopharmaceutical"
    )
    return {
        "ordinal": ordinal,
        "from_report": False,
        "event_uid": header.text(item, "RadiopharmaceuticalAdministrationEventUID")[:128],
        "radiopharmaceutical_agent": agent[:128],
        "radionuclide": _code_meaning(item, "RadionuclideCodeSequence")[:128],
        "radionuclide_half_life_s": header.number(item, "RadionuclideHalfLife"),
        "administered_activity_MBq": activity,
        "radiopharmaceutical_start_datetime": start,
        "radiopharmaceutical_stop_datetime": stop,
        "route_of_administration": header.text(item, "RadiopharmaceuticalRoute")[:128],
        "effective_dose_mSv": None,
    }


def study_date(ds: Dataset) -> Any:
    return parse_date(header.text(ds, "StudyDate"))
