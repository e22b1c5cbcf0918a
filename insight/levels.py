"""Reference levels on the charts: which level applies to each bar, in the chart's units.

A bar is a group of studies or events (an acquisition protocol, a study description, a
radiopharmaceutical). A level applies to it when the level is active, of the chart's
modality and quantity, and either has no pattern or a pattern on the chart's grouping
(study description or protocol) that matches the group's name, as alerts/matching.py
matches it in the database ("^" reads as a space, any case). Levels with an age, weight or
size band are left out: the bar's median mixes every patient, so comparing it with a
band's level would mislead (the reference-level report compares them properly).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from alerts.matching import glob_regex
from alerts.models import PatternKind, PatternOn, ReferenceLevel

BAND_FIELDS = ("age_min_years", "age_max_years", "weight_min_kg", "weight_max_kg",
               "size_min_m", "size_max_m")


@dataclass(frozen=True)
class BarLevel:
    value: float  # in the chart's unit
    name: str


def matches(level: ReferenceLevel, name: str) -> bool:
    if not level.pattern.strip():
        return True
    text = name.replace("^", " ")
    pattern = level.pattern.strip()
    if level.pattern_kind == PatternKind.GLOB:
        return re.search(glob_regex(pattern), text, re.IGNORECASE | re.DOTALL) is not None
    return pattern.casefold() in text.casefold()


def candidates(modality: str, quantity: str, grouping: PatternOn) -> list[ReferenceLevel]:
    """Active, unbanded levels of the quantity: patterned ones first (the more specific),
    then by name, so that each bar takes the first that matches."""
    levels = ReferenceLevel.objects.filter(active=True, modality=modality, quantity=quantity,
                                           **{f"{f}__isnull": True for f in BAND_FIELDS})
    usable = [lv for lv in levels if not lv.pattern.strip() or lv.pattern_on == grouping]
    return sorted(usable, key=lambda lv: (not lv.pattern.strip(), lv.name, lv.pk))


def bar_levels(modality: str, quantity: str, grouping: PatternOn, names: list[str],
               factor: float = 1.0) -> list[BarLevel | None]:
    """The level of each bar (None where none applies); `factor` converts schema units to
    the chart's."""
    levels = candidates(modality, quantity, grouping)
    out: list[BarLevel | None] = []
    for name in names:
        found = next((lv for lv in levels if matches(lv, name)), None)
        out.append(None if found is None else BarLevel(found.value * factor, found.name))
    return out
