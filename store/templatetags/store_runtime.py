from __future__ import annotations

from datetime import timedelta

from django import template

from nodes.models import StoreNode
from store import control
from store.models import StoreRuntime

register = template.Library()


@register.simple_tag
def store_runtime(node: StoreNode) -> StoreRuntime:
    """The node's runtime row, or an unsaved stopped one (a GET never writes)."""
    found = StoreRuntime.objects.filter(node=node).first()
    return found if found is not None else StoreRuntime(node=node)


@register.filter
def duration(value: timedelta | None) -> str:
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {seconds} s"
    return f"{seconds} s"


@register.simple_tag
def runtime_shown(node: StoreNode, runtime: StoreRuntime) -> control.Shown:
    return control.shown(node, runtime)


@register.simple_tag
def runtime_should_run(node: StoreNode, runtime: StoreRuntime) -> bool:
    return control.should_run(node, runtime)
