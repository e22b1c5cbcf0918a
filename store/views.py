"""Start/Stop of controlled store nodes and the live runtime partial of a node panel."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

import audit
from doseport.auth import ADMIN, VIEWER, role_required
from nodes.models import StoreNode
from nodes.views import panel_response
from store import control


def _partial(request: HttpRequest, node: StoreNode) -> HttpResponse:
    return render(request, "store/node_runtime.html", {"node": node})


@require_GET
@role_required(VIEWER)
def runtime(request: HttpRequest, pk: int) -> HttpResponse:
    node = get_object_or_404(StoreNode, pk=pk)
    return _partial(request, node)


def _act(request: HttpRequest, pk: int, start: bool) -> HttpResponse:
    node = get_object_or_404(StoreNode, pk=pk)
    try:
        message = (
            control.start(node) if start
            else control.stop(node, by=request.user.get_username())
        )
    except control.ControlError as exc:
        if request.headers.get("HX-Request"):
            return HttpResponse(str(exc), status=409)
        messages.error(request, str(exc))
        return redirect("nodes:dicom")
    audit.record("node.start" if start else "node.stop", node, request=request)
    if request.headers.get("HX-Request"):
        return panel_response(request, "store", node.pk)
    messages.success(request, message)
    return redirect("nodes:dicom")


@require_POST
@role_required(ADMIN)
def start(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, start=True)


@require_POST
@role_required(ADMIN)
def stop(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, start=False)
