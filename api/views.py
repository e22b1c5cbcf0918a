"""The read API: /api/studies/, /api/studies/ID/, /api/nodes/, /api/imports/, /api/qr/jobs/.

Each endpoint needs the role of the page it mirrors (doseport/auth.py): viewers read
studies, nodes and imports; query jobs need the importer role, as the Query pages do.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from api import serialize
from api.auth import ApiError, api_view
from api.pagination import paginate
from dose.forms import StudyFilterForm
from dose.models import Study
from dose.queries import filter_studies, sort_studies, summarised_page
from dose.serialize import studies_for_export, study_to_dict
from doseport.auth import ADMIN, IMPORTER, VIEWER, has_role
from imports.models import ImportRecord, Outcome, Source
from nodes.models import RemoteNode, StoreNode
from qr.models import Move, Query, Status
from store.models import StoreRuntime


def _filters(request: HttpRequest) -> StudyFilterForm:
    form = StudyFilterForm(request.GET)
    if not form.is_valid():
        raise ApiError(400, "Invalid filter.", errors=form.errors.get_json_data())
    return form


@api_view(VIEWER)
def studies(request: HttpRequest) -> dict[str, Any]:
    """The Studies list: same filters and sort keys, headline numbers per study."""
    form = _filters(request)
    pks = sort_studies(filter_studies(form.study_filter()), form.sort_key())
    page = paginate(request, pks.values_list("pk", flat=True))
    return page.body([serialize.study_summary(request, s) for s in summarised_page(page.items)])


@api_view(VIEWER)
def study(request: HttpRequest, pk: int) -> dict[str, Any]:
    """The EXPORT_SCHEMA STUDY object; patient identity (when stored) for admins only."""
    found = get_object_or_404(studies_for_export(Study.objects.filter(pk=pk)))
    data = study_to_dict(found)
    if not has_role(request.user, ADMIN):
        for key in serialize.IDENTITY_KEYS:
            data.pop(key, None)
    return data


@api_view(VIEWER)
def nodes(request: HttpRequest) -> dict[str, Any]:
    runtimes = {r.node_id: r for r in StoreRuntime.objects.all()}
    return {
        "store_nodes": [serialize.store_node(n, runtimes.get(n.pk))
                        for n in StoreNode.objects.all()],
        "remote_nodes": [serialize.remote_node(n) for n in RemoteNode.objects.all()],
    }


def _choice(request: HttpRequest, name: str, allowed: list[str]) -> str:
    value = request.GET.get(name, "")
    if value and value not in allowed:
        raise ApiError(400, f"{name} must be one of {', '.join(allowed)}, not {value!r}.")
    return value


@api_view(VIEWER)
def imports(request: HttpRequest) -> dict[str, Any]:
    """Newest first; ?outcome=failed|imported|..., ?source=store|query|file."""
    records = ImportRecord.objects.select_related("store_node").order_by("-created_at", "-pk")
    outcome = _choice(request, "outcome", list(Outcome.values))
    source = _choice(request, "source", list(Source.values))
    if outcome:
        records = records.filter(outcome=outcome)
    if source:
        records = records.filter(source=source)
    page = paginate(request, records)
    return page.body([serialize.import_record(r) for r in page.items])


@api_view(IMPORTER)
def qr_jobs(request: HttpRequest) -> dict[str, Any]:
    """Queries newest first, each with its retrieves; ?status=queued|running|...."""
    jobs = (
        Query.objects.select_related("remote", "store", "user")
        .prefetch_related(Prefetch("moves", queryset=Move.objects.order_by("created_at")))
        .order_by("-created_at", "-pk")
    )
    status = _choice(request, "status", list(Status.values))
    if status:
        jobs = jobs.filter(status=status)
    page = paginate(request, jobs)
    return page.body([serialize.query(q) for q in page.items])
