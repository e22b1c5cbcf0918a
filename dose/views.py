"""Studies browser: filterable, sortable, paged list and one study with events and totals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from dose.forms import StudyFilterForm
from dose.models import Study
from dose.queries import filter_studies, sort_studies, with_summary
from dose.serialize import studies_for_export, study_to_dict
from doseport.auth import VIEWER, role_required

PAGE_SIZE = 50
COLUMNS = (
    ("date", "Date"), ("modality", "Modality"), ("accession", "Accession"),
    ("description", "Description"), ("station", "Station"), ("events", "Events"),
    ("dlp", "DLP total (mGy·cm)"), ("dap", "DAP total (Gy·m²)"),
)
TOTAL_LABELS = {
    "number_of_events": "Events",
    "dlp_total_mGycm": "DLP total (mGy·cm)",
    "dap_total_Gym2": "DAP total (Gy·m²)",
    "dose_rp_total_Gy": "Dose at reference point total (Gy)",
    "fluoro_dap_total_Gym2": "Fluoroscopy DAP total (Gy·m²)",
    "fluoro_dose_rp_total_Gy": "Fluoroscopy dose RP total (Gy)",
    "acquisition_dap_total_Gym2": "Acquisition DAP total (Gy·m²)",
    "acquisition_dose_rp_total_Gy": "Acquisition dose RP total (Gy)",
    "total_fluoro_time_s": "Fluoroscopy time (s)",
    "number_of_planes": "Planes",
}


def total_rows(totals: dict[str, Any]) -> list[tuple[str, object]]:
    """(label, value) for every total the study has; accumulated AGD one row per breast."""
    rows: list[tuple[str, object]] = [
        (TOTAL_LABELS.get(key, key), value)
        for key, value in totals.items()
        if value is not None and key != "accumulated_agd_mGy"
    ]
    for side, agd in (totals.get("accumulated_agd_mGy") or {}).items():
        rows.append((f"Accumulated AGD {side} (mGy)", agd))
    return rows


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
    studies = sort_studies(with_summary(filter_studies(form.study_filter())), sort)
    page = Paginator(studies, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form, "page": page, "query": query.urlencode(),
        "columns": sort_links(request.GET, sort),
    }
    return render(request, "dose/studies.html", context)


@require_GET
@role_required(VIEWER)
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(studies_for_export(Study.objects.filter(pk=pk)))
    data = study_to_dict(study)
    return render(
        request, "dose/study.html",
        {"study": study, "data": data, "totals": total_rows(data["totals"])},
    )
