"""Studies browser: filterable, sortable, paged list and one study with events and totals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from dose.forms import StudyFilterForm
from dose.links import dose_objects, related_studies
from dose.models import Study
from dose.queries import (
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
COLUMNS = (
    ("date", "Date"), ("modality", "Modality"), ("accession", "Accession"),
    ("description", "Description"), ("station", "Station"), ("events", "Events"),
    ("dlp", "DLP (mGy·cm)"), ("dap", "DAP"),
)
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
    label: str
    query: str
    arrow: str


def sort_links(params: QueryDict, current: str) -> list[SortLink]:
    """Header links: clicking the current column flips its direction, others sort ascending."""
    links = []
    for key, label in COLUMNS:
        query = params.copy()
        query.pop("page", None)
        active = current.lstrip("-") == key
        descending = current.startswith("-")
        query["sort"] = key if (active and descending) or not active else "-" + key
        arrow = ("▼" if descending else "▲") if active else ""
        links.append(SortLink(label=label, query=query.urlencode(), arrow=arrow))
    return links


@require_GET
@role_required(VIEWER)
def study_list(request: HttpRequest) -> HttpResponse:
    form = StudyFilterForm(request.GET)
    form.is_valid()
    sort = form.sort_key()
    pks = sort_studies(filter_studies(form.study_filter()), sort).values_list("pk", flat=True)
    page = Paginator(pks, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form, "page": page, "query": query.urlencode(),
        "rows": [(study, headline(study)) for study in summarised_page(list(page))],
        "columns": sort_links(request.GET, sort),
        "filtered": any(v for k, v in request.GET.items() if k not in ("sort", "page")),
    }
    if not page.paginator.count:
        context["send"] = send_example(request)
    return render(request, "dose/studies.html", context)


@require_GET
@role_required(VIEWER)
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(with_summary(studies_for_export(Study.objects.filter(pk=pk))))
    data = study_to_dict(study)
    return render(request, "dose/study.html", {
        "study": study, "data": data, "headline": headline(study),
        "totals": total_rows(data["totals"]),
        "objects": dose_objects(study),
        "related": list(related_studies(study)),
    })
