"""GET /metrics: Prometheus text format, for loopback callers or an API token holder."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from api import tokens
from metrics.collector import render

# The classic text format: every Prometheus 2.x and 3.x server reads it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A reverse proxy on this host forwards outside callers from 127.0.0.1: a request that
# carries one of these headers came through one and is not taken as local.
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")
REFUSED = (
    "403 Forbidden: /metrics answers loopback callers (DOSEPORT_METRICS_LOOPBACK) and "
    "requests with `Authorization: Token KEY` (a key from /api/tokens/ or "
    "`doseport tokens add USER`).\n"
)


def _is_local(request: HttpRequest) -> bool:
    if not settings.METRICS_LOOPBACK or any(h in request.META for h in PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _has_token(request: HttpRequest) -> bool:
    scheme, _, key = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "token" and tokens.authenticate(key.strip()) is not None


def allowed(request: HttpRequest) -> bool:
    if request.META.get("HTTP_AUTHORIZATION"):
        return _has_token(request)  # a wrong key is refused even from loopback
    return _is_local(request)


@login_not_required
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        return HttpResponse(REFUSED, status=403, content_type="text/plain; charset=utf-8")
    response = HttpResponse(render(), content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response
