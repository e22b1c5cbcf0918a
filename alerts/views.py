"""Reference levels, their report, alert rules and alerts.

Roles (docs/alerts.md): viewers see levels, the report, rules and alerts; importers and
admins acknowledge alerts; admins define levels and rules.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from alerts.forms import (
    AcknowledgeForm,
    AlertFilterForm,
    AlertRuleForm,
    CriteriaForm,
    PeriodForm,
    ReferenceLevelForm,
)
from alerts.levels import report
from alerts.models import Alert, AlertRule, ReferenceLevel
from alerts.service import identity_stored
from audit.service import changes, record
from doseport.auth import ADMIN, IMPORTER, VIEWER, role_required

PAGE_SIZE = 50
DEFINE = "define reference levels or alert rules"
ACKNOWLEDGE = "acknowledge alerts"


@require_GET
@role_required(VIEWER)
def level_list(request: HttpRequest) -> HttpResponse:
    form = PeriodForm(request.GET or None)
    since, until = form.period(timezone.localdate())
    if not form.is_bound:
        form = PeriodForm(initial={"since": since, "until": until})
    return render(request, "alerts/levels.html", {
        "form": form, "since": since, "until": until, "rows": report(since, until),
        "inactive": ReferenceLevel.objects.filter(active=False),
    })


def _edit(request: HttpRequest, form: CriteriaForm, what: str, template: str,
          done: str) -> HttpResponse:
    """Save a level or rule form and audit it; `what` is the audit noun (level, rule)."""
    adding = form.instance.pk is None
    if request.method == "POST" and form.is_valid():
        detail: dict[str, Any] = changes(form)
        obj = form.save()
        record(f"{what}.{'add' if adding else 'edit'}", obj, request=request, detail=detail)
        messages.success(request, f"Saved {obj}.")
        return redirect(done)
    return render(request, template, {
        "form": form, "adding": adding, "identity_stored": identity_stored(),
    })


@require_http_methods(["GET", "POST"])
@role_required(ADMIN, DEFINE)
def level_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    level = get_object_or_404(ReferenceLevel, pk=pk) if pk else ReferenceLevel()
    form = ReferenceLevelForm(request.POST or None, instance=level)
    return _edit(request, form, "reference_level", "alerts/level_form.html", "alerts:levels")


@require_POST
@role_required(ADMIN, DEFINE)
def level_delete(request: HttpRequest, pk: int) -> HttpResponse:
    level = get_object_or_404(ReferenceLevel, pk=pk)
    record("reference_level.delete", level, request=request, detail={"name": level.name})
    level.delete()
    messages.success(request, f"Deleted reference level {level.name}.")
    return redirect("alerts:levels")


@require_GET
@role_required(VIEWER)
def rule_list(request: HttpRequest) -> HttpResponse:
    return render(request, "alerts/rules.html", {
        "rules": AlertRule.objects.all(), "identity_stored": identity_stored(),
    })


@require_http_methods(["GET", "POST"])
@role_required(ADMIN, DEFINE)
def rule_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    rule = get_object_or_404(AlertRule, pk=pk) if pk else AlertRule()
    form = AlertRuleForm(request.POST or None, instance=rule)
    return _edit(request, form, "alert_rule", "alerts/rule_form.html", "alerts:rules")


@require_POST
@role_required(ADMIN, DEFINE)
def rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(AlertRule, pk=pk)
    record("alert_rule.delete", rule, request=request, detail={"name": rule.name})
    rule.delete()
    messages.success(request, f"Deleted alert rule {rule.name}; its alerts stay.")
    return redirect("alerts:rules")


@require_GET
@role_required(VIEWER)
def alert_list(request: HttpRequest) -> HttpResponse:
    form = AlertFilterForm(request.GET or None)
    show = form.cleaned_data["show"] if form.is_valid() else ""
    alerts = Alert.objects.all()
    if show != "all":
        alerts = alerts.filter(acknowledged_at__isnull=True)
    page = Paginator(alerts, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "alerts/alerts.html", {
        "form": form, "page": page, "show": show or "open",
    })


@require_GET
@role_required(VIEWER)
def alert_detail(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(Alert.objects.select_related("rule"), pk=pk)
    return render(request, "alerts/alert.html", {"alert": alert, "form": AcknowledgeForm()})


@require_POST
@role_required(IMPORTER, ACKNOWLEDGE)
def alert_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(Alert, pk=pk)
    if alert.acknowledged:
        messages.error(request, f"Already acknowledged by {alert.acknowledged_by_name}.")
        return redirect("alerts:alert", pk=alert.pk)
    form = AcknowledgeForm(request.POST)
    if not form.is_valid():
        return render(request, "alerts/alert.html", {"alert": alert, "form": form}, status=400)
    alert.acknowledge(request.user, form.cleaned_data["note"])
    record("alert.acknowledge", alert, request=request,
           detail={"rule": alert.rule_name, "note": alert.note})
    messages.success(request, "Alert acknowledged.")
    return redirect("alerts:list")
