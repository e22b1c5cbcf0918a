"""Imports page: recent ImportRecords (failures first, filters) and retry of quarantined files."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

import audit
from doseport.auth import IMPORTER, VIEWER, role_required
from imports.forms import ImportFilterForm
from imports.models import ImportRecord, Outcome, RetryState
from imports.queries import FailuresFirst, filter_records, page_rows
from imports.tasks import retry_import_task

PAGE_SIZE = 50


def later_attempts(record: ImportRecord) -> QuerySet[ImportRecord]:
    """Imports of the same file after this one (a retry re-imports record.kept_path)."""
    if not record.kept_path:
        return ImportRecord.objects.none()
    return ImportRecord.objects.filter(
        path=record.kept_path, created_at__gte=record.created_at
    ).exclude(pk=record.pk).order_by("-created_at", "-pk")


def can_retry(record: ImportRecord) -> bool:
    """A failed import whose file is still in quarantine and not already re-imported."""
    if record.outcome != Outcome.FAILED or not record.kept_path or record.retry_state:
        return False
    latest = later_attempts(record).first()
    if latest is not None and latest.outcome != Outcome.FAILED:
        return False
    return Path(record.kept_path).is_file()


def _since(request: HttpRequest) -> int | None:
    """The newest record id a live refresh of the list has already shown."""
    if not request.headers.get("HX-Request"):
        return None
    try:
        return int(request.GET.get("since", ""))
    except ValueError:
        return None


@require_GET
@role_required(VIEWER)
def import_list(request: HttpRequest) -> HttpResponse:
    since = _since(request)
    # Records are written once, with their outcome: a new id is the only change.
    if since is not None and not ImportRecord.objects.filter(pk__gt=since).exists():
        return HttpResponse(status=204)  # htmx leaves the page as it is
    newest = ImportRecord.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    form = ImportFilterForm(request.GET)
    form.is_valid()
    records = FailuresFirst(filter_records(form.import_filter()))
    page = Paginator(records, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    for name in ("page", "since"):
        query.pop(name, None)
    context = {
        "form": form, "page": page, "rows": page_rows(list(page)),
        "query": query.urlencode(), "filtered": form.has_changed(),
        "newest": newest, "live": page.number == 1,
    }
    if since is not None:
        return render(request, "imports/imports_results.html", context)
    return render(request, "imports/imports.html", context)


@require_GET
@role_required(VIEWER)
def record_detail(request: HttpRequest, pk: int) -> HttpResponse:
    record = get_object_or_404(ImportRecord, pk=pk)
    context = {
        "record": record,
        "attempts": list(later_attempts(record)[:20]),
        "can_retry": can_retry(record),
        "waiting": request.GET.get("retried") == "1",
        "pending": record.outcome == Outcome.PENDING,
    }
    if request.headers.get("HX-Request") and request.GET.get("part") == "record":
        return render(request, "imports/record_facts.html", context)
    if request.headers.get("HX-Request"):
        return render(request, "imports/record_attempts.html", context)
    return render(request, "imports/record.html", context)


@require_POST
@role_required(IMPORTER)
def retry(request: HttpRequest, pk: int) -> HttpResponse:
    record = get_object_or_404(ImportRecord, pk=pk)
    # The claim: one conditional UPDATE, so a double click or two people retry once.
    if not can_retry(record) or ImportRecord.objects.filter(
        pk=record.pk, outcome=Outcome.FAILED, retry_state=RetryState.NONE,
    ).update(retry_state=RetryState.QUEUED) != 1:
        messages.error(
            request,
            "Only a failed import whose file is still in quarantine, and that has not been "
            "retried already, can be retried (if its retry failed too, retry that newer "
            "attempt).",
        )
        return redirect("imports:record", pk=record.pk)
    # The worker imports; the page polls for the new ImportRecord of this file.
    retry_import_task(record.pk)
    audit.record("import.retry", record, request=request)
    messages.success(request, "Retry queued.")
    return redirect(reverse("imports:record", args=[record.pk]) + "?retried=1")
