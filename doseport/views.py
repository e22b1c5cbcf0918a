from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from doseport.auth import VIEWER, role_required
from nodes.models import RemoteNode, StoreNode


@require_GET
@role_required(VIEWER)
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "doseport/home.html",
        {"stores": StoreNode.objects.all(), "remotes": RemoteNode.objects.all()},
    )
