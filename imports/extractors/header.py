"""Study, equipment and patient fields from the DICOM header (all object kinds)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from pydicom import Dataset
from pydicom.multival import MultiValue

from lib import identity
from lib.dates import parse_date, parse_time


def text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        value = "\\".join(str(v) for v in value)
    return str(value).strip()


def number(ds: Dataset, keyword: str) -> float | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        if isinstance(value, MultiValue | list | tuple):
            value = value[0]
        return float(value)
    except (TypeError, ValueError, IndexError):
        return None


# A birth date in 1900 or earlier is a placeholder (1900-01-01, 1899-12-30, 0001-01-01...);
# so is one that gives an age over 120 years or a date after the study.
PLACEHOLDER_BIRTH_YEAR = 1900
MAX_AGE_YEARS = 120


def age_decimal(ds: Dataset) -> float | None:
    """Years: from birth and study date unless the birth date is a placeholder, else Patient Age.

    EXPORT_SCHEMA.md: a placeholder birth date or one giving an age over 120 years falls back
    to Patient Age (AS: nnnY/M/W/D)."""
    born = parse_date(text(ds, "PatientBirthDate"))
    when = parse_date(text(ds, "StudyDate"))
    if born and when and PLACEHOLDER_BIRTH_YEAR < born.year and born <= when:
        years = (when - born).days / 365.25
        if years <= MAX_AGE_YEARS:
            return round(years, 1)
    return age_from_as(text(ds, "PatientAge"))


def age_from_as(age: str) -> float | None:
    """Decimal years from a DICOM Age String ('075Y', '018M', '003W', '010D')."""
    if len(age) >= 2 and age[:-1].isdigit():
        per_year = {"Y": 1.0, "M": 12.0, "W": 52.1775, "D": 365.25}.get(age[-1].upper())
        if per_year:
            return round(int(age[:-1]) / per_year, 1)
    return None


def _identity(value: str) -> str:
    mode = getattr(settings, "PATIENT_IDENTITY", "none")
    if not value or mode == "none":
        return ""
    if mode == "hashed":
        return identity.identity_hash(value)
    return value


def study_fields(ds: Dataset) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "study_instance_uid": text(ds, "StudyInstanceUID")[:64],
        "study_date": parse_date(text(ds, "StudyDate")),
        "study_time": parse_time(text(ds, "StudyTime")),
        "study_id": text(ds, "StudyID")[:16],
        "accession_number": text(ds, "AccessionNumber")[:64],
        "study_description": text(ds, "StudyDescription")[:256],
        "manufacturer": text(ds, "Manufacturer")[:128],
        "manufacturer_model_name": text(ds, "ManufacturerModelName")[:128],
        "station_name": text(ds, "StationName")[:64],
        "institution_name": text(ds, "InstitutionName")[:128],
        "device_serial_number": text(ds, "DeviceSerialNumber")[:64],
        "software_versions": text(ds, "SoftwareVersions")[:256],
        "patient_sex": text(ds, "PatientSex")[:16],
        "patient_age": text(ds, "PatientAge")[:4],
        "patient_age_decimal_years": age_decimal(ds),
        "patient_size_m": number(ds, "PatientSize") or None,
        "patient_weight_kg": number(ds, "PatientWeight") or None,
        "patient_name": _identity(text(ds, "PatientName"))[:256],
        "patient_id": _identity(text(ds, "PatientID"))[:128],
        "patient_birth_date": _identity(text(ds, "PatientBirthDate"))[:64],
    }
    hashed = settings.PATIENT_IDENTITY == "hashed"
    if hashed and any(fields[k] for k in ("patient_name", "patient_id", "patient_birth_date")):
        fields["identity_hash"] = identity.HMAC_SHA256
    if fields["study_date"] is None:
        for keyword in ("SeriesDate", "ContentDate", "AcquisitionDate"):
            fields["study_date"] = parse_date(text(ds, keyword))
            if fields["study_date"]:
                break
    return fields
