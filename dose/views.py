"""Studies browser: filterable, sortable, paged list and one study with events and totals."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Paginator
from django.db.models import Max
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET

from dose.forms import StudyFilterForm
from dose.links import dose_objects, related_studies
from dose.models import Study
from dose.queries import (
    SORTS,
    filter_studies,
    headline,
    sort_studies,
    summarised_page,
    with_summary,
)
from dose.serialize import studies_for_export, study_to_dict
from doseport.auth import VIEWER, role_required
from doseport.examples import send_example

PAGE_SIZE = 50
LIVE_WINDOW = dt.timedelta(minutes=10)
# Column key -> header; the keys of SORTS sort, the others do not.
COLUMNS = {
    "date": "Date", "modality": "Modality", "accession": "Accession",
    "description": "Description", "station": "Station", "age": "Age", "events": "Events",
    "dlp": "DLP (mGy·cm)", "dap": "DAP", "dose_rp": "Dose RP (mGy)", "agd": "AGD (mGy)",
    "activity": "Activity (MBq)",
}
_COMMON = ("date", "accession", "description", "station", "age", "events")
# The columns of each modality's list (every headline number when no modality is chosen).
COLUMN_SETS: dict[str, tuple[str, ...]] = {
    "": ("date", "modality", "accession", "description", "station", "events", "dlp", "dap",
         "agd", "activity"),
    "CT": (*_COMMON, "dlp"),
    "DX": (*_COMMON, "dap", "dose_rp"),
    "RF": (*_COMMON, "dap", "dose_rp"),
    "MG": (*_COMMON, "agd"),
    "NM": (*_COMMON, "activity"),
}
# GET parameters that are not filters (the Export form and the live refresh leave them out).
NOT_FILTERS = ("sort", "page", "since")
# Totals beyond the headline (dose/queries.py headline()), from the export's TOTALS.
BREAKDOWN = (
    ("fluoro_dap_total_Gym2", "Fluoroscopy DAP", "dap"),
    ("acquisition_dap_total_Gym2", "Acquisition DAP", "dap"),
    ("fluoro_dose_rp_total_Gy", "Fluoroscopy dose at reference point (mGy)", "dose_rp"),
    ("acquisition_dose_rp_total_Gy", "Acquisition dose at reference point (mGy)", "dose_rp"),
    ("total_fluoro_time_s", "Fluoroscopy time", "duration"),
    ("number_of_planes", "Planes", "number"),
)


@dataclass(frozen=True)
class TotalRow:
    label: str
    value: object
    kind: str  # how the template formats it: number, dap, dose_rp, duration


def total_rows(totals: dict[str, Any]) -> list[TotalRow]:
    """The breakdown rows a study has (fluoroscopy and acquisition parts, time, planes)."""
    return [
        TotalRow(label, totals[key], kind)
        for key, label, kind in BREAKDOWN if totals.get(key) is not None
    ]


@dataclass(frozen=True)
class SortLink:
    key: str
    label: str
    query: str  # "" for a column that does not sort
    arrow: str


def sort_links(params: QueryDict, current: str, keys: tuple[str, ...]) -> list[SortLink]:
    """Header links: clicking the current column flips its direction, others sort ascending."""
    links = []
    for key in keys:
        query = params.copy()
        for name in ("page", "since"):
            query.pop(name, None)
        active = current.lstrip("-") == key
        descending = current.startswith("-")
        query["sort"] = key if (active and descending) or not active else "-" + key
        arrow = ("▼" if descending else "▲") if active else ""
        links.append(SortLink(key=key, label=COLUMNS[key], arrow=arrow,
                              query=query.urlencode() if key in SORTS else ""))
    return links


def list_version() -> str:
    """Changes when a study is added or merged into: the live refresh compares it."""
    latest = Study.objects.aggregate(latest=Max("updated_at"))["latest"]
    return latest.isoformat() if latest else ""


def _unchanged(request: HttpRequest) -> bool:
    """A live refresh of the list whose studies have not changed since `since`."""
    since = parse_datetime(request.GET.get("since") or "")
    if since is None or not request.headers.get("HX-Request"):
        return False
    return not Study.objects.filter(updated_at__gt=since).exists()


@require_GET
@role_required(VIEWER)
def study_list(request: HttpRequest) -> HttpResponse:
    if _unchanged(request):
        return HttpResponse(status=204)  # htmx leaves the page as it is
    form = StudyFilterForm(request.GET)
    form.is_valid()
    sort = form.sort_key()
    version = list_version()
    pks = sort_studies(filter_studies(form.study_filter()), sort).values_list("pk", flat=True)
    page = Paginator(pks, PAGE_SIZE).get_page(request.GET.get("page"))
    params = [(k, v) for k, v in request.GET.items() if k not in NOT_FILTERS and v]
    query = request.GET.copy()
    for name in ("page", "since"):
        query.pop(name, None)
    modality = (form.cleaned_data.get("modality") or "") if hasattr(form, "cleaned_data") else ""
    keys = COLUMN_SETS.get(modality, COLUMN_SETS[""])
    context = {
        "form": form, "page": page, "query": query.urlencode(), "filter_params": params,
        "rows": [(study, headline(study)) for study in summarised_page(list(page))],
        "columns": sort_links(request.GET, sort, keys), "keys": keys,
        "filtered": bool(params), "version": version,
        "live": page.number == 1,
    }
    if request.headers.get("HX-Request"):
        return render(request, "dose/studies_results.html", context)
    if not page.paginator.count:
        context["send"] = send_example(request)
    return render(request, "dose/studies.html", context)


def _still_arriving(study: Study) -> bool:
    """Objects of a study that was just received may follow (continued reports, the other
    dose objects of the exam): its page follows it for LIVE_WINDOW."""
    return study.updated_at > timezone.now() - LIVE_WINDOW


@require_GET
@role_required(VIEWER)
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    since = parse_datetime(request.GET.get("since") or "")
    if since is not None and request.headers.get("HX-Request"):
        current = get_object_or_404(Study.objects.only("updated_at"), pk=pk)
        if current.updated_at <= since and _still_arriving(current):
            return HttpResponse(status=204)  # unchanged: htmx leaves the page as it is
    study = get_object_or_404(with_summary(studies_for_export(Study.objects.filter(pk=pk))))
    data = study_to_dict(study)
    context = {
        "study": study, "data": data, "headline": headline(study),
        "totals": total_rows(data["totals"]),
        "objects": dose_objects(study),
        "related": list(related_studies(study)),
        "live": _still_arriving(study),
    }
    if since is not None and request.headers.get("HX-Request"):
        return render(request, "dose/study_page.html", context)
    return render(request, "dose/study.html", context)
