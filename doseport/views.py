from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from doseport.auth import VIEWER, role_required
from doseport.examples import send_example
from imports.models import ImportRecord, Outcome
from insight import dashboard
from insight.forms import PeriodForm
from nodes.models import RemoteNode, StoreNode
from qr.models import Query


@require_GET
@role_required(VIEWER)
def home(request: HttpRequest) -> HttpResponse:
    recent_imports = list(ImportRecord.objects.select_related("store_node")[:10])
    period_form = PeriodForm(request.GET)
    period_form.is_valid()
    return render(
        request,
        "doseport/home.html",
        {
            "stores": StoreNode.objects.all(),
            "remotes": RemoteNode.objects.all(),
            "recent_imports": recent_imports,
            "failed_imports": ImportRecord.objects.filter(outcome=Outcome.FAILED).count(),
            "recent_queries": Query.objects.all()[:5],
            "send": None if recent_imports else send_example(request),
            "period_form": period_form, "period_label": period_form.period_label(),
            "period_query": request.GET.urlencode(),
            "dash": dashboard.build(period_form.insight_filter()),
        },
    )
