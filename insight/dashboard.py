"""The home page's dashboard: what arrived, how much dose, and whether the nodes are well."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.http import QueryDict
from django.utils import timezone

from insight import queries as q
from insight.filters import InsightFilter, study_list_url


@dataclass(frozen=True)
class Linked:
    label: str
    n: int
    url: str
    modality: str = ""


@dataclass(frozen=True)
class LinkedFigure:
    figure: q.Figure
    url: str


@dataclass(frozen=True)
class Dashboard:
    since: dt.date | None
    until: dt.date | None
    modalities: list[Linked]
    stations: list[Linked]
    figures: list[LinkedFigure]
    activity: q.Activity
    nodes: q.NodeHealth
    links: dict[str, str]

    @property
    def studies(self) -> int:
        return sum(m.n for m in self.modalities)


def imports_url(**params: str) -> str:
    query = QueryDict(mutable=True)
    query.update({k: v for k, v in params.items() if v})
    return "/imports/?" + query.urlencode()


def build(flt: InsightFilter, now: dt.datetime | None = None) -> Dashboard:
    """Every figure with the link to the studies (or import records) it counts."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    since = flt.since.isoformat() if flt.since else ""
    until = flt.until.isoformat() if flt.until else ""
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    return Dashboard(
        since=flt.since, until=flt.until,
        modalities=[
            Linked(m, n, study_list_url(flt.with_(modality=m)), m)
            for m, n in q.studies_per_modality(flt)
        ],
        stations=[
            Linked(s, n, study_list_url(flt.with_(modality=m), station=s), m)
            for s, m, n in q.studies_per_station(flt)
        ],
        figures=[
            LinkedFigure(f, study_list_url(flt.with_(modality=f.modality), sort=f.sort))
            for f in q.headline_figures(flt)
        ],
        activity=q.activity(flt.since, flt.until, now),
        nodes=q.node_health(),
        links={
            "studies": study_list_url(flt),
            "today": imports_url(date_from=today.isoformat(), date_to=today.isoformat()),
            "imported_today": imports_url(outcome="imported", date_from=today.isoformat(),
                                          date_to=today.isoformat()),
            # The list filters by day: yesterday and today cover the last 24 hours.
            "failed_24h": imports_url(outcome="failed", date_from=yesterday),
            "failed_period": imports_url(outcome="failed", date_from=since, date_to=until),
        },
    )
