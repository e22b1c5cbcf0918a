"""Reference levels on pages: marks for a page of studies and the report per level."""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from alerts.matching import values
from alerts.models import ReferenceLevel
from dose.models import Study


@dataclass(frozen=True)
class Mark:
    """A study above a level: its highest value that exceeds it (schema unit)."""

    level: ReferenceLevel
    value: float


def marks_for(studies: Iterable[Study]) -> dict[int, list[Mark]]:
    """Study pk -> the active levels it exceeds: one query for the levels, one per level of
    the modalities on the page, whatever the number of studies."""
    by_pk = {s.pk: s for s in studies}
    if not by_pk:
        return {}
    modalities = {s.modality_type for s in by_pk.values()}
    marks: dict[int, list[Mark]] = {}
    for level in ReferenceLevel.objects.filter(active=True, modality__in=modalities):
        page = Study.objects.filter(pk__in=list(by_pk))
        highest: dict[int, float] = {}
        for pk, value in values(level, page, above=level.value):
            highest[pk] = max(value, highest.get(pk, value))
        for pk, value in highest.items():
            marks.setdefault(pk, []).append(Mark(level, value))
    return marks


@dataclass(frozen=True)
class LevelRow:
    level: ReferenceLevel
    values: int  # events for per-event quantities, else studies
    studies: int
    median: float | None
    above: int  # studies with a value over the level

    @property
    def above_percent(self) -> float | None:
        return 100.0 * self.above / self.studies if self.studies else None

    @property
    def median_ratio(self) -> float | None:
        if self.median is None or not self.level.value:
            return None
        return self.median / self.level.value


def report(since: dt.date | None, until: dt.date | None) -> list[LevelRow]:
    """Per active level: median of the matching values in the period and how many studies
    exceeded it. One query per level; the median is taken in Python (SQLite has no
    percentile function)."""
    studies = Study.objects.all()
    if since:
        studies = studies.filter(study_date__gte=since)
    if until:
        studies = studies.filter(study_date__lte=until)
    rows = []
    for level in ReferenceLevel.objects.filter(active=True):
        found = list(values(level, studies))
        numbers = [float(v) for _, v in found]
        rows.append(LevelRow(
            level=level, values=len(numbers), studies=len({pk for pk, _ in found}),
            median=statistics.median(numbers) if numbers else None,
            above=len({pk for pk, v in found if v > level.value}),
        ))
    return rows
