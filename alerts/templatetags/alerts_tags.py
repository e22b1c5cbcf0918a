"""Reference-level marks and alert values on pages (values in the units pages show)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template

from alerts.levels import Mark, marks_for
from alerts.quantities import shown_unit, text
from dose.models import Study

register = template.Library()


def _studies(rows: Iterable[Any]) -> list[Study]:
    """The studies of a page's rows: studies, or (study, headline) pairs as the list has."""
    return [row[0] if isinstance(row, tuple | list) else row for row in rows]


@register.simple_tag
def reference_marks(rows: Iterable[Any]) -> dict[int, list[Mark]]:
    """Study pk -> levels it exceeds, for every study of the page in a few queries.

    `{% reference_marks rows as marks %}` once, then `{% level_badge marks study %}` per row.
    """
    return marks_for(_studies(rows))


@register.inclusion_tag("alerts/level_badge.html")
def level_badge(marks: dict[int, list[Mark]], study: Study) -> dict[str, Any]:
    return {"marks": marks.get(study.pk, [])}


@register.inclusion_tag("alerts/study_levels.html")
def study_levels(study: Study) -> dict[str, Any]:
    """The levels one study exceeds, with its value against each (the study page)."""
    return {"marks": marks_for([study]).get(study.pk, [])}


@register.filter
def shown(value: float | None, quantity: str) -> str:
    """A stored value of `quantity` in the unit pages show, without the unit."""
    return text(quantity, value)


@register.filter
def unit(quantity: str) -> str:
    return shown_unit(quantity).label
