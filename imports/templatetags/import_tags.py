"""What the import pages show of a record's codes."""

from __future__ import annotations

from django import template

from imports.classify import KIND_LABELS

register = template.Library()


@register.filter
def kind_label(kind: str) -> str:
    """'CT dose report' for ct_rdsr; an unknown code as it is; empty for none."""
    return KIND_LABELS.get(kind, kind)
