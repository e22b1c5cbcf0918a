"""Query parameters: one dataclass shared by the CLI, the web form and scheduled queries."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# Requested modality group -> codes sent in ModalitiesInStudy (QR_RULES.md "Inputs").
GROUPS: dict[str, tuple[str, ...]] = {
    "CT": ("CT",),
    "MG": ("MG",),
    "FL": ("RF", "XA"),
    "DX": ("DX", "CR", "PX"),
    "NM": ("NM", "PT"),
    "SR": ("SR",),
}
GROUP_ORDER = ("CT", "MG", "FL", "DX", "NM")


class ParamError(ValueError):
    """A bad combination of query options, in one line a user can act on."""


def parse_terms(text: str | None) -> list[str]:
    """Comma-separated terms, trimmed and lower-cased; empty terms dropped."""
    if not text:
        return []
    return [t.strip().lower() for t in text.split(",") if t.strip()]


def parse_date(text: str) -> dt.date:
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    raise ParamError(f"bad date {text!r}: use YYYY-MM-DD")


def parse_hhmm(text: str) -> str:
    value = text.strip().replace(":", "")
    if len(value) != 4 or not value.isdigit() or int(value[:2]) > 23 or int(value[2:]) > 59:
        raise ParamError(f"bad time {text!r}: use HHMM")
    return value


@dataclass
class QueryParams:
    modalities: list[str] = field(default_factory=list)
    date_from: dt.date | None = None
    date_until: dt.date | None = None
    time_from: str = ""
    time_until: str = ""
    desc_exclude: list[str] = field(default_factory=list)
    desc_include: list[str] = field(default_factory=list)
    station_exclude: list[str] = field(default_factory=list)
    station_include: list[str] = field(default_factory=list)
    station_study_level: bool = False
    toshiba: bool = False
    sr_only: bool = False
    dup: bool = False
    emptysr: bool = False
    all_dates: bool = False

    def normalized(self, today: dt.date | None = None) -> QueryParams:
        """Apply the date rules and check the option combinations; raises ParamError."""
        today = today or dt.date.today()
        mods = [m.upper() for m in self.modalities]
        for m in mods:
            if m not in GROUPS or m == "SR":
                raise ParamError(f"unknown modality {m!r}: choose from CT, MG, FL, DX, NM")
        if self.sr_only and mods:
            raise ParamError("-sr cannot be combined with modality flags")
        if not self.sr_only and not mods:
            raise ParamError("choose at least one modality (-ct -mg -fl -dx -nm) or -sr")
        start, end = self.date_from, self.date_until
        if start and not end:
            end = today
        if start and end and start > end:
            start, end = end, start
        if start is None and end is None and not self.all_dates:
            raise ParamError(
                "no dates given: add -f/-t or -sd, or --all-dates for the whole archive"
            )
        tf, tt = self.time_from, self.time_until
        if (tf or tt) and not (start is not None and start == end):
            raise ParamError("a time window (-tf/-tt) needs a single date (-sd)")
        if tf or tt:
            tf, tt = parse_hhmm(tf or "0000"), parse_hhmm(tt or "2359")
        ordered = [g for g in GROUP_ORDER if g in mods]
        return QueryParams(**{
            **asdict(self), "modalities": ordered, "date_from": start, "date_until": end,
            "time_from": tf, "time_until": tt,
        })

    @property
    def groups(self) -> list[str]:
        return ["SR"] if self.sr_only else list(self.modalities)

    @property
    def codes(self) -> list[str]:
        return [code for g in self.groups for code in GROUPS[g]]

    def study_date(self) -> str:
        def fmt(d: dt.date | None) -> str:
            return d.strftime("%Y%m%d") if d else ""

        if self.date_from is None and self.date_until is None:
            return ""
        if self.date_from == self.date_until:
            return fmt(self.date_from)
        return f"{fmt(self.date_from)}-{fmt(self.date_until)}"

    def study_time(self) -> str:
        if not (self.time_from or self.time_until):
            return ""
        return f"{self.time_from}-{self.time_until}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("date_from", "date_until"):
            data[key] = data[key].isoformat() if data[key] else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QueryParams:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("date_from", "date_until"):
            if values.get(key):
                values[key] = dt.date.fromisoformat(values[key])
        return cls(**values)


def matches_terms(value: str, include: list[str], exclude: list[str]) -> str:
    """'' when the row passes; else why not. Missing values always pass (QR_RULES.md)."""
    text = (value or "").strip().lower()
    if not text:
        return ""
    if any(term in text for term in exclude):
        return "excluded term"
    if include and not any(term in text for term in include):
        return "no include term"
    return ""
