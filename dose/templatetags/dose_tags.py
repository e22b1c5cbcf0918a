"""Template filters for values people read (rules in lib/format.py, docs/display.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.conf import settings
from django.utils import timezone

from dose.links import sop_class_name, studies_of_record
from imports.models import ImportRecord
from lib import format as fmt

register = template.Library()


@register.filter
def sig(value: object, digits: int = fmt.DIGITS) -> str:
    """A number to `digits` significant figures, never in scientific notation when ordinary."""
    return fmt.number(value, digits)


@register.filter
def dap(value_Gym2: float | None) -> str:
    """DAP (stored in Gy·m²) in the site's unit (DOSEPORT_DAP_UNIT)."""
    return fmt.dap(value_Gym2, settings.DAP_UNIT)


@register.simple_tag
def dap_unit() -> str:
    return fmt.dap_unit(settings.DAP_UNIT).label


@register.filter
def dose_rp(value_Gy: float | None) -> str:
    """Dose at the reference point (stored in Gy) in mGy."""
    return fmt.dose_rp(value_Gy)


@register.filter
def duration(seconds: float | None) -> str:
    return fmt.duration(seconds)


@register.filter
def dicom_text(value: object) -> str:
    return fmt.dicom_text(value)


@register.filter
def person_name(value: object) -> str:
    return fmt.person_name(value)


@register.filter
def when(value: object) -> str:
    """A moment Doseport recorded (arrival, import) in the site's time zone."""
    return fmt.datetime_text(value, zone=timezone.get_current_timezone())


@register.filter
def recorded(value: object) -> str:
    """A date-time as the modality recorded it (no time zone conversion)."""
    return fmt.datetime_text(value)


@register.filter
def day(value: object) -> str:
    return fmt.date_text(value)


@register.filter
def study_when(study: Any) -> str:
    """A study's date and time ("date unknown" without a date)."""
    date: dt.date | None = getattr(study, "study_date", None)
    time: dt.time | None = getattr(study, "study_time", None)
    return fmt.study_when(date, time)


@register.filter
def event_time(value: object, study_date: object = None) -> str:
    return fmt.event_time(value, study_date)


@register.filter
def sop_class(uid: str) -> str:
    return sop_class_name(uid)


@register.inclusion_tag("dose/record_studies.html")
def record_studies(record: ImportRecord) -> dict[str, Any]:
    """Links from an import record to the studies its object is part of."""
    return {"record": record, "studies": studies_of_record(record)}


@register.filter
def age(value: object) -> str:
    return fmt.age(value)


@register.filter
def half_life(seconds: float | None) -> str:
    return fmt.half_life(seconds)


@register.filter
def material(value: object) -> str:
    return fmt.material(value)
