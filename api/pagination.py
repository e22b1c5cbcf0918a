"""Page-number pagination with `count`, `next` and `previous` links (absolute URLs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.paginator import EmptyPage, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest

from api.auth import ApiError

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class Page:
    items: list[Any]
    envelope: dict[str, Any]  # count, next, previous, page, page_size

    def body(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        return {**self.envelope, "results": results}


def _int(request: HttpRequest, name: str, default: int, top: int | None = None) -> int:
    raw = request.GET.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1 or (top is not None and int(raw) > top):
        limit = f"1 to {top}" if top else "1 or more"
        raise ApiError(400, f"{name} must be a whole number from {limit}, not {raw!r}.")
    return int(raw)


def _link(request: HttpRequest, number: int) -> str:
    query = request.GET.copy()
    query["page"] = str(number)
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


def paginate(request: HttpRequest, rows: Sequence[Any] | QuerySet[Any, Any]) -> Page:
    """`rows` is a queryset (sliced per page) or a list; ?page=N&page_size=M."""
    size = _int(request, "page_size", PAGE_SIZE, MAX_PAGE_SIZE)
    number = _int(request, "page", 1)
    paginator = Paginator(rows, size)
    try:
        page = paginator.page(number)
    except EmptyPage:
        raise ApiError(404, f"There is no page {number} (pages: {paginator.num_pages}).") from None
    return Page(list(page), {
        "count": paginator.count,
        "page": number,
        "page_size": size,
        "next": _link(request, number + 1) if page.has_next() else None,
        "previous": _link(request, number - 1) if page.has_previous() else None,
    })
