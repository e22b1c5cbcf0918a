"""The audit log page: admins only, newest first, filtered by action, user and dates."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audit.forms import AuditFilter
from audit.service import select
from doseport.auth import ADMIN, role_required

PAGE_SIZE = 50


@require_GET
@role_required(ADMIN)
def entry_list(request: HttpRequest) -> HttpResponse:
    form = AuditFilter(request.GET or None)
    entries = select()
    if form.is_valid():
        data = form.cleaned_data
        entries = select(action=data["action"], username=data["user"].strip(),
                         since=data["since"], until=data["until"])
    page = Paginator(entries.order_by("-created_at", "-pk"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request, "audit/entries.html", {"form": form, "page": page, "query": query.urlencode()}
    )
