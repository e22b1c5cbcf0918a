"""Which studies and events a level or rule applies to, and their values (one query each).

A pattern on the study description matches the study; a pattern on the acquisition
protocol matches events (per-event quantities count only the matching events; per-study
quantities take the study's whole total when any of its events matches). For NM the
"protocol" is the radiopharmaceutical agent. DICOM's `^` separator reads as a space, as on
the pages ("Thorax^RTP" matches "thorax rtp").
"""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, F, OuterRef, QuerySet, TextField, Value
from django.db.models.functions import Replace

from alerts.models import Criteria, PatternKind, PatternOn, ReferenceLevel
from dose.models import IrradiationEvent, RadiopharmaceuticalAdministration, Study
from dose.queries import summary_expressions


def glob_regex(pattern: str) -> str:
    """`*` any text, `?` one character, the rest literal; anchored (POSIX and Python regex)."""
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char.isalnum() or char == " ":
            parts.append(char)
        else:
            parts.append("\\" + char)
    return "^" + "".join(parts) + "$"


def match_text(qs: QuerySet[Any], field: str, crit: Criteria) -> QuerySet[Any]:
    if not crit.pattern:
        return qs
    qs = qs.alias(_matched_text=Replace(F(field), Value("^"), Value(" "), output_field=TextField()))
    pattern = crit.pattern.strip()
    if crit.pattern_kind == PatternKind.GLOB:
        return qs.filter(_matched_text__iregex=glob_regex(pattern))
    return qs.filter(_matched_text__icontains=pattern)


def _protocol_events(crit: Criteria) -> QuerySet[Any]:
    if crit.modality == Study.NM:
        rows = RadiopharmaceuticalAdministration.objects.filter(study=OuterRef("pk"))
        return match_text(rows, "radiopharmaceutical_agent", crit)
    return match_text(IrradiationEvent.objects.filter(study=OuterRef("pk")),
                      "acquisition_protocol", crit)


def matching_studies(crit: Criteria, studies: QuerySet[Study]) -> QuerySet[Study]:
    qs = studies.filter(modality_type=crit.modality)
    if crit.pattern and crit.pattern_on == PatternOn.DESCRIPTION:
        qs = match_text(qs, "study_description", crit)
    elif crit.pattern and not crit.quantity_def.per_event:
        qs = qs.filter(Exists(_protocol_events(crit)))
    if isinstance(crit, ReferenceLevel):
        for field, (low, high) in crit.bands().items():
            if low is not None:
                qs = qs.filter(**{f"{field}__gte": low})
            if high is not None:
                qs = qs.filter(**{f"{field}__lt": high})
    return qs


def values(
    crit: Criteria, studies: QuerySet[Study], above: float | None = None
) -> QuerySet[Any]:
    """(study id, value) rows in schema units: one per matching event for per-event
    quantities, one per matching study otherwise; only values over `above` if given."""
    quantity = crit.quantity_def
    matched = matching_studies(crit, studies)
    if quantity.per_event:
        field = quantity.event_field
        events = IrradiationEvent.objects.filter(study__in=matched.values("pk"))
        events = events.filter(**{f"{field}__isnull": False})
        if crit.pattern and crit.pattern_on == PatternOn.PROTOCOL:
            events = match_text(events, "acquisition_protocol", crit)
        if above is not None:
            events = events.filter(**{f"{field}__gt": above})
        return events.order_by().values_list("study_id", field)
    rows = matched.annotate(_value=summary_expressions()[quantity.summary])
    rows = rows.filter(_value__isnull=False)
    if above is not None:
        rows = rows.filter(_value__gt=above)
    return rows.order_by().values_list("pk", "_value")
