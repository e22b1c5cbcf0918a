"""Charts per modality: the page (filters and empty chart frames), each chart's JSON and CSV."""

from __future__ import annotations

import csv

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from doseport.auth import VIEWER, role_required
from insight import queries
from insight.charts import CHARTS, MODALITY_NAMES, Builder
from insight.filters import study_list_url
from insight.forms import FILTERS, ChartFilterForm, PeriodForm


def _modality(slug: str) -> str:
    modality = slug.upper()
    if modality not in CHARTS:
        raise Http404(f"No charts for modality {slug!r}.")
    return modality


def _form(request: HttpRequest, modality: str) -> ChartFilterForm:
    """The filters, offering the values the modality has in the chosen period."""
    period = PeriodForm(request.GET)
    period.is_valid()
    keep = {name: request.GET.get(name, "") for name in FILTERS}
    options = queries.choices(period.insight_filter(modality), keep)
    form = ChartFilterForm(request.GET, options=options)
    form.is_valid()
    return form


def _chart(modality: str, name: str) -> Builder:
    builder = CHARTS[modality].get(name)
    if builder is None:
        raise Http404(f"No chart {name!r} for {modality}.")
    return builder


def period_query(request: HttpRequest) -> str:
    """The period part of the filters, which other modalities' pages share."""
    query = request.GET.copy()
    for key in list(query):
        if key not in ("period", "date_from", "date_to"):
            del query[key]
    return query.urlencode()


@require_GET
@role_required(VIEWER)
def index(request: HttpRequest) -> HttpResponse:
    return redirect("insight:modality", slug="ct")


@require_GET
@role_required(VIEWER)
def modality_page(request: HttpRequest, slug: str) -> HttpResponse:
    modality = _modality(slug)
    form = _form(request, modality)
    flt = form.insight_filter(modality)
    return render(request, "insight/modality.html", {
        "form": form, "modality": modality, "slug": slug.lower(),
        "modalities": [(m.lower(), name) for m, name in MODALITY_NAMES.items()],
        "name": MODALITY_NAMES[modality], "charts": list(CHARTS[modality]),
        "query": request.GET.urlencode(), "period_query": period_query(request),
        "flt": flt, "period": form.period_label(),
        "studies_url": study_list_url(flt),
    })


@require_GET
@role_required(VIEWER)
def chart_json(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    modality = _modality(slug)
    build = _chart(modality, name)
    form = _form(request, modality)
    data = build(form.insight_filter(modality), form.chosen_interval())
    return JsonResponse(data.as_json(), json_dumps_params={"ensure_ascii": False})


@require_GET
@role_required(VIEWER)
def chart_csv(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    modality = _modality(slug)
    build = _chart(modality, name)
    form = _form(request, modality)
    data = build(form.insight_filter(modality), form.chosen_interval())
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"doseport-{slug.lower()}-{name}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    csv.writer(response).writerows(data.csv_rows())
    return response
