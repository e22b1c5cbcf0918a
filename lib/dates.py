"""DICOM DA/TM/DT text -> Python dates; None for empty or unparseable values."""

from __future__ import annotations

import datetime as dt
import re

_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?")


def parse_date(text: str | None) -> dt.date | None:
    text = (text or "").strip().replace("-", "").replace(".", "")
    if len(text) < 8:
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def parse_time(text: str | None) -> dt.time | None:
    text = (text or "").strip().replace(":", "")
    if len(text) < 2 or not text[:2].isdigit():
        return None
    frac = 0
    if "." in text:
        text, _, frac_text = text.partition(".")
        frac = int((frac_text + "000000")[:6]) if frac_text.isdigit() else 0
    try:
        return dt.time(
            int(text[:2]), int(text[2:4] or 0), int(text[4:6] or 0) if len(text) >= 6 else 0,
            frac,
        )
    except ValueError:
        return None


def parse_datetime(text: str | None) -> dt.datetime | None:
    """DT without zone handling: the value as the modality recorded it, tagged UTC."""
    match = _DT.match((text or "").strip())
    if not match:
        return None
    parts = [int(p) if p else None for p in match.groups()[:6]]
    frac = match.group(7)
    try:
        return dt.datetime(
            parts[0] or 1, parts[1] or 1, parts[2] or 1, parts[3] or 0, parts[4] or 0,
            parts[5] or 0, int((frac + "000000")[:6]) if frac else 0, tzinfo=dt.UTC,
        )
    except ValueError:
        return None


def combine(date: dt.date | None, time: dt.time | None) -> dt.datetime | None:
    if date is None:
        return None
    return dt.datetime.combine(date, time or dt.time(0), tzinfo=dt.UTC)
