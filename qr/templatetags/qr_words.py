"""Template filters for the query pages (qr.words does the work)."""

from __future__ import annotations

from django import template

from nodes.models import RemoteNode
from qr import probe, words

register = template.Library()
SHORT_UID = 12


@register.filter
def dicom_date(value: str) -> str:
    return words.dicom_date(value)


@register.filter
def dicom_time(value: str) -> str:
    return words.dicom_time(value)


@register.filter
def sop_name(value: str) -> str:
    return words.sop_class_name(value)


@register.filter
def short_uid(value: str) -> str:
    """The end of a UID, where UIDs of one study differ; the page keeps the whole in title."""
    value = value or ""
    return value if len(value) <= SHORT_UID + 1 else f"…{value[-SHORT_UID:]}"


@register.simple_tag
def probe_state(node: RemoteNode) -> str:
    return probe.probe_state(node)


@register.filter
def dicom_list(value: str) -> str:
    """A multi-valued DICOM string ("CT\\SR") as "CT, SR"."""
    return ", ".join(v for v in (value or "").split("\\") if v)
