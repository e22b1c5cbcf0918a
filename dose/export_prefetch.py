"""Studies for a large export with their related rows attached in bulk.

Django's prefetch_related builds a filtered QuerySet for every study and every event
(~100 us each); for 100,000 events that is most of the export's time. Here each
relation is read with one query per chunk of studies and attached as an already
evaluated QuerySet, so study_to_dict() (dose/serialize.py) reads exactly what
studies_for_export() would give it; tests/test_web_export.py checks the two agree.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Model, QuerySet, sql

from dose.models import (
    AccumulatedBreast,
    AccumulatedPlane,
    IrradiationEvent,
    RadiopharmaceuticalAdministration,
    Study,
    XrayFilter,
    XraySource,
)
from dose.queries import StudyFilter, filter_studies
from dose.serialize import study_to_dict

CHUNK = 250  # studies per round of queries (RF studies: a few thousand event ids)


def _evaluated(model: type[Model], rows: list[Any], query: sql.Query) -> QuerySet[Any]:
    """A QuerySet that holds `rows` and never queries (as prefetch_related leaves one).

    `query` is shared by all of them: an evaluated QuerySet never runs it, and any method
    that would build on it (filter, order_by, ...) clones it first."""
    qs: QuerySet[Any] = QuerySet(model, query=query)
    qs._result_cache = rows
    qs._prefetch_done = True  # type: ignore[attr-defined]
    return qs


def _grouped(rows: Iterable[Any], key: str) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        out[getattr(row, key)].append(row)
    return out


def _attach(objs: list[Any], name: str, model: type[Model], groups: dict[int, list[Any]]) -> None:
    query = sql.Query(model)
    for obj in objs:
        cache = obj.__dict__.setdefault("_prefetched_objects_cache", {})
        cache[name] = _evaluated(model, groups.get(obj.pk, []), query)


def attach_related(studies: list[Study]) -> None:
    """What studies_for_export() prefetches, in the same orders, one query per relation."""
    ids = [s.pk for s in studies]
    events = list(IrradiationEvent.objects.filter(study_id__in=ids).order_by("ordinal", "id"))
    event_ids = [e.pk for e in events]
    sources = XraySource.objects.filter(event_id__in=event_ids).order_by("ordinal", "id")
    filters = XrayFilter.objects.filter(event_id__in=event_ids).order_by("ordinal", "id")
    _attach(events, "sources", XraySource, _grouped(sources, "event_id"))
    _attach(events, "filters", XrayFilter, _grouped(filters, "event_id"))
    _attach(studies, "events", IrradiationEvent, _grouped(events, "study_id"))
    for name, model, order in (
        ("planes", AccumulatedPlane, ("id",)),
        ("breasts", AccumulatedBreast, ("id",)),
        ("administrations", RadiopharmaceuticalAdministration, ("ordinal", "id")),
    ):
        rows = model._default_manager.filter(study_id__in=ids).order_by(*order)
        _attach(studies, name, model, _grouped(rows, "study_id"))


def iter_export_dicts(flt: StudyFilter, chunk: int = CHUNK) -> Iterator[dict[str, Any]]:
    """The STUDY objects of the export, in its order (study date and time, then import)."""
    studies = filter_studies(flt).order_by("study_date", "study_time", "pk")
    it = studies.iterator(chunk_size=chunk)
    while batch := list(itertools.islice(it, chunk)):
        attach_related(batch)
        for study in batch:
            yield study_to_dict(study)
