"""Periods and filters shared by the dashboard and the charts, and links to the study list."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.http import QueryDict
from django.utils import timezone

from dose.models import IrradiationEvent, Study

# Preset -> (label, days back including today; None = all time).
PERIODS: dict[str, tuple[str, int | None]] = {
    "7d": ("last 7 days", 7),
    "30d": ("last 30 days", 30),
    "90d": ("last 90 days", 90),
    "365d": ("last 12 months", 365),
    "all": ("all time", None),
}
DEFAULT_PERIOD = "30d"


@dataclass(frozen=True)
class InsightFilter:
    """Study dates are inclusive; empty text means "any"; text filters match exactly.

    `protocol` is an event's acquisition protocol (CT, DX, RF, MG) or, for NM, which has
    none, the study description.
    """

    modality: str = ""
    since: dt.date | None = None
    until: dt.date | None = None
    station: str = ""
    manufacturer: str = ""
    model: str = ""
    protocol: str = ""

    def study_q(self, prefix: str = "") -> Q:
        """The filter as a Q on Study, or on a model reaching Study through `prefix`."""
        q = Q()
        for field, value in (
            ("modality_type", self.modality), ("station_name", self.station),
            ("manufacturer", self.manufacturer), ("manufacturer_model_name", self.model),
        ):
            if value:
                q &= Q(**{prefix + field: value})
        if self.since:
            q &= Q(**{prefix + "study_date__gte": self.since})
        if self.until:
            q &= Q(**{prefix + "study_date__lte": self.until})
        return q

    def studies(self) -> Q:
        """Studies that pass, the protocol meaning "has an event with that protocol"."""
        q = self.study_q()
        if self.protocol and self.modality == Study.NM:
            q &= Q(study_description=self.protocol)
        elif self.protocol:
            q &= Q(Exists(IrradiationEvent.objects.filter(
                study=OuterRef("pk"), acquisition_protocol=self.protocol)))
        return q

    def events(self) -> Q:
        """Events that pass: of such studies, and themselves of the protocol."""
        q = self.study_q("study__")
        if self.protocol:
            q &= Q(acquisition_protocol=self.protocol)
        return q

    def administrations(self) -> Q:
        q = self.study_q("study__")
        if self.protocol:
            q &= Q(study__study_description=self.protocol)
        return q

    def with_(self, **changes: Any) -> InsightFilter:
        return replace(self, **changes)


def period_dates(preset: str, today: dt.date | None = None
                 ) -> tuple[dt.date | None, dt.date | None]:
    """First and last day of a preset period ending today (the site's date); all time has
    no bounds, so it also counts studies without a date."""
    today = today or timezone.localdate()
    days = PERIODS.get(preset, PERIODS[DEFAULT_PERIOD])[1]
    if days is None:
        return None, None
    return today - dt.timedelta(days=days - 1), today


def study_list_url(flt: InsightFilter, **extra: str) -> str:
    """The Studies page showing the studies behind a figure (dose/forms.py's parameters).

    A station is sent in double quotes, which the list matches exactly (a bare name is a
    "contains" search there, and "CT1" would also find "CT12")."""
    query = QueryDict(mutable=True)
    pairs = {
        "modality": flt.modality,
        "date_from": flt.since.isoformat() if flt.since else "",
        "date_to": flt.until.isoformat() if flt.until else "",
        "manufacturer": flt.manufacturer, "model": flt.model,
        "protocol": flt.protocol if flt.modality != Study.NM else "",
        "description": flt.protocol if flt.modality == Study.NM else "",
    }
    pairs.update(extra)
    if flt.station or "station" in extra:
        pairs["station"] = f'"{extra.get("station", flt.station)}"'
    for key, value in pairs.items():
        if value:
            query[key] = value
    return "/studies/?" + query.urlencode()
