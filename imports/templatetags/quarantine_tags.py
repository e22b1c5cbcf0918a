from __future__ import annotations

from django import template

from imports import quarantine

register = template.Library()


@register.simple_tag
def quarantine_summary() -> quarantine.Summary:
    """What this server's quarantine holds (at most a minute old)."""
    return quarantine.cached_summary()
