from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def sig(value: object, digits: int = 4) -> str:
    """A dose number to `digits` significant figures (DAP in Gy·m² is often 1e-5); "" for null."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.{digits}g}"
